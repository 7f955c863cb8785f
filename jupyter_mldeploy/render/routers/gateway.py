"""Gateway API router: one HTTPRoute `<name>` (gateway.networking.k8s.io/v1) attached to a Gateway.

The rule sends requests to the per-track Services (`<name>` and `<name>-canary` or `<name>-preview`),
weighted; a weight of 0 is kept in the route so the state stays visible on the cluster (the Gateway
API defines 0 as "no traffic"). With no candidate Service, pass `candidate_track=None`: a backendRef to a
missing Service turns the route's ResolvedRefs condition False even at weight 0.

Shadow traffic is a RequestMirror filter to `<name>-shadow` with `percent`, Standard since Gateway API
v1.3 (older standard CRDs prune the field and mirror everything: `traffic.check_supported` refuses that
when it is told the CRD version). The mirrored answers are discarded by the Gateway.

Service selectors: every backend is a per-track Service selecting `{instance, track}` (render() with
the default `replica_split=False`), so each Service reaches only its own track's pods.

This HTTPRoute has the same name as `render()`'s exposure for expose='gateway': apply this one and drop
exposure's, or the two would overwrite each other's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import SpecError
from . import Traffic

ROUTER = "gateway"


def parent_ref(gateway: str) -> dict[str, Any]:
    """A parentRef to the Gateway given as 'namespace/name' or 'name' (the route's namespace)."""
    gw_namespace, _, gw_name = gateway.rpartition("/")
    parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name}
    if gw_namespace:
        parent["namespace"] = gw_namespace
    return parent


def route(name: str, namespace: str, *, stable_weight: int, candidate_weight: int,
          candidate_track: str | None = "canary", mirror_percent: int | None = None,
          mirror_track: str = "shadow", host: str | None = None, gateway: str | None = None,
          labels: Mapping[str, str], port: int = 80,
          state: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The HTTPRoute splitting (and mirroring) requests for `name`; `gateway` is required."""
    t = Traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent,
                mirror_track, host, gateway, labels, port, state, annotations)
    if t.gateway is None:
        raise SpecError("the gateway router needs gateway, the parent Gateway as 'namespace/name' (or 'name' "
                        "in the model's namespace).")
    backends = [{"name": t.track("stable"), "port": t.port, "weight": t.stable_weight}]
    if t.candidate_track is not None:
        backends.append({"name": t.track(t.candidate_track), "port": t.port, "weight": t.candidate_weight})
    rule: dict[str, Any] = {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}
    if t.mirror_percent is not None:
        rule["filters"] = [{
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"name": t.track(t.mirror_track), "port": t.port},
                              "percent": t.mirror_percent},
        }]
    rule["backendRefs"] = backends
    spec: dict[str, Any] = {"parentRefs": [parent_ref(t.gateway)]}
    if t.host is not None:
        spec["hostnames"] = [t.host]
    spec["rules"] = [rule]
    return [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": t.metadata(t.name, ROUTER), "spec": spec}]
