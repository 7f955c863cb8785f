"""A bounded HTTP/1.1 server on the standard library: what the reference model server stands on.

`http.server.ThreadingHTTPServer` trusts its clients: one thread per connection with no cap, no socket
timeout, a negative Content-Length read to the end of the stream, and a traceback on stderr for every
dropped connection. Here every resource a client can hold is bounded:

- connections: a fixed pool of `workers` threads and a waiting line of `backlog` accepted connections;
  past that a connection is answered 503 at once (by a small refuser thread, never the acceptor) and
  closed;
- time: the request head must arrive within `header_timeout` of the first byte (a total deadline, so
  a client dribbling one byte at a time gains nothing), each body read may wait `read_timeout`, the
  whole body `body_timeout`; an idle keep-alive connection is closed after `idle_timeout`, and at once
  when another connection is waiting for a worker, so keep-alive clients never starve new ones;
- bytes: Content-Length must be plain digits (400), present on a body-carrying method (411), at most
  `max_body` (413), and all bodies read at once together at most `body_budget` (503); chunked bodies
  are refused with 411. The body is read into one preallocated buffer;
- logs: a client error (reset, timeout, malformed request) is one short line, at most one per kind per
  second, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

__all__ = ["BoundedHandler", "BoundedServer", "HTTPError", "Limits", "QuietLog"]

_DIGITS = frozenset(b"0123456789")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class Limits:
    """What one client may hold. Times in seconds, sizes in bytes."""

    workers: int = 16
    backlog: int = 16  # accepted connections waiting for a worker before the next one gets 503
    max_body: int = 16 * 1024 * 1024
    body_budget: int = 64 * 1024 * 1024  # bodies of all requests being read or served at once
    header_timeout: float = 10.0
    read_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 5.0
    write_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.workers < 1 or self.backlog < 0:
            raise ValueError("workers must be at least 1 and backlog at least 0")
        if self.max_body < 0 or self.body_budget < self.max_body:
            raise ValueError("body_budget must be at least max_body")


class HTTPError(Exception):
    """A request answered with `status` and a JSON `{"error": message}`; `close` ends the connection."""

    def __init__(self, message: str, status: int = 400, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.close = close


class QuietLog:
    """One line per client error, at most one per kind per second; the rest are counted in the next."""

    def __init__(self, write: Callable[[str], Any] | None, prefix: str) -> None:
        self._write = write
        self._prefix = prefix
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, kind: str, text: str) -> None:
        if self._write is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(kind, -10.0) < 1.0:
                self._skipped[kind] = self._skipped.get(kind, 0) + 1
                return
            self._last[kind] = now
            skipped = self._skipped.pop(kind, 0)
        more = f" (and {skipped} more like it)" if skipped else ""
        self._write(f"{self._prefix}: {kind}: {' '.join(text.split())}{more}")


class _Reader:
    """The connection's input with deadlines: the `rfile` BaseHTTPRequestHandler reads the head from.

    Reads raise TimeoutError when a deadline passes, so a slow client is cut off after a bounded time
    whatever its pace. `buffered` says whether a pipelined request is already here.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.deadline = float("inf")
        self.gap = float("inf")  # the longest wait for one recv

    @property
    def buffered(self) -> bool:
        return bool(self._buf)

    def _recv_into(self, view: memoryview) -> int:
        wait = min(self.deadline - time.monotonic(), self.gap)
        if wait <= 0:
            raise TimeoutError("the request took too long to arrive")
        self._sock.settimeout(wait)
        try:
            return self._sock.recv_into(view)
        except TimeoutError:  # socket.timeout
            raise TimeoutError("the client sent nothing in time") from None

    def readline(self, limit: int = -1) -> bytes:
        limit = limit if limit >= 0 else 1 << 62
        start = 0
        chunk = bytearray(16 * 1024)
        while True:
            end = self._buf.find(b"\n", start, limit)
            if end >= 0:
                return self._take(end + 1)
            if len(self._buf) >= limit:
                return self._take(limit)
            start = len(self._buf)
            n = self._recv_into(memoryview(chunk))
            if not n:
                return self._take(len(self._buf))
            self._buf += chunk[:n]

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read_body(self, n: int) -> bytearray:
        """Exactly n bytes in one buffer (no intermediate copies); EOF before that is a ConnectionError."""
        out = bytearray(n)
        have = min(n, len(self._buf))
        out[:have] = self._buf[:have]
        del self._buf[:have]
        view = memoryview(out)
        while have < n:
            got = self._recv_into(view[have:])
            if not got:
                raise ConnectionError(f"the client closed the connection after {have} of {n} body bytes")
            have += got
        return out

    def discard(self, n: int) -> None:
        """Read and drop n bytes (a small body nobody asked for) without holding them."""
        chunk = memoryview(bytearray(min(n, 64 * 1024) or 1))
        take = min(n, len(self._buf))
        del self._buf[:take]
        n -= take
        while n > 0:
            got = self._recv_into(chunk[:min(n, len(chunk))])
            if not got:
                raise ConnectionError("the client closed the connection mid-body")
            n -= got

    def close(self) -> None:
        self._buf = bytearray()

    def read(self, n: int = -1) -> bytes:  # for code that expects a file; bounded by the caller
        if n < 0:
            raise ValueError("an unbounded read is never done here")
        return bytes(self.read_body(n))


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
        self._admitted = 0  # connections being served or waiting: at most workers + backlog
        self._refuse: queue.Queue = queue.Queue(maxsize=64)
        self._budget_lock = threading.Lock()
        self._body_bytes = 0
        self.closing = threading.Event()
        self.busy = 0  # connections a worker is serving (for tests and the bench)
        super().__init__(address, handler)
        self._threads = [threading.Thread(target=self._work, name=f"{name}-worker-{i}", daemon=True)
                         for i in range(limits.workers)]
        self._threads.append(threading.Thread(target=self._refuser, name=f"{name}-refuser", daemon=True))
        for t in self._threads:
            t.start()

    # -- connections

    def process_request(self, request: Any, client_address: Any) -> None:
        """Called by serve_forever for each accepted connection: queue it, or refuse it (503)."""
        with self._budget_lock:
            admit = self._admitted < self.limits.workers + self.limits.backlog
            if admit:
                self._admitted += 1
        if admit:
            self._waiting.put((request, client_address))
        else:
            try:
                self._refuse.put_nowait(request)
            except queue.Full:  # flooded: close without a word rather than block the acceptor
                self.shutdown_request(request)

    def others_waiting(self) -> bool:
        return not self._waiting.empty()

    def _work(self) -> None:
        while True:
            item = self._waiting.get()
            if item is None:
                return
            sock, address = item
            with self._budget_lock:
                self.busy += 1
            try:
                self.finish_request(sock, address)
            except Exception as e:  # noqa: BLE001 - one line, never a traceback, and the worker lives on
                self.quiet("connection failed", f"{_peer(address)}: {type(e).__name__}: {e}")
            finally:
                self.shutdown_request(sock)
                with self._budget_lock:
                    self.busy -= 1
                    self._admitted -= 1

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
                # Read what the client already sent (a brief wait), so closing does not reset the
                # connection before it reads the answer.
                sock.settimeout(0.02)
                with contextlib.suppress(OSError):
                    sock.recv(64 * 1024)
                sock.settimeout(0.5)
                sock.sendall(answer)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                sock.close()
            self.quiet("busy", "every worker is taken: a connection was answered 503")

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()
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


def _peer(address: Any) -> str:
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)


class BoundedHandler(BaseHTTPRequestHandler):
    """A BaseHTTPRequestHandler whose reads have deadlines and whose body is checked before it is read.

    Subclasses implement `respond(method, path, body) -> (status, payload, headers)`; payload is
    JSON-encoded. HTTPError from respond (or from the body checks) becomes its status and message.
    """

    protocol_version = "HTTP/1.1"
    default_request_version = "HTTP/1.1"  # a malformed request line still gets a status line back
    disable_nagle_algorithm = True
    server: BoundedServer
    rfile: Any

    def setup(self) -> None:
        super().setup()
        self.rfile = _Reader(self.connection)
        self._reserved = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """No access log (the model server logs predictions); client errors go through `quiet`."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        self.server.quiet("bad request", f"{_peer(self.client_address)}: {format % args}")

    # -- the connection's life

    def handle(self) -> None:
        limits = self.server.limits
        self.close_connection = True
        first = True
        while not self.server.closing.is_set():
            if not self._request_arrives(limits.header_timeout if first else limits.idle_timeout, first):
                return
            self.rfile.deadline = time.monotonic() + limits.header_timeout
            self.rfile.gap = limits.read_timeout
            try:
                self.handle_one_request()
            except (ConnectionError, TimeoutError) as e:
                self.server.quiet("client gone", f"{_peer(self.client_address)}: {e}")
                return
            finally:
                if self._reserved:
                    self.server.release(self._reserved)
                    self._reserved = 0
            if self.close_connection:
                return
            first = False

    def _request_arrives(self, timeout: float, first: bool) -> bool:
        """Wait for the next request's first byte; False: timed out, shutting down, or make room."""
        if self.rfile.buffered:
            return True
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                if first:
                    self.server.quiet("timeout", f"{_peer(self.client_address)}: connected and sent nothing")
                return False
            try:
                ready, _, _ = select.select([self.connection], [], [], min(left, 0.1))
            except (OSError, ValueError):
                return False
            if ready:
                return True
            if self.server.closing.is_set() or (not first and self.server.others_waiting()):
                return False  # an idle keep-alive connection gives its worker to one that waits

    def handle_expect_100(self) -> bool:
        # Check the length before inviting the body: a client told 413 never sends it.
        try:
            self._length()
        except HTTPError as e:
            self._answer(e.status, {"error": str(e)}, close=True)
            return False
        return super().handle_expect_100()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's errors (bad request line, header too long, ...) as one JSON line."""
        short = self.responses.get(code, ("Error",))[0]
        self.log_error("%d %s", code, message or short)
        self._answer(code, {"error": f"{message or short}."}, close=True)

    # -- the body

    def _length(self) -> int:
        """The declared body length, checked; 0 for no body. Raises HTTPError (the connection closes)."""
        if self.headers.get("Transfer-Encoding") is not None:
            raise HTTPError("Chunked (or otherwise encoded) request bodies are not supported; send the "
                            "body with a Content-Length.", 411, close=True)
        values = self.headers.get_all("Content-Length") or []
        if not values:
            if self.command in _METHODS_WITH_BODY:
                raise HTTPError(f"A {self.command} needs a Content-Length header.", 411, close=True)
            return 0
        if len(set(v.strip() for v in values)) != 1:
            raise HTTPError("The request has conflicting Content-Length headers.", 400, close=True)
        text = values[0].strip()
        if not text or len(text) > 19 or not set(text.encode("ascii", "replace")) <= _DIGITS:
            raise HTTPError(f"Content-Length {text[:40]!r} is not a number of bytes.", 400, close=True)
        n = int(text)
        if n > self.server.limits.max_body:
            raise HTTPError(f"The request body is {n} bytes; the limit is {self.server.limits.max_body}.",
                            413, close=True)
        return n

    def read_body(self) -> bytearray:
        """The request body, whole, within the limits; HTTPError otherwise."""
        n = self._length()
        if n == 0:
            return bytearray()
        if not self.server.reserve(n):
            raise HTTPError("The server is busy reading other requests' bodies; retry shortly.", 503,
                            close=True)
        self._reserved += n
        limits = self.server.limits
        self.rfile.deadline = time.monotonic() + limits.body_timeout
        try:
            return self.rfile.read_body(n)
        except TimeoutError:
            raise HTTPError(f"The request body did not arrive in time ({n} bytes declared).", 408,
                            close=True) from None

    # -- the answer

    def _answer(self, status: int, payload: Any, *, headers: dict[str, str] | None = None,
                close: bool = False) -> None:
        data = json.dumps(payload, separators=(",", ":"), default=str).encode()
        if close or self.server.others_waiting():  # a busy server does not keep this connection
            self.close_connection = True
        self.connection.settimeout(self.server.limits.write_timeout)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
