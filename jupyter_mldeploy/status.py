"""Watch events -> RolloutStatus / PodRow values that views render (widget HTML, headless text).

Pure: the kube layer feeds raw watch events into a StatusTracker; views ask it for snapshots. Nothing here
talks to the API server, so the live view and the papermill log say the same thing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from . import labels as L
from .diagnosis import (
    Diagnosis,
    diagnose_deployment,
    diagnose_events,
    diagnose_pod,
    format_age,
    most_relevant,
    parse_time,
)

__all__ = [
    "EventRow",
    "PodRow",
    "RolloutStatus",
    "StatusTracker",
    "activity_words",
    "format_age",
    "format_progress_line",
    "format_status_table",
    "rollout_complete",
    "rollout_status",
    "status_html",
]

Obj = Mapping[str, Any]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _cond(obj: Obj, ctype: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


# ---------------------------------------------------------------------------------------------------------
# rows


@dataclass(frozen=True)
class EventRow:
    type: str  # Normal | Warning
    reason: str
    object: str  # "Pod/churn-7d9-abc"
    message: str
    count: int
    last_seen: float | None  # epoch seconds

    @classmethod
    def from_event(cls, ev: Obj) -> EventRow:
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        series = ev.get("series") or {}
        last = None
        for ts in (ev.get("lastTimestamp"), series.get("lastObservedTime"), ev.get("eventTime"),
                   ev.get("firstTimestamp"), _meta(ev).get("creationTimestamp")):
            last = parse_time(ts)
            if last is not None:
                break
        return cls(
            type=ev.get("type") or "Normal",
            reason=ev.get("reason") or "",
            object=f"{obj.get('kind', '?')}/{obj.get('name', '?')}",
            message=(ev.get("message") or ev.get("note") or "").strip(),
            count=int(ev.get("count") or series.get("count") or 1),
            last_seen=last,
        )


_ACTIVITY = {
    "image-pull": "image pull failing",
    "crash-loop": "crash-looping",
    "oom-killed": "out of memory",
    "start-failed": "cannot start",
    "config-error": "config missing",
    "unschedulable": "unschedulable",
    "volume": "volume problem",
    "never-ready": "not ready",
    "evicted": "evicted",
    "pod-failed": "failed",
    "sandbox": "network setup failing",
    "create-failed": "pods refused",
    "progress-deadline": "progress deadline passed",
}


def activity_words(kind: str) -> str | None:
    """A diagnosis kind in the few words a progress line shows ("image pull failing"); None if unknown."""
    return _ACTIVITY.get(kind)


@dataclass(frozen=True)
class PodRow:
    name: str
    phase: str
    ready: bool
    ready_containers: str  # "1/1"
    restarts: int
    node: str | None
    age_seconds: float | None
    reason: str | None  # waiting / terminated reason, Init:..., Unschedulable, Terminating, Evicted
    version: str | None
    track: str | None
    diagnosis: Diagnosis | None = None
    replica_set: str | None = None  # owner: tells the new rollout's pods from the old ones
    activity: str | None = None  # short words for progress lines: "pulling image", "scheduling", ...
    loading: tuple[float, float] | None = None  # (seconds so far, window) while a startup probe waits

    @property
    def status(self) -> str:
        """kubectl's STATUS column."""
        return self.reason or self.phase

    @property
    def terminating(self) -> bool:
        return self.reason in ("Terminating", "Unknown") and self.phase != "Failed"

    @property
    def state(self) -> str:
        """ "ready" | "pending" | "failing" | "terminating": the colour a view gives the row."""
        if self.terminating:
            return "terminating"
        if self.phase == "Failed" or (self.diagnosis is not None and self.diagnosis.fatal):
            return "failing"
        return "ready" if self.ready else "pending"

    @classmethod
    def from_pod(cls, pod: Obj, now: float | None = None, events: Iterable[Obj] = (),
                 logs: str | None = None) -> PodRow:
        now = time.time() if now is None else now
        events = list(events)
        meta, spec, st = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        phase = st.get("phase") or "Pending"
        statuses = st.get("containerStatuses") or []
        n_containers = len(spec.get("containers") or []) or len(statuses)
        ready_cond = _cond(pod, "Ready")
        created = parse_time(meta.get("creationTimestamp")) or parse_time(st.get("startTime"))
        diagnosis = diagnose_pod(pod, events, logs, now=now)
        reason = _pod_reason(pod)
        ready = bool(ready_cond and ready_cond.get("status") == "True") and reason != "Terminating"
        loading = None if ready or diagnosis is not None else _loading(pod, now)
        owners = meta.get("ownerReferences") or []
        owner = next((o.get("name") for o in owners if o.get("kind") == "ReplicaSet"), None)
        return cls(
            name=meta.get("name") or "?",
            phase=phase,
            ready=ready,
            ready_containers=f"{sum(1 for c in statuses if c.get('ready'))}/{n_containers}",
            restarts=sum(int(c.get("restartCount") or 0)
                         for c in [*statuses, *(st.get("initContainerStatuses") or [])]),
            node=spec.get("nodeName") or None,
            # creation time, like kubectl's AGE: startTime would make the age jump back once scheduled
            age_seconds=None if created is None else max(0.0, now - created),
            reason=reason,
            version=labels.get(L.APP_VERSION),
            track=labels.get(L.TRACK),
            diagnosis=diagnosis,
            replica_set=owner,
            activity="loading" if loading is not None else _activity(pod, reason, ready, diagnosis, events),
            loading=loading,
        )


def _term_reason(term: Obj) -> str:
    if term.get("reason"):
        return term["reason"]
    if term.get("signal"):
        return f"Signal:{term['signal']}"
    return f"ExitCode:{term.get('exitCode')}"


def _pod_reason(pod: Obj) -> str | None:
    """kubectl's printPod reasoning, returning None where it would just print the phase."""
    meta, spec, st = _meta(pod), pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    if st.get("reason"):
        return st["reason"]
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    init_statuses = st.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        state = cs.get("state") or {}
        term, waiting = state.get("terminated"), state.get("waiting") or {}
        if term and term.get("exitCode") == 0:
            continue
        if init_specs.get(cs.get("name"), {}).get("restartPolicy") == "Always" and cs.get("started"):
            continue  # a sidecar: running is its job
        if term:
            return "Init:" + _term_reason(term)
        if waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return "Init:" + waiting["reason"]
        return f"Init:{i}/{len(init_specs) or len(init_statuses)}"
    for cs in st.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            return state["waiting"]["reason"]
        if state.get("terminated"):
            return _term_reason(state["terminated"])
    sched = _cond(pod, "PodScheduled")
    if sched and sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
        return "Unschedulable"
    return None


def _loading(pod: Obj, now: float) -> tuple[float, float] | None:
    """(seconds since the container started, the startup probe's window) while that probe has not
    passed yet: the model is loading, and neither readiness nor liveness is probed meanwhile."""
    if (pod.get("status") or {}).get("phase") != "Running":
        return None
    probes = {c.get("name"): c.get("startupProbe") for c in (pod.get("spec") or {}).get("containers") or []}
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        probe, running = probes.get(cs.get("name")), (cs.get("state") or {}).get("running")
        if not probe or not running or cs.get("started"):
            continue
        started = parse_time(running.get("startedAt"))
        if started is None:
            continue
        window = float((probe.get("initialDelaySeconds") or 0)
                       + (probe.get("periodSeconds") or 10) * (probe.get("failureThreshold") or 3))
        return max(0.0, now - started), window
    return None


def loading_words(elapsed: float, window: float) -> str:
    """ "startup probe, 3 of 15 min": how far into its startup window a loading model is."""
    if window < 120:
        return f"startup probe, {int(elapsed // 10) * 10} of {window:.0f} s"
    return f"startup probe, {int(elapsed // 60)} of {math.ceil(window / 60)} min"


def _activity(pod: Obj, reason: str | None, ready: bool, diagnosis: Diagnosis | None,
              events: list[Obj]) -> str | None:
    if reason in ("Terminating", "Unknown") and (pod.get("status") or {}).get("phase") != "Failed":
        return "terminating"
    if diagnosis is not None:
        return _ACTIVITY.get(diagnosis.kind, diagnosis.kind)
    if ready:
        return None
    if not (pod.get("spec") or {}).get("nodeName"):
        return "scheduling"
    if reason and reason.startswith("Init:"):
        return "initializing"
    if reason in ("ContainerCreating", "PodInitializing"):
        # the newest pull event tells whether an image download is under way
        latest, latest_t = None, 0.0
        for ev in events:
            if ev.get("reason") in ("Pulling", "Pulled", "Failed"):
                t = EventRow.from_event(ev).last_seen or 0.0
                if latest is None or t >= latest_t:
                    latest, latest_t = ev, t
        return "pulling image" if latest is not None and latest.get("reason") == "Pulling" else "creating"
    if (pod.get("status") or {}).get("phase") == "Running":
        return "starting"
    return "pending"


# ---------------------------------------------------------------------------------------------------------
# the rollout


@dataclass(frozen=True)
class RolloutStatus:
    name: str
    namespace: str | None
    desired: int
    updated: int
    ready: int
    available: int
    pods: tuple[PodRow, ...] = ()
    events: tuple[EventRow, ...] = ()  # recent, newest last
    events_omitted: int = 0  # how many older related events were left out of `events`
    complete: bool = False
    diagnosis: Diagnosis | None = None
    observed_generation_current: bool = False
    new_replica_set: str | None = None

    @property
    def phase(self) -> str:
        """ "progressing" | "complete" | "failed"."""
        if self.complete:
            return "complete"
        if self.diagnosis is not None and self.diagnosis.fatal:
            return "failed"
        return "progressing"

    @property
    def progress(self) -> float:
        """Share of the desired replicas that are ready, 0..1 (a scale to zero counts once complete)."""
        if self.desired <= 0:
            return 1.0 if self.complete else 0.0
        # during a rolling update readyReplicas still counts the old pods; bounding by updatedReplicas
        # keeps an untouched old fleet from showing as done
        return min(self.ready, self.updated, self.desired) / self.desired


def rollout_complete(deployment: Obj) -> bool:
    """Exactly `kubectl rollout status`'s verdict (DeploymentStatusViewer), as a bool.

    kubectl compares with < rather than ==, so a Deployment scaling down with all replicas updated is done.
    """
    meta, spec, st = _meta(deployment), deployment.get("spec") or {}, deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return False  # "Waiting for deployment spec update to be observed"
    progressing = _cond(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return False
    updated = int(st.get("updatedReplicas") or 0)
    if spec.get("replicas") is not None and updated < int(spec["replicas"]):
        return False
    if int(st.get("replicas") or 0) > updated:
        return False  # old replicas pending termination
    return int(st.get("availableReplicas") or 0) >= updated


def _new_replica_set(deployment: Obj, replica_sets: Iterable[Obj]) -> str | None:
    """The ReplicaSet of the current template: from ReplicaSet objects if we have them, else named in the
    Progressing condition ("ReplicaSet "churn-5d8f" is progressing.") once the spec has been observed."""
    name = _meta(deployment).get("name")
    revision = (_meta(deployment).get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision is not None:
        for rs in replica_sets:
            m = _meta(rs)
            owned = any(o.get("kind") == "Deployment" and o.get("name") == name
                        for o in m.get("ownerReferences") or [])
            if owned and (m.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
                return m.get("name")
    st = deployment.get("status") or {}
    if int(_meta(deployment).get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return None
    progressing = _cond(deployment, "Progressing")
    if progressing is not None:
        m = re.search(r'(?i)replica ?set "([^"]+)"', progressing.get("message") or "")
        if m:
            return m.group(1)
    return None


def _event_object(ev: Obj) -> Obj:
    return ev.get("involvedObject") or ev.get("regarding") or {}


def _related(name: str, ev: Obj, pod_names: Iterable[str] = ()) -> bool:
    """Is this event about our Deployment, one of its ReplicaSets, or one of its pods?"""
    obj = _event_object(ev)
    kind, obj_name = obj.get("kind"), obj.get("name") or ""
    if kind == "Deployment":
        return obj_name == name
    if kind == "ReplicaSet":
        return obj_name.rsplit("-", 1)[0] == name  # <deployment>-<template hash>
    if kind == "Pod":
        # <deployment>-<hash>-<suffix>; "churn-canary-..." is not "churn"'s
        return obj_name.rsplit("-", 2)[0] == name or obj_name in pod_names
    return False


def rollout_status(deployment: Obj | None, pods: Iterable[Obj] = (), events: Iterable[Obj] = (), *,
                   replica_sets: Iterable[Obj] = (), name: str | None = None, namespace: str | None = None,
                   now: float | None = None, max_events: int = 10,
                   logs: Mapping[str, str] | None = None) -> RolloutStatus:
    """One snapshot from the objects as they are now (what StatusTracker.snapshot uses, and what a one-off
    `status()` call without a watch can use)."""
    now = time.time() if now is None else now
    dep: Obj = deployment or {}
    meta, spec, st = _meta(dep), dep.get("spec") or {}, dep.get("status") or {}
    name = meta.get("name") or name or "?"
    namespace = meta.get("namespace") or namespace
    pods = list(pods)
    pod_names = {_meta(p).get("name") for p in pods}
    related = [e for e in events if _related(name, e, pod_names)]

    by_pod: dict[str, list[Obj]] = {}
    for ev in related:
        obj = _event_object(ev)
        if obj.get("kind") == "Pod":
            by_pod.setdefault(obj.get("name") or "", []).append(ev)
    rows = tuple(sorted((PodRow.from_pod(p, now, by_pod.get(_meta(p).get("name") or "", ()),
                                         (logs or {}).get(_meta(p).get("name") or ""))
                         for p in pods), key=lambda r: r.name))

    current = bool(deployment) and int(meta.get("generation") or 0) <= int(st.get("observedGeneration") or 0)
    complete = bool(deployment) and rollout_complete(dep)
    new_rs = _new_replica_set(dep, replica_sets) if deployment else None
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else (1 if deployment else 0)

    diagnosis = None
    if deployment and current and not complete:
        diagnosis = _rollout_diagnosis(dep, rows, related, new_rs, desired)

    # stable sort: events without a timestamp keep their arrival order
    event_rows = sorted((EventRow.from_event(e) for e in related), key=lambda r: r.last_seen or 0.0)
    kept = event_rows[-max_events:] if max_events > 0 else []
    return RolloutStatus(
        name=name,
        namespace=namespace,
        desired=desired,
        updated=int(st.get("updatedReplicas") or 0),
        ready=int(st.get("readyReplicas") or 0),
        available=int(st.get("availableReplicas") or 0),
        pods=rows,
        events=tuple(kept),
        events_omitted=len(event_rows) - len(kept),
        complete=complete,
        diagnosis=diagnosis,
        observed_generation_current=current,
        new_replica_set=new_rs,
    )


def _rollout_diagnosis(deployment: Obj, rows: tuple[PodRow, ...], events: list[Obj], new_rs: str | None,
                       desired: int) -> Diagnosis | None:
    # Only the new template's pods can fail this rollout: an old pod crash-looping is what is being replaced.
    mine = [r for r in rows if new_rs is None or r.replica_set in (None, new_rs)]
    pod_diags = [r.diagnosis for r in mine if r.diagnosis is not None]
    if any(r.terminating for r in rows):
        # a pod of ours is going away and will free its CPU/GPU: a scheduling failure may well resolve
        pod_diags = [replace(d, fatal=False) if d.kind == "unschedulable" else d for d in pod_diags]
    found: list[Diagnosis] = list(pod_diags)
    live_new = [r for r in mine if not r.terminating and r.phase != "Failed"]
    if len(live_new) < desired:
        # FailedCreate only matters while pods are missing; an hour-old event must not fail a fixed rollout
        rs_events = [e for e in events if _event_object(e).get("kind") == "ReplicaSet"
                     and (new_rs is None or _event_object(e).get("name") == new_rs)]
        found.append(diagnose_events(rs_events))
    deployment_diag = diagnose_deployment(deployment)
    deadline = None
    if deployment_diag is not None and deployment_diag.kind == "progress-deadline":
        deadline = deployment_diag
    else:
        found.append(deployment_diag)
    best = most_relevant(found)
    if best is not None and best.fatal:
        return best
    if deadline is not None:
        if best is None:
            return deadline
        # a never-ready or pending pod is the reason the deadline passed: say both
        return Diagnosis("progress-deadline", best.pod, f"{deadline.summary} {best.summary}",
                         best.detail or deadline.detail, best.hint or deadline.hint, fatal=True)
    return best


# ---------------------------------------------------------------------------------------------------------
# the tracker


def _infer_kind(obj: Obj) -> str | None:
    # items of a LIST carry no kind; a relist after "410 Gone" feeds those in
    if "involvedObject" in obj or "regarding" in obj:
        return "Event"
    spec = obj.get("spec") or {}
    if "containers" in spec:
        return "Pod"
    if "template" in spec:
        owners = _meta(obj).get("ownerReferences") or []
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
        meta = _meta(obj)
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
            return _related(self.name, {"involvedObject": {"kind": "Pod", "name": _meta(pod).get("name")}})
        return _selector_matches(self._selector, _meta(pod).get("labels") or {})

    def snapshot(self, now: float | None = None) -> RolloutStatus:
        return rollout_status(self._deployment, self._pods.values(), self._events.values(),
                              replica_sets=self._replica_sets.values(), name=self.name,
                              namespace=self.namespace, now=now, max_events=self.max_events,
                              logs=self._logs)


# ---------------------------------------------------------------------------------------------------------
# text and HTML: their one home is views/status.py (one palette for every face); still importable here


_VIEWS = ("format_progress_line", "format_status_table", "status_html")
if TYPE_CHECKING:
    from .views.status import format_progress_line, format_status_table, status_html


def __getattr__(name: str) -> Any:
    # Resolved on first use (PEP 562): views.status imports this module, so a plain import would loop.
    if name in _VIEWS:
        from .views import status as views

        return getattr(views, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
