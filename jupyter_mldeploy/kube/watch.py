"""Resilient watches: list, then watch from the list's resourceVersion, the way informers do.

A stream that ends (server timeout, dropped connection, API server restart) is resumed from the
last resourceVersion seen; a 410 Gone (that version is compacted away) triggers a fresh list whose
differences are replayed as events, so the consumer never misses a change. Bookmarks keep the
resourceVersion fresh on quiet streams.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ..errors import ClusterError
from .client import Kube

WATCH_SECONDS = 60  # server-side timeout per stream; resuming is cheap


@dataclass
class Watch:
    """One resource collection to follow. `events()` yields (type, object) until `stop()`."""

    kube: Kube
    path: str
    kind: str
    label_selector: str | None = None
    field_selector: str | None = None
    initial_list: bool = True
    resource_version: str | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _known: dict[str, dict] = field(default_factory=dict)
    _response: list = field(default_factory=list)
    reconnects: int = 0
    relists: int = 0

    def stop(self) -> None:
        self._stopped.set()
        for resp in list(self._response):
            # The reader thread sees the closed socket and exits.
            with contextlib.suppress(Exception):
                resp.shutdown() if hasattr(resp, "shutdown") else resp.close()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def _query(self) -> dict:
        return {"labelSelector": self.label_selector, "fieldSelector": self.field_selector}

    def _list(self) -> Iterator[tuple[str, dict]]:
        _, body = self.kube.request("GET", self.path, query=self._query())
        self.resource_version = body["metadata"]["resourceVersion"]
        fresh = {}
        for item in body.get("items", []):
            item.setdefault("kind", self.kind)
            fresh[item["metadata"]["uid"]] = item
        # Replay the difference against what the consumer has already seen.
        for uid, obj in self._known.items():
            if uid not in fresh:
                yield "DELETED", obj
        for uid, obj in fresh.items():
            old = self._known.get(uid)
            if old is None:
                yield "ADDED", obj
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                yield "MODIFIED", obj
        self._known = fresh

    def events(self) -> Iterator[tuple[str, dict]]:
        backoff = 0.1
        if self.initial_list or self.resource_version is None:
            if self.initial_list:
                yield from self._list()
            else:  # start from now: only changes after this moment
                _, body = self.kube.request("GET", self.path, query={**self._query(), "limit": 1})
                self.resource_version = body["metadata"]["resourceVersion"]
        while not self.stopped:
            query = {**self._query(), "watch": "true", "resourceVersion": self.resource_version,
                     "allowWatchBookmarks": "true", "timeoutSeconds": WATCH_SECONDS}
            try:
                for event in self.kube.stream(self.path, query, read_timeout=WATCH_SECONDS + 15,
                                              holder=self._response):
                    backoff = 0.1
                    kind, obj = event.get("type"), event.get("object", {})
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise _Gone()
                        raise ClusterError(f"watch of {self.path} failed: {obj.get('message')}",
                                           status=obj.get("code"))
                    self.resource_version = obj.get("metadata", {}).get("resourceVersion",
                                                                         self.resource_version)
                    if kind == "BOOKMARK":
                        continue
                    obj.setdefault("kind", self.kind)
                    uid = obj["metadata"]["uid"]
                    if kind == "DELETED":
                        self._known.pop(uid, None)
                    else:
                        self._known[uid] = obj
                    yield kind, obj
                    if self.stopped:
                        return
            except _Gone:
                self.relists += 1
                yield from self._list()
            except ClusterError as e:
                if self.stopped:
                    return
                if e.status == 410:
                    self.relists += 1
                    yield from self._list()
                    continue
                if e.status in (401, 403, 404):
                    raise
                self._pause(backoff)
                backoff = min(backoff * 2, 2.0)
                self.reconnects += 1
            except Exception:  # a dropped connection or a restarting API server
                if self.stopped:
                    return
                self._pause(backoff)
                backoff = min(backoff * 2, 2.0)
                self.reconnects += 1

    def _pause(self, seconds: float) -> None:
        self._stopped.wait(seconds)


class _Gone(Exception):
    pass


class Multiplexer:
    """Runs several watches in threads and hands their events to one consumer through a queue.

    The consumer (the kernel's thread, or the event loop via call_soon_threadsafe) is the only one
    that touches state derived from the events.
    """

    def __init__(self, watches: list[Watch]) -> None:
        self.watches = watches
        self.queue: queue.Queue = queue.Queue()
        self._threads = [threading.Thread(target=self._pump, args=(w,), daemon=True,
                                          name=f"mldeploy-watch-{w.kind}") for w in watches]

    def _pump(self, w: Watch) -> None:
        try:
            for ev in w.events():
                self.queue.put((ev[0], ev[1], None))
        except Exception as e:  # delivered to the consumer, which decides
            self.queue.put(("FAILED", {"kind": w.kind}, e))

    def start(self) -> Multiplexer:
        for t in self._threads:
            t.start()
        return self

    def get(self, timeout: float) -> tuple[str, Mapping, Exception | None] | None:
        try:
            return self.queue.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None

    def drain(self) -> list[tuple[str, Mapping, Exception | None]]:
        items = []
        while True:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                return items

    def stop(self) -> None:
        for w in self.watches:
            w.stop()

    def __enter__(self) -> Multiplexer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_until(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
