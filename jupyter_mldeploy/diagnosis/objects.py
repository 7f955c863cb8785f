"""Small readers over raw API JSON (times, ages, quantities, metadata, conditions, events), shared by
every diagnosis; pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from ..spec.quantity import reported_amount
from .model import Obj


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


def number_text(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def format_amount(resource: str, amount: float) -> str:
    if resource == "cpu":
        return f"{number_text(amount)} CPU" + ("s" if amount > 1 else "")
    if resource in ("memory", "ephemeral-storage") or resource.startswith("hugepages-"):
        for unit, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if amount >= size:
                return f"{number_text(amount / size)}{unit}"
        return f"{number_text(amount)} bytes"
    return number_text(amount)


def metadata(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def nodes_phrase(n: int) -> str:
    return "1 node" if n == 1 else f"{n} nodes"


def times_phrase(n: int) -> str:
    return "once" if n == 1 else ("twice" if n == 2 else f"{n} times")


def event_object(ev: Obj) -> Obj:
    # core/v1 Event says involvedObject; events.k8s.io/v1 says regarding
    return ev.get("involvedObject") or ev.get("regarding") or {}


def event_message(ev: Obj) -> str:
    return ev.get("message") or ev.get("note") or ""


def event_count(ev: Obj) -> int:
    series = ev.get("series") or {}
    return int(ev.get("count") or series.get("count") or ev.get("deprecatedCount") or 1)


def event_last_seen(ev: Obj) -> float | None:
    """When the event was last seen, from whichever of its time fields the API server filled in."""
    series = ev.get("series") or {}
    for ts in (ev.get("lastTimestamp"), series.get("lastObservedTime"), ev.get("eventTime"),
               ev.get("deprecatedLastTimestamp"), ev.get("firstTimestamp"),
               metadata(ev).get("creationTimestamp")):
        t = parse_time(ts)
        if t is not None:
            return t
    return None


def is_about(ev: Obj, kind: str, name: str | None) -> bool:
    obj = event_object(ev)
    if not obj:
        return True  # a caller that pre-filtered may pass bare events
    return obj.get("kind") == kind and (name is None or obj.get("name") == name)


def events_for_container(events: list[Obj], container: str, init: bool) -> list[Obj]:
    """The pod's events that are about this container (or about the whole pod)."""
    field = f"spec.{'initContainers' if init else 'containers'}{{{container}}}"
    return [e for e in events if event_object(e).get("fieldPath") in (None, "", field)]


def newest_event(events: Iterable[Obj]) -> Obj | None:
    best, best_t = None, None
    for ev in events:  # later in the list wins a tie: watch order is arrival order
        t = event_last_seen(ev)
        if best is None or (t or 0) >= (best_t or 0):
            best, best_t = ev, t
    return best


def container_spec(pod: Obj, name: str, init: bool) -> Obj:
    for c in (pod.get("spec") or {}).get("initContainers" if init else "containers") or []:
        if c.get("name") == name:
            return c
    return {}


def pod_request(pod: Obj, resource: str) -> float | None:
    """What the scheduler counts for the pod: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}

    def one(c: Obj) -> float | None:
        res = c.get("resources") or {}
        # extended resources may be given as limits only; the API server then copies them to requests
        limit = (res.get("limits") or {}).get(resource)
        return reported_amount((res.get("requests") or {}).get(resource, limit))

    main = [q for q in (one(c) for c in spec.get("containers") or []) if q is not None]
    init = [q for q in (one(c) for c in spec.get("initContainers") or []) if q is not None]
    if not main and not init:
        return None
    return max(sum(main), max(init, default=0.0))


def condition(obj: Obj, ctype: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def quote_cut(text: str, limit: int = 200) -> str:
    # said out loud, never silently: a summary must stay one readable sentence
    return text if len(text) <= limit else text[:limit] + "… (cut)"
