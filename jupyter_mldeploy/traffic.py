"""Traffic capabilities: which routers a cluster offers, which strategy works with which router, and
what replica split is achievable without one. Pure: no I/O, every refusal is one sentence.

Routers (the layer that decides where a request for model `<name>` goes):

- gateway: Gateway API HTTPRoute (gateway.networking.k8s.io/v1); weights and RequestMirror with percent.
- istio: VirtualService + DestinationRule (networking.istio.io/v1); weights, mirror + mirrorPercentage.
- knative: Knative Service (serving.knative.dev/v1); percent per revision; no mirroring.
- nginx: ingress-nginx canary Ingress annotations; weights, and mirror-target without a percentage.
  ingress-nginx was retired upstream in 2026: kept for existing clusters only.
- replicas: no router; traffic divides by ready-replica ratio behind one Service; no mirroring.

Strategies: rolling and recreate are Deployment strategies (every router; the route keeps 100% on
stable); blue-green starts a preview track and switches all traffic at once (every router; with the
replicas router by switching the stable Service's selector); canary moves a weight; shadow mirrors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import SpecError
from .spec.rules import IN_PLACE_STRATEGIES

__all__ = [
    "BLUE_GREEN_ROUTERS", "CANARY_ROUTERS", "CANDIDATE_TRACKS", "GATEWAY_MIRROR_FEATURE",
    "GATEWAY_PERCENT_MIRROR_FEATURE", "MIRROR_ROUTERS", "ROLLOUT_ROUTERS", "ROLLOUT_STRATEGIES", "ROUTERS",
    "ROUTER_APIS", "ROUTER_INFO", "STRATEGIES", "Router", "Split", "achievable_split", "check_percent",
    "check_schedule", "check_supported", "served_routers",
]

# rolling and recreate update the model in place (a DeploySpec strategy); the rollout strategies start a
# candidate beside the stable model (jupyter_mldeploy.rollout). The one list of both.
# Each rollout strategy's candidate track (`<name>-<track>`, labels.track_name).
CANDIDATE_TRACKS = MappingProxyType({"canary": "canary", "blue-green": "preview", "shadow": "shadow"})
ROLLOUT_STRATEGIES = tuple(CANDIDATE_TRACKS)
STRATEGIES = (*IN_PLACE_STRATEGIES, *ROLLOUT_STRATEGIES)


@dataclass(frozen=True)
class Router:
    """What one router can do, and what it writes: the one table every module reads.

    `needs` is what a cluster must serve to offer it, as the refusal says it;
    `api` is the group/version it writes (None: only the core API, so every cluster offers it);
    `objects` are (apiVersion, kind, name suffix) of each object it writes, the first holding the
    rollout state; `driver` says which module drives its rollouts (rollout.py itself, or
    rollout_knative, which replaces the Deployments with revisions).
    """

    name: str
    what: str
    needs: str
    api: str | None
    objects: tuple[tuple[str, str, str], ...]
    canary: bool = True
    blue_green: bool = True
    mirror: bool = False
    partial_mirror: bool = False  # a mirror of less than 100% of requests
    driver: str = "rollout"
    weights_in: int | None = 0  # which of `objects` holds the canary split (None: none, Pods decide)

    @property
    def kinds(self) -> tuple[tuple[str, str], ...]:
        """(apiVersion, kind) of each object, each once, for undeploy and discovery."""
        return tuple(dict.fromkeys((v, k) for v, k, _ in self.objects))


_GATEWAY_API = "gateway.networking.k8s.io/v1"
_ISTIO_API = "networking.istio.io/v1"
_KNATIVE_API = "serving.knative.dev/v1"
_INGRESS_API = "networking.k8s.io/v1"

ROUTER_INFO: Mapping[str, Router] = MappingProxyType({r.name: r for r in (
    Router("gateway", "Gateway API HTTPRoute: weights, and RequestMirror with a percent",
           _GATEWAY_API, _GATEWAY_API,
           ((_GATEWAY_API, "HTTPRoute", ""),), mirror=True, partial_mirror=True),
    Router("istio", "Istio VirtualService and DestinationRule: weights, mirror with mirrorPercentage",
           _ISTIO_API, _ISTIO_API,
           ((_ISTIO_API, "VirtualService", ""), (_ISTIO_API, "DestinationRule", "")),
           mirror=True, partial_mirror=True),
    Router("knative", "Knative Service: percent per revision; no mirroring",
           _KNATIVE_API, _KNATIVE_API,
           ((_KNATIVE_API, "Service", ""),), driver="knative"),
    Router("nginx", "ingress-nginx canary Ingress annotations: weights, and a mirror of every request",
           f"{_INGRESS_API} and an IngressClass named 'nginx'", _INGRESS_API,
           ((_INGRESS_API, "Ingress", ""), (_INGRESS_API, "Ingress", "-canary")), mirror=True, weights_in=1),
    Router("replicas", "no router: requests divide by ready replicas behind one Service; no mirroring",
           "nothing", None, (("v1", "Service", ""),), weights_in=None),
)})

# Views of ROUTER_INFO under the names modules have always imported.
ROUTERS = tuple(ROUTER_INFO)
MIRROR_ROUTERS = tuple(r.name for r in ROUTER_INFO.values() if r.mirror)
CANARY_ROUTERS = tuple(r.name for r in ROUTER_INFO.values() if r.canary)
BLUE_GREEN_ROUTERS = tuple(r.name for r in ROUTER_INFO.values() if r.blue_green)
# The routers whose rollouts rollout.py writes itself (knative's go through rollout_knative).
ROLLOUT_ROUTERS = tuple(r.name for r in ROUTER_INFO.values() if r.driver == "rollout")
# The group/version each router writes; a cluster that serves it may offer the router.
ROUTER_APIS = {r.name: r.api for r in ROUTER_INFO.values() if r.api is not None}
# Served by every cluster: the Ingress API alone says nothing about the controller, so nginx also
# needs an IngressClass of this name (what the ingress-nginx chart installs).
NGINX_INGRESS_CLASS = "nginx"

# GatewayClass status.supportedFeatures names (sigs.k8s.io/gateway-api pkg/features). Mirroring is an
# Extended feature that implementations lag on, so when the class says what it supports we believe it.
GATEWAY_MIRROR_FEATURE = "HTTPRouteRequestMirror"
GATEWAY_PERCENT_MIRROR_FEATURE = "HTTPRouteRequestPercentageMirror"
# RequestMirror.percent became Standard in v1.3; an older standard CRD prunes the unknown field on write,
# which would silently turn a 10% mirror into a 100% one.
GATEWAY_PERCENT_MIN_VERSION = (1, 3)


def served_routers(api_groups: Iterable[str], ingress_classes: Iterable[str] = ()) -> tuple[str, ...]:
    """The routers this cluster offers, in ROUTERS order, from its served "group/version" strings.

    `ingress_classes` are the names of the cluster's IngressClasses: nginx is offered only when
    networking.k8s.io/v1 is served and an IngressClass named "nginx" exists. "replicas" needs nothing
    and is always offered.
    """
    served = {g.strip() for g in _strings(api_groups, "api_groups")}
    classes = set(_strings(ingress_classes, "ingress_classes"))
    offered = []
    for router in ROUTERS:
        if router == "replicas":
            offered.append(router)
        elif router == "nginx":
            if ROUTER_APIS[router] in served and NGINX_INGRESS_CLASS in classes:
                offered.append(router)
        elif ROUTER_APIS[router] in served:
            offered.append(router)
    return tuple(offered)


def _strings(values: Iterable[str], what: str) -> tuple[str, ...]:
    # A lone string would otherwise be read as its characters.
    if isinstance(values, (str, bytes)):
        raise SpecError(f"{what} must be a list of strings, not a single string.")
    items = tuple(values)
    if not all(isinstance(v, str) for v in items):
        raise SpecError(f"{what} must contain only strings.")
    return items


def check_percent(value: object, what: str) -> int:
    """A share of requests: a whole number from 0 to 100 (not a bool), returned unchanged. The one rule
    for weights and mirror percents, in the API, the routers and the magics."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise SpecError(f"{what} must be a whole number from 0 to 100, not {value!r}.")
    return value


def _percent(value: object, what: str) -> int | None:
    return None if value is None else check_percent(value, what)


def _choice(value: object, what: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SpecError(f"{what} {value!r} is not one of {', '.join(choices)}.")
    return value


def _version(text: str) -> tuple[int, ...] | None:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", text.strip())
    return (int(m[1]), int(m[2])) if m else None


def check_supported(strategy: str, router: str, *, weight: int | None = None, mirror: int | None = None,
                    offered: Iterable[str] | None = None, gateway_features: Iterable[str] | None = None,
                    gateway_version: str | None = None) -> None:
    """Refuse, with one sentence giving the reason, a strategy/router combination that cannot work.

    Call it before any write. `weight` is the canary percent for the candidate (canary and blue-green
    only), `mirror` the percent of requests copied to the shadow (shadow only; None means all of them).
    `offered` is what `served_routers` found on the cluster (None: not checked). For the gateway router,
    `gateway_features` (the GatewayClass's status.supportedFeatures names) and `gateway_version` (the
    HTTPRoute CRD's gateway.networking.k8s.io/bundle-version annotation) are checked when given.

    ingress-nginx mirrors with `mirror-target`, which has no percentage: only a full mirror (or none) is
    possible, and nginx finishes a request only once its mirror subrequest has finished, so a slow shadow
    model slows the primary.
    """
    _choice(strategy, "strategy", STRATEGIES)
    _choice(router, "router", ROUTERS)
    weight = _percent(weight, "canary weight")
    mirror = _percent(mirror, "mirror percent")
    if offered is not None:
        offered = _strings(offered, "offered")
        if router not in offered:
            need = ROUTER_INFO[router].needs
            raise SpecError(f"router {router!r} is not offered by this cluster (it needs {need}); the "
                            f"cluster offers: {', '.join(offered) or 'nothing'}.")
    if weight is not None and strategy not in ("canary", "blue-green"):
        raise SpecError(f"a weight only applies to the canary and blue-green strategies, not {strategy}.")
    if strategy == "blue-green" and weight not in (None, 0, 100):
        raise SpecError(f"blue-green switches all traffic at once, so its weight is 0 or 100, not {weight}; "
                        f"use the canary strategy for a partial split.")
    if strategy == "recreate" and router == "knative":
        raise SpecError("Knative always starts a new revision before it retires the old one, so the "
                        "recreate strategy (stop first, for example to free GPUs) cannot be honoured; use "
                        "rolling.")
    if mirror is not None and strategy != "shadow":
        raise SpecError(f"a mirror percent only applies to the shadow strategy, not {strategy}.")
    if strategy != "shadow":
        return
    mirrors = ", ".join(MIRROR_ROUTERS)
    if router == "replicas":
        raise SpecError(f"shadow traffic needs a router that can mirror requests; without one (router "
                        f"'replicas') a request reaches exactly one pod, so use one of: {mirrors}.")
    if router == "knative":
        raise SpecError(f"shadow traffic needs a router that can mirror requests, and Knative Serving's "
                        f"traffic block only splits by percent with no mirroring; use one of: {mirrors}.")
    if router == "nginx" and mirror not in (None, 0, 100):
        raise SpecError(f"ingress-nginx mirrors every request or none (its mirror-target annotation has no "
                        f"percentage), so a {mirror}% mirror cannot be honoured; use 100, or the gateway or "
                        f"istio router for a partial mirror.")
    if router == "gateway":
        partial = mirror not in (None, 100)
        if gateway_features is not None:
            features = set(_strings(gateway_features, "gateway_features"))
            if GATEWAY_MIRROR_FEATURE not in features:
                raise SpecError(f"this cluster's Gateway implementation does not list "
                                f"{GATEWAY_MIRROR_FEATURE} in its GatewayClass supportedFeatures, so it "
                                f"would ignore the mirror; use the istio or nginx router if offered.")
            if partial and GATEWAY_PERCENT_MIRROR_FEATURE not in features:
                raise SpecError(f"this cluster's Gateway implementation does not list "
                                f"{GATEWAY_PERCENT_MIRROR_FEATURE} in its GatewayClass supportedFeatures, "
                                f"so it can mirror all requests but not {mirror}%; use 100.")
        if partial and gateway_version is not None:
            found = _version(gateway_version)
            if found is None or found < GATEWAY_PERCENT_MIN_VERSION:
                raise SpecError(f"a {mirror}% mirror needs Gateway API v1.3 or later (RequestMirror "
                                f"percent), but the HTTPRoute CRD is {gateway_version!r} and would drop the "
                                f"percent and mirror every request; upgrade the CRDs or use 100.")


def check_schedule(schedule: str | Iterable[int], what: str = "steps") -> tuple[int, ...]:
    """A progressive rollout's weights: text like '10,25,50,100' (a '%' after each is fine) or whole
    numbers, rising from 1 to at most 100 with each weight once. The one rule for %steps and steps()."""
    shown = repr(schedule) if isinstance(schedule, str) else repr(list(schedule) if isinstance(
        schedule, Iterable) else schedule)
    if isinstance(schedule, str):
        parts = [p.strip().rstrip("%") for p in schedule.split(",")]
        if not all(p.isascii() and p.isdigit() for p in parts):
            raise SpecError(f"{what} {shown} is not a list of whole percents: write rising weights separated "
                            f"by commas, such as 10,25,50,100.")
        values = tuple(int(p) for p in parts)
    else:
        values = tuple(schedule) if isinstance(schedule, Iterable) else ()
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise SpecError(f"{what} {shown} is not a list of whole percents: give rising weights such as "
                            f"[10, 25, 50, 100].")
    if not values or any(not 0 < v <= 100 for v in values) or list(values) != sorted(set(values)):
        raise SpecError(f"{what} {shown} must rise from 1 to at most 100, each weight once, such as "
                        f"10,25,50,100.")
    return values


@dataclass(frozen=True)
class Split:
    """A router-less split: pods per Deployment, the percent of requests the canary really gets, and
    one sentence saying so (and saying when it differs from the weight asked)."""

    stable: int
    canary: int
    percent: float
    sentence: str

    @property
    def total(self) -> int:
        return self.stable + self.canary


def _show(percent: float) -> str:
    # Say "about" rather than print a rounded number as if it were exact.
    if percent == int(percent):
        return f"{int(percent)}%"
    return f"about {percent:.1f}%"


def achievable_split(weight: int, replicas: int) -> Split:
    """The closest split of `replicas` pods to `weight` percent for the canary, without a router.

    Requests divide by ready pods (kube-proxy picks an endpoint per connection), so only multiples of
    100/replicas are possible. A weight above 0 always gets at least one canary pod and a weight below
    100 keeps at least one stable pod (when there are two pods or more); exact ties round toward fewer
    canary pods. With a single pod a weight between 0 and 100 gives that pod to the canary. Whenever the
    result differs from `weight`, `sentence` says so.
    """
    weight = _percent(weight, "canary weight")  # type: ignore[assignment]
    if weight is None:
        raise SpecError("canary weight is required: a whole number from 0 to 100.")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise SpecError(f"replicas must be a whole number of at least 1 to split traffic, got {replicas!r}.")
    if weight == 0:
        canary = 0
    elif weight == 100:
        canary = replicas
    else:
        # Round half down (ties go to the stable side): ceil(weight * replicas / 100 - 1/2).
        canary = (2 * weight * replicas + 99) // 200
        canary = max(1, canary) if replicas == 1 else min(max(1, canary), replicas - 1)
    stable = replicas - canary
    percent = canary / replicas * 100
    pods = f"{replicas} replica{'s' if replicas != 1 else ''}"
    split = f"{stable} stable and {canary} canary pod{'s' if canary != 1 else ''}"
    if percent == weight:
        sentence = f"{pods} split as {split}: the canary gets {_show(percent)} of requests, as asked."
    elif replicas == 1:
        sentence = (f"a {weight}% canary is not possible with 1 replica: the only pod runs the canary, so it "
                    f"gets 100% of requests; use more replicas for a finer split.")
    else:
        sentence = (f"a {weight}% canary is not possible with {pods}: the closest split is {split}, which "
                    f"sends {_show(percent)} of requests to the canary.")
    return Split(stable, canary, percent, sentence)
