"""Traffic layers: one module per router, each rendering the objects that split (and mirror) requests
for model `<name>` between its tracks. Pure functions, no I/O.

Every module exports `route(name, namespace, *, stable_weight, candidate_weight, candidate_track="canary",
mirror_percent=None, mirror_track="shadow", host=None, gateway=None, labels, port=80, state=None,
annotations=None)` returning manifests for server-side apply; `route_for(router, ...)` dispatches by
name. Weights are whole percents summing to 100. `candidate_track` None means there is no candidate
(all traffic on stable).
`annotations` are the model spec's own (an nginx `auth-url`, an allow-list): every route object carries
them under the router's, so a rollout never drops what the exposure it replaces had.

What the rollout must know (details in each module's docstring):

- Objects a router stops rendering (the nginx canary Ingress after a promotion, for example) are not
  removed by server-side apply: delete them by name, using ROUTER_KINDS.
- gateway and nginx write the same object as `render()`'s exposure (HTTPRoute or Ingress `<name>`):
  with a router, apply the router's version and drop exposure's, or the two would take turns.
- replicas writes the stable Service `<name>` itself (for the blue-green switch): apply it instead of
  `render()`'s Service `<name>`.
- knative replaces the Deployments and Services of `render()` altogether (see knative.py).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ... import labels as L
from ...errors import SpecError
from ...spec import validate_model_name, validate_namespace
from ...traffic import ROUTER_INFO, check_percent
from ..workload import track_name

__all__ = [
    "CANDIDATE_TRACK", "MIRROR_PERCENT", "MIRROR_TRACK", "ROUTER", "ROUTER_KINDS", "Traffic", "route_for",
    "service_host",
]

# The annotation keys live in labels.py; these names are kept for the modules that import them here.
ROUTER = L.ROUTER
CANDIDATE_TRACK = L.CANDIDATE_TRACK
MIRROR_PERCENT = L.MIRROR_PERCENT
MIRROR_TRACK = L.MIRROR_TRACK

# (apiVersion, kind) of every object each router writes, for undeploy and discovery (traffic.ROUTER_INFO).
ROUTER_KINDS: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {name: r.kinds for name, r in ROUTER_INFO.items()})

_NAME = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")  # a gateway's namespace (DNS-1035 label)
_HOST = re.compile(r"(?:\*\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_CANDIDATES = ("canary", "preview")


def service_host(name: str, namespace: str) -> str:
    """The cluster DNS name of a Service; routers use it so no short name is resolved in the wrong place."""
    return f"{name}.{namespace}.svc.cluster.local"


_weight = check_percent  # the one percent rule (traffic), under the name the routers use


@dataclass(frozen=True)
class Traffic:
    """The validated inputs every router shares; each `route()` builds one first."""

    name: str
    namespace: str
    stable_weight: int
    candidate_weight: int
    candidate_track: str | None = "canary"
    mirror_percent: int | None = None
    mirror_track: str = "shadow"
    host: str | None = None
    gateway: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    port: int = 80
    state: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None  # the spec's own; ours win on a clash (none: prefixed)

    def __post_init__(self) -> None:
        validate_model_name(self.name, "model name")
        validate_namespace(self.namespace)
        _weight(self.stable_weight, "stable weight")
        _weight(self.candidate_weight, "candidate weight")
        if self.stable_weight + self.candidate_weight != 100:
            raise SpecError(f"weights {self.stable_weight} (stable) and {self.candidate_weight} (candidate) "
                            f"add up to {self.stable_weight + self.candidate_weight}, not 100.")
        if self.candidate_track is None:
            if self.candidate_weight:
                raise SpecError(f"candidate weight {self.candidate_weight} is set but there is no candidate "
                                f"track: give candidate_track or a weight of 0.")
        elif self.candidate_track not in _CANDIDATES:
            raise SpecError(f"candidate track {self.candidate_track!r} is not one of "
                            f"{', '.join(_CANDIDATES)}.")
        if self.mirror_percent is not None:
            _weight(self.mirror_percent, "mirror percent")
        if self.mirror_track not in L.TRACKS or self.mirror_track in ("stable", self.candidate_track):
            raise SpecError(f"mirror track {self.mirror_track!r} must be a track other than stable and the "
                            f"candidate, such as 'shadow'.")
        if self.host is not None and not (isinstance(self.host, str) and len(self.host) <= 253
                                          and _HOST.fullmatch(self.host)):
            raise SpecError(f"host {self.host!r} is not a valid host name: use lower-case letters, digits, "
                            f"'-' and '.', optionally starting with '*.'.")
        if self.gateway is not None:
            text = self.gateway if isinstance(self.gateway, str) else ""
            gw_ns, _, gw_name = text.rpartition("/")
            if (not _HOST.fullmatch(gw_name) or gw_name.startswith("*")
                    or (gw_ns and not _NAME.fullmatch(gw_ns))):
                raise SpecError(f"gateway {self.gateway!r} is not valid: write 'namespace/name' or 'name'.")
        if not isinstance(self.labels, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in self.labels.items()):
            raise SpecError("labels must be a mapping of strings to strings.")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise SpecError(f"port must be a whole number from 1 to 65535, got {self.port!r}.")
        for key, value in (self.annotations or {}).items():
            if not (isinstance(key, str) and isinstance(value, str)) or key.startswith(L.PREFIX):
                raise SpecError(f"annotation {key!r} is not valid for a route: keys and values are strings, "
                                f"and the {L.PREFIX} prefix is jupyter-mldeploy's own.")
        for key, value in (self.state or {}).items():
            if not (isinstance(key, str) and key.startswith(L.PREFIX) and isinstance(value, str)):
                raise SpecError(f"rollout state {key!r} is not valid: keys must start with {L.PREFIX} and "
                                f"values must be strings.")

    def track(self, track: str) -> str:
        """The Service (and Deployment) name of a track."""
        return track_name(self.name, track)

    def state_annotations(self, router: str) -> dict[str, str]:
        """The rollout state for the objects' metadata; a state value contradicting the weights is refused."""
        ours = {ROUTER: router, L.WEIGHT: str(self.candidate_weight)}
        if self.candidate_track is not None:
            ours[CANDIDATE_TRACK] = self.candidate_track
        if self.mirror_percent is not None:
            ours[MIRROR_PERCENT] = str(self.mirror_percent)
            ours[MIRROR_TRACK] = self.mirror_track
        state = dict(self.state or {})
        for key, value in ours.items():
            if key in state and state[key] != value:
                raise SpecError(f"rollout state {key}={state[key]!r} contradicts the route, which sets "
                                f"{value!r}; leave it out of state.")
        return {**state, **ours}

    def metadata(self, name: str, router: str) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": dict(self.labels),
                "annotations": {**(self.annotations or {}), **self.state_annotations(router)}}


def route_for(router: str, name: str, namespace: str, **kwargs: Any) -> list[dict[str, Any]]:
    """The manifests of `router` (one of traffic.ROUTERS); keyword arguments go to its `route()`."""
    if router not in ROUTER_KINDS:
        raise SpecError(f"router {router!r} is not one of {', '.join(ROUTER_KINDS)}.")
    # Imported on use: the modules import this package's helpers, and a caller needs only one router.
    module = importlib.import_module(f"{__name__}.{router}")
    return module.route(name, namespace, **kwargs)
