"""CanarySlider without a browser or a cluster: a pure UI test of the debouncer and the buttons.

The comm is swapped for one that records what a frontend would receive; the rollout operations are
injected (write, read, weights, ready pods, promote, abort), so these tests count exactly the writes the
slider asks for. The same slider against the sandbox is in tests/integration/test_rollout_magics.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import replace

import pytest
from widget_comm import frontend_clicks, frontend_sets

from jupyter_mldeploy.errors import ClusterError, MLDeployError
from jupyter_mldeploy.rollout import Rollout
from jupyter_mldeploy.widgets.canary import CanarySlider, Weights

pytestmark = pytest.mark.usefixtures("recording_comm")


def frontend_drags(slider, value: int) -> None:
    """What the browser sends while the slider is dragged (continuous_update)."""
    frontend_sets(slider, value=value)


class FakeRollout:
    """The cluster as the slider sees it through the injected operations; records every call."""

    def __init__(self, weight: int = 10, *, router: str = "istio", strategy: str = "canary", ready: int = 1,
                 write_delay: float = 0.0, fail_writes: bool = False) -> None:
        self.rollout: Rollout | None = Rollout("fraud", "ml", strategy, router, weight=weight,
                                               stable_version="1.0", candidate_version="2.0")
        self.ready = ready
        self.write_delay = write_delay
        self.fail_writes = fail_writes
        self.writes: list[tuple[int, str]] = []  # (percent, thread name)
        self.promoted = self.aborted = 0

    def kw(self, **extra) -> dict:
        return dict(namespace="ml", kube=object(), write_fn=self.write, read_fn=self.read,
                    weights_fn=self.weights, ready_fn=self.ready_pods, promote_fn=self.promote,
                    abort_fn=self.abort, **extra)

    def write(self, name, percent, *, namespace, kube):
        assert (name, namespace) == ("fraud", "ml")
        self.writes.append((percent, threading.current_thread().name))
        time.sleep(self.write_delay)
        if self.fail_writes:
            raise ClusterError("Kubernetes refused: the VirtualService fraud is managed by someone else",
                               status=409)
        self.rollout = replace(self.rollout, weight=percent)
        if self.rollout.router == "replicas":
            self.rollout.split_sentence = f"4 replicas split as asked: the canary gets {percent}%."
        return self.rollout

    def read(self, name, *, namespace, kube):
        return self.rollout

    def weights(self, r: Rollout) -> Weights:
        return Weights(100 - r.weight, r.weight, r.router, r.split_sentence)

    def ready_pods(self, name, *, namespace, kube) -> int:
        return self.ready

    def promote(self, name, *, namespace, kube):
        self.promoted += 1
        self.rollout = None

    def abort(self, name, *, namespace, kube):
        self.aborted += 1
        raise MLDeployError("fraud has no rollout in progress in namespace ml")


# ---------------------------------------------------------------------------------------------------
# without an event loop: nothing is written until flush()


def test_it_starts_from_what_the_cluster_holds():
    fake = FakeRollout(weight=10)
    s = CanarySlider("fraud", **fake.kw())
    assert (s.value, s.slider.min, s.slider.max, s.slider.continuous_update) == (10, 0, 100, True)
    assert not s.slider.disabled and s.ready
    assert "stable 90% / canary 10%" in s.split.value
    assert "stable <code>1.0</code>, canary <code>2.0</code> via istio" in s.title.value
    assert fake.writes == [] and not s.live


def test_fifty_moves_are_one_write_at_flush_with_the_last_value():
    fake = FakeRollout(weight=10)
    s = CanarySlider("fraud", **fake.kw())
    for i in range(50):
        frontend_drags(s.slider, 11 + i)
    assert fake.writes == [] and "60% once the slider stops" in s.message.value
    s.flush()
    assert [p for p, _ in fake.writes] == [60] and s.writes == 1
    assert "stable 40% / canary 60%" in s.split.value and s.message.value == ""
    s.flush()  # nothing pending: no second write
    assert s.writes == 1


def test_moving_back_to_what_the_cluster_holds_writes_nothing():
    fake = FakeRollout(weight=25)
    s = CanarySlider("fraud", **fake.kw())
    s.value = 40
    s.value = 25
    s.flush()
    assert fake.writes == []


def test_a_refused_write_is_one_sentence_and_the_split_stays_what_the_cluster_holds():
    fake = FakeRollout(weight=10, fail_writes=True)
    s = CanarySlider("fraud", **fake.kw())
    s.value = 30
    s.flush()
    assert s.error == "Kubernetes refused: the VirtualService fraud is managed by someone else."
    assert "#c62828" in s.message.value and "stable 90% / canary 10%" in s.split.value
    fake.fail_writes = False
    s.value = 35
    s.flush()
    assert s.error == "" and "canary 35%" in s.split.value and s.writes == 2


def test_without_a_router_the_achievable_split_is_said():
    fake = FakeRollout(weight=25, router="replicas")
    s = CanarySlider("fraud", **fake.kw())
    s.value = 50
    s.flush()
    assert "4 replicas split as asked: the canary gets 50%." in s.split.value
    assert str(s).splitlines()[0] == "fraud: stable 50% / canary 50% via replicas"
    assert str(s).splitlines()[-1] == "  4 replicas split as asked: the canary gets 50%."


def test_disabled_while_the_canary_has_no_ready_pod_and_enabled_on_refresh():
    fake = FakeRollout(weight=10, ready=0)
    s = CanarySlider("fraud", **fake.kw())
    assert s.slider.disabled and not s.ready
    assert "waiting for a ready canary pod" in s.message.value
    assert not s.promote_button.disabled  # promoting or rolling back needs no ready pod
    s.value = 60  # set from code while disabled: snaps back, nothing to write
    s.flush()
    assert s.value == 10 and fake.writes == []
    fake.ready = 1
    frontend_clicks(s.refresh_button)
    assert not s.slider.disabled and s.message.value == ""


def test_not_a_canary_rollout_or_none_at_all_says_so():
    s = CanarySlider("fraud", **FakeRollout(strategy="shadow").kw())
    assert s.slider.disabled and s.promote_button.disabled
    assert s.error == ("fraud is a shadow rollout; the slider moves a canary's weight (use %promote or "
                       "%rollback).")
    fake = FakeRollout()
    fake.rollout = None
    s = CanarySlider("fraud", **fake.kw())
    assert s.slider.disabled and "has no rollout in progress in namespace ml" in s.message.value


def test_promote_ends_the_rollout_and_disables_everything():
    fake = FakeRollout(weight=30)
    s = CanarySlider("fraud", **fake.kw())
    s.value = 45  # moved, not settled: the promotion makes it moot
    frontend_clicks(s.promote_button)
    assert fake.promoted == 1 and fake.writes == [] and s.over
    assert all(w.disabled for w in (s.slider, s.promote_button, s.abort_button, s.refresh_button))
    # the sentence %promote prints (outcomes.promoted), escaped into the message
    assert ("Promoted fraud: version 2.0 is now the stable model and answers every request; fraud-canary "
            "was removed.") in s.message.value
    assert "stable 100% / canary 0%" in s.split.value and s.value == 0  # not the canary's old share
    s.value = 50
    s.flush()
    assert fake.writes == []


def test_a_failed_roll_back_is_one_sentence_and_keeps_the_buttons():
    fake = FakeRollout(weight=30)
    s = CanarySlider("fraud", **fake.kw())
    frontend_clicks(s.abort_button)
    assert fake.aborted == 1 and not s.over
    assert s.error == "fraud has no rollout in progress in namespace ml."
    assert not s.abort_button.disabled and not s.slider.disabled


def test_without_a_frontend_it_prints_the_split():
    s = CanarySlider("fraud", **FakeRollout(weight=20).kw())
    bundle = s._repr_mimebundle_()
    assert bundle["text/plain"] == ("fraud: stable 80% / canary 20% via istio\n"
                                    f"  [{'#' * 32}{'+' * 8}]\n"
                                    "  # stable 1.0          80%\n"
                                    "  + canary 2.0          20%")  # the fake has no pods to count
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == s.model_id


# ---------------------------------------------------------------------------------------------------
# with the kernel's event loop: the debounce timer and the worker


def run_on_loop(fake: FakeRollout, moves, *, debounce: float = 0.4, settle: float = 0.8, **kw):
    """Build the slider on a running loop (as in a cell), play `moves` [(delay, value)], wait, return."""
    async def main():
        s = CanarySlider("fraud", debounce=debounce, **fake.kw(**kw))
        assert s.live
        touched: list[str] = []
        s.split.observe(lambda _c: touched.append(threading.current_thread().name), names="value")
        stamps = []
        for delay, value in moves:
            await asyncio.sleep(delay)
            frontend_drags(s.slider, value)
            stamps.append(time.monotonic())
        await asyncio.sleep(settle)
        return s, touched, stamps

    return asyncio.run(main())


def test_fifty_moves_in_two_seconds_are_one_write_after_the_value_settles():
    fake = FakeRollout(weight=10)
    writes_at: list[float] = []
    real_write = fake.write

    def write(*a, **kw):
        writes_at.append(time.monotonic())
        return real_write(*a, **kw)

    fake.write = write
    # A debounce long beside the gaps between moves, so a loaded machine's pauses cannot split them.
    s, touched, stamps = run_on_loop(fake, [(0.02, 11 + i) for i in range(50)], debounce=1.0, settle=1.6)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert max(gaps) < 1.0  # the premise: the value never stood still for a whole debounce
    assert [p for p, _ in fake.writes] == [60]  # the target is at most 3
    assert writes_at[0] - stamps[-1] >= 0.99  # only once the value stopped changing for `debounce`
    assert fake.writes[0][1].startswith("mldeploy-canary-fraud")  # the write leaves the loop alone
    assert touched and set(touched) == {threading.main_thread().name}  # widgets only on the loop thread
    assert "stable 40% / canary 60%" in s.split.value
    assert len(touched) == 1  # the split changed once...
    assert "canary 60%" in [u for u in s.split.comm.updates() if "value" in u][-1]["value"]  # ...and was sent


def test_two_settled_values_are_two_writes_in_order():
    fake = FakeRollout(weight=10)
    run_on_loop(fake, [(0, 20), (0.05, 25), (0.6, 40), (0.05, 45)], settle=0.7)
    assert [p for p, _ in fake.writes] == [25, 45]


def test_a_value_that_settles_while_a_write_is_out_is_written_next():
    fake = FakeRollout(weight=10, write_delay=0.5)
    s, _, _ = run_on_loop(fake, [(0, 30), (0.1, 31), (0.35, 35)], debounce=0.2, settle=1.6)
    # 30 is not written: it moved on within 0.2 s; 31 went out; 35 settled during 31's write
    assert [p for p, _ in fake.writes] == [31, 35]
    assert "canary 35%" in s.split.value and s.message.value == ""


def test_a_disabled_slider_rechecks_until_the_canary_is_ready():
    fake = FakeRollout(weight=10, ready=0)

    async def main():
        s = CanarySlider("fraud", **fake.kw(recheck=0.1))
        assert s.slider.disabled
        await asyncio.sleep(0.25)
        assert s.slider.disabled  # still nothing ready: it keeps checking
        fake.ready = 1
        await asyncio.sleep(0.4)
        return s

    s = asyncio.run(main())
    assert not s.slider.disabled and s.ready


def test_promote_runs_off_the_loop_and_reports_back_on_it():
    fake = FakeRollout(weight=30)
    threads: list[str] = []
    real = fake.promote

    def promote(*a, **kw):
        threads.append(threading.current_thread().name)
        time.sleep(0.1)
        return real(*a, **kw)

    fake.promote = promote

    async def main():
        s = CanarySlider("fraud", **fake.kw())
        frontend_clicks(s.promote_button)
        assert s.promote_button.disabled and "Promoting fraud..." in s.message.value
        await asyncio.sleep(0.4)
        return s

    s = asyncio.run(main())
    assert threads[0].startswith("mldeploy-canary-fraud") and s.over
    assert "Promoted fraud: version 2.0 is now the stable model" in s.message.value


def test_closing_stops_the_timer_so_nothing_is_written():
    fake = FakeRollout(weight=10)

    async def main():
        s = CanarySlider("fraud", **fake.kw())
        s.value = 50
        s.close()
        await asyncio.sleep(0.6)

    asyncio.run(main())
    assert fake.writes == []


def test_a_refused_stale_write_shows_why_and_snaps_to_what_the_cluster_holds():
    from jupyter_mldeploy.errors import StaleRollout

    fake = FakeRollout(weight=10)
    s = CanarySlider("fraud", **fake.kw())
    sentence = ("the canary weight of fraud was moved from 10% to 50% from another kernel 3 s ago; nothing "
                "was written.")

    def refuse(name, percent, *, namespace, kube):
        fake.writes.append((percent, threading.current_thread().name))
        fake.rollout = replace(fake.rollout, weight=50)  # what the other kernel wrote
        raise StaleRollout(sentence)

    s._write_fn = refuse
    frontend_drags(s.slider, 30)
    s.flush()
    assert [w for w, _ in fake.writes] == [30]
    assert s.value == 50 and s.weights.canary == 50  # the slider and the split show the cluster's 50%
    assert s.error == sentence and sentence in s.message.value
    assert not s.slider.disabled  # still a canary with a ready pod: the user may move it from 50


def test_a_write_refused_because_the_rollout_ended_elsewhere_leaves_nothing_to_move():
    from jupyter_mldeploy.errors import StaleRollout

    fake = FakeRollout(weight=10)
    s = CanarySlider("fraud", **fake.kw())
    sentence = "fraud was promoted from another kernel 20 s ago; nothing was written."

    def refuse(name, percent, *, namespace, kube):
        fake.rollout = None  # promoted elsewhere: no rollout any more
        raise StaleRollout(sentence)

    s._write_fn = refuse
    frontend_drags(s.slider, 30)
    s.flush()
    assert s.error == sentence and s.slider.disabled and s.promote_button.disabled
