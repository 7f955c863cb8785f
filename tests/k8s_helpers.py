"""Small helpers the integration tests share: read an object, check what a model left behind, wait for
what a controller does."""

from __future__ import annotations

import time

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


def wait_until(check, timeout: float = 30.0, what: str = "the condition", interval: float = 0.2):
    """`check()`'s first truthy answer, polled every `interval`; only ever observes. Past `timeout` the
    test fails, saying what it waited for and the last answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def get(kube, path: str, **query) -> dict:
    return kube.request("GET", path, query=query or None)[1]


def exists(kube, path: str) -> bool:
    try:
        kube.request("GET", path)
        return True
    except ClusterError as e:
        assert e.status == 404, e
        return False


def deployments(kube, namespace: str) -> list[str]:
    """The names of every Deployment in `namespace`, sorted."""
    body = get(kube, collection_path("apps/v1", "Deployment", namespace))
    return sorted(d["metadata"]["name"] for d in body["items"])


def labelled(kube, namespace: str, name: str) -> list[str]:
    """Every object in `namespace` that carries model `name`'s instance label, as kind/name."""
    out = []
    for api_version, kind in KINDS:
        items = get(kube, collection_path(api_version, kind, namespace),
                    labelSelector=f"{L.APP_INSTANCE}={name}")["items"]
        out += [f"{kind.lower()}/{i['metadata']['name']}" for i in items
                if not i["metadata"].get("deletionTimestamp")]
    return sorted(out)


def until_test_routes_are_gone(kube, timeout: float) -> None:
    """Until no test namespace holds a Knative Route: each carries Knative's finalizer, which only its
    controller removes, so the controller must outlive them. Past the bound, return anyway (those
    namespaces stay Terminating; nothing else waits for them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tests = {n["metadata"]["name"] for n in kube.request(
            "GET", "/api/v1/namespaces", query={"labelSelector": "mldeploy.io/test=true"})[1]["items"]}
        routes = kube.request("GET", "/apis/serving.knative.dev/v1/routes")[1]["items"]
        if not any(r["metadata"]["namespace"] in tests for r in routes):
            return
        time.sleep(0.5)
