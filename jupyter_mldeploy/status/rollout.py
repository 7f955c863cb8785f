"""One Deployment's rollout as it is now: `RolloutStatus`, kubectl's completeness rule, and the fold of a
Deployment, its ReplicaSets, pods and events into one snapshot with the one diagnosis worth showing.

Pure: the objects come in as raw API JSON (from a watch, through StatusTracker, or from one LIST).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ..diagnosis import Diagnosis, diagnose_deployment, diagnose_events, most_relevant
from ..diagnosis.model import Obj
from ..diagnosis.objects import condition, event_object, metadata
from .rows import EventRow, PodRow

__all__ = ["REVISION_ANNOTATION", "RolloutStatus", "rollout_complete", "rollout_status"]

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


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
    meta, spec, st = metadata(deployment), deployment.get("spec") or {}, deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return False  # "Waiting for deployment spec update to be observed"
    progressing = condition(deployment, "Progressing")
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
    name = metadata(deployment).get("name")
    revision = (metadata(deployment).get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision is not None:
        for rs in replica_sets:
            m = metadata(rs)
            owned = any(o.get("kind") == "Deployment" and o.get("name") == name
                        for o in m.get("ownerReferences") or [])
            if owned and (m.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
                return m.get("name")
    st = deployment.get("status") or {}
    if int(metadata(deployment).get("generation") or 0) > int(st.get("observedGeneration") or 0):
        return None
    progressing = condition(deployment, "Progressing")
    if progressing is not None:
        m = re.search(r'(?i)replica ?set "([^"]+)"', progressing.get("message") or "")
        if m:
            return m.group(1)
    return None


def _related(name: str, ev: Obj, pod_names: Iterable[str] = ()) -> bool:
    """Is this event about our Deployment, one of its ReplicaSets, or one of its pods?"""
    obj = event_object(ev)
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
    meta, spec, st = metadata(dep), dep.get("spec") or {}, dep.get("status") or {}
    name = meta.get("name") or name or "?"
    namespace = meta.get("namespace") or namespace
    pods = list(pods)
    pod_names = {metadata(p).get("name") for p in pods}
    related = [e for e in events if _related(name, e, pod_names)]

    by_pod: dict[str, list[Obj]] = {}
    for ev in related:
        obj = event_object(ev)
        if obj.get("kind") == "Pod":
            by_pod.setdefault(obj.get("name") or "", []).append(ev)
    rows = tuple(sorted((PodRow.from_pod(p, now, by_pod.get(metadata(p).get("name") or "", ()),
                                         (logs or {}).get(metadata(p).get("name") or ""))
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
        rs_events = [e for e in events if event_object(e).get("kind") == "ReplicaSet"
                     and (new_rs is None or event_object(e).get("name") == new_rs)]
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
