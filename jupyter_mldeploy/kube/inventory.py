"""What the cluster has: nodes (for the pre-flight fit check) and the API groups it serves.

Both change rarely, so each connection keeps them for a short while: a deploy after the first one
pays no extra round trip for its pre-flight.
"""

from __future__ import annotations

import threading
import time

from ..errors import ClusterError
from .client import Kube

NODE_TTL = 30.0
DISCOVERY_TTL = 300.0

_lock = threading.Lock()
_cache: dict[tuple[int, str], tuple[float, object]] = {}


def _cached(kube: Kube, key: str, ttl: float, load):
    k = (id(kube), key)
    now = time.monotonic()
    with _lock:
        hit = _cache.get(k)
    if hit and now - hit[0] < ttl:
        return hit[1]
    value = load()
    with _lock:
        _cache[k] = (now, value)
    return value


def nodes(kube: Kube) -> list[dict] | None:
    """All nodes, or None when this identity may not list them (pre-flight is then skipped)."""
    def load():
        try:
            return kube.request("GET", "/api/v1/nodes")[1].get("items", [])
        except ClusterError as e:
            if e.status == 403:
                return None
            raise
    return _cached(kube, "nodes", NODE_TTL, load)


def scheduled_pods(kube: Kube) -> list[dict] | None:
    """Pods bound to nodes and not finished, cluster-wide; read only to explain a refusal."""
    try:
        return kube.request("GET", "/api/v1/pods", query={
            "fieldSelector": "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"})[1]["items"]
    except ClusterError as e:
        if e.status == 403:
            return None
        raise


def served_groups(kube: Kube) -> set[str]:
    """Every served group/version, e.g. {"apps/v1", "gateway.networking.k8s.io/v1", ...}."""
    def load():
        _, body = kube.request("GET", "/apis")
        served = {"v1"}
        for group in body.get("groups", []):
            served.update(v["groupVersion"] for v in group.get("versions", []))
        return served
    return _cached(kube, "groups", DISCOVERY_TTL, load)
