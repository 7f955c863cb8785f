"""No router: requests divide by ready pods behind the stable Service `<name>`.

There is no route object. What moves traffic is (a) the replica counts of the stable and canary
Deployments, from `traffic.achievable_split` (say the achieved percent: 1 canary pod of 4 is 25%, not
10%), and (b) the stable Service's selector, which this module renders as a whole Service `<name>`:

- no candidate: `{instance, track=stable}`, only the stable pods;
- canary: `{instance, mldeploy.io/live=true}`, the stable and canary pods together (the same selector
  as `render(..., replica_split=True)`); shadow and preview pods are live=false and never selected;
- blue-green: the live selector while the preview is at 0, then `{instance, track=preview}` for the
  switch (weights 0 or 100 only: preview pods are not live, so they cannot share a selector with stable).

The rollout applies this Service instead of render()'s Service `<name>`, and renders the stable and
canary Deployments with the replica counts of `plan()`. No mirroring is possible (a request reaches
exactly one pod), so a mirror is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import labels as L
from ...errors import SpecError
from ...traffic import Split, achievable_split
from . import Traffic

ROUTER = "replicas"


@dataclass(frozen=True)
class ReplicaRoute:
    """The stable Service to apply and, for a canary, the replica split to give the two Deployments."""

    service: dict[str, Any]
    split: Split | None

    @property
    def stable_replicas(self) -> int | None:
        return self.split.stable if self.split is not None else None

    @property
    def canary_replicas(self) -> int | None:
        return self.split.canary if self.split is not None else None


def selector(t: Traffic) -> dict[str, str]:
    """The stable Service's selector for this traffic state (see the module docstring)."""
    if t.candidate_track is None:
        return {L.APP_INSTANCE: t.name, L.TRACK: "stable"}
    if t.candidate_track == "preview":
        if t.candidate_weight not in (0, 100):
            raise SpecError(f"without a router a blue-green switch moves all traffic at once, so the preview "
                            f"weight is 0 or 100, not {t.candidate_weight}.")
        if t.candidate_weight == 100:
            return {L.APP_INSTANCE: t.name, L.TRACK: "preview"}
    return {L.APP_INSTANCE: t.name, L.LIVE: "true"}


def _service(t: Traffic) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": t.metadata(t.name, ROUTER),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(t),
            "ports": [{"name": "http", "port": t.port, "targetPort": "http", "protocol": "TCP",
                       "appProtocol": "http"}],
        },
    }


def _traffic(name: str, namespace: str, stable_weight: int, candidate_weight: int,
             candidate_track: str | None, mirror_percent: int | None, host: str | None, gateway: str | None,
             labels: Mapping[str, str], port: int, state: Mapping[str, str] | None,
             annotations: Mapping[str, str] | None = None) -> Traffic:
    t = Traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent,
                labels=labels, port=port, state=state, host=host, gateway=gateway, annotations=annotations)
    if t.mirror_percent is not None:
        raise SpecError("shadow traffic needs a router that can mirror requests; without one (router "
                        "'replicas') a request reaches exactly one pod, so use the gateway, istio or nginx "
                        "router.")
    if t.host is not None or t.gateway is not None:
        raise SpecError("the replicas router has no route object to carry host or gateway; expose the model "
                        "with render's expose, or use the gateway or nginx router.")
    return t


def route(name: str, namespace: str, *, stable_weight: int, candidate_weight: int,
          candidate_track: str | None = "canary", mirror_percent: int | None = None,
          mirror_track: str = "shadow", host: str | None = None, gateway: str | None = None,
          labels: Mapping[str, str], port: int = 80,
          state: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The stable Service `<name>` with the selector for this state (replica counts come from `plan`)."""
    del mirror_track  # accepted for a uniform signature; a mirror is refused below
    t = _traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent, host,
                 gateway, labels, port, state, annotations)
    return [_service(t)]


def plan(name: str, namespace: str, *, stable_weight: int, candidate_weight: int, total_replicas: int,
         candidate_track: str | None = "canary", labels: Mapping[str, str], port: int = 80,
         state: Mapping[str, str] | None = None) -> ReplicaRoute:
    """The Service and, for a canary, how `total_replicas` pods split between stable and canary."""
    t = _traffic(name, namespace, stable_weight, candidate_weight, candidate_track, None, None, None, labels,
                 port, state)
    split = achievable_split(t.candidate_weight, total_replicas) if t.candidate_track == "canary" else None
    return ReplicaRoute(_service(t), split)
