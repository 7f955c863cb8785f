"""What runs: Knative's controller, webhook, autoscaler and activator, the ingress layer, and the
models of a namespace."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..diagnosis.leases import lease_holders
from ..errors import (
    ClusterError,
    MLDeployError,
)
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import collection_path
from .revisions import KnativeStatus, _cond, _status_of
from .service import API


def _controller_or_refuse(kube: Kube) -> None:
    """Refuse (nothing written) when Knative's leases can be read and no controller holds one: the
    Service would never become revisions. Unreadable leases (a namespace-bound identity) pass."""
    found = components(kube)
    if found and not found["controller"]:
        raise MLDeployError("Knative Serving's controller is not running on this cluster (no fresh lease in "
                            "knative-serving), so nothing would turn a Knative Service into revisions; start "
                            "Knative Serving (in the sandbox: sandbox up --knative), or use another router.")


def components(kube: Kube) -> dict[str, bool]:
    """Which Knative Serving components hold a fresh lease in knative-serving (controller, webhook,
    autoscaler), and whether the activator has endpoints; {} when Knative is not installed. Fresh by
    the API server's clock (its Date header), never this machine's."""
    headers: dict[str, str] = {}
    try:
        _, body = kube.request("GET", "/apis/coordination.k8s.io/v1/namespaces/knative-serving/leases",
                               reply_headers=headers)
    except ClusterError:
        return {}
    found = lease_holders(body.get("items", []), owner._server_now(headers))
    try:
        _, eps = kube.request("GET", "/api/v1/namespaces/knative-serving/endpoints/activator-service")
        found["activator"] = any(s.get("addresses") for s in eps.get("subsets") or [])
    except ClusterError:
        found["activator"] = False
    return found


def ingress_ready(kube: Kube) -> bool | None:
    """Whether any KIngress is Ready (a networking layer acts on them); None when there is none."""
    try:
        _, body = kube.request("GET", "/apis/networking.internal.knative.dev/v1alpha1/ingresses")
    except ClusterError:
        return None
    items = body.get("items", [])
    if not items:
        return None
    return any(_cond(i, "Ready").get("status") == "True" for i in items)






class ProgressLines:
    """An on_status that prints one line whenever a revision's readiness or the split changes."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out
        self.seen: tuple | None = None

    def __call__(self, st: KnativeStatus) -> None:
        key = (tuple((r.name, r.ready, r.reason, r.percent) for r in st.revisions), st.settled)
        if key == self.seen:
            return
        self.seen = key
        revs = "; ".join(f"{r.name} Ready {r.ready}" + (f" ({r.reason})" if r.reason and r.ready != "True"
                                                         else "") + f", {r.percent}%"
                         for r in st.revisions) or "no revision yet"
        self.out(f"  {time.strftime('%H:%M:%S')}  {revs}" + ("" if st.settled else "; route catching up"))


_LACKS = {
    "controller": "no Knative controller runs, so nothing turns a Knative Service into revisions (the "
                  "knative router refuses to deploy)",
    "webhook": "Knative's webhook does not answer, so Knative Services are refused or go in without "
               "Knative's defaults and validation",
    "autoscaler": "Knative's autoscaler does not run, so no PodAutoscaler is reconciled and revisions stay "
                  "Deploying, never Ready",
    "activator": "Knative's activator has no endpoints, so a revision scaled to zero cannot be woken by a "
                 "request",
}


def health_sentence(kube: Kube) -> str | None:
    """What Knative Serving can and cannot do on this cluster, in one or two sentences; None when the
    cluster does not serve Knative."""
    found = components(kube)
    if not found:
        return None
    return describe_components(found, ingress_ready(kube))


def describe_components(found: dict[str, bool], ingress: bool | None) -> str:
    """health_sentence's words for which components run and whether a KIngress is Ready (pure)."""
    running = [c for c, up in found.items() if up]
    lacks = [_LACKS[c] for c, up in found.items() if not up]
    if ingress is not True:
        lacks.append("no networking layer makes a KIngress Ready, so routes stay IngressNotConfigured: the "
                     "split is computed by Knative's route controller, but no request reaches a revision "
                     "through Knative" + ("" if ingress is False else " (no KIngress yet)"))
    head = (f"Knative Serving components running: {', '.join(running)}." if running
            else "Knative Serving's API is served but none of its components runs.")
    return head + (" Lacking: " + "; ".join(lacks) + "." if lacks else "")


def _anchor_uids(kube: Kube, namespace: str | None) -> set[tuple[str, str, str]]:
    """(namespace, name, uid) of every model anchor there (one list request)."""
    path = "/api/v1/configmaps" if namespace is None else collection_path("v1", "ConfigMap", namespace)
    try:
        _, body = kube.request("GET", path, query={"labelSelector": owner.ANCHOR})
    except ClusterError:
        return set()
    return {(c["metadata"]["namespace"], c["metadata"]["name"], c["metadata"]["uid"])
            for c in body.get("items", [])}


def models(kube: Kube, namespace: str | None) -> list[str]:
    """One line per Knative Service of ours: its revisions and their traffic shares."""
    path = ("/apis/serving.knative.dev/v1/services" if namespace is None
            else collection_path(API, "Service", namespace))
    try:
        _, body = kube.request("GET", path)
    except ClusterError:
        return []
    anchors = {(ns, n): uid for ns, n, uid in _anchor_uids(kube, namespace)}
    out = []
    for ksvc in body.get("items", []):
        meta = ksvc["metadata"]
        uid = anchors.get((meta["namespace"], owner.anchor_name(meta["name"])))
        if uid is None or not any(r.get("uid") == uid for r in meta.get("ownerReferences") or []):
            continue  # not owned by its model's anchor: someone else's, whatever its labels
        st = _status_of(ksvc, [])
        split = ", ".join(f"{rev} {pct}%" for rev, pct in sorted(st.routed.items())) or "no traffic yet"
        where = f"{st.namespace}/" if namespace is None else ""
        out.append(f"{where}{st.name}: {split}; Ready {st.ready}" + (f" ({st.reason})" if st.reason else ""))
    return out
