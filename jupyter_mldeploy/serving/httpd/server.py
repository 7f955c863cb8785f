"""BoundedServer: accepts connections, hands each to the parker until its head is complete, then to a
fixed pool of workers (or a 503 from the refuser when every worker and waiting place is taken); it also
keeps the budget of body bytes all requests may hold at once."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Callable
from http.server import HTTPServer
from typing import TYPE_CHECKING, Any

from .limits import Limits, QuietLog, peer
from .parker import Parker

if TYPE_CHECKING:
    from .handler import BoundedHandler

__all__ = ["BoundedServer"]


class BoundedServer(HTTPServer):
    """An HTTPServer whose connections are served by a fixed pool of workers (see the module doc)."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BoundedHandler], *,
                 limits: Limits | None = None, errors: Callable[[str], Any] | None = None,
                 name: str = "serving") -> None:
        self.limits = limits = limits or Limits()
        self.quiet = QuietLog(errors, name)
        self._waiting: queue.Queue = queue.Queue()
        self._admitted = 0  # connections being served or waiting for a worker: workers + backlog at most
        self._refuse: queue.Queue = queue.Queue(maxsize=64)
        self._budget_lock = threading.Lock()
        self._body_bytes = 0
        self._local = threading.local()
        self.closing = threading.Event()
        self.busy = 0  # connections a worker is serving (for tests and the bench)
        super().__init__(address, handler)
        self.parker = Parker(self)
        self._threads = [threading.Thread(target=self._work, name=f"{name}-worker-{i}", daemon=True)
                         for i in range(limits.workers)]
        self._threads.append(threading.Thread(target=self._refuser, name=f"{name}-refuser", daemon=True))
        for t in self._threads:
            t.start()

    # -- connections

    def process_request(self, request: Any, client_address: Any) -> None:
        """Called by serve_forever for each accepted connection: the parker holds it until its head is
        complete (or, when even the parker is full, it is closed at once)."""
        if not self.parker.park(request, client_address, first=True):
            self.quiet("busy", f"{self.limits.max_connections} connections open: one was closed at once")
            self.shutdown_request(request)

    def dispatch(self, sock: socket.socket, address: Any, head: bytearray) -> None:
        """A connection with a complete request head: to a worker, or 503 when all are taken."""
        with self._budget_lock:
            admit = self._admitted < self.limits.workers + self.limits.backlog
            if admit:
                self._admitted += 1
        if admit:
            self._waiting.put((sock, address, head))
            return
        try:
            self._refuse.put_nowait(sock)
        except queue.Full:  # flooded: close without a word rather than block
            self.shutdown_request(sock)

    def finish_request(self, request: Any, client_address: Any) -> BoundedHandler:
        return self.RequestHandlerClass(request, client_address, self)

    def _work(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            sock, address, head = item
            with self._budget_lock:
                self.busy += 1
            parked = False
            try:
                self._local.head = head
                handler = self.finish_request(sock, address)
                parked = handler.keep and not self.closing.is_set() and self.parker.park(
                    sock, address, first=False, head=handler.rfile.take_buffer())
            except Exception as e:  # one line, never a traceback, and the worker lives on
                self.quiet("connection failed", f"{peer(address)}: {type(e).__name__}: {e}")
            finally:
                if not parked:
                    self.shutdown_request(sock)
                with self._budget_lock:
                    self.busy -= 1
                    self._admitted -= 1

    def initial_head(self) -> bytearray:
        """The bytes the parker read for the connection this worker thread is setting up."""
        head = getattr(self._local, "head", None)
        self._local.head = None
        return head if head is not None else bytearray()

    def _refuser(self) -> None:
        body = json.dumps({"error": "The server is busy: every worker is taken; retry shortly."}).encode()
        answer = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Retry-After: 1\r\nConnection: close\r\nContent-Length: " + str(len(body)).encode()
                  + b"\r\n\r\n" + body)
        while True:
            sock = self._refuse.get()
            if sock is None:
                return
            try:
                sock.settimeout(0.5)
                sock.sendall(answer)
                sock.shutdown(socket.SHUT_WR)
                # Read what else the client sent (a brief wait), so closing does not reset the
                # connection before it reads the answer.
                sock.settimeout(0.02)
                with contextlib.suppress(OSError):
                    sock.recv(64 * 1024)
            except OSError:
                pass
            finally:
                sock.close()
            self.quiet("busy", "every worker is taken: a connection was answered 503")

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()
        self.parker.close()
        for q in (self._waiting, self._refuse):
            while True:  # connections never served: close them
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self.shutdown_request(item[0] if isinstance(item, tuple) else item)
        for _ in range(self.limits.workers):
            self._waiting.put(None)
        self._refuse.put(None)

    # -- the body budget

    def reserve(self, n: int) -> bool:
        with self._budget_lock:
            if self._body_bytes + n > self.limits.body_budget:
                return False
            self._body_bytes += n
            return True

    def release(self, n: int) -> None:
        with self._budget_lock:
            self._body_bytes -= n
