"""How a rollout's status is shown, once: the kubectl-like text table, the one-line progress, the HTML
(pods, diagnosis, events) and the progress bar, with ONE palette.

`status.status_html` (the static copy a saved notebook keeps), `widgets.PodStatusView` and the magics'
`LiveProgress` all render through here, so a pod is the same colour, and the bar the same length,
wherever it is shown. Pure: a RolloutStatus in, text out; every string from the cluster is escaped.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..diagnosis.objects import format_age
from ..status.rows import activity_words, loading_words  # not the package: it re-exports these views

if TYPE_CHECKING:
    from ..status.rollout import RolloutStatus
    from ..status.rows import EventRow, PodRow

__all__ = ["BAR_STYLE", "PALETTE", "Bar", "diagnosis_box", "events_table", "format_progress_line",
           "format_status_table", "phase_colour", "pods_table", "progress_bar", "status_html"]

# A pod's state -> (text colour, background tint): green ready, amber pending, red failing, grey going.
PALETTE: Mapping[str, tuple[str, str]] = {
    "ready": ("#2e7d32", "#edf7ee"),
    "pending": ("#b26a00", "#fff6e5"),
    "failing": ("#c62828", "#fdecea"),
    "terminating": ("#757575", "#f3f3f3"),
}
# A rollout's phase takes the colour of the pod state it amounts to.
_PHASE_STATE = {"complete": "ready", "progressing": "pending", "failed": "failing"}
# A rollout's phase -> the ipywidgets IntProgress bar_style.
BAR_STYLE: Mapping[str, str] = {"complete": "success", "failed": "danger", "progressing": "info"}
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e0e0e0"


def phase_colour(phase: str) -> str:
    """The text colour of a rollout phase ("complete", "progressing", "failed")."""
    return PALETTE[_PHASE_STATE[phase]][0]


# -- text ------------------------------------------------------------------------------------------------


def _header(status: RolloutStatus) -> str:
    if not status.observed_generation_current and status.desired == 0 and not status.pods:
        return f"{status.name}: waiting for the Deployment controller, rollout {status.phase}"
    # readyReplicas also counts old pods during a rolling update; show the new ones against the goal
    # and the old ones apart, so the count never reads 3/2.
    new_ready = min(status.ready, status.updated, status.desired) if not status.complete else status.ready
    text = f"{status.name}: {new_ready}/{status.desired} ready"
    if not status.complete and status.updated != status.desired:
        text += f", {status.updated}/{status.desired} updated"
    old = status.ready - new_ready
    if old > 0:
        text += f", {old} old still serving"
    return f"{text}, rollout {status.phase}"


def format_status_table(status: RolloutStatus, *, show_events: bool = False) -> str:
    """A kubectl-like plain-text table headed by one summary line; the reason in words when it failed."""
    lines = [_header(status)]
    if status.pods:
        head = ("NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE")
        body = [(p.name, p.ready_containers, p.status, str(p.restarts), p.node or "<none>",
                 format_age(p.age_seconds)) for p in status.pods]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
        for r in [head, *body]:
            lines.append("   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    else:
        lines.append("(no pods yet)")
    d = status.diagnosis
    if d is not None and status.phase != "complete":
        lines.append(("FAILED: " if status.phase == "failed" else "Waiting: ") + d.summary)
        if d.hint:
            lines.append(f"  hint: {d.hint}")
        if d.detail and status.phase == "failed":
            lines.extend("  | " + line for line in d.detail.splitlines())
    if show_events and status.events:
        more = f", {status.events_omitted} older not shown" if status.events_omitted else ""
        lines.append(f"Events (newest last{more}):")
        for e in status.events:
            lines.append(f"  {e.type:<7}  {e.reason:<18}  {e.object}  {e.message}"
                         + (f" (x{e.count})" if e.count > 1 else ""))
    return "\n".join(lines)


def format_progress_line(status: RolloutStatus, width: int = 10) -> str:
    """One short line for streaming progress, e.g. "churn  [######----] 2/3 ready  (1 pulling image)"."""
    filled = int(status.progress * width)
    if filled == width and not status.complete:
        filled -= 1  # a full bar promises a finished rollout
    bar = "#" * filled + "-" * (width - filled)
    line = f"{status.name}  [{bar}] {status.ready}/{status.desired} ready"
    counts: dict[str, int] = {}
    for p in status.pods:
        if p.activity and p.activity != "loading":
            counts[p.activity] = counts.get(p.activity, 0) + 1
    if counts:
        line += "  (" + ", ".join(f"{n} {what}" for what, n in counts.items()) + ")"
    loading = [p.loading for p in status.pods if p.loading is not None]
    if loading:
        elapsed, window = max(loading)  # the pod nearest the end of its window
        many = f"{len(loading)} " if len(loading) > 1 else ""
        line += f"  {many}loading ({loading_words(elapsed, window)})"
    if status.phase == "complete":
        line += "  rolled out"
    elif status.phase == "failed" and status.diagnosis is not None:
        # a pod's trouble already shows in the counts; a rollout-level one gets its words here
        pod_level = status.diagnosis.pod is not None and counts
        words = activity_words(status.diagnosis.kind) or "see status"
        line += "  FAILED" if pod_level else f"  FAILED: {words}"
    return line


# -- the bar ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """What an IntProgress shows for a status: value of max, its label and its bar_style."""

    value: int
    max: int
    description: str
    style: str


def progress_bar(status: RolloutStatus) -> Bar:
    """The new pods that are ready, of those desired (a finished rollout, even scaled to zero, is full)."""
    top = max(status.desired, 1)
    done = top if status.complete else min(round(status.progress * status.desired), top)
    return Bar(done, top, f"{status.ready}/{status.desired} ready", BAR_STYLE[status.phase])


# -- HTML ------------------------------------------------------------------------------------------------


def pods_table(pods: tuple[PodRow, ...]) -> str:
    """One row per pod: name, phase, ready, restarts, node, age, reason; coloured by the pod's state."""
    if not pods:
        return f'<div class="mldeploy-pods" style="color:{PALETTE["terminating"][0]}">No pods yet.</div>'
    e = html.escape
    restarted = f';color:{PALETTE["failing"][0]};font-weight:bold'
    head = "".join(f'<th style="{_CELL}">{h}</th>'
                   for h in ("Pod", "Phase", "Ready", "Restarts", "Node", "Age", "Reason"))
    rows = []
    for p in pods:
        fg, bg = PALETTE[p.state]
        title = f' title="{e(str(p.diagnosis))}"' if p.diagnosis is not None else ""
        reason = p.reason or p.activity or ""
        if p.diagnosis is not None and p.diagnosis.fatal:
            reason = p.diagnosis.summary
        rows.append(
            f'<tr class="mldeploy-pod mldeploy-{p.state}" style="background:{bg}"{title}>'
            f'<td style="{_CELL};border-left:4px solid {fg}"><code>{e(p.name)}</code></td>'
            f'<td style="{_CELL};color:{fg}">&#9679; {e(p.phase)}</td>'
            f'<td style="{_CELL}">{e(p.ready_containers)}</td>'
            f'<td style="{_CELL}{restarted if p.restarts else ""}">{p.restarts}</td>'
            f'<td style="{_CELL}">{e(p.node or "-")}</td>'
            f'<td style="{_CELL}">{e(format_age(p.age_seconds))}</td>'
            f'<td style="{_CELL};color:{fg}">{e(reason)}</td></tr>')
    return (f'<table class="mldeploy-pods" style="border-collapse:collapse;font-size:12px">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def events_table(events: tuple[EventRow, ...], omitted: int = 0, now: float | None = None) -> str:
    """Recent events, newest last; warnings in red."""
    if not events:
        return ""
    e = html.escape
    now = time.time() if now is None else now
    rows = []
    for ev in events:
        colour = PALETTE["failing"][0] if ev.type == "Warning" else "#555"
        count = f" (x{ev.count})" if ev.count > 1 else ""
        age = format_age(now - ev.last_seen) if ev.last_seen is not None else ""
        rows.append(f'<tr style="color:{colour}"><td style="{_CELL}">{e(age)}</td>'
                    f'<td style="{_CELL}">{e(ev.reason)}</td><td style="{_CELL}"><code>{e(ev.object)}</code>'
                    f'</td><td style="{_CELL}">{e(ev.message)}{count}</td></tr>')
    more = f", {omitted} older not shown" if omitted else ""
    return (f'<details class="mldeploy-events"><summary style="font-size:12px">Recent events '
            f"({len(events)}{more})</summary>"
            f'<table style="border-collapse:collapse;font-size:11px">{"".join(rows)}</table></details>')


def diagnosis_box(status: RolloutStatus) -> str:
    """Why the rollout waits or failed, in plain words with the hint; '' once it is complete."""
    d = status.diagnosis
    if d is None or status.phase == "complete":
        return ""
    e = html.escape
    failed = status.phase == "failed"
    fg, bg = PALETTE["failing" if failed else "pending"]
    head = "Rollout failed: " if failed else "Waiting: "
    out = [f'<div class="mldeploy-diagnosis" style="color:{fg};background:{bg};padding:6px 10px;'
           f'border-left:4px solid {fg};margin:4px 0"><b>{head}</b>{e(d.summary)}']
    if d.hint:
        out.append(f"<br><i>Hint: {e(d.hint)}</i>")
    if d.detail and failed:
        out.append(f'<pre style="white-space:pre-wrap;font-size:11px;margin:4px 0 0">{e(d.detail)}</pre>')
    out.append("</div>")
    return "".join(out)


def status_html(status: RolloutStatus) -> str:
    """The whole status as HTML: a summary line, the pods and the diagnosis (the widgets' own pieces)."""
    e = html.escape
    return (f'<div class="mldeploy-status"><div><b>{e(status.name)}</b>: {status.ready}/{status.desired} '
            f'ready, <span style="color:{phase_colour(status.phase)}">rollout {e(status.phase)}</span></div>'
            f"{pods_table(status.pods)}{diagnosis_box(status)}</div>")
