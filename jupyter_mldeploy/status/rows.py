"""The rows a status shows: one per pod (kubectl's STATUS column, what it is doing) and one per event.

Pure, built from raw API JSON; the time and event fields are read by diagnosis.objects, the same readers
the diagnoses use, so a row and its diagnosis never disagree about when or how often.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .. import labels as L
from ..diagnosis import Diagnosis, diagnose_pod, parse_time
from ..diagnosis.model import Obj
from ..diagnosis.objects import condition, event_count, event_last_seen, event_message, event_object, metadata

__all__ = ["EventRow", "PodRow", "activity_words", "loading_words"]


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
        obj = event_object(ev)
        return cls(
            type=ev.get("type") or "Normal",
            reason=ev.get("reason") or "",
            object=f"{obj.get('kind', '?')}/{obj.get('name', '?')}",
            message=event_message(ev).strip(),
            count=event_count(ev),
            last_seen=event_last_seen(ev),
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
        meta, spec, st = metadata(pod), pod.get("spec") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        phase = st.get("phase") or "Pending"
        statuses = st.get("containerStatuses") or []
        n_containers = len(spec.get("containers") or []) or len(statuses)
        ready_cond = condition(pod, "Ready")
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
    meta, spec, st = metadata(pod), pod.get("spec") or {}, pod.get("status") or {}
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
    sched = condition(pod, "PodScheduled")
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
