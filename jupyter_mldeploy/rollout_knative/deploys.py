"""Deploy as a Knative Service: a new revision, created only when the name is free."""

from __future__ import annotations

from collections.abc import Callable

from .. import api
from .. import labels as L
from ..connection import cluster
from ..errors import (
    MLDeployError,
    NotOurs,
    SpecError,
)
from ..kube import apply as kapply
from ..kube import namespaces, owner
from ..kube.client import Kube
from ..kube.resources import named_path
from ..render.routers import knative as kn
from ..spec import DeploySpec, validate_namespace
from .revisions import KnativeStatus, _wait
from .rollouts import KnativeModel
from .running import _controller_or_refuse
from .service import (
    API,
    STRATEGY,
    Scale,
    _check_spec,
    _entry,
    _labels,
    _not_ours,
    _owned,
    _state,
    _write,
    read_service,
    spec_of,
    template,
)


def _plain_refusal(name: str, ns: str, plain: dict | None, anchor: owner.Anchor) -> str | None:
    """Why the name is not free for a Knative Service (Knative makes a Service `<name>` for its route),
    or None when it is."""
    objects = [o for o in anchor.objects.values() if (o.api_version, o.kind) != (API, "Service")]
    if plain is not None and not anchor.owns(plain):
        return (f"A Service named {name} already exists in namespace {ns} and is not jupyter-mldeploy's (it "
                f"is managed by {', '.join(kapply.managers(plain))}), and Knative needs that name for its "
                f"route; it was left as it was: choose another model name, or remove it first.")
    if plain is not None or objects:
        return (f"A Service named {name} already exists in namespace {ns}: {name} is deployed without "
                f"Knative (as a Deployment), and Knative needs that name for its route; %undeploy {name} "
                f"first, or choose another name.")
    return None


def deploy(spec: DeploySpec, *, scale: Scale | None = None, namespace: str | None = None,
           kube: Kube | None = None, kubeconfig: str | None = None, context: str | None = None,
           wait: bool = True, timeout: float = 600, on_status: Callable[[KnativeStatus], None] | None = None,
           create_namespace: bool = False) -> KnativeModel:
    """Serve `spec` as the Knative Service `<name>`, all traffic on its revision once it is Ready.

    A changed image or spec makes a new revision (Knative starts it before moving traffic, so the
    old one keeps answering meanwhile); the same spec is a no-op. `scale` defaults to the current
    revision's (or Scale(): one pod kept warm). The model's anchor is claimed first (its lease keeps
    another kernel from writing the model meanwhile); a Knative Service or Service of that name that
    is not ours is refused and left as it was. create_namespace=True makes the namespace when it is
    missing (as api.deploy does).
    """
    _check_spec(spec)
    if scale is not None and not isinstance(scale, Scale):
        raise SpecError(f"scale must be a rollout_knative.Scale, got {type(scale).__name__}.")
    kube = cluster(kube, kubeconfig, context)
    ns = validate_namespace(spec.namespace or namespace or kube.namespace)
    _controller_or_refuse(kube)
    made = create_namespace and namespaces.ensure(kube, ns)
    c = owner.claim(kube, ns, spec.name, "stable")
    try:
        applied, rev = _deploy_write(kube, ns, spec, scale, c.anchor)
    except BaseException:
        api._give_back(kube, c)  # the lease goes; a first release leaves no anchor behind
        raise
    owner.settle(kube, c, ok=True, written=[_owned(applied)])
    handle = KnativeModel(spec.name, ns, kube, revision=rev)
    if made:
        handle.notes.append(f"Created namespace {ns}.")
    if wait:
        try:
            handle.last_status = _wait(kube, ns, spec.name, rev, timeout=timeout, on_status=on_status)
        except KeyboardInterrupt:
            handle.notes.append("Stopped watching (interrupted); Knative goes on with the revision.")
    return handle


def _deploy_write(kube: Kube, ns: str, spec: DeploySpec, scale: Scale | None,
                  anchor: owner.Anchor) -> tuple[kapply.Applied, str]:
    pool = kapply.pool()
    svc_f = pool.submit(read_service, kube, ns, spec.name)
    plain_f = pool.submit(kube.get_or_none, named_path("v1", "Service", ns, spec.name))
    ksvc, plain = svc_f.result(), plain_f.result()
    if ksvc is not None and not anchor.owns(ksvc):
        raise _not_ours(spec.name, ns)
    if ksvc is None:
        refusal = _plain_refusal(spec.name, ns, plain, anchor)
        if refusal:
            raise NotOurs(refusal, obj=f"service/{spec.name}", status=409, reason="NotOurs")
    else:
        if _state(ksvc).get(STRATEGY):
            raise MLDeployError(f"{spec.name} has a {_state(ksvc)[STRATEGY]} rollout in progress: promote "
                                f"it or roll it back first (%promote {spec.name} or %rollback {spec.name}).")
        if scale is None:
            scale = spec_of(ksvc["spec"]["template"])[1]
    tmpl = template(spec, ns, scale or Scale())
    rev = tmpl["metadata"]["name"]
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: rev, L.WEIGHT: "0"}
    block = [_entry(rev, 100, "stable")]
    if ksvc is None:  # a create: refused by the API server if anything took the name since the read
        m = kn.service(spec.name, ns, template=tmpl, traffic=block, labels=_labels(spec.name), state=state)
        return _write(kube, anchor, m, before=None, record=False), rev
    m = kn.service(spec.name, ns, template=tmpl, traffic=block, labels=_labels(spec.name), state=state,
                   resource_version=ksvc["metadata"]["resourceVersion"])
    return _write(kube, anchor, m, before=ksvc, record=False), rev
