"""CanarySlider: move a canary's share of traffic with a slider, see what the cluster holds, promote or roll
back.

The slider sends its value while it is dragged (`continuous_update`), but the cluster gets ONE write per
settled value: a write goes out only once the value has stopped changing for `debounce` seconds. The timer
runs on the kernel's asyncio event loop (the loop the slider was built on); the write itself, and every
read, run in one worker thread, and their results come back to the loop through `loop.LoopWorker`, so
widgets are only ever touched on the kernel's thread (ipykernel 7 breaks widget updates from others).
Without a running loop (plain Python, tests) nothing is written until `flush()`.

After each write the weights are read back from the route object (HTTPRoute, VirtualService or canary
Ingress; the Deployments' replicas without a router) and shown as "stable 70% / canary 30%", with a
picture of the split (a bar of both shares, each track's version and ready pods: `split.Split`), kept
live by the namespace's shared watches (`loop.NamespaceWatches`) as pods come and go. A write the
cluster refuses because the rollout changed elsewhere (another kernel moved, promoted or rolled it back)
shows that sentence and snaps the slider to what the cluster holds. The slider is disabled while the
canary has no ready pod, and re-checks on its own until one is.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from .. import outcomes, rollout
from ..connection import resolve
from ..errors import MLDeployError, NoRollout, StaleRollout
from ..labels import track_name
from ..split import Split, TrackPods, Weights, pods_from_deployment
from ..split_reads import read_pods, read_weights, ready_canary_pods
from .loop import HandOff, LoopWorker, NamespaceWatches, Outcome
from .messages import capture, error_sentence, note_html

if TYPE_CHECKING:
    import asyncio

    from ..api import Kube
    from ..rollout import Rollout

__all__ = ["CanarySlider", "Weights", "read_weights"]

class CanarySlider(widgets.VBox):
    """`CanarySlider("churn", namespace="ml")`: a 0-100 slider for the canary's share of requests.

    The `*_fn` arguments default to `rollout.set_weight`, `rollout.read`, `read_weights`, the canary's
    ready pod count, `rollout.promote` and `rollout.abort`; a UI test may pass its own.
    """

    ready = traitlets.Bool(False, help="True when the canary has a ready pod (the slider is enabled then).")
    error = traitlets.Unicode("", help="The last failure, one sentence; '' when none.")

    def __init__(self, name: str, *, namespace: str | None = None, kube: Kube | None = None,
                 debounce: float = 0.4, recheck: float | None = 2.0,
                 write_fn: Callable[..., Rollout | None] | None = None,
                 read_fn: Callable[..., Rollout | None] | None = None,
                 weights_fn: Callable[[Rollout], Weights] | None = None,
                 ready_fn: Callable[..., int] | None = None,
                 promote_fn: Callable[..., Any] | None = None, abort_fn: Callable[..., Any] | None = None,
                 pods_fn: Callable[..., dict[str, TrackPods]] | None = None, watch: bool | None = None,
                 refresh: bool = True, **kwargs: Any) -> None:
        self.name = name
        self._kube = kube
        self.namespace = namespace  # None: resolved with the connection (see `kube`)
        self.debounce = debounce
        self.recheck = recheck
        self._write_fn = write_fn or rollout.set_weight
        self._read_fn = read_fn or rollout.read
        self._weights_fn = weights_fn or read_weights
        self._ready_fn = ready_fn or ready_canary_pods
        self._promote_fn = promote_fn or rollout.promote
        self._abort_fn = abort_fn or rollout.abort
        # With stand-in reads (a test's) and no stand-in for the pods, the picture has no pod counts.
        self._pods_fn = pods_fn or (read_pods if read_fn is None else (lambda _name, **_kw: {}))
        # Live pod counts from the namespace's shared watches; off when the reads are stand-ins.
        self._watch = (pods_fn is None and read_fn is None) if watch is None else watch
        self._watches: NamespaceWatches | None = None
        self._watch_handoff: HandOff | None = None
        self.rollout: Rollout | None = None
        self.weights: Weights | None = None
        self.pods: dict[str, TrackPods] = {}  # track -> ready/desired pods, for the picture
        self.writes = 0  # weight writes sent (the debouncer's whole point is to keep this low)
        self.over = False  # promoted or rolled back: nothing left to move
        self._applied: int | None = None  # the weight the cluster holds (or was last written)
        self._pending: int | None = None  # a moved value not written yet
        self._writing: int | None = None  # the value a write in flight carries
        self._busy = ""  # what is in flight (a refresh, promote or roll back), in words; "" when idle
        self._quiet = 0  # > 0 while the slider's value is set by this code, not by the user
        self._timer: asyncio.TimerHandle | None = None
        self._recheck_timer: asyncio.TimerHandle | None = None
        self._write_lock = threading.Lock()  # flush() on the caller's thread vs a write in the worker

        self.slider = widgets.IntSlider(value=0, min=0, max=100, step=1, description="Canary %",
                                        continuous_update=True, disabled=True,
                                        style={"description_width": "initial"},
                                        layout=widgets.Layout(width="420px"))
        self.title = widgets.HTML()
        self.split = widgets.HTML()  # what the cluster holds
        self.message = widgets.HTML()  # waiting, busy, or the last error
        self.promote_button = widgets.Button(description="Promote", button_style="success", icon="check",
                                             disabled=True, tooltip="The canary becomes the stable model")
        self.abort_button = widgets.Button(description="Roll back", button_style="danger", icon="undo",
                                           disabled=True,
                                           tooltip="All traffic back to stable; remove the canary")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="Read the rollout and the canary's pods again")
        super().__init__([self.title, self.slider, self.split,
                          widgets.HBox([self.promote_button, self.abort_button, self.refresh_button]),
                          self.message], **kwargs)
        self.add_class("mldeploy-canary")
        self.slider.observe(self._on_value, names="value")
        self.promote_button.on_click(self.promote)
        self.abort_button.on_click(self.abort)
        self.refresh_button.on_click(lambda _b: self.refresh())
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self._stop())
        # Built here, on the kernel's thread: one worker, so writes go out in the order values settled.
        self._jobs = LoopWorker(f"mldeploy-canary-{name}", max_rate=50.0)
        self._render()
        if refresh:
            self._apply_refresh(capture(self._read_all))  # the first read happens in the cell, at once

    # -- the value -------------------------------------------------------------------------------------

    @property
    def value(self) -> int:
        return self.slider.value

    @value.setter
    def value(self, percent: int) -> None:
        self.slider.value = percent

    @property
    def live(self) -> bool:
        """True when an event loop runs the debounce timer; False means call flush()."""
        return self._jobs.live

    @property
    def kube(self) -> Kube:
        if self._kube is None or self.namespace is None:
            # as the magics resolve them: %config MLDeploy (kubeconfig, context, namespace), then the context
            self._kube, self.namespace = resolve(self.namespace, kube=self._kube)
        return self._kube

    def _where(self) -> dict[str, Any]:
        kube = self.kube  # first: connecting fills in the namespace when none was given
        return {"namespace": self.namespace, "kube": kube}

    def _on_value(self, change: dict) -> None:
        if self._quiet:
            return
        if not self._movable():
            # Set from code while disabled (no ready canary pod, busy, over): the route must not move.
            if self._applied is not None:
                self._set_quietly(self._applied)
            return
        self._pending = change["new"]
        self._cancel_timer()
        if self._writing is None and self._pending == self._applied:
            self._pending = None  # moved back to what the cluster holds: nothing to write
            self._render()
            return
        if self.live:
            self._timer = self._jobs.call_later(self.debounce, self._settled)
        self._render()

    def _movable(self) -> bool:
        canary = self.rollout is not None and self.rollout.strategy == "canary"
        return canary and self.ready and not self._busy and not self.over

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _settled(self) -> None:
        """On the loop: the value has not moved for `debounce` s; write it (unless a write is out)."""
        self._timer = None
        if self._writing is not None:
            return  # the write in flight looks at _pending when it is done
        value = self._pending
        self._pending = None
        if value is None or value == self._applied:
            self._render()
            return
        self._writing = value
        self._render()
        self._jobs.submit(lambda: self._write(value), lambda outcome: self._written(value, outcome))

    def flush(self) -> Rollout | None:
        """Write the pending value now, on this thread (without an event loop nothing else will)."""
        self._cancel_timer()
        value = self._pending
        self._pending = None
        if value is None or value == self._applied or self.over:
            self._render()
            return self.rollout
        self._writing = value
        self._written(value, capture(lambda: self._write(value)))
        return self.rollout

    def _write(self, value: int) -> tuple[Rollout | None, Weights | None]:
        """Worker thread (or flush's caller): one write, then the weights read back from the cluster."""
        with self._write_lock:
            self.writes += 1
            written = self._write_fn(self.name, value, **self._where())
        return written, self._weights_fn(written) if written is not None else None

    def _written(self, value: int, outcome: Outcome) -> None:
        result, error = outcome
        self._writing = None
        if error is None:
            self.rollout, weights = result
            self._applied = value
            self.weights = weights or self.weights
            self.error = ""
        else:
            self.error = error_sentence(error)
            if isinstance(error, (StaleRollout, NoRollout)):
                self._snap_back(self.error)
        if self._pending is not None and self._timer is None and self.live:
            self._settled()  # it settled while the write was out: write it now
        self._render()

    # -- refresh, promote, roll back ---------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the rollout, the weights and the canary's ready pods again (in the worker when live)."""
        if self._busy or self.over:
            return
        self._busy = "reading the cluster"
        self._render()
        self._jobs.submit(self._read_all, self._apply_refresh)

    def _read_all(self) -> tuple[Rollout | None, Weights | None, int, dict[str, TrackPods]]:
        found = self._read_fn(self.name, **self._where())
        if found is None or found.strategy != "canary":
            return found, None, 0, {}
        if found.router == "knative" and self._pods_fn is read_pods:  # its tracks are revisions
            from .. import rollout_knative

            pods = rollout_knative.read_pods(found)
        else:
            pods = self._pods_fn(self.name, **self._where())
        return found, self._weights_fn(found), self._ready_fn(self.name, **self._where()), pods

    def _snap_back(self, refusal: str) -> None:
        """The cluster refused a write made on an old view: read what it holds now and show that, with
        the refusal kept as the message (a pending value is dropped: it was chosen against the old view)."""
        self._pending = None
        self._cancel_timer()
        self._refusal = refusal
        self._busy = ""
        self.refresh()

    _refusal = ""

    def _apply_refresh(self, outcome: Outcome) -> None:
        self._busy = ""
        refusal, self._refusal = self._refusal, ""
        try:
            self._refreshed(outcome)
        finally:
            if refusal:
                self.error = refusal
                self._render()

    def _refreshed(self, outcome: Outcome) -> None:
        result, error = outcome
        if error is not None:
            self.error = error_sentence(error)
            self._render()
            return
        found, weights, ready_pods, pods = result
        self.rollout, self.weights, self.pods = found, weights, pods
        self.error = ""
        if found is None:
            self.ready = False
            self.error = str(outcomes.no_rollout(self.name, self.namespace))
        elif found.strategy != "canary":
            self.ready = False
            self.error = (f"{self.name} is a {found.strategy} rollout; the slider moves a canary's weight "
                          f"(use %promote or %rollback).")
        else:
            self.ready = ready_pods > 0
            if self._writing is None and self._pending is None:
                self._applied = found.weight
                self._set_quietly(found.weight)
        if found is not None and found.strategy == "canary" and not self.ready:
            self._arm_recheck()
        if found is not None and found.strategy == "canary":
            self._start_watching()
        self._render()

    def _start_watching(self) -> None:
        """Follow both tracks' Deployments through the namespace's shared watches (loop only)."""
        if not (self._watch and self.live) or self._watches is not None or self.over:
            return
        self._watch_handoff = HandOff(self._on_watch, loop=self._jobs.loop, max_rate=10.0)
        self._watches = NamespaceWatches.subscribe(self.kube, self.namespace, self._watch_handoff)

    def _on_watch(self, items: list[tuple[str, Any, Any]]) -> None:
        """On the loop: a Deployment of either track changed; redraw its pods (and enable the slider)."""
        tracks = {self.name: "stable", track_name(self.name, "canary"): "canary"}
        changed = False
        for etype, obj, _error in items:
            if (obj or {}).get("kind") != "Deployment":
                continue
            track = tracks.get((obj.get("metadata") or {}).get("name"))
            if track is None:
                continue
            pods = TrackPods() if etype == "DELETED" else pods_from_deployment(obj)
            if self.pods.get(track) != pods:
                self.pods = {**self.pods, track: pods}
                changed = True
        if changed and not self.over:
            if self.rollout is not None and self.rollout.strategy == "canary":
                self.ready = self.pods.get("canary", TrackPods()).ready > 0
            self._render()

    def _arm_recheck(self) -> None:
        if self.recheck and self.live and self._recheck_timer is None:
            self._recheck_timer = self._jobs.call_later(self.recheck, self._recheck)

    def _recheck(self) -> None:
        self._recheck_timer = None
        if not self.ready and not self.over:
            self.refresh()

    def promote(self, _button: widgets.Button | None = None) -> None:
        """The canary becomes the stable model (waits for the stable Deployment to roll)."""
        self._finish("Promoting", self._promote_fn, outcomes.promoted)

    def abort(self, _button: widgets.Button | None = None) -> None:
        """Roll the canary back: all traffic to stable first, then the canary removed."""
        self._finish("Rolling back", self._abort_fn, outcomes.rolled_back)

    def _finish(self, doing: str, operation: Callable[..., Any],
                done: Callable[[Rollout], outcomes.Change]) -> None:
        if self._busy or self.over:
            return
        self._cancel_timer()
        self._pending = None  # a weight moved just before the button no longer matters
        self._busy = f"{doing} {self.name}"
        self.error = ""
        self._render()
        before = self.rollout  # taken on the loop: the worker never reads the widget's state

        def job() -> Weights:
            operation(self.name, **self._where())
            return self._weights_after(before)

        def after(outcome: Outcome) -> None:
            self._busy = ""
            if outcome[1] is not None:
                self.error = error_sentence(outcome[1])
                if isinstance(outcome[1], (StaleRollout, NoRollout)):
                    self._snap_back(self.error)
            else:
                self.over = True
                # the split and the slider showed the canary's old share; now every request is on stable
                self.weights, self._applied = outcome[0], 0
                self._set_quietly(0)
                # the same sentence %promote / %rollback print (the buttons are enabled with a rollout read)
                self._done_message = done(before).sentence if before is not None else f"{doing} done."
            self._render()

        self._jobs.submit(job, after)

    def _weights_after(self, before: Rollout | None) -> Weights:
        """Worker: the split after promote or roll back, read back from the route like after a write; if
        that read fails the operation still succeeded, so say what it wrote (all on stable)."""
        if before is not None:
            try:
                return self._weights_fn(replace(before, weight=0, split_sentence=None))
            except MLDeployError:
                pass
        return Weights(100.0, 0.0, before.router if before is not None else "")

    def _set_quietly(self, value: int) -> None:
        self._quiet += 1
        try:
            self.slider.value = value
        finally:
            self._quiet -= 1

    # -- rendering (loop thread only) --------------------------------------------------------------------

    _done_message = ""

    @property
    def picture(self) -> Split | None:
        """The split as the widget last read it (None before the first read)."""
        if self.weights is None:
            return None
        r = self.rollout
        return Split(self.name, self.weights, r.stable_version if r else None,
                     r.candidate_version if r else None, self.pods.get("stable"), self.pods.get("canary"))

    def _render(self) -> None:
        e = html.escape
        r = self.rollout
        versions = ""
        if r is not None:
            versions = (f" &mdash; stable <code>{e(r.stable_version or '?')}</code>, canary "
                        f"<code>{e(r.candidate_version or '?')}</code> via {e(r.router)}")
        self.title.value = f"<b>{e(self.name)}</b> canary{versions}"
        w = self.weights
        if w is not None:
            self.split.value = f'<span class="mldeploy-split">{e(str(w))}</span>' + self.picture.html()
        elif not self.split.value:
            self.split.value = note_html("no split read yet", "quiet")
        canary_rollout = r is not None and r.strategy == "canary"
        idle = not self._busy and not self.over
        self.slider.disabled = not self._movable()
        self.promote_button.disabled = self.abort_button.disabled = not (idle and canary_rollout)
        self.refresh_button.disabled = bool(self._busy) or self.over
        self.message.value = self._message(canary_rollout)

    def _message(self, canary_rollout: bool) -> str:
        """The line under the buttons: the last error, the outcome, or what the slider waits for."""
        if self.error:
            return note_html(self.error, "error")
        if self.over:
            return note_html(self._done_message, "done")
        if self._busy:
            return note_html(f"{self._busy}...", "quiet")
        if canary_rollout and not self.ready:
            return note_html("waiting for a ready canary pod (the slider is disabled until one is ready)",
                             "quiet")
        if self._writing is not None:
            return note_html(f"writing {self._writing}%...", "quiet")
        if self._pending is not None:
            return note_html(f"{self._pending}% once the slider stops", "quiet")
        return ""

    # -- lifetime and text -------------------------------------------------------------------------------

    def _stop(self) -> None:
        self._cancel_timer()
        if self._watches is not None and self._watch_handoff is not None:
            self._watches.unsubscribe(self._watch_handoff)
            self._watch_handoff.close()
            self._watches = None
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
            self._recheck_timer = None
        self._jobs.close()

    def close(self) -> None:
        self._stop()
        for w in (self.slider, self.title, self.split, self.message, self.promote_button, self.abort_button,
                  self.refresh_button):
            w.close()
        super().close()

    def __str__(self) -> str:
        if self.over:
            return self._done_message
        if self.rollout is None:
            return self.error or f"{self.name}: no rollout read yet."
        text = self.picture.text() if self.picture is not None else str(self.rollout)
        return text + (f"\n{self.error}" if self.error else "")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            # a frontend without the widget manager (nbconvert, papermill, a console) shows this text
            data["text/plain"] = str(self)
        return data
