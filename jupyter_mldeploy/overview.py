"""What jupyter-mldeploy runs in a namespace (or every namespace): one row per model track, and the
rollouts in progress. `%mldeploy` shows these; a face never lists Deployments itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import labels as L

if TYPE_CHECKING:
    from .kube.client import Kube
    from .rollout import Rollout

__all__ = ["ModelRow", "list_models", "rollouts_in_progress"]

# A Knative revision's Deployment carries our labels (Knative copies them onto it): the Knative models
# are listed from their Services instead (rollout_knative.models).
_KNATIVE_REVISION = "serving.knative.dev/revision"


@dataclass(frozen=True)
class ModelRow:
    """One track of one model: its Deployment's version, image and ready pods."""

    name: str
    namespace: str
    track: str
    version: str
    image: str
    ready: int
    desired: int


def list_models(namespace: str | None, *, kube: Kube) -> list[ModelRow]:
    """Every Deployment jupyter-mldeploy manages in `namespace` (None: every namespace), one row per
    model track, sorted by namespace, name and track (one list request)."""
    from .kube.resources import collection_path

    path = ("/apis/apps/v1/deployments" if namespace is None
            else collection_path("apps/v1", "Deployment", namespace))
    _, body = kube.request("GET", path, query={"labelSelector": f"{L.APP_MANAGED_BY}={L.MANAGED_BY}"})
    rows = [_model_row(d) for d in body.get("items", [])
            if _KNATIVE_REVISION not in d.get("metadata", {}).get("labels", {})]
    return sorted(rows, key=lambda m: (m.namespace, m.name, m.track))


def rollouts_in_progress(models: list[ModelRow], *, kube: Kube) -> list[Rollout]:
    """The rollout of each model that has a candidate track running (only those can have one)."""
    candidates = sorted({(m.namespace, m.name) for m in models if m.track != "stable"})
    if not candidates:
        return []
    from . import rollout

    # One concurrent round of reads per model; sequential over models (rarely more than a few).
    found = [rollout.read(name, namespace=ns, kube=kube) for ns, name in candidates]
    return [r for r in found if r is not None]


def _model_row(dep: dict) -> ModelRow:
    meta, spec, status = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status", {})
    labels = meta.get("labels", {})
    containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
    return ModelRow(name=labels.get(L.APP_INSTANCE, meta.get("name", "?")),
                    namespace=meta.get("namespace", ""), track=labels.get(L.TRACK, "stable"),
                    version=labels.get(L.APP_VERSION, "-"), image=containers[0].get("image", "?"),
                    ready=int(status.get("readyReplicas") or 0), desired=int(spec.get("replicas") or 0))
