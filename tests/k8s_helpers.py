"""Small helpers the integration tests share: read an object, check what a model left behind."""

from __future__ import annotations

from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import ClusterError
from jupyter_mldeploy.kube.resources import collection_path

# Every namespaced kind jupyter-mldeploy may write, the anchor (a ConfigMap) and records included.
# (ReplicaSets and pods are the Deployment controller's, removed by the garbage collector after it.)
KINDS = (
    ("apps/v1", "Deployment"), ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("networking.istio.io/v1", "VirtualService"), ("networking.istio.io/v1", "DestinationRule"),
    ("v1", "Secret"), ("v1", "ConfigMap"),
)


def get(kube, path: str, **query) -> dict:
    return kube.request("GET", path, query=query or None)[1]


def exists(kube, path: str) -> bool:
    try:
        kube.request("GET", path)
        return True
    except ClusterError as e:
        assert e.status == 404, e
        return False


def labelled(kube, namespace: str, name: str) -> list[str]:
    """Every object in `namespace` that carries model `name`'s instance label, as kind/name."""
    out = []
    for api_version, kind in KINDS:
        items = get(kube, collection_path(api_version, kind, namespace),
                    labelSelector=f"{L.APP_INSTANCE}={name}")["items"]
        out += [f"{kind.lower()}/{i['metadata']['name']}" for i in items
                if not i["metadata"].get("deletionTimestamp")]
    return sorted(out)
