"""Where each kind we write lives in the API: a static table, so no discovery round trip is needed."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from ..spec import validate_namespace, validate_object_name

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
    ("v1", "Secret"): "secrets",
}


def _segment(text: str) -> str:
    """A validated name, quoted: no input can add a path segment, a query or a fragment."""
    return quote(text, safe="")


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    try:
        plural = PLURALS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"jupyter-mldeploy does not know where {kind} ({api_version}) lives") from None
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    # Every path is built here: a namespace like "team-a#" or "a/../b" is refused before it is sent.
    return f"{prefix}/namespaces/{_segment(validate_namespace(namespace))}/{plural}"


def named_path(api_version: str, kind: str, namespace: str, name: str) -> str:
    return f"{collection_path(api_version, kind, namespace)}/{_segment(validate_object_name(name))}"


def object_path(manifest: Mapping) -> str:
    meta = manifest["metadata"]
    return named_path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])


def describe(manifest: Mapping) -> str:
    """How people name an object: `deployment/churn` (kubectl's kind/name form)."""
    kind = manifest["kind"].lower()
    if manifest["apiVersion"].startswith("serving.knative.dev"):
        kind = "ksvc"
    return f"{kind}/{manifest['metadata']['name']}"
