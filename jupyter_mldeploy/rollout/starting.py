"""Choosing a router and starting a rollout: the candidate inherits the stable spec."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import api, traffic
from ..connection import cluster
from ..errors import (
    ClusterError,
    MLDeployError,
    SpecError,
)
from ..kube import apply as kapply
from ..kube import inventory, owner
from ..kube.client import Kube
from ..render import render
from ..render.routers import nginx
from ..render.workload import CHANGED
from ..spec import REDACTED, DeploySpec, changes_of, inherit, validate_gateway
from ..status import RolloutStatus
from .reads import read, stable_spec
from .state import CANDIDATE_TRACKS, Rollout, _check_where, _remember, _route


def offered_routers(kube: Kube) -> tuple[str, ...]:
    groups = inventory.served_groups(kube)
    classes: list[str] = []
    if "networking.k8s.io/v1" in groups:
        try:
            classes = _ingress_classes(kube) or []
        except ClusterError:
            classes = []
    return traffic.served_routers(groups, classes)


def _ingress_classes(kube: Kube) -> list[str] | None:
    """The IngressClass names; None when this identity may not list them (they are cluster-scoped, so a
    namespace-bound Role never grants it)."""
    try:
        _, body = kube.request("GET", "/apis/networking.k8s.io/v1/ingressclasses")
    except ClusterError as e:
        if e.status == 403:
            return None
        raise
    return [c["metadata"]["name"] for c in body.get("items", [])]


def choose_router(strategy: str, offered: Sequence[str], *, gateway: str | None) -> str:
    """`auto`: Gateway API when a parent Gateway is known, then Istio, then ingress-nginx; without a
    router canary and blue-green fall back to the replica split, shadow cannot."""
    if gateway and "gateway" in offered:
        return "gateway"
    if "istio" in offered:
        return "istio"
    if "nginx" in offered:
        return "nginx"
    if strategy == "shadow":
        raise SpecError("shadow traffic needs a router that can mirror requests, and this cluster offers "
                        f"none that jupyter-mldeploy can use ({', '.join(offered)}); pass --gateway NS/NAME "
                        "with Gateway API, or install Istio or ingress-nginx.")
    return "replicas"




def _changes(candidate: DeploySpec | Mapping[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(name, namespace, changes) from a DeploySpec (its non-default fields) or a mapping of fields."""
    if isinstance(candidate, DeploySpec):
        return candidate.name, candidate.namespace, changes_of(candidate)
    if not isinstance(candidate, Mapping):
        raise SpecError(f"start needs the candidate's changes as a mapping of DeploySpec fields (with the "
                        f"model's name) or a DeploySpec, got a {type(candidate).__name__}.")
    changes = dict(candidate)
    name = changes.pop("name", None)
    if not isinstance(name, str):
        raise SpecError("the candidate's changes need the model's name, such as {'name': 'churn', "
                        "'image': 'ghcr.io/acme/churn:1.5'}.")
    namespace = changes.pop("namespace", None)
    changes.pop("track", None)
    return name, namespace, changes


def _spec_diff(stable: DeploySpec, cand: DeploySpec, *, show_values: bool) -> str:
    """The candidate's differences from the stable: a unified diff of the two specs (their from_dict
    form), in full, so what the candidate inherits shows too; env values redacted unless asked."""
    import yaml

    def text(spec: DeploySpec) -> list[str]:
        d = {k: v for k, v in spec.to_dict().items() if k not in ("namespace", "track")}
        if not show_values and d.get("env"):
            # a changed value shows as changed, never as what it was or became
            d["env"] = {k: CHANGED if spec is cand and stable.env.get(k, v) != v else REDACTED
                        for k, v in d["env"].items()}
        return yaml.safe_dump(d, sort_keys=False, default_flow_style=False, width=4096).splitlines(True)

    before, after = text(stable), text(cand)
    out = "".join(difflib.unified_diff(before, after, f"stable/{stable.name}",
                                       f"candidate/{cand.object_name}", n=max(len(before), len(after))))
    return out or f"The candidate is the same spec as the stable {stable.name}.\n"


def start(candidate: DeploySpec | Mapping[str, Any], *, strategy: str, router: str = "auto",
          weight: int | None = None, mirror: int | None = None, gateway: str | None = None,
          namespace: str | None = None, kube: Kube | None = None, kubeconfig: str | None = None,
          context: str | None = None, wait: bool = True, timeout: float = 600,
          on_status: Callable[[RolloutStatus], None] | None = None, dry_run: bool | str = False,
          show_values: bool = False) -> Rollout | api.DryRun:
    """Deploy a candidate beside the stable track and route traffic to it as the strategy says.

    The candidate inherits: it is the stable spec (the model's newest stable release) with only the
    given changes, so env, resources, probes, pull secrets, volumes, selectors, tolerations, labels and
    annotations carry over. `candidate` holds the changes, either

    - a mapping of DeploySpec.from_dict fields with the model's name:
      `{"name": "churn", "image": "ghcr.io/acme/churn:1.5", "env": {"LOG": "debug"}}`, or
    - a DeploySpec: its fields that differ from DeploySpec's defaults are the changes (so
      `DeploySpec("churn", "ghcr.io/acme/churn:1.5")` changes the image only; a field set back to its
      default value is no change there, use a mapping to say that).

    Mappings (env, env_from_secret, labels, annotations, node_selector) merge key by key. With
    `dry_run` (True, "client" or "server") nothing is written: the result is a DryRun whose text is the
    candidate's differences from the stable (env values redacted unless `show_values`); "server" also
    has the API server check the candidate's objects.
    """
    name, own_ns, changes = _changes(candidate)
    if gateway is not None:
        validate_gateway(gateway)  # it goes into the route's parentRefs: refused here, before a request
    kube = cluster(kube, kubeconfig, context)
    ns = own_ns or namespace or kube.namespace
    _check_where(name, ns)
    if strategy not in CANDIDATE_TRACKS:
        raise SpecError(f"strategy {strategy!r} has no candidate track; use canary, blue-green or shadow "
                        f"(rolling and recreate are plain deploys).")
    if router == "knative":
        if dry_run:
            raise SpecError("dry_run does not apply to a Knative rollout: the candidate is a new revision of "
                            "the model's Knative Service, and abort puts the split back.")
        from .. import rollout_knative

        return rollout_knative.start(candidate, strategy=strategy, weight=weight, mirror=mirror, namespace=ns,
                                     kube=kube, wait=wait, timeout=timeout)
    if dry_run not in (False, True, "client", "server"):
        raise SpecError(f"dry_run must be False, True, 'client' or 'server', not {dry_run!r}.")
    stable = stable_spec(kube, ns, name)
    cand = inherit(stable, changes).with_(track=CANDIDATE_TRACKS[strategy], namespace=ns)
    gateway = gateway or stable.gateway
    offered = offered_routers(kube)
    if router == "auto":
        router = choose_router(strategy, offered, gateway=gateway)
    if router == "nginx" and "nginx" not in offered and _ingress_classes(kube) is None:
        # Unverifiable, not absent: the generic "not offered" sentence would send the user looking for
        # an IngressClass that may well exist.
        raise SpecError("the nginx router needs an IngressClass named 'nginx', and this identity may not "
                        "list IngressClasses, so whether ingress-nginx is installed cannot be checked; ask "
                        "for list on ingressclasses.networking.k8s.io, or use another router.")
    if router == "nginx":
        # The router rewrites the model's Ingress with class nginx: never move it there silently.
        nginx.check_exposure(name, stable.expose, stable.ingress_class, strategy=strategy,
                             ingress_extras=stable.ingress_extras)
    if strategy == "blue-green" and weight not in (None, 0):
        raise SpecError("a blue-green rollout starts with no traffic on the preview; switch it with "
                        "promote once the preview is ready.")
    if router == "replicas" and strategy == "canary" and (stable.autoscale or cand.autoscale):
        raise SpecError(f"the replicas router splits traffic by the two Deployments' replica counts, which "
                        f"a HorizontalPodAutoscaler would keep changing, and {name} autoscales; use the "
                        f"gateway, istio or nginx router.")
    traffic.check_supported(strategy, router, weight=weight if strategy == "canary" else None,
                            mirror=mirror, offered=offered)
    if not dry_run and read(name, namespace=ns, kube=kube) is not None:
        raise MLDeployError(f"{name} already has a rollout in progress: promote it or roll it back "
                            f"first (%promote {name} or %rollback {name}).")
    r = Rollout(name, ns, strategy, router, weight=weight or 0,
                mirror=(mirror if mirror is not None else 100) if strategy == "shadow" else None,
                stable_version=stable.effective_version, candidate_version=cand.effective_version,
                host=stable.host, gateway=gateway, stable_replicas=stable.replicas or 1, kube=kube,
                route_labels=dict(stable.labels), route_annotations=dict(stable.annotations))
    extra = _route(r) + _stable_rework(r, stable)
    if r.router == "replicas" and strategy == "canary":
        # The candidate's release keeps the inherited spec; only its Deployment runs the split's count.
        split = traffic.achievable_split(r.weight, r.stable_replicas)
        extra += [m for m in render(cand.with_(replicas=split.canary), ns) if m["kind"] == "Deployment"]
    if dry_run:
        dry = api.deploy(cand, namespace=ns, kube=kube, dry_run="client", extra=extra)
        if dry_run == "server":
            # The API server's checks, ownership included; nothing stored (a dry run makes no anchor).
            anchor = owner.cached(kube, ns, name) or owner.read(kube, ns, name)
            if anchor is None:
                raise MLDeployError(f"{name} has no stable release in namespace {ns}: deploy it first.")
            kapply.apply_all(kube, dry.manifests, owner=anchor, dry_run=True)
        return api.DryRun(dry.manifests, _spec_diff(stable, cand, show_values=show_values),
                          show_values=show_values)
    api.deploy(cand, namespace=ns, kube=kube, wait=wait, timeout=timeout, on_status=on_status, extra=extra)
    fresh = read(name, namespace=ns, kube=kube)  # the route's versions, for the next guarded write
    if fresh is None:
        return r
    fresh.split_sentence = r.split_sentence
    return _remember(fresh)


def _stable_rework(r: Rollout, stable: DeploySpec) -> list[dict]:
    """Stable objects a router needs changed: Istio subsets need the stable Service to select every
    live pod; the replica router gives the stable Deployment its share of the replicas."""
    if r.router == "istio":
        return [m for m in render(stable, r.namespace, replica_split=True) if m["kind"] == "Service"]
    if r.router == "replicas" and r.strategy == "canary":
        split = traffic.achievable_split(r.weight, r.stable_replicas)
        r.split_sentence = split.sentence
        return [m for m in render(stable.with_(replicas=max(split.stable, 0)), r.namespace)
                if m["kind"] == "Deployment"]
    return []
