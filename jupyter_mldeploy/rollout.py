"""Rollout strategies as operations: start, set_weight, set_mirror, promote, abort, release, steps.

A rollout is a stable track `<name>` plus one candidate track (`<name>-canary`, `<name>-shadow` or
`<name>-preview`) and a traffic layer that splits, mirrors or switches requests between them. Its
state (strategy, router, weight, mirror, step, versions, phase) lives in annotations on the route
object, which every operation rewrites in full, so any kernel, or tomorrow's papermill run, can read it
back and carry on.

The candidate inherits: it is the stable spec (its newest stable release) with only the asked fields
changed, and promote makes the stable exactly the candidate, keeping the stable's own replica count,
autoscaling and exposure.

No stale state: every route write carries the resourceVersion of the object it was based on
(metadata.resourceVersion in the server-side apply body, an optimistic lock). The Rollout this process
read or wrote last is kept, so moving the weight is one write, but only as an optimisation that the
precondition guards: on 409 the route is read again; when only fields outside the rollout state
changed (a gateway controller's status) the write is retried once on the new version, and when the
rollout itself changed (another kernel moved the weight, promoted, rolled back) nothing is written and
StaleRollout says what changed and how long ago, by the API server's clocks only.

Promote is two rounds: (1) the stable takes the candidate's spec and rolls while the route still
splits; (2) the route switches to the stable, and only once that write is accepted is the candidate
removed. The first write of a promotion claims it on the route (`mldeploy.io/phase: promoting`,
guarded like every write), so two kernels cannot promote at once, and one that stopped (Ctrl-C, a
timeout, a papermill cell timeout) leaves a state that `promote` from any kernel carries on.

Knative replaces the Deployments altogether: its rollout state lives on the model's Knative Service,
which `read` probes beside the other routes; with router "knative" each operation hands over, at its
entry, to rollout_knative (revisions and the Knative Service's traffic block, under the same rules:
the candidate inherits the stable revision's spec, every write is guarded, a stale view is refused).
"""

from __future__ import annotations

import contextlib
import difflib
import email.utils
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import api, cluster_values, traffic
from . import labels as L
from .connection import connect
from .duration import parse_seconds
from .errors import (
    ClusterError,
    MLDeployError,
    NoRollout,
    NotDeployed,
    RolloutFailed,
    RolloutInterrupted,
    SpecError,
    StaleRollout,
)
from .follow import WaitTimeout
from .kube import apply as kapply
from .kube import inventory, owner
from .kube.client import Kube
from .kube.resources import collection_path, describe, object_path
from .render import render
from .render.routers import ROUTER, nginx, route_for
from .render.workload import CHANGED
from .spec import REDACTED, DeploySpec, changes_of, inherit, validate_model_name, validate_namespace
from .status import RolloutStatus

__all__ = ["Rollout", "abort", "finish_interrupted", "forget_cache", "offered_routers", "promote", "read",
           "release", "set_mirror", "set_weight", "start", "steps"]

# The annotation keys live in labels.py; these names are kept for the modules that import them here.
STRATEGY = L.STRATEGY
STEPS = L.STEPS
PHASE = L.PHASE
ENDED = L.ENDED
ENDED_STRATEGY = L.ENDED_STRATEGY
PROMOTING = "promoting"
CANDIDATE_TRACKS = {"canary": "canary", "blue-green": "preview", "shadow": "shadow"}
ROLLOUT_ROUTERS = traffic.ROLLOUT_ROUTERS

# The objects each router writes, (apiVersion, kind, name suffix); the first one holds the state.
# Knative's is probed only: rollout_knative writes it.
_ROUTE_OBJECTS: Mapping[str, tuple[tuple[str, str, str], ...]] = {
    name: r.objects for name, r in traffic.ROUTER_INFO.items()}
_PROBED = (*ROLLOUT_ROUTERS, *(r for r in traffic.ROUTERS if r not in ROLLOUT_ROUTERS))


def _ref(api_version: str, kind: str, name: str, namespace: str) -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": namespace}}


def _objects_of(router: str, name: str, ns: str) -> list[dict]:
    return [_ref(v, k, name + suffix, ns) for v, k, suffix in _ROUTE_OBJECTS[router]]


@dataclass
class Rollout:
    """One model's rollout as the cluster holds it (as of `versions`, the route objects' resourceVersions)."""

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
    phase: str | None = None  # "promoting" while a promotion runs
    kube: Kube | None = field(default=None, repr=False, compare=False)
    last_route: list[dict] = field(default_factory=list, repr=False, compare=False)
    # The spec's own labels and annotations, which the route objects carry beside the rollout state.
    route_labels: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    route_annotations: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # describe(obj) -> (resourceVersion, uid) of each route object as last read or written: every write
    # names both, so a changed object is refused (409) and a deleted one is not silently created again.
    versions: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def candidate_track(self) -> str:
        return CANDIDATE_TRACKS[self.strategy]

    @property
    def candidate_name(self) -> str:
        return L.track_name(self.name, self.candidate_track)

    def state(self) -> dict[str, str]:
        out = {STRATEGY: self.strategy, L.STEP: str(self.step), STEPS: ",".join(map(str, self.steps))}
        if self.stable_version:
            out[L.STABLE_VERSION] = self.stable_version
        if self.candidate_version:
            out[L.CANDIDATE_VERSION] = self.candidate_version
        if self.phase:
            out[PHASE] = self.phase
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
        if self.phase == PROMOTING:
            parts.append("being promoted")
        if self.split_sentence:
            parts.append(self.split_sentence)
        return "; ".join(parts)

    def _repr_html_(self) -> str:
        import html

        return f"<div><b>rollout</b> {html.escape(str(self))}</div>"


# The rollout this process read or wrote last, so the next weight move needs no read. Only an
# optimisation: every write carries the resourceVersion it was based on, so a stale entry is refused.
_known: dict[tuple[int, str, str], Rollout] = {}
_lock = threading.Lock()


def _remember(r: Rollout) -> Rollout:
    with _lock:
        _known[(id(r.kube), r.namespace, r.name)] = r
    return r


def _forget(r: Rollout) -> None:
    with _lock:
        _known.pop((id(r.kube), r.namespace, r.name), None)


def forget_cache() -> None:
    """Forget every rollout this process read or wrote (the next operation reads the cluster first)."""
    with _lock:
        _known.clear()


def _check_where(name: object, ns: object) -> None:
    validate_model_name(name)
    validate_namespace(ns)


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


@dataclass
class _Seen:
    """One concurrent round of reads: every route object any router may have written for the model
    (None: absent), the stable spec, and the API server's clock at the time (its Date header)."""

    objects: dict[str, dict | None]
    stable: DeploySpec | None
    server_now: float | None

    def route_of(self, router: str, name: str, ns: str) -> dict | None:
        return self.objects.get(describe(_objects_of(router, name, ns)[0]))


def _get_or_none(kube: Kube, path: str, headers: dict | None = None) -> dict | None:
    try:
        return kube.request("GET", path, reply_headers=headers)[1]
    except ClusterError as e:
        if e.status in (404, 403):
            return None
        raise


def _stable_or_none(kube: Kube, ns: str, name: str) -> DeploySpec | None:
    try:
        return stable_spec(kube, ns, name)
    except MLDeployError:
        return None


def _probe(kube: Kube, ns: str, name: str) -> _Seen:
    pool = kapply.pool()
    refs = {describe(m): m for router in _PROBED for m in _objects_of(router, name, ns)}
    headers: dict[str, str] = {}
    jobs = {key: pool.submit(_get_or_none, kube, object_path(m), headers if i == 0 else None)
            for i, (key, m) in enumerate(refs.items())}
    stable = pool.submit(_stable_or_none, kube, ns, name)
    objects = {key: job.result() for key, job in jobs.items()}
    return _Seen(objects, stable.result(), _http_date(headers.get("Date") or headers.get("date")))


def _annotations(obj: dict | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _rollout_from(seen: _Seen, name: str, ns: str, kube: Kube) -> Rollout | None:
    for router in ROLLOUT_ROUTERS:
        obj = seen.route_of(router, name, ns)
        ann = _annotations(obj)
        if obj and ann.get(ROUTER) == router and ann.get(STRATEGY):
            return _from_annotations(name, ns, router, ann, obj, seen, kube)
    ksvc = seen.route_of("knative", name, ns)
    ann = _annotations(ksvc)
    if ksvc and ann.get(ROUTER) == "knative" and ann.get(STRATEGY):
        # Read as it says; whose it is, every operation checks (rollout_knative, by the anchor's uid).
        where = f"Knative Service {name} in namespace {ns}"
        return Rollout(name, ns, ann[STRATEGY], "knative",
                       weight=cluster_values.whole_number(ann.get(L.WEIGHT, "0"), key=L.WEIGHT, where=where),
                       step=cluster_values.whole_number(ann.get(L.STEP, "-1"), key=L.STEP, where=where),
                       steps=cluster_values.whole_numbers(ann.get(STEPS, ""), key=STEPS, where=where),
                       stable_version=ann.get(L.STABLE_VERSION),
                       candidate_version=ann.get(L.CANDIDATE_VERSION), kube=kube)
    return None


def read(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout | None:
    """The rollout in progress for `name`, read from its route objects now; None when there is none.

    What it read is also kept as this process's latest view (the next weight move needs no read)."""
    kube = kube or connect()
    ns = namespace or kube.namespace
    _check_where(name, ns)
    found = _rollout_from(_probe(kube, ns, name), name, ns, kube)
    if found is None:
        with _lock:
            _known.pop((id(kube), ns, name), None)
        return None
    return _remember(found)


def _from_annotations(name: str, ns: str, router: str, ann: dict, obj: dict, seen: _Seen,
                      kube: Kube) -> Rollout:
    where = f"{obj.get('kind', 'the route')} {name} in namespace {ns}"

    def whole(key: str, text: object) -> int:
        return cluster_values.whole_number(text, key=key, where=where)

    steps = cluster_values.whole_numbers(ann.get(STEPS, ""), key=STEPS, where=where)
    mirror = ann.get(L.MIRROR_PERCENT)
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
    if router == "istio":
        hosts = spec.get("hosts") or []
        host = hosts[1] if len(hosts) > 1 else None
        gateways = [g for g in spec.get("gateways") or [] if g != "mesh"]
        gateway = gateways[0] if gateways else None
    stable = seen.stable
    r = Rollout(name, ns, ann[STRATEGY], router, weight=whole(L.WEIGHT, ann.get(L.WEIGHT, "0")),
                mirror=whole(L.MIRROR_PERCENT, mirror) if mirror is not None else None,
                step=whole(L.STEP, ann.get(L.STEP, "-1")),
                steps=steps, stable_version=ann.get(L.STABLE_VERSION),
                candidate_version=ann.get(L.CANDIDATE_VERSION), host=host, gateway=gateway,
                phase=ann.get(PHASE), kube=kube,
                route_labels=dict(stable.labels) if stable else {},
                route_annotations=dict(stable.annotations) if stable else {})
    if router == "replicas":
        r.stable_replicas = (stable.replicas if stable else None) or 1
        if r.strategy == "canary":
            r.split_sentence = traffic.achievable_split(r.weight, r.stable_replicas).sentence
    for m in _objects_of(router, name, ns):
        live = seen.objects.get(describe(m))
        if live is not None:
            r.versions[describe(m)] = (live["metadata"]["resourceVersion"], live["metadata"]["uid"])
    r.last_route = _route(r)
    return r


def _current(name: str, namespace: str | None, kube: Kube | None) -> Rollout:
    kube = kube or connect()
    ns = namespace or kube.namespace
    _check_where(name, ns)
    with _lock:
        known = _known.get((id(kube), ns, name))
    if known is not None:
        return known
    seen = _probe(kube, ns, name)
    found = _rollout_from(seen, name, ns, kube)
    if found is None:
        raise NoRollout(_no_rollout_sentence(name, ns, seen))
    return _remember(found)


def _no_rollout_sentence(name: str, ns: str, seen: _Seen) -> str:
    ended = _ended(seen, name, ns)
    when = ""
    if ended is not None:
        obj, words = ended
        ago = _ago(obj, seen.server_now)
        when = f" (it was {words}{' ' + ago if ago else ''})"
    return (f"{name} has no rollout in progress in namespace {ns}{when}: start one with %deploy {name} "
            f"--image ... --strategy canary (or blue-green, shadow).")


def _ended(seen: _Seen, name: str, ns: str) -> tuple[dict, str] | None:
    """The route object of a rollout that is over, and how it ended in words."""
    for router in ROLLOUT_ROUTERS:
        obj = seen.route_of(router, name, ns)
        ann = _annotations(obj)
        if obj and ann.get(ROUTER) == router and ann.get(ENDED) and not ann.get(STRATEGY):
            return obj, "promoted" if ann[ENDED] == "promoted" else "rolled back"
    return None


# -- server clocks -----------------------------------------------------------------------------------


def _http_date(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


def _k8s_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _written_at(obj: dict | None) -> float | None:
    """When we last wrote `obj`, by the API server's clock (its managedFields entry for our manager)."""
    times = [_k8s_time(e.get("time")) for e in (obj or {}).get("metadata", {}).get("managedFields") or []
             if e.get("manager") == L.FIELD_MANAGER and not e.get("subresource")]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _ago(obj: dict | None, server_now: float | None) -> str:
    """'20 s ago': from our last write of `obj` (its managedFields time) to the server's Date header.

    Both are the API server's clocks, so a kernel whose own clock is off says the same.
    """
    written = _written_at(obj)
    if written is None or server_now is None:
        return ""
    seconds = max(0, round(server_now - written))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


# -- rendering the route for a state ------------------------------------------------------------------


def _route(r: Rollout, *, candidate: bool = True, ended: str | None = None) -> list[dict]:
    """The route objects for `r`'s state (no candidate: all traffic on stable, no mirror).

    Their labels carry no version or track: the route serves every track of the model. They carry the
    spec's own labels and annotations. `ended` ("promoted", "rolled-back"): the state says the rollout
    is over, and how.
    """
    labels = {**r.route_labels, L.APP_INSTANCE: r.name, L.APP_NAME: r.name, L.APP_MANAGED_BY: L.MANAGED_BY,
              L.APP_COMPONENT: L.COMPONENT_PREDICTOR}
    state = r.state()
    if ended is not None:
        state = {k: v for k, v in state.items() if k not in (STRATEGY, PHASE)}
        state.update({ENDED: ended, ENDED_STRATEGY: r.strategy})
    kw: dict[str, Any] = dict(labels=labels, state=state, host=r.host, gateway=r.gateway,
                              annotations=dict(r.route_annotations))
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


# -- guarded writes ------------------------------------------------------------------------------------


def _apply(r: Rollout, manifests: list[dict]) -> kapply.ApplyReport:
    """Write objects of the model outside a deploy (routes, replica counts): owned by its anchor and
    recorded in it, so a same-named object that is not ours is refused and undeploy finds them."""
    anchor = owner.ensure(r.kube, r.namespace, r.name)
    report = kapply.apply_all(r.kube, manifests, owner=anchor)
    kapply.adopt_created(r.kube, report)

    def track_of(m: dict) -> str | None:
        known = anchor.objects.get(owner.key_of(m))
        return known.track if known is not None else None

    owner.record(r.kube, r.namespace, r.name, written=report.owned(track_of))
    return report


def _is_stale(e: ClusterError) -> bool:
    """A refused precondition: the object changed (409) or went away (404) since its version was read."""
    text = str(e)
    if e.status == 404:
        return True
    return e.status == 409 and "Apply failed" not in text and "managed by" not in text


def _guarded(m: dict, version: tuple[str, str] | None) -> dict:
    """`m` with the resourceVersion and uid it is based on: server-side apply then refuses the write
    when the object changed since, or is gone (a resourceVersion alone would create it again)."""
    if version is None:
        return m
    return {**m, "metadata": {**m["metadata"], "resourceVersion": version[0], "uid": version[1]}}


def _write(r: Rollout, new: Rollout, manifests: list[dict], *, then: Sequence[dict] = ()) -> Rollout:
    """Write the route objects of `new` that differ from what `r` holds, each with the resourceVersion
    and uid `r` saw, the state object first; then `then` (replica counts), once the route is accepted.

    On a refused precondition the route is read again: when the rollout state is what this call
    expects (only status or unrelated fields moved) the objects not yet written are retried once on the
    new versions; otherwise StaleRollout names what changed, and nothing (more) was written.
    """
    before = {describe(m): m for m in r.last_route}
    state_key = describe(_objects_of(r.router, r.name, r.namespace)[0])
    todo = sorted((m for m in manifests if before.get(describe(m)) != m),
                  key=lambda m: describe(m) != state_key)  # the state object first
    versions = dict(r.versions)
    basis = r  # what the cluster should hold: r, until the state object carrying `new` is accepted
    for attempt in (1, 2):
        try:
            while todo:
                m = todo[0]
                report = _apply(r, [_guarded(m, versions.get(describe(m)))])
                for a in report.applied:
                    meta = a.result.get("metadata", {})
                    versions[describe(a.manifest)] = (meta.get("resourceVersion"), meta.get("uid"))
                if describe(m) == state_key:
                    basis = new
                todo.pop(0)
            break
        except ClusterError as e:
            if not _is_stale(e):
                raise
            seen = _probe(r.kube, r.namespace, r.name)
            fresh = _rollout_from(seen, r.name, r.namespace, r.kube)
            why = _what_changed(basis, fresh, seen)
            if fresh is not None:
                _remember(fresh)
            else:
                _forget(r)
            if why is not None:
                raise StaleRollout(why if basis is r else f"{why[:-1]} after the route's state object; "
                                   f"run the operation again to finish it.") from None
            if attempt == 2:
                raise StaleRollout(f"the route of {r.name} kept changing while it was written, so nothing "
                                   f"more was written; try again.") from None
            versions = {**versions, **fresh.versions}
    if then:
        _apply(r, list(then))
    out = replace(new, versions=versions, last_route=manifests)
    return _remember(out)


def _what_changed(r: Rollout, fresh: Rollout | None, seen: _Seen) -> str | None:
    """One sentence naming how the rollout on the cluster differs from `r`; None when it does not."""
    name = r.name
    state_obj = seen.route_of(r.router, name, r.namespace)
    ago = _ago(state_obj, seen.server_now)
    since = f" {ago}" if ago else ""
    nothing = "; nothing was written."
    if fresh is None:
        ended = _ended(seen, name, r.namespace)
        if ended is not None:
            return f"{name} was {ended[1]} from another kernel{since}{nothing}"
        if state_obj is None:
            gone = describe(_objects_of(r.router, name, r.namespace)[0])
            return f"{name}'s route {gone} was removed{nothing}"
        return f"{name} has no rollout in progress any more{nothing}"
    if (fresh.strategy, fresh.router, fresh.candidate_version) != (r.strategy, r.router, r.candidate_version):
        return (f"a new {fresh.strategy} rollout of {name} (candidate {fresh.candidate_version or '?'}) was "
                f"started from another kernel{since}{nothing}")
    if fresh.phase != r.phase:
        if fresh.phase == PROMOTING:
            return (f"{name} is being promoted from another kernel (since{since or ' recently'}); nothing "
                    f"was written; if that kernel stopped, %promote {name} again carries the promotion on.")
        return f"{name}'s rollout moved on from another kernel{since}{nothing}"
    if fresh.weight != r.weight:
        what = "preview" if r.strategy == "blue-green" else "canary"
        return (f"the {what} weight of {name} was moved from {r.weight}% to {fresh.weight}% from another "
                f"kernel{since}{nothing}")
    if fresh.mirror != r.mirror:
        return (f"the mirror of {name} was changed from {r.mirror}% to {fresh.mirror}% from another "
                f"kernel{since}{nothing}")
    if (fresh.step, fresh.steps) != (r.step, r.steps):
        return f"the steps of {name} were advanced from another kernel{since}{nothing}"
    return None


def _write_state(r: Rollout, new: Rollout, *, then: Sequence[dict] = ()) -> Rollout:
    return _write(r, new, _route(new), then=then)


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


# -- starting -----------------------------------------------------------------------------------------


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
          namespace: str | None = None, kube: Kube | None = None, wait: bool = True, timeout: float = 600,
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
    kube = kube or connect()
    ns = own_ns or namespace or kube.namespace
    _check_where(name, ns)
    if strategy not in CANDIDATE_TRACKS:
        raise SpecError(f"strategy {strategy!r} has no candidate track; use canary, blue-green or shadow "
                        f"(rolling and recreate are plain deploys).")
    if router == "knative":
        if dry_run:
            raise SpecError("dry_run does not apply to a Knative rollout: the candidate is a new revision of "
                            "the model's Knative Service, and abort puts the split back.")
        from . import rollout_knative

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


# -- moving traffic -----------------------------------------------------------------------------------


def _not_promoting(r: Rollout, doing: str) -> None:
    if r.phase == PROMOTING:
        raise MLDeployError(f"{r.name} is being promoted, so {doing} would fight the promotion; nothing "
                            f"was written. Finish it with %promote {r.name} (from any kernel).")


def set_weight(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout:
    """Send `percent` of requests to the canary: one write to the route object, carrying the
    resourceVersion it is based on (StaleRollout when the rollout changed elsewhere; nothing written)."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise SpecError(f"the canary weight must be a whole number from 0 to 100, not {percent!r}.")
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.set_weight(r, percent)
    if r.strategy != "canary":
        raise SpecError(f"{name} is a {r.strategy} rollout; a weight applies to canary rollouts "
                        f"(blue-green switches with promote, shadow uses set_mirror).")
    _not_promoting(r, "moving its weight")
    new = replace(r, weight=percent)
    then: list[dict] = []
    if r.router == "replicas":
        stable = stable_spec(r.kube, r.namespace, name)
        cand = candidate_spec(r.kube, r.namespace, name, "canary")
        split = traffic.achievable_split(percent, new.stable_replicas)
        new.split_sentence = split.sentence
        then = [m for spec, n in ((stable, split.stable), (cand, split.canary))
                for m in render(spec.with_(replicas=n), r.namespace) if m["kind"] == "Deployment"]
    return _write_state(r, new, then=then)


def set_mirror(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None) -> Rollout:
    """Copy `percent` of requests to the shadow (its answers are discarded by the router)."""
    r = _current(name, namespace, kube)
    if r.strategy != "shadow":
        raise SpecError(f"{name} is a {r.strategy} rollout; a mirror applies to shadow rollouts.")
    traffic.check_supported("shadow", r.router, mirror=percent)
    _not_promoting(r, "changing its mirror")
    return _write_state(r, replace(r, mirror=percent))


# -- promote, release, abort --------------------------------------------------------------------------

Phase = Callable[[str], None]


def promote(name: str, *, namespace: str | None = None, kube: Kube | None = None, wait: bool = True,
            timeout: float = 600, on_status: Callable[[RolloutStatus], None] | None = None,
            on_phase: Phase | None = None) -> Rollout | None:
    """The candidate becomes stable.

    canary and shadow: (1) the stable takes the candidate's spec exactly (image, env, resources,
    probes, pull secrets, security context, volumes, selectors, tolerations, labels, annotations; its
    own replica count, autoscaling and exposure stay) and rolls, surge first, while the route still
    splits; (2) once it is complete, the route goes to 100% stable, and only after that write is
    accepted is the candidate track removed. blue-green: the switch; all traffic moves to the preview,
    the old stable stays for an instant rollback until `release`.

    Interrupted (Ctrl-C, the timeout, a papermill cell timeout), it stops before the next round and
    raises RolloutInterrupted saying where; `promote` again, from any kernel, carries on.
    `on_phase(name)` is called as each round begins: "claim", "roll", "switch", "cleanup".
    """
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.promote(r, wait=wait, timeout=timeout)
    if r.strategy == "blue-green" and r.weight == 0 and r.phase != PROMOTING:
        return _write_state(r, replace(r, weight=100))
    return _finish(r, timeout=timeout, on_status=on_status, on_phase=on_phase)


def release(name: str, *, namespace: str | None = None, kube: Kube | None = None, wait: bool = True,
            timeout: float = 600, on_status: Callable[[RolloutStatus], None] | None = None,
            on_phase: Phase | None = None) -> Rollout | None:
    """After a blue-green switch: make the preview the stable track and remove the preview."""
    r = _current(name, namespace, kube)
    if r.strategy != "blue-green" or (r.weight != 100 and r.phase != PROMOTING):
        raise MLDeployError(f"{name} has no switched blue-green rollout to release; promote it first.")
    if r.router == "knative":
        from . import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.promote(r, wait=wait, timeout=timeout)
    return _finish(r, timeout=timeout, on_status=on_status, on_phase=on_phase)


def _promoted(stable: DeploySpec, cand: DeploySpec) -> DeploySpec:
    """Exactly the candidate on the stable track, with the stable's own size and exposure (the replica
    router's split count was never part of either spec)."""
    return cand.with_(track="stable", replicas=stable.replicas, autoscale=stable.autoscale,
                      expose=stable.expose, host=stable.host, gateway=stable.gateway,
                      ingress_class=stable.ingress_class)


def _finish(r: Rollout, *, timeout: float, on_status, on_phase: Phase | None) -> None:
    step = on_phase or (lambda _p: None)
    where = f"before the stable {r.name} started rolling (traffic unchanged)"
    phase = "claim"

    def note(text: str) -> None:
        nonlocal where
        where = text

    try:
        if r.phase != PROMOTING:
            step("claim")
            # The claim: guarded like every write, so two kernels cannot both promote.
            r = _write_state(r, replace(r, phase=PROMOTING))
        note(f"before the stable {r.name} finished rolling to {r.candidate_version or 'the candidate'} "
             f"(traffic still goes as before, and {r.candidate_name} still runs)")
        phase = "roll"
        step("roll")
        stable = stable_spec(r.kube, r.namespace, r.name)
        cand = candidate_spec(r.kube, r.namespace, r.name, r.candidate_track)
        promoted = _promoted(stable, cand)
        # Round 1: the stable track takes the candidate's spec; the route (which replaces the stable's
        # own exposure of the same name) keeps its split and its state meanwhile.
        handle = api.deploy(promoted, namespace=r.namespace, kube=r.kube, wait=True, timeout=timeout,
                            on_status=on_status, replica_split=r.router in ("istio", "replicas"),
                            extra=_route(r))
        if getattr(handle, "interrupted", False):
            raise KeyboardInterrupt
        note(f"after the stable {r.name} rolled to {r.candidate_version or 'the candidate'} but before the "
             f"route switched to it ({r.candidate_name} still runs)")
        phase = "switch"
        step("switch")
        _end(r, promoted, "promoted", step, note)
    except (KeyboardInterrupt, WaitTimeout, RolloutFailed) as e:
        cause = ("interrupted" if isinstance(e, KeyboardInterrupt)
                 else f"the wait timed out after {timeout:g} s" if isinstance(e, WaitTimeout) else str(e))
        raise RolloutInterrupted(
            f"The promotion of {r.name} stopped {where} ({cause.rstrip('.')}); run %promote {r.name} "
            f"(rollout.promote) again, from any kernel, to carry on.", phase=phase) from None
    return None


def _end(r: Rollout, stable: DeploySpec, ended: str, step: Phase, note: Callable[[str], None]) -> None:
    """Round 2 of a promotion, or a rollback: the route to 100% stable first (guarded), then the stable
    objects a router had changed, and only then, the switch accepted, the candidate track removed."""
    done = replace(r, weight=0, mirror=None, step=-1, steps=(), phase=None,
                   stable_version=stable.effective_version, candidate_version=None,
                   route_labels=dict(stable.labels), route_annotations=dict(stable.annotations))
    _write(r, done, _route(done, candidate=False, ended=ended))
    words = "promoted" if ended == "promoted" else "rolled back"
    note(f"after the switch: {r.name} is {words} and answers every request, but {r.candidate_name} still "
         f"runs")
    after: list[dict] = []
    if r.router == "istio":  # back to the per-track selector: only the stable's pods
        after = [m for m in render(stable, r.namespace) if m["kind"] == "Service"]
    elif r.router == "replicas":  # the stable's own replica count (the Service is the route, written)
        after = [m for m in render(stable, r.namespace) if m["kind"] == "Deployment"]
    if after:
        _apply(r, after)
    step("cleanup")
    _remove_candidate(r.kube, r.namespace, r.name, r.candidate_track, r.router)
    _forget(r)


def _remove_candidate(kube: Kube, ns: str, name: str, track: str, router: str) -> list[str]:
    gone: list[str] = []
    if router == "nginx":
        # nginx's split lives on the canary Ingress: it goes before the candidate's Service it points at.
        gone += _delete_canary_ingress(kube, ns, name)
    with contextlib.suppress(NotDeployed):  # nothing left of that model: an earlier call removed it
        gone += api.undeploy(name, namespace=ns, kube=kube, track=track)
    return gone


def _delete_canary_ingress(kube: Kube, ns: str, name: str) -> list[str]:
    """The nginx router's canary Ingress, which no state renders once a rollout ends: deleted by its
    recorded uid, so a same-named Ingress that is not ours stays."""
    anchor = owner.cached(kube, ns, name) or owner.read(kube, ns, name)
    key = ("networking.k8s.io/v1", "Ingress", L.track_name(name, "canary"))
    if anchor is None or key not in anchor.objects:
        return []
    gone = kapply.delete_owned(kube, [anchor.objects[key]], ns)
    owner.record(kube, ns, name, removed=[key])
    return gone


def finish_interrupted(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> list[str]:
    """After a promotion or rollback stopped between its switch and its cleanup: remove the candidate
    track it left. Returns what was removed ([] when there was nothing to finish)."""
    kube = kube or connect()
    ns = namespace or kube.namespace
    _check_where(name, ns)
    seen = _probe(kube, ns, name)
    if _rollout_from(seen, name, ns, kube) is not None:
        return []
    for router in ROLLOUT_ROUTERS:
        obj = seen.route_of(router, name, ns)
        ann = _annotations(obj)
        if ann.get(ROUTER) == router and ann.get(ENDED) and ann.get(ENDED_STRATEGY) in CANDIDATE_TRACKS:
            track = CANDIDATE_TRACKS[ann[ENDED_STRATEGY]]
            left = _get_or_none(kube, f"{collection_path('apps/v1', 'Deployment', ns)}/{name}-{track}")
            # Only a candidate from before the end (server times both): one deployed since is not left over.
            made = _k8s_time((left or {}).get("metadata", {}).get("creationTimestamp"))
            ended_at = _written_at(obj)
            if made is not None and ended_at is not None and made <= ended_at:
                return _remove_candidate(kube, ns, name, track, router)
    return []


def abort(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> None:
    """Roll the rollout back: all traffic to stable first (a guarded write), then the candidate removed."""
    r = _current(name, namespace, kube)
    if r.router == "knative":
        from . import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.abort(r)
    if r.phase == PROMOTING:
        raise MLDeployError(f"{name} is being promoted (its stable may already run the candidate), so it "
                            f"cannot be rolled back half-way; nothing was written. Finish with %promote "
                            f"{name}, then %rollback {name} goes back to the previous revision.")
    stable = stable_spec(r.kube, r.namespace, name)
    _end(r, stable, "rolled-back", lambda _p: None, lambda _t: None)


# -- progressive steps ---------------------------------------------------------------------------------


def parse_every(text: str | float | int) -> float:
    """The wait between steps in seconds (duration.parse_seconds; zero allowed)."""
    return parse_seconds(text, "every", allow_zero=True)


def steps(name: str, schedule: Sequence[int], *, every: str | float = "5m",
          check: Callable[[], bool] | None = None, once: bool = False, namespace: str | None = None,
          kube: Kube | None = None, timeout: float = 600,
          on_step: Callable[[Rollout], None] | None = None) -> Rollout | None:
    """Advance the canary through `schedule` (e.g. [10, 25, 50, 100]) while its pods are Ready and
    `check()` passes; roll back when either fails. With once=True, one step and return (pipelines).
    `on_step(rollout)` is called after each weight is written, so a caller can show progress."""
    sched = traffic.check_schedule(schedule)
    wait_s = parse_every(every)
    r = _current(name, namespace, kube)
    if r.strategy != "canary":
        raise SpecError(f"steps apply to canary rollouts; {name} is a {r.strategy} rollout.")
    if r.router == "knative":
        from . import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.steps(r, sched, wait_s=wait_s, check=check, once=once, timeout=timeout,
                                     on_step=on_step)
    _not_promoting(r, "another step")
    while True:
        _healthy_or_abort(r, check)
        nxt = r.step + 1 if r.steps == sched else _next_index(sched, r.weight)
        if nxt >= len(sched):
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        target = sched[nxt]
        r = _write_state(r, replace(r, weight=target, step=nxt, steps=sched))
        if target == 100:
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        if on_step is not None:
            on_step(r)
        if once:
            return r
        _observe(r, check, wait_s)
        r = _current(name, r.namespace, r.kube)


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
