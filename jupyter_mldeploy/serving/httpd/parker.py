"""The parker: the one thread that holds connections no worker serves, so a silent, slow or idle client
costs a socket and a small buffer, never a worker thread."""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .limits import MAX_HEAD, peer

if TYPE_CHECKING:
    from .server import BoundedServer

__all__ = ["Parker"]


class Parker:
    """One thread that holds every connection not being served: new ones, and idle keep-alive ones.

    It reads each connection's request head without blocking (at most MAX_HEAD bytes) and hands the
    connection to a worker only once the head is complete, so a client that is slow to send its head,
    or sends nothing, holds a socket and a small buffer here, never a worker. Deadlines: a new
    connection's head must be complete `header_timeout` after it was accepted; an idle keep-alive
    connection has `idle_timeout` to start its next request, then `header_timeout` to finish the head.
    """

    def __init__(self, server: BoundedServer) -> None:
        self._server = server
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._incoming: queue.SimpleQueue = queue.SimpleQueue()
        self._held: dict[socket.socket, _Parked] = {}
        self.count = 0  # connections held here or on their way in
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"{server.quiet.prefix}-parker", daemon=True)
        self.thread.start()

    def park(self, sock: socket.socket, address: Any, *, first: bool, head: bytearray | None = None) -> bool:
        """Hold `sock` until its next request head is complete; False when full (the caller closes)."""
        with self._lock:
            if self.count >= self._server.limits.max_connections:
                return False
            self.count += 1
        limits = self._server.limits
        now = time.monotonic()
        deadline = now + (limits.header_timeout if first or head else limits.idle_timeout)
        self._incoming.put(_Parked(sock, address, head or bytearray(), deadline, first))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")
        return True

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _run(self) -> None:
        server = self._server
        chunk = bytearray(MAX_HEAD)
        while not server.closing.is_set():
            now = time.monotonic()
            soonest = min((p.deadline for p in self._held.values()), default=now + 0.5)
            events = self._selector.select(max(0.0, min(soonest - now, 0.5)))
            for key, _ in events:
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        while self._wake_r.recv(4096):
                            pass
                    continue
                parked = self._held[key.fileobj]
                self._read(parked, chunk)
            while True:
                try:
                    parked = self._incoming.get_nowait()
                except queue.Empty:
                    break
                try:
                    parked.sock.setblocking(False)
                    self._selector.register(parked.sock, selectors.EVENT_READ)
                except (OSError, ValueError):
                    self._drop(parked, None)
                    continue
                self._held[parked.sock] = parked
            now = time.monotonic()
            for parked in [p for p in self._held.values() if p.deadline <= now]:
                if parked.first or parked.head:
                    self._drop(parked, "sent no complete request head in time" if parked.head
                               else "connected and sent nothing")
                else:
                    self._drop(parked, None)  # an idle keep-alive connection, closed quietly
        for parked in list(self._held.values()):
            self._drop(parked, None)

    def _read(self, parked: _Parked, chunk: bytearray) -> None:
        try:
            n = parked.sock.recv_into(chunk)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self._drop(parked, None if not parked.head else f"{type(e).__name__}")
            return
        if not n:
            self._drop(parked, None)  # the client closed: nothing to say
            return
        if not parked.head:
            parked.deadline = time.monotonic() + self._server.limits.header_timeout
        parked.head += chunk[:n]
        complete = parked.head.find(b"\r\n\r\n") >= 0 or parked.head.find(b"\n\n") >= 0
        if complete or len(parked.head) >= MAX_HEAD:  # too long: a worker answers 431 or 414
            self._release(parked)
            parked.sock.setblocking(True)
            self._server.dispatch(parked.sock, parked.address, parked.head)

    def _release(self, parked: _Parked) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(parked.sock)
        self._held.pop(parked.sock, None)
        with self._lock:
            self.count -= 1

    def _drop(self, parked: _Parked, why: str | None) -> None:
        self._release(parked)
        if why:
            self._server.quiet("timeout", f"{peer(parked.address)}: {why}")
        with contextlib.suppress(OSError):
            parked.sock.close()

    def close(self) -> None:
        self.wake()
        self.thread.join(timeout=2)
        with contextlib.suppress(OSError):
            self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


@dataclass
class _Parked:
    sock: socket.socket
    address: Any
    head: bytearray
    deadline: float
    first: bool
