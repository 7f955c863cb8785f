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
from ..status import RolloutStatus, StatusTracker
from ..views.status import (
    PALETTE,
    diagnosis_box,
    events_table,
    format_status_table,
    phase_colour,
    pods_table,
    progress_bar,
    status_html,
)
from .loop import HandOff, NamespaceWatches, running_loop

if TYPE_CHECKING:
    from ..api import Deployment

__all__ = ["PodStatusView", "events_table", "pods_table"]

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
            bar = progress_bar(status)
            with self.progress.hold_sync():
                self.progress.max = bar.max
                self.progress.value = bar.value
                self.progress.description = bar.description
                self.progress.bar_style = bar.style
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
            fg = phase_colour(st.phase)
            text = (f"<b>{e(self.name)}</b> in <code>{e(ns)}</code>: {st.ready}/{st.desired} ready, "
                    f'<span style="color:{fg}">rollout {e(st.phase)}</span>')
            if self.stopped_reason:
                text += f" <i>({e(self.stopped_reason)})</i>"
        if self.watch_errors:
            red = PALETTE["failing"][0]
            text += "".join(f'<div style="color:{red}">{e(m)}</div>' for m in self.watch_errors[-3:])
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
