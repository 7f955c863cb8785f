"""Istio router: a VirtualService `<name>` with integer weights summing to 100, and a DestinationRule
`<name>` whose subsets pick pods by the `mldeploy.io/track` label (networking.istio.io/v1).

Service selectors, the requirement for the rollout: a subset can only choose among the endpoints of
the Service it belongs to. The live tracks are routed as subsets `stable` and `canary` of host `<name>`,
so the stable Service `<name>` must select every live pod: render the stable track with
`render(spec, ns, replica_split=True)`, which makes `<name>` select `{instance, mldeploy.io/live=true}`
(stable and canary pods). With the default selector `{instance, track=stable}` the canary subset would
have no endpoints and its share of requests would fail with 503. Callers outside the mesh that reach
`<name>` directly bypass the VirtualService and split by ready-replica ratio.

Shadow and preview pods are `mldeploy.io/live=false`, deliberately outside `<name>`, so they are not
subsets: the mirror goes to the shadow's own Service `<name>-shadow`, and a blue-green candidate to
`<name>-preview`, each selecting `{instance, track}` (render's default). Istio discards the mirrored
answers and sends the copies with a `-shadow` suffix on the Host header.

Weight 0 destinations are kept so the state stays visible. `gateway` ('namespace/name' of an Istio
Gateway) adds the route to that gateway as well as to the mesh.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import labels as L
from . import Traffic, service_host

ROUTER = "istio"
LIVE_SUBSETS = ("stable", "canary")  # the tracks the stable Service's live selector covers


def _destination(t: Traffic, track: str) -> dict[str, Any]:
    if track in LIVE_SUBSETS:
        return {"host": service_host(t.name, t.namespace), "subset": track, "port": {"number": t.port}}
    return {"host": service_host(t.track(track), t.namespace), "port": {"number": t.port}}


def destination_rule(t: Traffic) -> dict[str, Any]:
    """The DestinationRule with one subset per live track, selected by the track label."""
    subsets = [{"name": track, "labels": {L.TRACK: track}} for track in LIVE_SUBSETS]
    # The rollout state lives on the VirtualService only, so a weight move rewrites one object.
    meta = {"name": t.name, "namespace": t.namespace, "labels": dict(t.labels),
            "annotations": {**(t.annotations or {}), L.ROUTER: ROUTER}}
    return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": meta,
            "spec": {"host": service_host(t.name, t.namespace), "subsets": subsets}}


def virtual_service(t: Traffic) -> dict[str, Any]:
    """The VirtualService splitting (and mirroring) requests for `<name>`."""
    destinations = [{"destination": _destination(t, "stable"), "weight": t.stable_weight}]
    if t.candidate_track is not None:
        destinations.append({"destination": _destination(t, t.candidate_track), "weight": t.candidate_weight})
    http: dict[str, Any] = {"name": "traffic", "route": destinations}
    if t.mirror_percent is not None:
        http["mirror"] = _destination(t, t.mirror_track)
        # Absent means 100%; written always so the cluster shows what was asked.
        http["mirrorPercentage"] = {"value": float(t.mirror_percent)}
    hosts = [service_host(t.name, t.namespace)]
    if t.host is not None:
        hosts.append(t.host)
    spec: dict[str, Any] = {"hosts": hosts}
    if t.gateway is not None:
        spec["gateways"] = [t.gateway, "mesh"]  # naming a gateway drops the implicit mesh, so keep it
    spec["http"] = [http]
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
            "metadata": t.metadata(t.name, ROUTER), "spec": spec}


def route(name: str, namespace: str, *, stable_weight: int, candidate_weight: int,
          candidate_track: str | None = "canary", mirror_percent: int | None = None,
          mirror_track: str = "shadow", host: str | None = None, gateway: str | None = None,
          labels: Mapping[str, str], port: int = 80,
          state: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """DestinationRule then VirtualService (the subsets exist before a route names them)."""
    t = Traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent,
                mirror_track, host, gateway, labels, port, state, annotations)
    return [destination_rule(t), virtual_service(t)]
