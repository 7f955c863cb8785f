"""The Knative Service of a model: its ownership (by the anchor's uid, never by labels), its template
from a DeploySpec and back, the manifest of a first deploy, and the guarded write."""

from __future__ import annotations

import json

from .. import labels as L
from .. import traffic
from ..errors import (
    ClusterError,
    MLDeployError,
    NotDeployed,
    NotOurs,
    SpecError,
    StaleRollout,
    StaleState,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import named_path
from ..render.routers import knative as kn
from ..render.workload import pod_template
from ..spec import DeploySpec

Scale = kn.Scale
API = "serving.knative.dev/v1"
STRATEGY = L.STRATEGY
STEPS = L.STEPS
SERVICE_LABEL = "serving.knative.dev/service"
GENERATION_LABEL = "serving.knative.dev/configurationGeneration"
SERVICE_UID_LABEL = "serving.knative.dev/serviceUID"  # on each Revision: the Knative Service that made it
# Knative cannot mirror, so a shadow has no revision track.
TRACK_OF = {k: v for k, v in traffic.CANDIDATE_TRACKS.items() if k != "shadow"}
POLL = 0.5


def _svc_path(ns: str, name: str) -> str:
    return named_path(API, "Service", ns, name)


def read_service(kube: Kube, ns: str, name: str) -> dict | None:
    """The Knative Service `name`, or None (also when Knative is not installed)."""
    return kube.get_or_none(_svc_path(ns, name))




def _not_ours(name: str, ns: str) -> NotOurs:
    return NotOurs(f"The Knative Service {name} in namespace {ns} is not jupyter-mldeploy's (it does not "
                   f"name {owner.anchor_name(name)} as its owner, whatever its labels); it was left as it "
                   f"was. Choose another model name, or remove it first.", obj=f"ksvc/{name}", status=409,
                   reason="NotOurs")


def _anchor_of(kube: Kube, ns: str, name: str, ksvc: dict) -> owner.Anchor | None:
    """The model's anchor when it owns `ksvc`, else None. This process's copy first, read again when that
    copy does not own it (another kernel may have undeployed and deployed the model since)."""
    a = owner.cached(kube, ns, name)
    if a is not None and a.owns(ksvc):
        return a
    try:
        a = owner.read(kube, ns, name)
    except NotOurs:
        return None  # a same-named ConfigMap that is not an anchor: nothing here is ours
    return a if a is not None and a.owns(ksvc) else None


def ours(kube: Kube, ns: str, name: str) -> dict | None:
    """The Knative Service `name` when it is ours (its owner is the model's anchor); None when there is
    none, when it is someone else's, or when the cluster does not serve Knative."""
    try:
        ksvc = read_service(kube, ns, name)
    except ClusterError as e:
        if e.status in (403, 404):
            return None
        raise
    if ksvc is None or _anchor_of(kube, ns, name, ksvc) is None:
        return None
    return ksvc


def _read_ours(kube: Kube, ns: str, name: str) -> tuple[dict, owner.Anchor]:
    """The model's Knative Service and its anchor, read now; refused when the Service is not ours."""
    ksvc = read_service(kube, ns, name)
    if ksvc is None:
        raise NotDeployed(f"{name} is not deployed as a Knative Service in namespace {ns}: deploy it first "
                          f"with %deploy {name} --image ... --router knative.")
    a = _anchor_of(kube, ns, name, ksvc)
    if a is None:
        raise _not_ours(name, ns)
    return ksvc, a


def _labels(name: str) -> dict[str, str]:
    return {L.APP_INSTANCE: name, L.APP_NAME: name, L.APP_MANAGED_BY: L.MANAGED_BY,
            L.APP_COMPONENT: L.COMPONENT_PREDICTOR}


def _check_spec(spec: DeploySpec) -> None:
    """What a Knative Service cannot carry, refused in one sentence each (no request sent)."""
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"deploy needs a DeploySpec, got a {type(spec).__name__}.")
    if spec.autoscale is not None:
        raise SpecError("with the knative router Knative's own autoscaler sizes each revision, so autoscale "
                        "(a HorizontalPodAutoscaler) does not apply: use min_scale, max_scale and the "
                        "concurrency target (--min-scale, --max-scale, --concurrency).")
    if spec.replicas is not None:
        raise SpecError("with the knative router Knative's autoscaler sets the number of pods, so replicas "
                        "does not apply: use min_scale (pods kept warm) and max_scale.")
    if spec.expose is not None or spec.host is not None:
        raise SpecError("with the knative router the model's address is its Knative route (a URL from the "
                        "cluster's Knative domain configuration), so expose and host do not apply.")
    if spec.strategy == "recreate":
        traffic.check_supported("recreate", "knative")


def template(spec: DeploySpec, ns: str, scale: Scale) -> dict:
    """The revision template for `spec` (track-free: a revision changes role without changing)."""
    spec = spec.with_(track="stable", namespace=ns)
    return kn.revision_template(spec.to_dict(), pod_template(spec), scale, name=spec.name,
                                version=spec.effective_version)


def spec_of(template_or_revision: dict) -> tuple[DeploySpec, Scale]:
    """The DeploySpec and Scale a revision (or a revision template) runs, from its annotations."""
    ann = template_or_revision.get("metadata", {}).get("annotations", {})
    if kn.SPEC not in ann:
        name = template_or_revision.get("metadata", {}).get("name", "?")
        raise MLDeployError(f"revision {name} was not made by jupyter-mldeploy (it carries no spec), so it "
                            f"cannot be rolled back to by its spec.")
    return (DeploySpec.from_dict(json.loads(ann[kn.SPEC])),
            Scale.from_dict(json.loads(ann.get(kn.SCALE, "{}"))))


def intent_of(ksvc: dict) -> dict:
    """What jupyter-mldeploy wrote to make `ksvc` as it is: the template rebuilt from its spec annotation,
    the traffic block and our own annotations (never the webhook's defaults or Knative's annotations,
    which a manager re-sending them would take over). An undo puts this back."""
    meta = ksvc["metadata"]
    state = {k: v for k, v in (meta.get("annotations") or {}).items()
             if k.startswith(L.PREFIX) and k != L.ROUTER}
    block = [{k: t[k] for k in ("revisionName", "percent", "tag") if k in t}
             for t in ksvc.get("spec", {}).get("traffic") or []]
    return kn.service(meta["name"], meta["namespace"], template=_clean_template(ksvc["spec"]["template"]),
                      traffic=block, labels=_labels(meta["name"]), state=state)


def only_knative_wrote(before: dict, now: dict) -> bool:
    """Whether the Service changed between two reads only where Knative's controllers write (its status,
    which moves the resourceVersion too): same object, same spec generation, same labels and our
    annotations. Pure. Any other difference is another writer, whose change must not be overwritten."""
    b, n = before.get("metadata", {}), now.get("metadata", {})

    def ours(meta: dict) -> dict:
        return {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(L.PREFIX)}
    return (b.get("uid") == n.get("uid") and b.get("generation") == n.get("generation")
            and b.get("labels") == n.get("labels") and ours(b) == ours(n)
            and b.get("ownerReferences") == n.get("ownerReferences"))


# A write refused only because Knative updated the status meanwhile is sent again, this many times at
# most (Knative writes the status a few times in the seconds after each change of the spec).
STATUS_RETRIES = 8


def _write(kube: Kube, anchor: owner.Anchor, manifest: dict, *, before: dict | None,
           record: bool = True) -> kapply.Applied:
    """Write the model's Knative Service, owned by `anchor`: a create when `manifest` carries no
    resourceVersion (refused when anything holds the name), else an apply refused when another writer
    changed the Service since `before` was read (a change of Knative's status alone is no conflict: the
    write goes again at the new resourceVersion). Ctrl-C puts `before` back (or deletes what this call
    created)."""
    name = manifest["metadata"]["name"]
    for _attempt in range(STATUS_RETRIES + 1):
        try:
            report = kapply.apply_all(kube, [manifest], owner=anchor,
                                      previous_loader=(lambda b=before: [intent_of(b)]) if before else None)
            break
        except ClusterError as e:
            if not (e.status == 409 and "modified" in str(e)) or before is None:
                raise
            now = read_service(kube, anchor.namespace, name)
            if now is None or not only_knative_wrote(before, now):
                stale = StaleRollout if _state(before).get(STRATEGY) else StaleState
                raise stale(f"The Knative Service {name} changed while this operation ran (another "
                                 f"kernel or kubectl wrote it); nothing was written: run the command "
                                 f"again.") from None
            before = now
            manifest = {**manifest, "metadata": {**manifest["metadata"],
                                                 "resourceVersion": now["metadata"]["resourceVersion"]}}
    else:
        raise StaleState(f"The Knative Service {name} kept changing while this operation ran; nothing was "
                         f"written: run the command again.")
    applied = report.applied[0]
    if applied.created:
        kapply.adopt_created(kube, report)  # our create's fields become our apply's, for the next write
    known = anchor.objects.get(owner.key_of(manifest))
    if record and (known is None or known.uid != applied.uid):
        owner.record(kube, anchor.namespace, anchor.model, written=[_owned(applied)])
    return applied


def _owned(applied: kapply.Applied) -> owner.Owned:
    # No track: the Service serves every track, so no track's deploy or undeploy prunes it.
    return owner.Owned(API, "Service", applied.manifest["metadata"]["name"], applied.uid, None)


def _service(kube: Kube, anchor: owner.Anchor, ksvc: dict, *, tmpl: dict, traffic_: list[dict],
             state: dict) -> kapply.Applied:
    """Rewrite our Knative Service `ksvc` (as read): refused if it changed since."""
    meta = ksvc["metadata"]
    return _write(kube, anchor, kn.service(meta["name"], meta["namespace"], template=tmpl, traffic=traffic_,
                                           labels=_labels(meta["name"]), state=state,
                                           resource_version=meta["resourceVersion"]), before=ksvc)


def _entry(revision: str, percent: int, tag: str) -> dict:
    return {"revisionName": revision, "percent": percent, "tag": tag}




def _state(ksvc: dict) -> dict[str, str]:
    return dict(ksvc.get("metadata", {}).get("annotations", {}))



def _clean_template(tmpl: dict) -> dict:
    """The template as we wrote it: the webhook adds defaults (timeouts, probe ports, resources) that a
    manager re-sending the template would otherwise take over as its own."""
    spec, scale = spec_of(tmpl)
    ns = spec.namespace
    return template(spec, ns, scale)


def manifest(spec: DeploySpec, namespace: str, scale: Scale | None = None) -> dict:
    """The Knative Service a first deploy of `spec` writes (for dry runs; no cluster needed)."""
    _check_spec(spec)
    tmpl = template(spec, namespace, scale or Scale())
    rev = tmpl["metadata"]["name"]
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: rev, L.WEIGHT: "0"}
    return kn.service(spec.name, namespace, template=tmpl, traffic=[_entry(rev, 100, "stable")],
                      labels=_labels(spec.name), state=state)
