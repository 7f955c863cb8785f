"""Where each kind we write lives in the API: a static table, so no discovery round trip is needed."""

from __future__ import annotations

from collections.abc import Mapping

# (apiVersion, kind) -> plural; all of these are namespaced.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Pod"): "pods",
    ("v1", "Service"): "services",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Event"): "events",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("networking.k8s.io/v1", "Ingress"): "ingresses",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproutes",
    ("networking.istio.io/v1", "VirtualService"): "virtualservices",
    ("networking.istio.io/v1", "DestinationRule"): "destinationrules",
    ("serving.knative.dev/v1", "Service"): "services",
    ("serving.knative.dev/v1", "Revision"): "revisions",  # read only: Knative makes them
}


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    try:
        plural = PLURALS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"jupyter-mldeploy does not know where {kind} ({api_version}) lives") from None
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}"


def object_path(manifest: Mapping) -> str:
    meta = manifest["metadata"]
    return f"{collection_path(manifest['apiVersion'], manifest['kind'], meta['namespace'])}/{meta['name']}"


def describe(manifest: Mapping) -> str:
    """How people name an object: `deployment/churn` (kubectl's kind/name form)."""
    kind = manifest["kind"].lower()
    if manifest["apiVersion"].startswith("serving.knative.dev"):
        kind = "ksvc"
    return f"{kind}/{manifest['metadata']['name']}"
