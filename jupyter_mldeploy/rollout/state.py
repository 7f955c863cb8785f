"""A rollout's state: the Rollout record, the annotation keys it lives in, the route objects
each router writes, the route rendered for a state, and this process's cache of the last view."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import labels as L
from .. import traffic
from ..kube.client import Kube
from ..render.routers import route_for
from ..spec import validate_model_name, validate_namespace

# The annotation keys live in labels.py; these names are kept for the modules that import them here.
STRATEGY = L.STRATEGY
STEPS = L.STEPS
PHASE = L.PHASE
ENDED = L.ENDED
ENDED_STRATEGY = L.ENDED_STRATEGY
PROMOTING = "promoting"
CANDIDATE_TRACKS = traffic.CANDIDATE_TRACKS
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
