"""Reading a rollout from the cluster (route objects, the stable spec, an ended rollout), by the API
server's clocks only."""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime

from .. import api, cluster_values, traffic
from .. import labels as L
from ..connection import cluster
from ..errors import (
    ClusterError,
    MLDeployError,
    NoRollout,
)
from ..kube import apply as kapply
from ..kube.client import Kube
from ..kube.resources import describe, object_path
from ..render.routers import ROUTER
from ..spec import DeploySpec
from .state import (
    _PROBED,
    ENDED,
    PHASE,
    ROLLOUT_ROUTERS,
    STEPS,
    STRATEGY,
    Rollout,
    _check_where,
    _known,
    _lock,
    _objects_of,
    _remember,
    _route,
)


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


def read(name: str, *, namespace: str | None = None, kube: Kube | None = None, kubeconfig: str | None = None,
         context: str | None = None) -> Rollout | None:
    """The rollout in progress for `name`, read from its route objects now; None when there is none.

    What it read is also kept as this process's latest view (the next weight move needs no read)."""
    kube = cluster(kube, kubeconfig, context)
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


def _current(name: str, namespace: str | None, kube: Kube) -> Rollout:
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
