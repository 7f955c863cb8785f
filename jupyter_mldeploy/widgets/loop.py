"""Hand watch events from watch threads to the kernel's event loop, in batches, at a bounded rate;
run a widget's cluster reads and writes in one worker thread whose results come back the same way
(`LoopWorker`); and share one set of watches per namespace between the views there.

ipykernel 7 breaks widget updates made from other threads, so watch threads never touch a widget:
they `put` events here, and the consumer (a view) receives them in batches on the loop it was
built on. The first event after a quiet spell is delivered at once; a burst is coalesced so the
consumer runs at most `max_rate` times a second, however many events arrive.

Without a running loop (plain Python, a script, a test) events wait in the queue until the owner
calls `poll()` on its own thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .messages import capture

if TYPE_CHECKING:
    from ..api import Kube

__all__ = ["HandOff", "LoopWorker", "NamespaceWatches", "Outcome", "running_loop"]


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running on this thread (the kernel's, inside a cell or a widget callback), or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class HandOff(queue.Queue):
    """A queue whose `put` (any thread) wakes a batched delivery on the owner's event loop.

    It is a real `queue.Queue`: producers only ever call `put` (it could also stand in for the queue
    of a `kube.watch.Multiplexer`).
    """

    def __init__(self, deliver: Callable[[list[Any]], None], *, loop: asyncio.AbstractEventLoop | None,
                 max_rate: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._deliver = deliver
        self.loop = loop
        self.interval = 1.0 / max_rate
        self._clock = clock
        self._armed = False  # a delivery is scheduled; guarded by _arm_lock
        self._arm_lock = threading.Lock()
        self.last_delivery = float("-inf")  # when the last delivery began, on `clock` (loop thread only)
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.deliveries = 0  # batches handed to the consumer
        self.delivered = 0  # items in them

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        if self.loop is None or self.closed:
            return
        with self._arm_lock:
            if self._armed:
                return  # the scheduled delivery will take this item too
            self._armed = True
        try:
            self.loop.call_soon_threadsafe(self._schedule)
        except RuntimeError:  # the loop is closed: the kernel is shutting down
            self.closed = True

    def _schedule(self) -> None:
        """On the loop: deliver now, or at the end of the current rate window."""
        if self.closed:
            return
        delay = self.last_delivery + self.interval - self._clock()
        if delay <= 0:
            self._run()
        else:
            self._timer = self.loop.call_later(delay, self._run)

    def _run(self) -> None:
        self._timer = None
        with self._arm_lock:
            # disarm before draining: an item put after the drain arms a new delivery
            self._armed = False
        self.last_delivery = self._clock()
        self.poll()

    def drain(self) -> list[Any]:
        items = []
        while True:
            try:
                items.append(self.get_nowait())
            except queue.Empty:
                return items

    def poll(self) -> int:
        """Deliver what is waiting, now, on the caller's thread; returns how many items were delivered."""
        items = self.drain()
        if self.closed:
            return 0  # the owner stopped listening: what arrives late is dropped
        if items:
            self.deliveries += 1
            self.delivered += len(items)
            self._deliver(items)
        return len(items)

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle | None:
        """A timer on the owner's loop (None without a loop)."""
        if self.loop is None or self.closed:
            return None
        return self.loop.call_later(delay, callback)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


# ---------------------------------------------------------------------------------------------------
# one worker thread per widget, its results handed back to the loop


Outcome = tuple[Any, BaseException | None]  # (result, error) of a job run off the loop


class LoopWorker:
    """Runs a widget's jobs (cluster reads and writes) in one thread, in the order they were submitted,
    and each job's follow-up on the loop the widget was built on, through a HandOff; without a running
    loop (plain Python, tests), both run at once on the caller's thread.

    One thread, not a pool: two writes of one widget must reach the cluster in the order they were made.
    """

    def __init__(self, name: str, *, max_rate: float = 10.0) -> None:
        self.name = name
        # Taken here, on the kernel's thread: the worker reaches the loop only through this HandOff.
        self.handoff = HandOff(self._on_results, loop=running_loop(), max_rate=max_rate)
        self._pool: ThreadPoolExecutor | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.handoff.loop

    @property
    def live(self) -> bool:
        """True when an event loop runs the follow-ups (and the timers)."""
        return self.handoff.loop is not None

    def submit(self, job: Callable[[], Any], then: Callable[[Outcome], None]) -> None:
        """Run `job` in the worker and `then(outcome)` on the loop; both here and now without a loop."""
        if not self.live:
            then(capture(job))
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        self._pool.submit(lambda: self.handoff.put((then, capture(job))))

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle | None:
        """A timer on the loop (None without one)."""
        return self.handoff.call_later(delay, callback)

    def _on_results(self, items: list[tuple[Callable[[Outcome], None], Outcome]]) -> None:
        for then, outcome in items:  # on the loop: the only place results touch the widgets
            then(outcome)

    def close(self) -> None:
        """Stop delivering (what a job returns later is dropped) and let the thread end."""
        self.handoff.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)


# ---------------------------------------------------------------------------------------------------
# one set of watches per namespace, shared by every view there


class NamespaceWatches:
    """Namespace-wide watches of our Deployments, ReplicaSets and pods and of all events, shared by every
    view of that namespace on one connection: each object is read and decoded once, however many views
    show it (each view's StatusTracker keeps only its own Deployment's objects).

    A view subscribes with its HandOff and first receives what is already known (as ADDED, Deployments
    first), then every change. The watches stop when the last subscriber leaves.
    """

    _lock = threading.Lock()  # guards the registry; taken before a hub's own guard, never after
    _hubs: dict[tuple[int, str], NamespaceWatches] = {}
    KINDS = ("Deployment", "ReplicaSet", "Pod", "Event")
    MAX_EVENTS = 2000  # kept for late subscribers; the most recently changed win

    def __init__(self, kube: Kube, namespace: str) -> None:
        from ..api import namespace_watches

        self.key = (id(kube), namespace)
        self.watches = namespace_watches(kube, namespace)  # one per KIND, in the same order
        self._guard = threading.Lock()  # guards subscribers, known objects and failures
        self._subscribers: list[HandOff] = []
        self._known: dict[str, dict[str, Mapping]] = {k: {} for k in self.KINDS}  # kind -> uid -> object
        self._failures: list[tuple[str, Mapping, Exception | None]] = []
        self._threads = [threading.Thread(target=self._pump, args=(w,), daemon=True,
                                          name=f"mldeploy-watch-{namespace}-{w.kind}") for w in self.watches]
        self.stopped = False

    @classmethod
    def subscribe(cls, kube: Kube, namespace: str, handoff: HandOff) -> NamespaceWatches:
        """Attach `handoff` to the namespace's watches (started on first use)."""
        with cls._lock:
            hub = cls._hubs.get((id(kube), namespace))
            if hub is None:
                hub = cls._hubs[(id(kube), namespace)] = cls(kube, namespace)
                for t in hub._threads:
                    t.start()
            with hub._guard:
                # replay under the guard: no change slips between the replay and the subscription
                for kind in cls.KINDS:
                    for obj in hub._known[kind].values():
                        handoff.put(("ADDED", obj, None))
                for failure in hub._failures:
                    handoff.put(failure)
                hub._subscribers.append(handoff)
        return hub

    def unsubscribe(self, handoff: HandOff) -> None:
        with NamespaceWatches._lock:
            with self._guard:
                if handoff in self._subscribers:
                    self._subscribers.remove(handoff)
                last = not self._subscribers
            if last and not self.stopped:
                self.stopped = True
                if NamespaceWatches._hubs.get(self.key) is self:
                    del NamespaceWatches._hubs[self.key]
                for w in self.watches:
                    w.stop()

    @property
    def threads(self) -> list[threading.Thread]:
        return list(self._threads)

    def _pump(self, w: Any) -> None:
        try:
            for etype, obj in w.events():
                self._dispatch(etype, obj)
        except Exception as e:  # handed to the views, which say it in words
            self._dispatch("FAILED", {"kind": w.kind}, e)

    def _dispatch(self, etype: str, obj: Mapping, error: Exception | None = None) -> None:
        with self._guard:
            if etype == "FAILED":
                self._failures.append((etype, obj, error))
            else:
                self._remember(etype, obj)
            for handoff in self._subscribers:
                handoff.put((etype, obj, error))

    def _remember(self, etype: str, obj: Mapping) -> None:
        meta = obj.get("metadata") or {}
        known = self._known.get(obj.get("kind") or "")
        if known is None:
            return
        uid = meta.get("uid") or meta.get("name") or ""
        known.pop(uid, None)  # re-insert: the order stays the order of the last change
        if etype != "DELETED":
            known[uid] = obj
            if len(known) > self.MAX_EVENTS and obj.get("kind") == "Event":
                del known[next(iter(known))]
