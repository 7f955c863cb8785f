"""Pod, event and Deployment status -> one plain-words reason, and whether waiting any longer is pointless.

Input is raw API JSON (the dicts the API server returns); nothing here does I/O, so the same rules serve the
live widget, the headless text and the tests. Messages from the kubelet and scheduler are kept verbatim in
`detail`: the translation may miss a case, the original never lies.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "KINDS",
    "Diagnosis",
    "diagnose_deployment",
    "diagnose_events",
    "diagnose_pod",
    "format_age",
    "is_fatal",
    "log_tail",
    "most_relevant",
    "parse_quantity",
    "parse_scheduler_message",
    "parse_time",
]

Obj = Mapping[str, Any]

# Every kind we produce, most telling first: when several things are wrong, the earlier one is the cause
# the user should hear about (a crash loop explains a progress deadline, not the other way round).
KINDS = (
    "create-failed",
    "image-pull",
    "oom-killed",
    "crash-loop",
    "start-failed",
    "config-error",
    "unschedulable",
    "volume",
    "progress-deadline",
    "never-ready",
    "evicted",
    "pod-failed",
    "sandbox",
)

LOG_TAIL_LINES = 10


@dataclass(frozen=True)
class Diagnosis:
    """Why a pod or rollout is stuck, in words a data scientist understands."""

    kind: str
    pod: str | None
    summary: str
    detail: str | None = None  # the kubelet's / scheduler's / controller's message, verbatim
    hint: str | None = None  # what to do about it, as a lower-case phrase
    fatal: bool = False  # a waiting deploy should stop now: this will not resolve by itself

    def __str__(self) -> str:
        if not self.hint:
            return self.summary
        return f"{self.summary} Hint: {self.hint.rstrip('.')}."


def is_fatal(diagnosis: Diagnosis | None) -> bool:
    return diagnosis is not None and diagnosis.fatal


def most_relevant(diagnoses: Iterable[Diagnosis | None]) -> Diagnosis | None:
    """The one to show: fatal before non-fatal, then by the order of KINDS."""
    found = [d for d in diagnoses if d is not None]
    if not found:
        return None
    return min(found, key=lambda d: (not d.fatal, _rank(d.kind)))


def _rank(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


# ---------------------------------------------------------------------------------------------------------
# small helpers over raw JSON


def parse_time(value: str | None) -> float | None:
    """RFC 3339 timestamp (as the API server writes Time and MicroTime) -> epoch seconds."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"...
    text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)  # ...nor ".25"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def format_age(seconds: float | None) -> str:
    """A duration the way kubectl prints AGE (apimachinery's duration.HumanDuration)."""
    if seconds is None:
        return "<unknown>"
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


_QTY = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?")
_MULT = {
    None: 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def parse_quantity(value: Any) -> float | None:
    """A resource quantity ("500m", "4Gi", "1e3", 2) -> a number in base units; None if unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    m = _QTY.fullmatch(str(value).strip())
    if not m:
        return None
    number = float(m.group(1))
    if m.group(2):
        return number * 10 ** int(m.group(2)[1:])
    return number * _MULT[m.group(3)]


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _format_amount(resource: str, amount: float) -> str:
    if resource == "cpu":
        return f"{_num(amount)} CPU" + ("s" if amount > 1 else "")
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if amount >= size:
                return f"{_num(amount / size)}{unit}"
        return f"{_num(amount)} bytes"
    return _num(amount)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _nodes(n: int) -> str:
    return "1 node" if n == 1 else f"{n} nodes"


def _times(n: int) -> str:
    return "once" if n == 1 else ("twice" if n == 2 else f"{n} times")


def _ev_object(ev: Obj) -> Obj:
    # core/v1 Event says involvedObject; events.k8s.io/v1 says regarding
    return ev.get("involvedObject") or ev.get("regarding") or {}


def _ev_message(ev: Obj) -> str:
    return ev.get("message") or ev.get("note") or ""


def _ev_count(ev: Obj) -> int:
    series = ev.get("series") or {}
    return int(ev.get("count") or series.get("count") or ev.get("deprecatedCount") or 1)


def _ev_last_seen(ev: Obj) -> float | None:
    series = ev.get("series") or {}
    for ts in (ev.get("lastTimestamp"), series.get("lastObservedTime"), ev.get("eventTime"),
               ev.get("deprecatedLastTimestamp"), ev.get("firstTimestamp"),
               _meta(ev).get("creationTimestamp")):
        t = parse_time(ts)
        if t is not None:
            return t
    return None


def _about(ev: Obj, kind: str, name: str | None) -> bool:
    obj = _ev_object(ev)
    if not obj:
        return True  # a caller that pre-filtered may pass bare events
    return obj.get("kind") == kind and (name is None or obj.get("name") == name)


def _for_container(events: list[Obj], container: str, init: bool) -> list[Obj]:
    """The pod's events that are about this container (or about the whole pod)."""
    field = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return [e for e in events if _ev_object(e).get("fieldPath") in (None, "", field)]


def _newest(events: Iterable[Obj]) -> Obj | None:
    best, best_t = None, None
    for ev in events:  # later in the list wins a tie: watch order is arrival order
        t = _ev_last_seen(ev)
        if best is None or (t or 0) >= (best_t or 0):
            best, best_t = ev, t
    return best


def _container_spec(pod: Obj, name: str, init: bool) -> Obj:
    for c in (pod.get("spec") or {}).get("initContainers" if init else "containers") or []:
        if c.get("name") == name:
            return c
    return {}


def _pod_request(pod: Obj, resource: str) -> float | None:
    """What the scheduler counts for the pod: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}

    def one(c: Obj) -> float | None:
        res = c.get("resources") or {}
        # extended resources may be given as limits only; the API server then copies them to requests
        limit = (res.get("limits") or {}).get(resource)
        return parse_quantity((res.get("requests") or {}).get(resource, limit))

    main = [q for q in (one(c) for c in spec.get("containers") or []) if q is not None]
    init = [q for q in (one(c) for c in spec.get("initContainers") or []) if q is not None]
    if not main and not init:
        return None
    return max(sum(main), max(init, default=0.0))


def _cond(obj: Obj, ctype: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _quote_cut(text: str, limit: int = 200) -> str:
    # said out loud, never silently: a summary must stay one readable sentence
    return text if len(text) <= limit else text[:limit] + "… (cut)"


# ---------------------------------------------------------------------------------------------------------
# pods


def diagnose_pod(pod: Obj, events: Iterable[Obj] = (), logs: str | None = None, *,
                 now: float | None = None) -> Diagnosis | None:
    """Why this pod is not serving, or None when it is healthy or merely starting.

    `events` are the pod's events (others are ignored), `logs` the failing container's previous log for
    a crash loop, `now` epoch seconds (default: the clock) to judge how long a pod has been not ready.
    """
    meta = _meta(pod)
    name = meta.get("name")
    if meta.get("deletionTimestamp"):
        return None  # going away on purpose; its replacement is what matters
    status = pod.get("status") or {}
    evs = [e for e in events if _about(e, "Pod", name)]
    phase = status.get("phase") or "Pending"
    if phase == "Failed":
        return _failed_pod(pod, name, status)
    if phase == "Succeeded":
        return None  # cannot happen under a Deployment (restartPolicy Always); nothing to explain

    sched = _unschedulable(pod, name, evs)
    if sched is not None:
        return sched

    found: list[Diagnosis] = []
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for cs in status.get(key) or []:
            d = _container(pod, name, cs, init, evs, logs)
            if d is not None:
                found.append(d)
    if found:
        return most_relevant(found)

    if phase == "Pending":
        d = _pending_events(pod, name, evs)
        if d is not None:
            return d
    if phase == "Running":
        return _never_ready(pod, name, status, evs, time.time() if now is None else now)
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
            asked = "nothing" if parse_quantity(request) == 0 else request
            why += f", and its container {c} used {usage} while it asked for {asked}"
        return Diagnosis("evicted", name, f"Pod {name} was evicted{where}: {why} (Evicted).",
                         message or None, hint, fatal=False)
    # NodeLost, Shutdown, OutOf<resource> (kubelet admission) and friends: the ReplicaSet replaces the pod
    return Diagnosis("pod-failed", name, f"Pod {name} failed{where} ({reason}).", message or None,
                     "the ReplicaSet starts a replacement; if it repeats, ask your platform team",
                     fatal=False)


# --- scheduling

_SCHED_HEAD = re.compile(r"(\d+)/(\d+) nodes are available(?::\s*(.*))?", re.S)
_CONTROL_PLANE_TAINTS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
_GPU = re.compile(r"(^|[./])gpu", re.I)
_SELECTOR_MISMATCH = ("node affinity/selector", "match node selector", "match pod's node affinity")


def parse_scheduler_message(message: str) -> tuple[int | None, list[tuple[int | None, str]]]:
    """ "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) ..." -> (3, [(1, "Insufficient cpu"), ...]).

    The preemption postscript is dropped: it repeats the same nodes. Items without a count (e.g. "pod has
    unbound immediate PersistentVolumeClaims") come back with None.
    """
    main = re.split(r"\s*preemption:", message, maxsplit=1)[0]
    # Kubernetes 1.34+ adds postscripts such as ". no new claims to deallocate," after the node list.
    main = re.split(r"\.\s+(?=[a-z])", main, maxsplit=1)[0]
    if "no nodes available to schedule pods" in main:
        return 0, []
    m = _SCHED_HEAD.search(main)
    if not m:
        return None, [(None, main.strip().rstrip("."))] if main.strip() else []
    body = (m.group(3) or "").strip().rstrip(".").strip()
    items: list[tuple[int | None, str]] = []
    # split only on ", <number> ": taints print as {key: value} and never hold that pattern
    for part in re.split(r",\s+(?=\d+ )", body) if body else []:
        im = re.match(r"(\d+) (.*)", part.strip(), re.S)
        items.append((int(im.group(1)), im.group(2).strip()) if im else (None, part.strip()))
    return int(m.group(2)), items


def _unschedulable(pod: Obj, name: str | None, evs: list[Obj]) -> Diagnosis | None:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return None
    cond = _cond(pod, "PodScheduled")
    if cond is not None and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
        message = cond.get("message") or ""
    elif cond is None or cond.get("status") != "True":
        latest = _newest(e for e in evs if e.get("reason") == "FailedScheduling")
        if latest is None:
            return None  # pending without a verdict yet: merely starting
        message = _ev_message(latest)
    else:
        return None
    total, items = parse_scheduler_message(message)

    gpu_like: list[str] = []
    parts: list[tuple[int, str]] = []  # (order, text)
    hints: list[tuple[int, str]] = []
    permanent = 0  # nodes ruled out for reasons that will not change by themselves
    extended_short = False
    for count, text in items:
        n = count or 0
        low = text.lower()
        ins = re.fullmatch(r"Insufficient (\S+)", text)
        taint = re.search(r"taint \{([^}]*)\}", text)
        if ins:
            res = ins.group(1)
            req = _pod_request(pod, res)
            if "/" in res:  # extended resource (GPUs and the like): freed only when their holder goes
                extended_short = True
                permanent += n
                if _GPU.search(res):
                    gpu_like.append(res)
                    amount = _plural(int(req), "GPU") if req is not None else "GPUs"
                    parts.append((0, f"it asks for {amount} ({res}) and no node has that many free"))
                    hints.append((0, "ask for fewer GPUs, or ask your platform team for a GPU node pool"))
                else:
                    amount = _num(req) if req is not None else "some"
                    parts.append((0, f"it asks for {amount} {res} and no node has that many free"))
                    hints.append((0, f"ask for less {res}, or ask your platform team for nodes with it"))
            elif res in ("cpu", "memory", "ephemeral-storage"):
                what = {"cpu": "CPU", "memory": "memory", "ephemeral-storage": "local disk"}[res]
                if req is None:
                    amount = f"its {what}"
                else:
                    amount = _format_amount(res, req) + ("" if res == "cpu" else f" of {what}")
                of = f"{n} of {total}" if total else str(n)
                parts.append((3, f"it asks for {amount} and {of} nodes do not have that much {what} free"))
                flag = {"cpu": " with --cpu", "memory": " with --memory"}.get(res, "")
                hints.append((3, f"ask for less {what}{flag}, or wait until other workloads free some"))
            else:
                parts.append((3, f"{_nodes(n)} lack {res}"))
        elif taint:
            key, _, value = taint.group(1).partition(":")
            key, value = key.strip(), value.strip()
            permanent += n
            if key in _CONTROL_PLANE_TAINTS:
                are = "is a control-plane node" if n == 1 else "are control-plane nodes"
                parts.append((5, f"{_nodes(n)} {are} kept for the cluster itself"))
            else:
                shown = f"{key}={value}" if value else key
                parts.append((1, f"{_nodes(n)} {'carries' if n == 1 else 'carry'} the taint {shown}, "
                                 "which the pod does not tolerate"))
                hints.append((1, f"add a toleration for {key}, or ask your platform team which nodes to use"))
        elif any(s in low for s in _SELECTOR_MISMATCH):
            permanent += n
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            sel = ", ".join(f"{k}={v}" for k, v in selector.items())
            said = f"its node selector {sel}" if sel else "its node affinity"
            parts.append((2, f"{_nodes(n)} do not match {said}"))
            hints.append((2, f"fix {said}: `kubectl get nodes --show-labels` lists the labels nodes carry"))
        elif "were unschedulable" in low or "unschedulable:" in low:
            permanent += n
            parts.append((4, f"{_nodes(n)} are cordoned (closed to new pods)"))
        elif "volume node affinity conflict" in low:
            permanent += n
            parts.append((4, f"{_nodes(n)} cannot reach its volume (it lives in another zone)"))
        elif "anti-affinity" in low or "pod affinity" in low:
            parts.append((4, f"{_nodes(n)} break its pod affinity or anti-affinity rules"))
        elif "free ports" in low:
            parts.append((4, f"{_nodes(n)} already use the host port it needs"))
        elif "too many pods" in low:
            parts.append((4, f"{_nodes(n)} already run as many pods as they may"))
        elif "unbound immediate persistentvolumeclaims" in low:
            parts.append((2, "its PersistentVolumeClaim is not bound to a volume yet"))
            hints.append((2, "check that the claim's storage class can provision volumes"))
        elif m := re.search(r'persistentvolumeclaim "([^"]+)" not found', text):
            parts.append((2, f'its PersistentVolumeClaim "{m.group(1)}" does not exist'))
            hints.append((2, "create the PersistentVolumeClaim, or fix its name"))
        elif text:
            parts.append((4, f"{_nodes(n)}: {text}" if count is not None else text))

    scale_up = _newest(e for e in evs if e.get("reason") == "TriggeredScaleUp")
    no_scale = _newest(e for e in evs if e.get("reason") == "NotTriggerScaleUp")
    # Insufficient GPUs, an untolerated taint or a selector no node matches do not resolve on their own, so
    # we fail fast: the user asked to be told. A cluster autoscaler might add a fitting node some minutes
    # later; we only wait for it when it says it is doing so, and we never touch the cluster ourselves.
    fatal = extended_short or (bool(total) and permanent >= (total or 0))
    pieces = [p for _, p in sorted(parts, key=lambda p: p[0])]
    if not pieces:
        pieces = [message.strip() or "the scheduler found no node"]
    summary = f"No node can run pod {name}: " + "; ".join(pieces)
    if total:
        summary += f" ({_nodes(total)} checked)"
    if scale_up is not None:
        fatal = False
        summary += "; the cluster autoscaler is adding a node for it"
    summary += "."
    detail = message
    for ev in (scale_up, no_scale):
        if ev is not None:
            detail += f"\n{ev.get('reason')}: {_ev_message(ev)}"
    hint_texts = list(dict.fromkeys(h for _, h in sorted(hints, key=lambda h: h[0])))[:2]
    return Diagnosis("unschedulable", name, summary, detail or None, "; ".join(hint_texts) or None, fatal)


# --- containers

_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


def _container(pod: Obj, pod_name: str | None, cs: Obj, init: bool, evs: list[Obj],
               logs: str | None) -> Diagnosis | None:
    cname = cs.get("name") or "?"
    what = f"init container {cname}" if init else f"container {cname}"
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    last = (cs.get("lastState") or {}).get("terminated") or {}
    restarts = int(cs.get("restartCount") or 0)
    cevs = _for_container(evs, cname, init)

    if reason in _PULL_REASONS:
        return _image_pull(pod, pod_name, cs, init, reason, waiting.get("message") or "", cevs)
    if reason == "CrashLoopBackOff":
        if last.get("reason") == "OOMKilled":
            return _oom(pod, pod_name, cname, init, what, restarts, last, logs, fatal=True,
                        why="CrashLoopBackOff")
        if last.get("reason") in ("StartError", "ContainerCannotRun"):
            return _start_failed(pod_name, what, "CrashLoopBackOff", last.get("message") or "", repeated=True)
        return _crash_loop(pod, pod_name, cname, init, what, restarts, last, waiting, logs, cevs, fatal=True)
    if reason == "CreateContainerConfigError":
        return _config_error(pod, pod_name, what, waiting.get("message") or "", cevs)
    if reason in ("RunContainerError", "CreateContainerError"):
        failures = sum(_ev_count(e) for e in cevs if e.get("reason") == "Failed")
        return _start_failed(pod_name, what, reason, waiting.get("message") or "",
                             repeated=restarts >= 1 or failures >= 2)

    term = state.get("terminated")
    if term:
        if term.get("reason") == "OOMKilled":
            return _oom(pod, pod_name, cname, init, what, restarts, term, logs, fatal=True, why="OOMKilled")
        if init and term.get("exitCode") == 0:
            return None  # an init container that finished is what we want
        # first exit: the kubelet restarts it; wait for the back-off to confirm before calling it fatal
        return _crash_loop(pod, pod_name, cname, init, what, restarts, term, {}, logs, cevs, fatal=False)
    if state.get("running") and last.get("reason") == "OOMKilled":
        # running again after an out-of-memory kill: worth saying, not yet a reason to give up
        return _oom(pod, pod_name, cname, init, what, restarts, last, logs, fatal=False, why="OOMKilled")
    return None


def _image_pull(pod: Obj, pod_name: str | None, cs: Obj, init: bool, reason: str, message: str,
                evs: list[Obj]) -> Diagnosis:
    cname = cs.get("name") or ""
    image = _container_spec(pod, cname, init).get("image") or cs.get("image")
    if not image:
        m = re.search(r'image "([^"]+)"', message)
        image = m.group(1) if m else "(unknown)"
    where = f"pod {pod_name}, {reason}"
    if reason == "InvalidImageName":
        return Diagnosis("image-pull", pod_name,
                         f'The image name "{image}" is not a valid image reference ({where}).',
                         message or None, "write it as registry/repository:tag in lower case, "
                         "e.g. ghcr.io/acme/churn:1.4", fatal=True)
    if reason == "ErrImageNeverPull":
        return Diagnosis("image-pull", pod_name,
                         f"The image {image} is not on the node and its pull policy is Never ({where}).",
                         message or None, "use the pull policy IfNotPresent, or load the image onto the node",
                         fatal=True)
    pull_failures = [e for e in evs if e.get("reason") == "Failed" and "pull" in _ev_message(e).lower()
                     and not _ev_message(e).startswith("Error: ")]
    back_off = any(e.get("reason") == "BackOff" and "pulling image" in _ev_message(e).lower() for e in evs)
    informative = _newest(pull_failures)
    detail = _ev_message(informative) if informative is not None else message
    if message and detail != message:
        detail = f"{message}\n{detail}"
    text = " ".join([message, *(_ev_message(e) for e in pull_failures)]).lower()
    why, hint = _pull_cause(text)
    # one failed pull may be a registry hiccup; the kubelet's back-off (or a repeat) means it is not
    fatal = reason == "ImagePullBackOff" or back_off or sum(_ev_count(e) for e in pull_failures) >= 2
    return Diagnosis("image-pull", pod_name, f"The image {image} could not be pulled: {why} ({where}).",
                     detail or None, hint, fatal)


def _pull_cause(text: str) -> tuple[str, str]:
    if "no match for platform" in text or "no matching manifest" in text:
        return ("the image has no build for the node's platform (e.g. amd64 vs arm64)",
                "build the image for the node's platform, e.g. docker buildx build --platform linux/amd64")
    if "toomanyrequests" in text or "rate limit" in text:
        return ("the registry is limiting how often images may be pulled",
                "wait and deploy again, or pull with an account via --pull-secret")
    if "x509" in text or "certificate" in text:
        return ("the node does not trust the registry's TLS certificate",
                "ask your platform team to trust the registry's certificate on the nodes")
    if any(s in text for s in ("no such host", "i/o timeout", "connection refused", "network is unreachable",
                               "dial tcp")):
        return ("the node could not reach the registry",
                "check the registry address; the cluster's nodes must be able to reach it")
    exists_or_auth = "does not exist or may require" in text or "repository does not exist" in text
    if not exists_or_auth:
        # \b keeps a digest's hex digits from reading as an HTTP status
        if re.search(r"unauthorized|authentication required|\b40[13]\b|forbidden|denied|insufficient_scope",
                     text):
            return ("the registry refused access: it needs credentials",
                    "add an image pull secret with --pull-secret")
        if any(s in text for s in ("not found", "manifest unknown", "name unknown")):
            return ("the registry says this name or tag does not exist",
                    "check the image name and tag (was it pushed?)")
    return ("the registry says it does not exist or needs credentials",
            "check the tag, or add an image pull secret with --pull-secret")


_SIGNALS = {
    134: "aborted (SIGABRT, exit code 134)",
    137: "was killed (SIGKILL, exit code 137)",
    139: "crashed with a segmentation fault (exit code 139)",
    143: "was stopped (SIGTERM, exit code 143)",
}


def _exit_words(term: Obj) -> str:
    code = term.get("exitCode")
    if code is None:
        return "stopped"
    code = int(code)
    if code == 0:
        return "exited normally (exit code 0), but a model server must keep running"
    if code == 127:
        return "could not find its command in the image (exit code 127)"
    if code == 126:
        return "could not execute its command (exit code 126)"
    if code in _SIGNALS:
        return _SIGNALS[code]
    if code > 128:
        return f"was killed by signal {code - 128} (exit code {code})"
    return f"exited with an error (exit code {code})"


def log_tail(logs: str | None, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last `lines` lines, headed by how many there were, so nothing is dropped without saying so."""
    if logs is None:
        return None
    all_lines = logs.rstrip("\n").splitlines()
    if not all_lines:
        return "The container wrote no log lines."
    if len(all_lines) <= lines:
        return f"Log (all {_plural(len(all_lines), 'line')}):\n" + "\n".join(all_lines)
    return f"Log (last {lines} of {len(all_lines)} lines):\n" + "\n".join(all_lines[-lines:])


def _last_log_line(logs: str | None) -> str | None:
    if not logs:
        return None
    for line in reversed(logs.splitlines()):
        if line.strip():
            return line.strip()
    return None


def _probe_words(probe: Obj | None) -> str:
    if not probe:
        return "its probe"
    if "httpGet" in probe:
        g = probe["httpGet"]
        return f"GET {g.get('path') or '/'} on port {g.get('port')}"
    if "tcpSocket" in probe:
        return f"a TCP connection to port {probe['tcpSocket'].get('port')}"
    if "grpc" in probe:
        return f"a gRPC health check on port {probe['grpc'].get('port')}"
    if "exec" in probe:
        return "the command " + " ".join(str(c) for c in probe["exec"].get("command") or [])
    return "its probe"


def _crash_loop(pod: Obj, pod_name: str | None, cname: str, init: bool, what: str, restarts: int,
                term: Obj, waiting: Obj, logs: str | None, evs: list[Obj], *, fatal: bool) -> Diagnosis:
    killed_by_probe = _newest(
        e for e in evs
        if (e.get("reason") == "Unhealthy" and _ev_message(e).startswith(("Liveness probe failed",
                                                                          "Startup probe failed")))
        or (e.get("reason") == "Killing" and "probe" in _ev_message(e)))
    spec = _container_spec(pod, cname, init)
    code = term.get("exitCode")
    last_line = _last_log_line(logs)
    if killed_by_probe is not None and code in (137, 143, None):
        probe = spec.get("livenessProbe") or spec.get("startupProbe")
        how = f"its liveness probe ({_probe_words(probe)}) fails, so the kubelet restarts it"
        hint = ("make the server answer its liveness probe, or give it more time to start "
                "(a startup probe or a longer initial delay) if the model loads slowly")
    else:
        how = _exit_words(term)
        if code == 0:
            hint = "the server process must stay in the foreground and keep running"
        elif code in (126, 127):
            hint = "check the image's entrypoint, or the command you set for the container"
        elif logs is not None:
            hint = "read the log below; running the image locally (docker run) usually reproduces it"
        else:
            hint = (f"read its log (kubectl logs {pod_name} -c {cname} --previous); running the image "
                    "locally (docker run) usually reproduces it")
        if last_line:
            how += f', last saying "{_quote_cut(last_line)}"'
    restarted = f", restarted {_times(restarts)}" if restarts else ""
    label = waiting.get("reason") or term.get("reason") or "Error"
    verb = "keeps crashing" if fatal else "stopped"
    summary = f"The {what} {verb}: it {how} (pod {pod_name}, {label}{restarted})."
    detail_parts = [p for p in (waiting.get("message"), term.get("message"),
                                _ev_message(killed_by_probe) if killed_by_probe else None,
                                log_tail(logs)) if p]
    return Diagnosis("crash-loop", pod_name, summary, "\n".join(detail_parts) or None, hint, fatal)


def _oom(pod: Obj, pod_name: str | None, cname: str, init: bool, what: str, restarts: int, term: Obj,
         logs: str | None, *, fatal: bool, why: str) -> Diagnosis:
    limit = ((_container_spec(pod, cname, init).get("resources") or {}).get("limits") or {}).get("memory")
    restarted = f", restarted {_times(restarts)}" if restarts else ""
    if limit:
        how = f"it was killed for using more than its memory limit of {limit}"
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", str(limit))
        bigger = f" (for example --memory {_num(float(m.group(1)) * 2)}{m.group(2)})" if m else ""
        hint = f"raise --memory{bigger}, or load a smaller model"
    else:
        how = "the kernel killed it for using too much memory (it has no memory limit, so the node ran short)"
        hint = "set --memory to what the model needs, so it lands on a node with that much free"
    if not fatal:
        how += "; it is running again and may be killed again"
    summary = f"The {what} ran out of memory: {how} (pod {pod_name}, {why}{restarted})."
    detail = "\n".join(p for p in (term.get("message"), log_tail(logs)) if p) or None
    return Diagnosis("oom-killed", pod_name, summary, detail, hint, fatal)


def _start_failed(pod_name: str | None, what: str, reason: str, message: str, *, repeated: bool) -> Diagnosis:
    low = message.lower()
    exec_missing = re.search(r'exec: "([^"]+)": (?:executable file not found|stat [^:]+: no such file)',
                             message)
    deterministic = True
    if exec_missing:
        why = f'its command "{exec_missing.group(1)}" is not in the image'
        hint = "check the image's entrypoint, or the command you set for the container"
    elif "permission denied" in low:
        why = "its command is not executable in the image"
        hint = "make the entrypoint executable (chmod +x) when building the image"
    elif "no command specified" in low:
        why = "the image has no command (no ENTRYPOINT or CMD) and none was given"
        hint = "give the container a command, or set ENTRYPOINT/CMD in the image"
    else:
        deterministic = False
        why = "the container runtime failed to start it"
        hint = "read the message below; if it names the node or runtime, ask your platform team"
    summary = f"The {what} could not be started: {why} (pod {pod_name}, {reason})."
    return Diagnosis("start-failed", pod_name, summary, message or None, hint,
                     fatal=deterministic or repeated)


def _config_error(pod: Obj, pod_name: str | None, what: str, message: str, evs: list[Obj]) -> Diagnosis:
    ns = _meta(pod).get("namespace") or "its namespace"
    missing = re.search(r'(secret|configmap) "([^"]+)" not found', message, re.I)
    key = re.search(r"couldn't find key (\S+) in (Secret|ConfigMap) (\S+)", message)
    if missing:
        kind = "Secret" if missing.group(1).lower() == "secret" else "ConfigMap"
        why = f'the {kind} "{missing.group(2)}" it refers to does not exist in namespace {ns}'
        hint = f"create the {kind} {missing.group(2)} in namespace {ns}, or remove the reference"
    elif key:
        why = f"the {key.group(2)} {key.group(3)} has no key {key.group(1)}"
        hint = f"add the key {key.group(1)} to the {key.group(2)}, or fix the key's name"
    else:
        why = "its configuration is invalid"
        hint = "read the message below"
    # The Secret may be applied in the same instant as the Deployment; give up only once the kubelet has
    # retried and it is still missing.
    retries = sum(_ev_count(e) for e in evs if e.get("reason") == "Failed")
    return Diagnosis("config-error", pod_name,
                     f"The {what} cannot be created: {why} (pod {pod_name}, CreateContainerConfigError).",
                     message or None, hint, fatal=retries >= 2)


def _pending_events(pod: Obj, pod_name: str | None, evs: list[Obj]) -> Diagnosis | None:
    """Problems only events tell about while a pod sits in ContainerCreating: volumes and the sandbox."""
    ns = _meta(pod).get("namespace") or "its namespace"
    latest = _newest(e for e in evs if e.get("type") == "Warning"
                     and e.get("reason") in ("FailedMount", "FailedAttachVolume", "FailedCreatePodSandBox"))
    if latest is None:
        return None
    message = _ev_message(latest)
    count = _ev_count(latest)
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


def _probe_window(probe: Obj | None) -> float:
    if not probe:
        return 0.0
    return float((probe.get("initialDelaySeconds") or 0)
                 + (probe.get("periodSeconds") or 10) * (probe.get("failureThreshold") or 3))


def _never_ready(pod: Obj, pod_name: str | None, status: Obj, evs: list[Obj], now: float) -> Diagnosis | None:
    for cs in status.get("containerStatuses") or []:
        running = (cs.get("state") or {}).get("running")
        if cs.get("ready") or not running:
            continue
        cname = cs.get("name") or "?"
        spec = _container_spec(pod, cname, False)
        rp, sp = spec.get("readinessProbe"), spec.get("startupProbe")
        if not rp and not sp:
            continue  # without probes the kubelet calls a running container ready; nothing to judge
        started = parse_time(running.get("startedAt"))
        window = _probe_window(sp) + _probe_window(rp)
        if started is None or now - started <= window:
            continue  # still within the time its probes allow
        cevs = _for_container(evs, cname, False)
        failure = _newest(e for e in cevs if e.get("reason") == "Unhealthy"
                          and _ev_message(e).startswith(("Readiness probe failed", "Startup probe failed")))
        probe = rp or sp
        port = ((probe or {}).get("httpGet") or (probe or {}).get("tcpSocket") or {}).get("port")
        msg = _ev_message(failure) if failure is not None else ""
        low = msg.lower()
        code = re.search(r"statuscode: (\d+)", low)
        if "connection refused" in low:
            why = f"nothing answers on port {port} yet"
            hint = (f"check that the server listens on port {port} on all interfaces (0.0.0.0); "
                    "if the model loads slowly, give it more time with a startup probe")
        elif code and code.group(1) == "404":
            why = f"the server answers 404 Not Found to {_probe_words(probe)}"
            hint = "point the readiness probe at a path your server answers (many images use /healthz)"
        elif code:
            why = f"the server answers {code.group(1)}: not ready yet, perhaps still loading the model"
            hint = "if the model takes long to load, give it more time with a startup probe or longer delay"
        elif "timeout" in low or "deadline exceeded" in low:
            why = f"the server does not answer within {(probe or {}).get('timeoutSeconds') or 1}s"
            hint = "make the health endpoint answer quickly, or raise the probe's timeout"
        elif failure is not None:
            why = "its readiness probe keeps failing"
            hint = "read the probe message below"
        else:
            why = f"its readiness probe ({_probe_words(probe)}) has not passed"
            hint = "check the container's log and its readiness probe"
        summary = (f"The container {cname} is running but not ready after {format_age(now - started)}: "
                   f"{why} (pod {pod_name}).")
        return Diagnosis("never-ready", pod_name, summary, msg or None, hint, fatal=False)
    return None


# ---------------------------------------------------------------------------------------------------------
# Deployments and ReplicaSets


def diagnose_deployment(deployment: Obj) -> Diagnosis | None:
    """The Deployment controller's verdict: a ReplicaFailure or an exceeded progress deadline."""
    meta = _meta(deployment)
    status = deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return None  # the conditions still describe the previous spec; a redeploy must not inherit them
    name = meta.get("name") or "?"
    failure = _cond(deployment, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        # the condition carries no count: a missing ServiceAccount applied concurrently may still appear
        return _create_failed(name, failure.get("message") or failure.get("reason") or "", repeated=False)
    progressing = _cond(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        secs = (deployment.get("spec") or {}).get("progressDeadlineSeconds") or 600
        return Diagnosis(
            "progress-deadline", None,
            f"The rollout of {name} made no progress for {secs}s (its progress deadline), "
            "so Kubernetes marked it failed.",
            progressing.get("message") or None,
            "look at the pods' reasons; fix the cause and deploy again, or roll back", fatal=True)
    return None


def diagnose_events(events: Iterable[Obj]) -> Diagnosis | None:
    """FailedCreate events on a ReplicaSet: how PodSecurity, quota and admission rejections show."""
    failed = [e for e in events
              if e.get("reason") == "FailedCreate" and _ev_object(e).get("kind") == "ReplicaSet"]
    latest = _newest(failed)
    if latest is None:
        return None
    rs = _ev_object(latest).get("name") or "?"
    owner = rs.rsplit("-", 1)[0] if "-" in rs else rs
    repeats = sum(_ev_count(e) for e in failed if _ev_object(e).get("name") == rs)
    return _create_failed(owner, _ev_message(latest), repeated=repeats >= 2)


def _create_failed(owner: str, message: str, *, repeated: bool) -> Diagnosis:
    text = re.sub(r"^Error creating:\s*", "", message.strip())
    forbidden = re.search(r"is forbidden: (.*)", text, re.S)
    why_raw = forbidden.group(1) if forbidden else text
    transient = False
    if m := re.search(r'violates PodSecurity "([^"]+)": (.*)', text, re.S):
        names = [n.strip() for n in re.findall(r"(?:^|,)\s*([^,(]+?)\s*\(", m.group(2))] or [m.group(2)]
        why = (f'the namespace enforces the Pod Security level "{m.group(1)}" and the pod breaks it: '
               + ", ".join(names))
        hint = ("run the image as a non-root user with privilege escalation off and capabilities dropped, "
                "or deploy to a namespace with a less strict Pod Security level")
    elif m := re.search(r"exceeded quota: ([^,]+), requested: (.*?), used: (.*?), limited: (.*)", text, re.S):
        why = (f'they would exceed the namespace\'s resource quota "{m.group(1)}" (asked {m.group(2)}, '
               f"already used {m.group(3)}, allowed {m.group(4).strip()})")
        hint = ("ask for less (--cpu, --memory, --gpu), remove deployments you no longer need from the "
                "namespace, or ask your platform team for a larger quota")
    elif m := re.search(r"failed quota: ([^:]+): must specify (.*)", text, re.S):
        why = f'the namespace\'s quota "{m.group(1)}" requires every container to set {m.group(2).strip()}'
        hint = "set --cpu and --memory so the pods declare their requests and limits"
    elif m := re.search(r"(maximum|minimum) (\S+) usage per (Container|Pod) is (\S+), "
                        r"but (?:limit|request) is (\S+)", text):
        word = "at most" if m.group(1) == "maximum" else "at least"
        why = (f"the namespace allows {word} {m.group(4)} of {m.group(2)} per {m.group(3).lower()}, "
               f"and the pod asks for {m.group(5).rstrip('.')}")
        hint = f"ask for {word} {m.group(4)} of {m.group(2)}"
    elif m := re.search(r'serviceaccount "([^"]+)" not found', text):
        why = f'its ServiceAccount "{m.group(1)}" does not exist'
        hint = f"create the ServiceAccount {m.group(1)}, or deploy without it"
        transient = True  # may be applied in the same instant as the Deployment
    elif m := re.search(r'admission webhook "([^"]+)" denied the request: (.*)', text, re.S):
        why = f"the cluster's policy ({m.group(1)}) denied them: {m.group(2).strip()}"
        hint = "change the deployment to satisfy that policy, or ask your platform team about it"
    else:
        why = why_raw.strip()
        hint = "read the message below; it is the API server's reason"
        transient = "not found" in text
    summary = f"Kubernetes refused to create the pods of {owner}: {why.rstrip('.')}."
    return Diagnosis("create-failed", None, summary, message or None, hint, fatal=repeated or not transient)
