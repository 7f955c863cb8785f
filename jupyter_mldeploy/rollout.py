"""Rollout strategies as operations: start, set_weight, set_mirror, promote, abort, steps.

A rollout is a stable track `<name>` plus one candidate track (`<name>-canary`, `<name>-shadow` or
`<name>-preview`) and a traffic layer that splits, mirrors or switches requests between them. Its
state (strategy, router, weight, mirror, step, versions) lives in annotations on the route object,
which every operation rewrites in full, so any kernel, or tomorrow's papermill run, can read it back
and carry on. Within one process the last written route is kept, so moving the weight is one write.

Knative replaces the Deployments altogether: with router "knative" each operation hands over, at its
entry, to rollout_knative (revisions and the Knative Service's traffic block).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from . import api, cluster_values, traffic
from . import labels as L
from .connection import connect
from .errors import ClusterError, MLDeployError, RolloutFailed, SpecError
from .kube import apply as kapply
from .kube import inventory, owner
from .kube.client import Kube
from .kube.resources import collection_path, describe
from .render import render
from .render.routers import ROUTER_KINDS, nginx, route_for
from .spec import DeploySpec
from .status import RolloutStatus

STRATEGY = "mldeploy.io/strategy"
STEPS = "mldeploy.io/steps"
CANDIDATE_TRACKS = {"canary": "canary", "blue-green": "preview", "shadow": "shadow"}
ROLLOUT_ROUTERS = ("gateway", "istio", "knative", "nginx", "replicas")


@dataclass
class Rollout:
    """One model's rollout as the cluster holds it."""

    name: str
    namespace: str
    strategy: str
    router: str
    weight: int = 0  # percent of requests to the candidate (canary; blue-green 0 or 100)
    mirror: int | None = None  # percent of requests copied to the shadow
    step: int = -1  # index into `steps` reached so far
    steps: tuple[int, ...] = ()
    stable_version: str | None = None
    candidate_version: str | None = None
    host: str | None = None
    gateway: str | None = None
    stable_replicas: int = 1
    split_sentence: str | None = None  # what the replica router could actually do
    kube: Kube | None = field(default=None, repr=False, compare=False)
    last_route: list[dict] = field(default_factory=list, repr=False, compare=False)

    @property
    def candidate_track(self) -> str:
        return CANDIDATE_TRACKS[self.strategy]

    @property
    def candidate_name(self) -> str:
        return f"{self.name}-{self.candidate_track}"

    def state(self) -> dict[str, str]:
        out = {STRATEGY: self.strategy, L.STEP: str(self.step), STEPS: ",".join(map(str, self.steps))}
        if self.stable_version:
            out[L.STABLE_VERSION] = self.stable_version
        if self.candidate_version:
            out[L.CANDIDATE_VERSION] = self.candidate_version
        return out

    def __str__(self) -> str:
        parts = [f"{self.name}: {self.strategy} via {self.router}",
                 f"stable {self.stable_version or '?'} -> candidate {self.candidate_version or '?'}"]
        if self.strategy == "shadow":
            mirror = self.mirror if self.mirror is not None else 100
            parts.append(f"mirror {mirror}% to {self.candidate_name}")
        else:
            parts.append(f"{self.weight}% to {self.candidate_name}")
        if self.steps:
            parts.append(f"step {self.step + 1} of {len(self.steps)} {list(self.steps)}")
        if self.split_sentence:
            parts.append(self.split_sentence)
        return "; ".join(parts)

    def _repr_html_(self) -> str:
        import html

        return f"<div><b>rollout</b> {html.escape(str(self))}</div>"


# Rollouts this process has written, so the next weight move needs no read.
_known: dict[tuple[int, str, str], Rollout] = {}
_lock = threading.Lock()


def _remember(r: Rollout) -> Rollout:
    with _lock:
        _known[(id(r.kube), r.namespace, r.name)] = r
    return r


def _forget(r: Rollout) -> None:
    with _lock:
        _known.pop((id(r.kube), r.namespace, r.name), None)


# -- reading -----------------------------------------------------------------------------------------


def stable_spec(kube: Kube, ns: str, name: str) -> DeploySpec:
    spec = api.newest_spec(kube, ns, name, "stable")
    if spec is None:
        raise MLDeployError(f"{name} has no stable release in namespace {ns}: deploy it first with "
                            f"%deploy {name} --image ..., then start a rollout.")
    return spec


def candidate_spec(kube: Kube, ns: str, name: str, track: str) -> DeploySpec:
    spec = api.newest_spec(kube, ns, name, track)
    if spec is None:
        raise MLDeployError(f"{name} has no {track} release in namespace {ns}.")
    return spec


def read(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout | None:
    """The rollout in progress for `name`, read from its route object; None when there is none."""
    kube = kube or connect()
    ns = namespace or kube.namespace
    pool = kapply.pool()
    probes = []
    for router in ROLLOUT_ROUTERS:
        for api_version, kind in ROUTER_KINDS[router]:
            if kind == "DestinationRule":
                continue
            path = f"{collection_path(api_version, kind, ns)}/{name}"
            probes.append((router, pool.submit(_get_or_none, kube, path)))
    for router, fut in probes:
        obj = fut.result()
        ann = (obj or {}).get("metadata", {}).get("annotations", {})
        if obj and ann.get("mldeploy.io/router") == router and ann.get(STRATEGY):
            return _from_annotations(name, ns, router, ann, obj, kube)
    return None


def _get_or_none(kube: Kube, path: str) -> dict | None:
    try:
        return kube.request("GET", path)[1]
    except ClusterError as e:
        if e.status in (404, 403):
            return None
        raise


def _from_annotations(name: str, ns: str, router: str, ann: dict, obj: dict, kube: Kube) -> Rollout:
    where = f"{obj.get('kind', 'the route')} {name} in namespace {ns}"

    def whole(key: str, text: object) -> int:
        return cluster_values.whole_number(text, key=key, where=where)

    steps = cluster_values.whole_numbers(ann.get(STEPS, ""), key=STEPS, where=where)
    mirror = ann.get("mldeploy.io/mirror-percent")
    spec = obj.get("spec", {})
    host = (spec.get("hostnames") or [None])[0] if router == "gateway" else None
    parents = spec.get("parentRefs") or []
    gateway = None
    if router == "gateway" and parents:
        p = parents[0]
        gateway = f"{p['namespace']}/{p['name']}" if p.get("namespace") else p["name"]
    if router == "nginx":
        rules = spec.get("rules") or [{}]
        host = rules[0].get("host")
    r = Rollout(name, ns, ann[STRATEGY], router, weight=whole(L.WEIGHT, ann.get(L.WEIGHT, "0")),
                mirror=whole("mldeploy.io/mirror-percent", mirror) if mirror is not None else None,
                step=whole(L.STEP, ann.get(L.STEP, "-1")),
                steps=steps, stable_version=ann.get(L.STABLE_VERSION),
                candidate_version=ann.get(L.CANDIDATE_VERSION), host=host, gateway=gateway, kube=kube)
    if router == "replicas":
        r.stable_replicas = stable_spec(kube, ns, name).replicas or 1
    return r


def _current(name: str, namespace: str | None, kube: Kube | None) -> Rollout:
    kube = kube or connect()
    ns = namespace or kube.namespace
    with _lock:
        known = _known.get((id(kube), ns, name))
    if known is not None:
        return known
    found = read(name, namespace=ns, kube=kube)
    if found is None:
        raise MLDeployError(f"{name} has no rollout in progress in namespace {ns}: start one with "
                            f"%deploy {name} --image ... --strategy canary (or blue-green, shadow).")
    return _remember(found)


# -- rendering the route for a state ------------------------------------------------------------------


def _route(r: Rollout, *, candidate: bool = True) -> list[dict]:
    """The route objects for `r`'s state (no candidate: all traffic on stable, no mirror).

    Their labels carry no version or track: the route serves every track of the model.
    """
    labels = {L.APP_INSTANCE: r.name, L.APP_NAME: r.name, L.APP_MANAGED_BY: L.MANAGED_BY,
              L.APP_COMPONENT: L.COMPONENT_PREDICTOR}
    kw = dict(labels=labels, state=r.state(), host=r.host, gateway=r.gateway)
    if r.router == "replicas":
        kw.pop("host"), kw.pop("gateway")
    if not candidate:
        return route_for(r.router, r.name, r.namespace, stable_weight=100, candidate_weight=0,
                         candidate_track=None, **kw)
    if r.strategy == "shadow":
        return route_for(r.router, r.name, r.namespace, stable_weight=100, candidate_weight=0,
                         candidate_track=None, mirror_percent=r.mirror if r.mirror is not None else 100,
                         mirror_track="shadow", **kw)
    return route_for(r.router, r.name, r.namespace, stable_weight=100 - r.weight, candidate_weight=r.weight,
                     candidate_track=r.candidate_track, **kw)


def _write(r: Rollout, manifests: list[dict]) -> None:
    """Write objects of the model outside a deploy (routes): owned by its anchor, recorded in it."""
    anchor = owner.ensure(r.kube, r.namespace, r.name)
    report = kapply.apply_all(r.kube, manifests, owner=anchor)
    kapply.adopt_created(r.kube, report)
    owner.record(r.kube, r.namespace, r.name, written=report.owned(
        lambda m: (anchor.objects[owner.key_of(m)].track if owner.key_of(m) in anchor.objects else None)))


def _write_route(r: Rollout, manifests: list[dict]) -> None:
    """Apply only the route objects that differ from what this process last wrote (one write to move)."""
    before = {describe(m): m for m in r.last_route}
    changed = [m for m in manifests if before.get(describe(m)) != m]
    if changed:
        _write(r, changed)
    r.last_route = manifests


# -- choosing a router --------------------------------------------------------------------------------


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


# -- operations ---------------------------------------------------------------------------------------


def start(candidate: DeploySpec, *, strategy: str, router: str = "auto", weight: int | None = None,
          mirror: int | None = None, gateway: str | None = None, namespace: str | None = None,
          kube: Kube | None = None, wait: bool = True, timeout: float = 600,
          on_status: Callable[[RolloutStatus], None] | None = None) -> Rollout:
    """Deploy `candidate` beside the stable track and route traffic to it as the strategy says."""
    kube = kube or connect()
    ns = candidate.namespace or namespace or kube.namespace
    if strategy not in CANDIDATE_TRACKS:
        raise SpecError(f"strategy {strategy!r} has no candidate track; use canary, blue-green or shadow "
                        f"(rolling and recreate are plain deploys).")
    if router == "knative":
        from . import rollout_knative
        return rollout_knative.start(candidate, strategy=strategy, weight=weight, mirror=mirror, namespace=ns,
                                     kube=kube, wait=wait, timeout=timeout)
    stable = stable_spec(kube, ns, candidate.name)
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
        nginx.check_exposure(candidate.name, stable.expose, stable.ingress_class, strategy=strategy,
                             ingress_extras=stable.ingress_extras)
    if strategy == "blue-green" and weight not in (None, 0):
        raise SpecError("a blue-green rollout starts with no traffic on the preview; switch it with "
                        "promote once the preview is ready.")
    traffic.check_supported(strategy, router, weight=weight if strategy == "canary" else None,
                            mirror=mirror, offered=offered)
    if read(candidate.name, namespace=ns, kube=kube) is not None:
        raise MLDeployError(f"{candidate.name} already has a rollout in progress: promote it or roll it back "
                            f"first (%promote {candidate.name} or %rollback {candidate.name}).")
    cand = candidate.with_(track=CANDIDATE_TRACKS[strategy], namespace=ns)
    r = Rollout(candidate.name, ns, strategy, router, weight=weight or 0,
                mirror=(mirror if mirror is not None else 100) if strategy == "shadow" else None,
                stable_version=stable.effective_version, candidate_version=cand.effective_version,
                host=stable.host, gateway=gateway, stable_replicas=stable.replicas or 1, kube=kube)
    extra = _route(r) + _stable_rework(r, stable)
    if r.router == "replicas" and strategy == "canary":
        cand = cand.with_(replicas=traffic.achievable_split(r.weight, r.stable_replicas).canary)
    api.deploy(cand, namespace=ns, kube=kube, wait=wait, timeout=timeout, on_status=on_status, extra=extra)
    r.last_route = [m for m in extra if describe(m) not in _stable_names(r)]
    return _remember(r)


def _stable_names(r: Rollout) -> set[str]:
    return {f"deployment/{r.name}", f"service/{r.name}"} if r.router in ("istio", "replicas") else set()


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


def set_weight(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout:
    """Send `percent` of requests to the canary: one write to the route object."""
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative
        _forget(r)  # its state lives on the Knative Service, read afresh
        return rollout_knative.set_weight(r, percent)
    if r.strategy != "canary":
        raise SpecError(f"{name} is a {r.strategy} rollout; a weight applies to canary rollouts "
                        f"(blue-green switches with promote, shadow uses set_mirror).")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise SpecError(f"the canary weight must be a whole number from 0 to 100, not {percent!r}.")
    new = replace(r, weight=percent)
    if r.router == "replicas":
        stable = stable_spec(new.kube, new.namespace, name)
        cand = candidate_spec(new.kube, new.namespace, name, "canary")
        split = traffic.achievable_split(percent, new.stable_replicas)
        new.split_sentence = split.sentence
        writes = [m for m in render(stable.with_(replicas=split.stable), new.namespace)
                  if m["kind"] == "Deployment"]
        writes += [m for m in render(cand.with_(replicas=split.canary), new.namespace)
                   if m["kind"] == "Deployment"]
        _write(new, writes + _route(new))
        return _remember(new)
    _write_route(new, _route(new))
    return _remember(new)


def set_mirror(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout:
    """Copy `percent` of requests to the shadow (its answers are discarded by the router)."""
    r = _current(name, namespace, kube)
    if r.strategy != "shadow":
        raise SpecError(f"{name} is a {r.strategy} rollout; a mirror applies to shadow rollouts.")
    traffic.check_supported("shadow", r.router, mirror=percent)
    new = replace(r, mirror=percent)
    _write_route(new, _route(new))
    return _remember(new)


def promote(name: str, *, namespace: str | None = None, kube: Kube | None = None, wait: bool = True,
            timeout: float = 600, on_status: Callable[[RolloutStatus], None] | None = None) -> Rollout | None:
    """The candidate becomes stable.

    canary and shadow: (1) the stable Deployment takes the candidate's template and rolls (surge
    first, so ready capacity never drops) while the route still splits; (2) once it is complete, the
    route goes back to 100% stable and the candidate track is removed, in one concurrent round.
    blue-green: the switch. All traffic moves to the preview; the old stable stays for an instant
    rollback until `release`.
    """
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative
        _forget(r)  # its state lives on the Knative Service, read afresh
        return rollout_knative.promote(r, wait=wait, timeout=timeout)
    if r.strategy == "blue-green" and r.weight == 0:
        switched = replace(r, weight=100)
        _write_route(switched, _route(switched))
        return _remember(switched)
    return _finish(r, wait=wait, timeout=timeout, on_status=on_status)


def release(name: str, **kw) -> Rollout | None:
    """After a blue-green switch: make the preview the stable track and remove the preview."""
    r = _current(name, kw.get("namespace"), kw.get("kube"))
    if r.strategy != "blue-green" or r.weight != 100:
        raise MLDeployError(f"{name} has no switched blue-green rollout to release; promote it first.")
    if r.router == "knative":
        from . import rollout_knative
        _forget(r)  # its state lives on the Knative Service, read afresh
        return rollout_knative.promote(r, wait=kw.get("wait", True), timeout=kw.get("timeout", 600))
    return _finish(r, wait=kw.get("wait", True), timeout=kw.get("timeout", 600),
                   on_status=kw.get("on_status"))


def _finish(r: Rollout, *, wait: bool, timeout: float, on_status) -> None:
    del wait  # promotion always waits between its two rounds: capacity must be ready before the switch
    stable = stable_spec(r.kube, r.namespace, r.name)
    cand = candidate_spec(r.kube, r.namespace, r.name, r.candidate_track)
    promoted = cand.with_(track="stable", replicas=stable.replicas, autoscale=stable.autoscale,
                          expose=stable.expose, host=stable.host, gateway=stable.gateway,
                          ingress_class=stable.ingress_class)
    # Round 1: the stable track takes the candidate's template; the route (which replaces the
    # stable's own exposure of the same name) keeps its split and its state meanwhile.
    api.deploy(promoted, namespace=r.namespace, kube=r.kube, wait=True, timeout=timeout, on_status=on_status,
               replica_split=r.router in ("istio", "replicas"), extra=_route(r))
    # Round 2: all traffic back on stable, the candidate track gone, at once.
    _end(r, promoted)
    return None


def _end(r: Rollout, stable: DeploySpec) -> None:
    done = replace(r, weight=0, mirror=None, step=-1, steps=(), stable_version=stable.effective_version,
                   candidate_version=None)
    writes = _route(done, candidate=False)
    if r.router in ("istio", "replicas"):
        # Back to the plain per-track selector and the stable's own replica count.
        writes += [m for m in render(stable, r.namespace) if m["kind"] in ("Service", "Deployment")
                   and not (r.router == "istio" and m["kind"] == "Deployment")]
        writes = _dedupe(writes)
    # The route object stays (it is the model's exposure for gateway/nginx); its state annotations
    # say there is no rollout any more.
    for m in writes:
        m["metadata"].setdefault("annotations", {})
        m["metadata"]["annotations"].pop(STRATEGY, None)
    # The route first; the candidate goes only once the route no longer sends it anything.
    _write(r, writes)
    if r.router == "nginx":
        _delete_canary_ingress(r)
    api.undeploy(r.name, namespace=r.namespace, kube=r.kube, track=r.candidate_track)
    _forget(r)


def _delete_canary_ingress(r: Rollout) -> None:
    """The nginx router's canary Ingress (canary and blue-green), which no state renders once it ends:
    deleted by its recorded uid, so a same-named Ingress that is not ours stays."""
    anchor = owner.cached(r.kube, r.namespace, r.name) or owner.read(r.kube, r.namespace, r.name)
    key = ("networking.k8s.io/v1", "Ingress", f"{r.name}-canary")
    if anchor is None or key not in anchor.objects:
        return
    kapply.delete_owned(r.kube, [anchor.objects[key]], r.namespace)
    owner.record(r.kube, r.namespace, r.name, removed=[key])


def _dedupe(manifests: list[dict]) -> list[dict]:
    seen: dict[str, dict] = {}
    for m in manifests:
        seen[describe(m)] = m  # later wins: the plain render replaces the router's Service
    return list(seen.values())


def abort(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> None:
    """Roll the rollout back: all traffic to stable (first), then the candidate track removed."""
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative
        _forget(r)  # its state lives on the Knative Service, read afresh
        return rollout_knative.abort(r)
    stable = stable_spec(r.kube, r.namespace, name)
    back = replace(r, weight=0, mirror=0 if r.strategy == "shadow" else None)
    if r.router == "replicas":
        _write(r, _dedupe(_route(back, candidate=False) + [
            m for m in render(stable, r.namespace) if m["kind"] in ("Deployment", "Service")]))
    else:
        _write_route(back, _route(back, candidate=False))
        if r.router == "nginx":
            # nginx's split lives on the canary Ingress, which the write above does not touch: it must
            # go before the candidate's Service, or it keeps sending its share there while that goes.
            _delete_canary_ingress(r)
    _end(r, stable)


# -- progressive steps ---------------------------------------------------------------------------------


def parse_every(text: str | float | int) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", str(text))
    if not m:
        raise SpecError(f"every={text!r} is not a duration: write 30s, 5m or 1h.")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m[2]]
    return float(m[1]) * scale


def steps(name: str, schedule: Sequence[int], *, every: str | float = "5m",
          check: Callable[[], bool] | None = None, once: bool = False, namespace: str | None = None,
          kube: Kube | None = None, timeout: float = 600,
          on_step: Callable[[Rollout], None] | None = None) -> Rollout | None:
    """Advance the canary through `schedule` (e.g. [10, 25, 50, 100]) while its pods are Ready and
    `check()` passes; roll back when either fails. With once=True, one step and return (pipelines).
    `on_step(rollout)` is called after each weight is written, so a caller can show progress."""
    sched = tuple(int(s) for s in schedule)
    if not sched or any(not 0 < s <= 100 for s in sched) or list(sched) != sorted(sched):
        raise SpecError(f"steps must be rising percents from 1 to 100, such as [10, 25, 50, 100], not "
                        f"{list(schedule)!r}.")
    wait_s = parse_every(every)
    r = _current(name, namespace, kube)
    if r.strategy != "canary":
        raise SpecError(f"steps apply to canary rollouts; {name} is a {r.strategy} rollout.")
    if r.router == "knative":
        from . import rollout_knative
        _forget(r)  # its state lives on the Knative Service, read afresh
        return rollout_knative.steps(r, sched, wait_s=wait_s, check=check, once=once, timeout=timeout,
                                     on_step=on_step)
    while True:
        _healthy_or_abort(r, check)
        nxt = r.step + 1 if r.steps == sched else _next_index(sched, r.weight)
        if nxt >= len(sched):
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        target = sched[nxt]
        r = replace(r, weight=target, step=nxt, steps=sched)
        if target == 100:
            _write_route(r, _route(r))
            _remember(r)
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        _write_route(r, _route(r))
        _remember(r)
        if on_step is not None:
            on_step(r)
        if once:
            return r
        _observe(r, check, wait_s)


def _next_index(sched: tuple[int, ...], weight: int) -> int:
    return next((i for i, s in enumerate(sched) if s > weight), len(sched))


def _healthy_or_abort(r: Rollout, check: Callable[[], bool] | None) -> None:
    status = api.get(r.name, namespace=r.namespace, kube=r.kube, track=r.candidate_track).last_status
    why = None
    if status is None or status.ready < 1:
        why = "the canary has no ready pod"
    elif status.diagnosis is not None and status.diagnosis.fatal:
        why = str(status.diagnosis)
    elif check is not None and not check():
        why = "the check failed"
    if why:
        abort(r.name, namespace=r.namespace, kube=r.kube)
        raise RolloutFailed(f"The canary of {r.name} was rolled back at {r.weight}%: {why}.",
                            diagnosis=status.diagnosis if status else None)


def _observe(r: Rollout, check: Callable[[], bool] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        _healthy_or_abort(r, check)
