"""StatusTracker: watch events for one Deployment in, RolloutStatus snapshots out.

The kube layer feeds it raw watch events (one namespace-wide watch may feed many trackers); it keeps
the latest copy of each object and folds them with `rollout_status` only when a view asks.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..diagnosis.model import Obj
from ..diagnosis.objects import metadata
from .rollout import RolloutStatus, _related, rollout_status

__all__ = ["StatusTracker"]


def _infer_kind(obj: Obj) -> str | None:
    # items of a LIST carry no kind; a relist after "410 Gone" feeds those in
    if "involvedObject" in obj or "regarding" in obj:
        return "Event"
    spec = obj.get("spec") or {}
    if "containers" in spec:
        return "Pod"
    if "template" in spec:
        owners = metadata(obj).get("ownerReferences") or []
        return "ReplicaSet" if any(o.get("kind") == "Deployment" for o in owners) else "Deployment"
    return None


def _selector_matches(selector: Obj, labels: Mapping[str, str]) -> bool:
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


class StatusTracker:
    """Folds watch events for one Deployment (its pods, ReplicaSets and events) into RolloutStatus snapshots.

    `apply` costs O(1) per event: each object is stored by name/uid; the work is done in `snapshot`.
    Objects of other Deployments in the namespace are ignored, so one namespace-wide watch can feed it.
    Not thread-safe: feed it and read it on one thread (the kernel's event loop, as the design asks).
    """

    def __init__(self, name: str, namespace: str | None = None, *, max_events: int = 10,
                 max_stored_events: int = 500) -> None:
        self.name = name
        self.namespace = namespace
        self.max_events = max_events
        self._max_stored_events = max_stored_events
        self._deployment: Obj | None = None
        self._selector: Obj | None = None
        self._pods: dict[str, Obj] = {}
        self._replica_sets: dict[str, Obj] = {}
        self._events: dict[str, Obj] = {}  # insertion order = arrival order, oldest first
        self._logs: dict[str, str] = {}

    @property
    def deployment(self) -> Obj | None:
        return self._deployment

    def set_logs(self, pod: str, logs: str | None) -> None:
        """Attach a crash-looping container's previous log (fetched by the kube layer) to its pod."""
        if logs is None:
            self._logs.pop(pod, None)
        else:
            self._logs[pod] = logs

    def apply(self, event_type: str, obj: Obj, kind: str | None = None) -> None:
        """Fold one watch event ("ADDED" | "MODIFIED" | "DELETED"; "BOOKMARK" is ignored) into the state."""
        if event_type == "BOOKMARK":
            return
        if event_type not in ("ADDED", "MODIFIED", "DELETED"):
            raise ValueError(f"unknown watch event type {event_type!r}")
        kind = kind or obj.get("kind") or _infer_kind(obj)
        meta = metadata(obj)
        if self.namespace is not None and meta.get("namespace") not in (None, self.namespace):
            return
        deleted = event_type == "DELETED"
        if kind == "Deployment":
            if meta.get("name") != self.name:
                return
            self._deployment = None if deleted else obj
            if not deleted and self._selector is None:
                self._selector = (obj.get("spec") or {}).get("selector") or {}
                # pods seen before their Deployment: keep only ours (selectors are immutable in apps/v1)
                for pod_name in [n for n, p in self._pods.items() if not self._matches(p)]:
                    del self._pods[pod_name]
        elif kind == "Pod":
            name = meta.get("name") or ""
            if deleted or not self._matches(obj):
                self._pods.pop(name, None)  # gone, or relabelled out of our selector
                self._logs.pop(name, None)
            else:
                self._pods[name] = obj
        elif kind == "ReplicaSet":
            name = meta.get("name") or ""
            if not any(o.get("kind") == "Deployment" and o.get("name") == self.name
                       for o in meta.get("ownerReferences") or []):
                return
            if deleted:
                self._replica_sets.pop(name, None)
            else:
                self._replica_sets[name] = obj
        elif kind == "Event":
            if not _related(self.name, obj, self._pods):
                return
            key = meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}"
            self._events.pop(key, None)  # re-insert: a MODIFIED event (count+1) is the newest again
            if not deleted:
                self._events[key] = obj
                while len(self._events) > self._max_stored_events:
                    del self._events[next(iter(self._events))]

    def _matches(self, pod: Obj) -> bool:
        if self._selector is None:
            return _related(self.name, {"involvedObject": {"kind": "Pod", "name": metadata(pod).get("name")}})
        return _selector_matches(self._selector, metadata(pod).get("labels") or {})

    def snapshot(self, now: float | None = None) -> RolloutStatus:
        return rollout_status(self._deployment, self._pods.values(), self._events.values(),
                              replica_sets=self._replica_sets.values(), name=self.name,
                              namespace=self.namespace, now=now, max_events=self.max_events,
                              logs=self._logs)
