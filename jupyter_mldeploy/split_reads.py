"""Read the canary split the cluster holds: the route object (or the two Deployments) and each track's
ready pods, through the Kube client; `split` turns what is read into the picture (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from . import labels as L
from .kube.resources import collection_path
from .split import (
    ROUTE_OBJECTS,
    Split,
    TrackPods,
    Weights,
    pods_from_deployment,
    weights_from_replicas,
    weights_from_route,
)

if TYPE_CHECKING:
    from .kube.client import Kube
    from .rollout import Rollout

__all__ = ["read_pods", "read_split", "read_weights", "ready_canary_pods"]


def read_weights(r: Rollout) -> Weights:
    """Read the weights from the route object itself (not the rollout's own record of them)."""
    from .connection import connect

    kube, ns, name = r.kube or connect(), r.namespace, r.name
    if r.router == "knative":  # the split Knative's route controller computed between the two revisions
        from . import rollout_knative

        return Weights(*rollout_knative.read_weights(r), r.router)
    if r.router in ROUTE_OBJECTS:
        api_version, kind, suffix = ROUTE_OBJECTS[r.router]
        obj = kube.get_or_none(f"{collection_path(api_version, kind, ns)}/{name}{suffix}")
        return weights_from_route(r.router, name, ns, obj)
    # replicas: requests divide by pods, so the split is what the Deployments ask for
    deployments = collection_path("apps/v1", "Deployment", ns)
    stable, canary = (kube.get_or_none(f"{deployments}/{n}") for n in (name, L.track_name(name, "canary")))
    return weights_from_replicas(stable, canary, r.weight, r.split_sentence, router=r.router)


def read_pods(name: str, *, namespace: str, kube: Kube) -> dict[str, TrackPods]:
    """Each track's ready pods, from the stable and canary Deployments (two reads)."""
    deployments = collection_path("apps/v1", "Deployment", namespace)
    return {track: pods_from_deployment(kube.get_or_none(f"{deployments}/{n}"))
            for track, n in (("stable", name), ("canary", L.track_name(name, "canary")))}


def read_split(r: Rollout, *, pods: Mapping[str, TrackPods] | None = None) -> Split:
    """The picture of a canary rollout as the cluster holds it (pods read unless given)."""
    from .connection import connect

    weights = read_weights(r)
    if pods is None and r.router == "knative":  # its tracks are revisions, not Deployments
        from . import rollout_knative

        pods = rollout_knative.read_pods(r)
    if pods is None:
        pods = read_pods(r.name, namespace=r.namespace, kube=r.kube or connect())
    return Split(r.name, weights, r.stable_version, r.candidate_version, pods.get("stable"),
                 pods.get("canary"))


def ready_canary_pods(name: str, *, namespace: str, kube: Kube | None) -> int:
    """How many of the canary's pods are ready (0 without a canary): what lets a slider move its weight."""
    from . import api, rollout
    from .errors import MLDeployError

    try:
        # api.get reads the canary Deployment, its pods, ReplicaSets and events at once (status()).
        status = api.get(name, namespace=namespace, kube=kube, track="canary").last_status
    except MLDeployError:
        from . import rollout_knative  # a Knative canary is a revision, not a Deployment

        found = rollout.read(name, namespace=namespace, kube=kube)
        if found is not None and found.router == "knative":
            return rollout_knative.ready_candidate_pods(found)
        return 0  # no canary Deployment (yet, or any more)
    return status.ready if status is not None else 0
