"""Why one pod is not serving: its phase first, then scheduling, its containers, pending events and
readiness, each judged by its own module."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable

from .containers import diagnose_container
from .model import Diagnosis, Obj, most_relevant
from .objects import event_count, event_message, is_about, metadata, newest_event, reported_amount
from .readiness import never_ready
from .scheduling import unschedulable


def diagnose_pod(pod: Obj, events: Iterable[Obj] = (), logs: str | None = None, *,
                 now: float | None = None) -> Diagnosis | None:
    """Why this pod is not serving, or None when it is healthy or merely starting.

    `events` are the pod's events (others are ignored), `logs` the failing container's previous log for
    a crash loop, `now` epoch seconds (default: the clock) to judge how long a pod has been not ready.
    """
    meta = metadata(pod)
    name = meta.get("name")
    if meta.get("deletionTimestamp"):
        return None  # going away on purpose; its replacement is what matters
    status = pod.get("status") or {}
    evs = [e for e in events if is_about(e, "Pod", name)]
    phase = status.get("phase") or "Pending"
    if phase == "Failed":
        return _failed_pod(pod, name, status)
    if phase == "Succeeded":
        return None  # cannot happen under a Deployment (restartPolicy Always); nothing to explain

    sched = unschedulable(pod, name, evs)
    if sched is not None:
        return sched

    found: list[Diagnosis] = []
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for cs in status.get(key) or []:
            d = diagnose_container(pod, name, cs, init, evs, logs)
            if d is not None:
                found.append(d)
    if found:
        return most_relevant(found)

    if phase == "Pending":
        d = _pending_events(pod, name, evs)
        if d is not None:
            return d
    if phase == "Running":
        return never_ready(pod, name, status, evs, time.time() if now is None else now)
    return None


def _failed_pod(pod: Obj, name: str | None, status: Obj) -> Diagnosis:
    reason = status.get("reason") or "Failed"
    message = status.get("message") or ""
    node = (pod.get("spec") or {}).get("nodeName")
    where = f" from node {node}" if node else ""
    if reason == "Evicted":
        low = message.lower()
        used = re.search(r"Container (\S+) was using ([^,\s]+), request is ([^,\s]+)", message)
        if "ephemeral" in low or "storage" in low:
            why, hint = ("it wrote more to the node's disk than allowed",
                         "write large files to a volume, not to the container's own disk")
            if "low on resource" in low:
                why = "the node ran low on disk space"
        elif "memory" in low:
            why = "the node ran low on memory"
            hint = "ask for as much memory as the model really uses with --memory"
        else:
            why, hint = "the node ran low on resources", "deploy again; if it repeats, ask your platform team"
        if used:
            c, usage, request = used.groups()
            asked = "nothing" if reported_amount(request) == 0 else request
            why += f", and its container {c} used {usage} while it asked for {asked}"
        return Diagnosis("evicted", name, f"Pod {name} was evicted{where}: {why} (Evicted).",
                         message or None, hint, fatal=False)
    # NodeLost, Shutdown, OutOf<resource> (kubelet admission) and friends: the ReplicaSet replaces the pod
    return Diagnosis("pod-failed", name, f"Pod {name} failed{where} ({reason}).", message or None,
                     "the ReplicaSet starts a replacement; if it repeats, ask your platform team",
                     fatal=False)


def _pending_events(pod: Obj, pod_name: str | None, evs: list[Obj]) -> Diagnosis | None:
    """Problems only events tell about while a pod sits in ContainerCreating: volumes and the sandbox."""
    ns = metadata(pod).get("namespace") or "its namespace"
    latest = newest_event(e for e in evs if e.get("type") == "Warning"
                     and e.get("reason") in ("FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"))
    if latest is None:
        return None
    message = event_message(latest)
    count = event_count(latest)
    if latest.get("reason") == "FailedCreatePodSandBox":
        node = (pod.get("spec") or {}).get("nodeName") or "its node"
        return Diagnosis("sandbox", pod_name,
                         f"Kubernetes could not set up pod {pod_name}'s sandbox (its network) on {node} "
                         "(FailedCreatePodSandBox).", message,
                         "this is a cluster problem: ask your platform team", fatal=False)
    missing = re.search(r'(secret|configmap|persistentvolumeclaim) "([^"]+)" not found', message, re.I)
    if "multi-attach" in message.lower():
        why = "its volume is still attached to another node (ReadWriteOnce: one node at a time)"
        hint = "let the old pod stop first (Recreate strategy), or use a ReadWriteMany volume"
    elif missing:
        kinds = {"secret": "Secret", "configmap": "ConfigMap"}
        kind = kinds.get(missing.group(1).lower(), "PersistentVolumeClaim")
        why = f'the {kind} "{missing.group(2)}" it mounts does not exist in namespace {ns}'
        hint = f"create the {kind} {missing.group(2)}, or fix the volume's reference"
    else:
        vol = re.search(r"unmounted volumes=\[([^\]]*)\]", message)
        why = f"volume {vol.group(1)} could not be mounted" if vol else "a volume could not be mounted"
        hint = "read the message below; check the volume's claim and storage class"
    return Diagnosis("volume", pod_name, f"Pod {pod_name} cannot start: {why} ({latest.get('reason')}).",
                     message, hint, fatal=bool(missing) and count >= 2)
