"""PodStatusView: one Deployment's rollout, live: a progress bar, a row per pod, recent events, the diagnosis.

Watches run in threads, one set per namespace shared by every view there (`loop.NamespaceWatches`),
and hand their events over to the kernel's event loop (`loop.HandOff`), where each view's
`StatusTracker` folds them and the widgets are updated, at most `max_rate` times a second. Without a
running loop (plain Python) the owner calls `poll()`. Without a frontend the view prints its last
snapshot as text or HTML.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from ..errors import MLDeployError
from ..status import (
    EventRow,
    PodRow,
    RolloutStatus,
    StatusTracker,
    format_age,
    format_status_table,
    status_html,
)
from .loop import HandOff, NamespaceWatches, running_loop

if TYPE_CHECKING:
    from ..api import Deployment

__all__ = ["PodStatusView", "events_table", "pods_table"]

# The row colours (state -> text colour, background tint): green ready, amber pending, red failing.
COLOURS: Mapping[str, tuple[str, str]] = {
    "ready": ("#2e7d32", "#edf7ee"),
    "pending": ("#b26a00", "#fff6e5"),
    "failing": ("#c62828", "#fdecea"),
    "terminating": ("#757575", "#f3f3f3"),
}
_BAR_STYLE = {"complete": "success", "failed": "danger", "progressing": "info"}
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e0e0e0"


def pods_table(pods: tuple[PodRow, ...]) -> str:
    """One row per pod: name, phase, ready, restarts, node, age, reason; coloured by the pod's state."""
    if not pods:
        return '<div class="mldeploy-pods" style="color:#757575">No pods yet.</div>'
    e = html.escape
    head = "".join(f'<th style="{_CELL}">{h}</th>'
                   for h in ("Pod", "Phase", "Ready", "Restarts", "Node", "Age", "Reason"))
    rows = []
    for p in pods:
        fg, bg = COLOURS[p.state]
        title = f' title="{e(str(p.diagnosis))}"' if p.diagnosis is not None else ""
        reason = p.reason or p.activity or ""
        if p.diagnosis is not None and p.diagnosis.fatal:
            reason = p.diagnosis.summary
        rows.append(
            f'<tr class="mldeploy-pod mldeploy-{p.state}" style="background:{bg}"{title}>'
            f'<td style="{_CELL};border-left:4px solid {fg}"><code>{e(p.name)}</code></td>'
            f'<td style="{_CELL};color:{fg}">&#9679; {e(p.phase)}</td>'
            f'<td style="{_CELL}">{e(p.ready_containers)}</td>'
            f'<td style="{_CELL}{";color:#c62828;font-weight:bold" if p.restarts else ""}">{p.restarts}</td>'
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
        colour = "#c62828" if ev.type == "Warning" else "#555"
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
    d = status.diagnosis
    if d is None or status.phase == "complete":
        return ""
    e = html.escape
    failed = status.phase == "failed"
    fg, bg = COLOURS["failing" if failed else "pending"]
    head = "Rollout failed: " if failed else "Waiting: "
    out = [f'<div class="mldeploy-diagnosis" style="color:{fg};background:{bg};padding:6px 10px;'
           f'border-left:4px solid {fg};margin:4px 0"><b>{head}</b>{e(d.summary)}']
    if d.hint:
        out.append(f"<br><i>Hint: {e(d.hint)}</i>")
    if d.detail and failed:
        out.append(f'<pre style="white-space:pre-wrap;font-size:11px;margin:4px 0 0">{e(d.detail)}</pre>')
    out.append("</div>")
    return "".join(out)


class PodStatusView(widgets.VBox):
    """A live view of one Deployment's rollout; `PodStatusView(deploy(spec, wait=False))`.

    Built on the kernel's thread (in a cell or a widget callback) it updates itself from the kernel's
    event loop; built where no loop runs, call `poll()` to apply what the watches saw, or `refresh()`
    for a one-off read. It stops watching on `close()`, when the frontend closes it, or when the
    Deployment is deleted.
    """

    watching = traitlets.Bool(False, help="True while the watches run.")
    phase = traitlets.Unicode("", help="progressing | complete | failed | deleted, '' before any status.")

    def __init__(self, deployment: Deployment, *, watch: bool = True, max_rate: float = 10.0,
                 max_events: int = 8, age_refresh: float | None = 30.0, **kwargs: Any) -> None:
        self.deployment = deployment
        self.name = deployment.object_name
        self.tracker = StatusTracker(self.name, deployment.namespace, max_events=max_events)
        self.status: RolloutStatus | None = None
        self.stopped_reason: str | None = None
        self.watch_errors: list[str] = []
        self.age_refresh = age_refresh
        self._status_time: float | None = None  # the `now` self.status was computed for, if from the tracker
        self.renders = 0  # snapshots shown
        self._logs_asked: set[str] = set()
        self.header = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=1, value=0, description="0/0",
                                            style={"description_width": "initial"},
                                            layout=widgets.Layout(width="420px"))
        self.pods = widgets.HTML()
        self.diagnosis = widgets.HTML()
        self.events = widgets.HTML()
        super().__init__([self.header, self.progress, self.pods, self.diagnosis, self.events], **kwargs)
        self.add_class("mldeploy-status-view")
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self.stop("The view was closed."))
        # the loop is taken here, on the kernel's thread: watch threads only ever reach it through HandOff
        self._handoff = HandOff(self._on_batch, loop=running_loop(), max_rate=max_rate)
        self._watches: NamespaceWatches | None = None
        self._age_timer = None
        self.show(deployment.last_status)
        if watch:
            self.start()

    # -- watching ------------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """True when updates arrive on their own (an event loop runs); False means call poll()."""
        return self._handoff.loop is not None

    def start(self) -> None:
        if self._watches is not None or self._handoff.closed:
            return
        # the watch threads only put() into the HandOff, which batches their events onto the loop
        self._watches = NamespaceWatches.subscribe(self.deployment.kube, self.deployment.namespace,
                                                   self._handoff)
        self.watching = True
        self._arm_age_timer()

    def stop(self, reason: str | None = None) -> None:
        """Stop watching (idempotent); the last snapshot stays on screen."""
        if self._watches is not None:
            self._watches.unsubscribe(self._handoff)
            self._watches = None
        if self._age_timer is not None:
            self._age_timer.cancel()
            self._age_timer = None
        self._handoff.close()
        if reason and self.stopped_reason is None:
            self.stopped_reason = reason
        self.watching = False

    def close(self) -> None:
        self.stop("The view was closed.")
        for child in (self.header, self.progress, self.pods, self.diagnosis, self.events):
            child.close()
        super().close()

    def feed(self, event_type: str, obj: Mapping, error: Exception | None = None) -> None:
        """Hand one watch event over (from any thread); it is applied on the loop, or at the next poll().

        ("FAILED", {"kind": ...}, error) reports a watch that gave up, as the shared watches do.
        """
        self._handoff.put((event_type, obj, error))

    def poll(self) -> int:
        """Apply the events waiting now (on the caller's thread); returns how many there were."""
        if self._handoff.closed:
            return 0
        return self._handoff.poll()

    def refresh(self) -> RolloutStatus | None:
        """A one-off read of the Deployment, its pods, ReplicaSets and events (at once), shown at once."""
        try:
            status = self.deployment.status()
        except MLDeployError as e:
            self.watch_errors.append(str(e))
            self._render_chrome()
            return None
        self.show(status)
        return status

    def _on_batch(self, items: list[tuple[str, Mapping, Exception | None]]) -> None:
        deleted, errors = False, len(self.watch_errors)
        for etype, obj, err in items:
            if etype == "LOGS":  # a crashed container's last lines, fetched off the loop
                self.tracker.set_logs(obj["pod"], obj["text"])
                continue
            if etype == "FAILED":
                kind = obj.get("kind", "?")
                self.watch_errors.append(f"Watching the {kind}s of {self.name} stopped: {err}")
                continue
            if (etype == "DELETED" and obj.get("kind") == "Deployment"
                    and (obj.get("metadata") or {}).get("name") == self.name):
                deleted = True
            self.tracker.apply(etype, obj)
        if deleted:
            self.stop(f"{self.name} was deleted; no longer watching.")
            self.phase = "deleted"
            self._render_chrome()
            return
        # Most of a namespace's events are about other objects: if the snapshot at the same instant is
        # unchanged, nothing on screen would change but the ages (the age timer moves those).
        if (self._status_time is not None and len(self.watch_errors) == errors
                and self.tracker.snapshot(now=self._status_time) == self.status):
            return
        self._show_tracker()

    def _show_tracker(self) -> None:
        now = time.time()
        status = self.tracker.snapshot(now=now)
        self.show(status)
        self._status_time = now
        d = status.diagnosis
        if d is not None and d.kind == "crash-loop" and d.pod and d.pod not in self._logs_asked:
            self._logs_asked.add(d.pod)
            threading.Thread(target=self._fetch_logs, args=(d.pod,), daemon=True,
                             name=f"mldeploy-logs-{d.pod}").start()

    def _fetch_logs(self, pod: str) -> None:
        """In a thread: the crashed container's previous log, handed back to the loop like an event."""
        from ..follow import previous_logs

        kube = self.deployment.kube
        if kube is None:
            return
        text = previous_logs(kube, self.deployment.namespace, pod)  # None: the node serves no log
        if text is None:
            return
        self._handoff.put(("LOGS", {"pod": pod, "text": text}, None))

    def _arm_age_timer(self) -> None:
        if self.age_refresh:
            self._age_timer = self._handoff.call_later(self.age_refresh, self._tick)

    def _tick(self) -> None:
        """Ages move on without events; re-render now and then (only changed widgets are sent)."""
        self._age_timer = None
        if self.watching:
            if self.tracker.deployment is not None:
                self._show_tracker()
            self._arm_age_timer()

    # -- rendering (loop thread only) ----------------------------------------------------------------

    def show(self, status: RolloutStatus | None) -> None:
        """Render a snapshot (the watch path calls this; tests and one-off reads may too)."""
        self.status = status
        self._status_time = None
        self.renders += 1
        if status is not None:
            self.phase = status.phase
            with self.progress.hold_sync():
                done = round(status.progress * status.desired)
                self.progress.max = max(status.desired, 1)
                self.progress.value = min(done, self.progress.max)
                self.progress.description = f"{status.ready}/{status.desired} ready"
                self.progress.bar_style = _BAR_STYLE[status.phase]
            self.pods.value = pods_table(status.pods)
            self.diagnosis.value = diagnosis_box(status)
            self.events.value = events_table(status.events, status.events_omitted)
        self._render_chrome()

    def _render_chrome(self) -> None:
        e = html.escape
        ns = self.deployment.namespace
        st = self.status
        if self.phase == "deleted":
            text = f"<b>{e(self.name)}</b> in <code>{e(ns)}</code> was deleted; no longer watching."
            self.pods.value = ""
            self.diagnosis.value = ""
            with self.progress.hold_sync():
                self.progress.value = 0
                self.progress.description = "deleted"
                self.progress.bar_style = ""
        elif st is None:
            text = f"<b>{e(self.name)}</b> in <code>{e(ns)}</code>: waiting for the first status..."
        else:
            fg = COLOURS[{"complete": "ready", "failed": "failing"}.get(st.phase, "pending")][0]
            text = (f"<b>{e(self.name)}</b> in <code>{e(ns)}</code>: {st.ready}/{st.desired} ready, "
                    f'<span style="color:{fg}">rollout {e(st.phase)}</span>')
            if self.stopped_reason:
                text += f" <i>({e(self.stopped_reason)})</i>"
        if self.watch_errors:
            text += "".join(f'<div style="color:#c62828">{e(m)}</div>' for m in self.watch_errors[-3:])
        self.header.value = f'<div class="mldeploy-status-header">{text}</div>'

    # -- without a frontend --------------------------------------------------------------------------

    def __str__(self) -> str:
        if self.phase == "deleted":
            return f"{self.name}: deleted; no longer watching."
        if self.status is None:
            return f"{self.name}: no status yet."
        lines = [format_status_table(self.status, show_events=True), *self.watch_errors[-3:]]
        if self.stopped_reason:
            lines.append(f"({self.stopped_reason})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self.status is None or self.phase == "deleted":
            return f"<pre>{html.escape(str(self))}</pre>"
        return status_html(self.status)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            # a frontend without the widget manager (nbconvert, papermill, a plain console) shows these
            data["text/plain"] = str(self)
            data["text/html"] = self._repr_html_()
        return data
