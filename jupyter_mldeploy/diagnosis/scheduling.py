"""Why the scheduler placed no node for a pod: its FailedScheduling message read back into plain words
(GPUs, CPU, memory, taints, selectors, volumes)."""

from __future__ import annotations

import re

from .model import Diagnosis, Obj
from .objects import (
    condition,
    event_message,
    format_amount,
    newest_event,
    nodes_phrase,
    number_text,
    plural,
    pod_request,
)

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


def unschedulable(pod: Obj, name: str | None, evs: list[Obj]) -> Diagnosis | None:
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return None
    cond = condition(pod, "PodScheduled")
    if cond is not None and cond.get("status") == "False" and cond.get("reason") == "Unschedulable":
        message = cond.get("message") or ""
    elif cond is None or cond.get("status") != "True":
        latest = newest_event(e for e in evs if e.get("reason") == "FailedScheduling")
        if latest is None:
            return None  # pending without a verdict yet: merely starting
        message = event_message(latest)
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
            req = pod_request(pod, res)
            if "/" in res:  # extended resource (GPUs and the like): freed only when their holder goes
                extended_short = True
                permanent += n
                if _GPU.search(res):
                    gpu_like.append(res)
                    amount = plural(int(req), "GPU") if req is not None else "GPUs"
                    parts.append((0, f"it asks for {amount} ({res}) and no node has that many free"))
                    hints.append((0, "ask for fewer GPUs, or ask your platform team for a GPU node pool"))
                else:
                    amount = number_text(req) if req is not None else "some"
                    parts.append((0, f"it asks for {amount} {res} and no node has that many free"))
                    hints.append((0, f"ask for less {res}, or ask your platform team for nodes with it"))
            elif res in ("cpu", "memory", "ephemeral-storage"):
                what = {"cpu": "CPU", "memory": "memory", "ephemeral-storage": "local disk"}[res]
                if req is None:
                    amount = f"its {what}"
                else:
                    amount = format_amount(res, req) + ("" if res == "cpu" else f" of {what}")
                of = f"{n} of {total}" if total else str(n)
                parts.append((3, f"it asks for {amount} and {of} nodes do not have that much {what} free"))
                flag = {"cpu": " with --cpu", "memory": " with --memory"}.get(res, "")
                hints.append((3, f"ask for less {what}{flag}, or wait until other workloads free some"))
            else:
                parts.append((3, f"{nodes_phrase(n)} lack {res}"))
        elif taint:
            key, _, value = taint.group(1).partition(":")
            key, value = key.strip(), value.strip()
            permanent += n
            if key in _CONTROL_PLANE_TAINTS:
                are = "is a control-plane node" if n == 1 else "are control-plane nodes"
                parts.append((5, f"{nodes_phrase(n)} {are} kept for the cluster itself"))
            else:
                shown = f"{key}={value}" if value else key
                parts.append((1, f"{nodes_phrase(n)} {'carries' if n == 1 else 'carry'} the taint {shown}, "
                                 "which the pod does not tolerate"))
                hints.append((1, f"add a toleration for {key}, or ask your platform team which nodes to use"))
        elif any(s in low for s in _SELECTOR_MISMATCH):
            permanent += n
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            sel = ", ".join(f"{k}={v}" for k, v in selector.items())
            said = f"its node selector {sel}" if sel else "its node affinity"
            parts.append((2, f"{nodes_phrase(n)} do not match {said}"))
            hints.append((2, f"fix {said}: `kubectl get nodes --show-labels` lists the labels nodes carry"))
        elif "were unschedulable" in low or "unschedulable:" in low:
            permanent += n
            parts.append((4, f"{nodes_phrase(n)} are cordoned (closed to new pods)"))
        elif "volume node affinity conflict" in low:
            permanent += n
            parts.append((4, f"{nodes_phrase(n)} cannot reach its volume (it lives in another zone)"))
        elif "anti-affinity" in low or "pod affinity" in low:
            parts.append((4, f"{nodes_phrase(n)} break its pod affinity or anti-affinity rules"))
        elif "free ports" in low:
            parts.append((4, f"{nodes_phrase(n)} already use the host port it needs"))
        elif "too many pods" in low:
            parts.append((4, f"{nodes_phrase(n)} already run as many pods as they may"))
        elif "unbound immediate persistentvolumeclaims" in low:
            parts.append((2, "its PersistentVolumeClaim is not bound to a volume yet"))
            hints.append((2, "check that the claim's storage class can provision volumes"))
        elif m := re.search(r'persistentvolumeclaim "([^"]+)" not found', text):
            parts.append((2, f'its PersistentVolumeClaim "{m.group(1)}" does not exist'))
            hints.append((2, "create the PersistentVolumeClaim, or fix its name"))
        elif text:
            parts.append((4, f"{nodes_phrase(n)}: {text}" if count is not None else text))

    scale_up = newest_event(e for e in evs if e.get("reason") == "TriggeredScaleUp")
    no_scale = newest_event(e for e in evs if e.get("reason") == "NotTriggerScaleUp")
    # Insufficient GPUs, an untolerated taint or a selector no node matches do not resolve on their own, so
    # we fail fast: the user asked to be told. A cluster autoscaler might add a fitting node some minutes
    # later; we only wait for it when it says it is doing so, and we never touch the cluster ourselves.
    fatal = extended_short or (bool(total) and permanent >= (total or 0))
    pieces = [p for _, p in sorted(parts, key=lambda p: p[0])]
    if not pieces:
        pieces = [message.strip() or "the scheduler found no node"]
    summary = f"No node can run pod {name}: " + "; ".join(pieces)
    if total:
        summary += f" ({nodes_phrase(total)} checked)"
    if scale_up is not None:
        fatal = False
        summary += "; the cluster autoscaler is adding a node for it"
    summary += "."
    detail = message
    for ev in (scale_up, no_scale):
        if ev is not None:
            detail += f"\n{ev.get('reason')}: {event_message(ev)}"
    hint_texts = list(dict.fromkeys(h for _, h in sorted(hints, key=lambda h: h[0])))[:2]
    return Diagnosis("unschedulable", name, summary, detail or None, "; ".join(hint_texts) or None, fatal)
