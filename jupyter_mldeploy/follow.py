"""Follow one Deployment's rollout by watching it, its ReplicaSets, its pods and the namespace's events.

No polling: four watches feed a StatusTracker on the caller's thread. The follow ends when the
rollout is complete (kubectl's rules), fails fast on a fatal diagnosis (image pull, crash loop,
OOM, unschedulable GPU, progress deadline), or stops waiting at the timeout. Stopping to wait
(timeout, Ctrl-C) never touches the cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ClusterError, MLDeployError, RolloutFailed, WaitTimeout
from .kube.client import Kube
from .kube.resources import collection_path
from .kube.watch import Multiplexer, Watch
from .status import RolloutStatus, StatusTracker

if TYPE_CHECKING:
    from .api import Deployment

StatusCallback = Callable[[RolloutStatus], None]


# WaitTimeout is named here too: its old home.
__all__ = ["NAMESPACE_KINDS", "StatusCallback", "WaitTimeout", "follow", "namespace_watches", "previous_logs",
           "watches"]


def watches(kube: Kube, namespace: str, name: str, selector: str) -> list[Watch]:
    return [
        Watch(kube, collection_path("apps/v1", "Deployment", namespace), "Deployment",
              field_selector=f"metadata.name={name}"),
        Watch(kube, collection_path("apps/v1", "ReplicaSet", namespace), "ReplicaSet",
              label_selector=selector),
        Watch(kube, collection_path("v1", "Pod", namespace), "Pod", label_selector=selector),
        Watch(kube, collection_path("v1", "Event", namespace), "Event"),
    ]


# The kinds a namespace-wide view watches (Deployments, ReplicaSets and pods of ours; every Event).
NAMESPACE_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("v1", "Pod"), ("v1", "Event"))


def namespace_watches(kube: Kube, namespace: str) -> list[Watch]:
    """Namespace-wide watches (not started) of our Deployments, ReplicaSets and pods and of all events,
    in NAMESPACE_KINDS order: what the widgets share between every view of one namespace."""
    from . import labels as L

    ours = f"{L.APP_MANAGED_BY}={L.MANAGED_BY}"
    return [Watch(kube, collection_path(api_version, kind, namespace), kind,
                  label_selector=None if kind == "Event" else ours) for api_version, kind in NAMESPACE_KINDS]


def previous_logs(kube: Kube, namespace: str, pod: str) -> str | None:
    """The crashed container's last lines, when the node serves logs (best effort).

    A real kubelet has no "previous" log until the container restarted: right after the first
    exit the crashed instance is still the current one, so that is read instead."""
    for query in ({"previous": "true", "tailLines": 50}, {"tailLines": 50}):
        try:
            return kube.text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", query=query, timeout=3)
        except MLDeployError:  # logs are a nicety; the diagnosis stands without them
            continue
    return None


def follow(kube: Kube, namespace: str, name: str, selector: str, *, timeout: float = 600,
           on_status: StatusCallback | None = None, min_interval: float = 0.1,
           fail_fast: bool = True, deployment: Deployment | None = None) -> RolloutStatus:
    """Watch until complete; raise RolloutFailed on a fatal diagnosis, WaitTimeout at the timeout.
    Both carry the last status and `deployment` (the handle the caller follows through, if any)."""
    tracker = StatusTracker(name, namespace)
    deadline = time.monotonic() + timeout
    last_sent = 0.0
    last: RolloutStatus | None = None
    logs_fetched: set[str] = set()
    with Multiplexer(watches(kube, namespace, name, selector)) as mux:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(_timeout_words(name, timeout, last), last, deployment=deployment)
            first = mux.get(min(remaining, 1.0))
            batch = ([first] if first else []) + mux.drain()
            for etype, obj, err in batch:
                if etype == "FAILED":
                    raise err if isinstance(err, MLDeployError) else ClusterError(
                        f"Watching {obj.get('kind')} of {name} failed: {err}")
                tracker.apply(etype, obj)
            status = tracker.snapshot()
            diag = status.diagnosis
            if diag is not None and diag.kind == "crash-loop" and diag.pod and diag.pod not in logs_fetched:
                logs_fetched.add(diag.pod)
                tracker.set_logs(diag.pod, previous_logs(kube, namespace, diag.pod))
                status = tracker.snapshot()
            now = time.monotonic()
            changed = last is None or status != last
            final = status.complete or (fail_fast and status.phase == "failed")
            # Nothing to show before the Deployment itself arrives (a "0/0 ready" would be a guess).
            seen = tracker.deployment is not None
            if on_status is not None and seen and changed and (final or now - last_sent >= min_interval):
                on_status(status)
                last_sent = now
            last = status
            if status.complete:
                return status
            if fail_fast and status.phase == "failed":
                raise RolloutFailed(_failed_words(name, status), diagnosis=status.diagnosis,
                                    status=status, deployment=deployment)


def _failed_words(name: str, status: RolloutStatus) -> str:
    d = status.diagnosis
    return (f"The rollout of {name} failed: {d}" if d else f"The rollout of {name} failed.")


def _timeout_words(name: str, timeout: float, status: RolloutStatus | None) -> str:
    where = (f"{status.ready}/{status.desired} ready" if status else "no status seen yet")
    return (f"Stopped waiting for {name} after {timeout:g} s ({where}); the rollout goes on in the "
            f"cluster. Watch it again with .watch() or %rollout {name}.")
