"""A bounded HTTP/1.1 server on the standard library: what the reference model server stands on.

`http.server.ThreadingHTTPServer` trusts its clients: one thread per connection with no cap, no socket
timeout, a negative Content-Length read to the end of the stream, and a traceback on stderr for every
dropped connection. Here every resource a client can hold is bounded:

- connections: at most `max_connections` open; one "parker" thread holds every connection that is not
  being served (new ones, idle keep-alive ones) and reads its request head without blocking, so a
  worker only ever gets a connection whose head is complete: a slow or silent client (slowloris),
  or an idle keep-alive one, holds a socket and a small buffer, never a worker;
- workers: a fixed pool of `workers` threads and a waiting line of `backlog` connections with a
  complete head; past that a connection is answered 503 (by a small refuser thread) and closed;
- time: a new connection's head must be complete `header_timeout` after it was accepted (a total
  deadline, so a client dribbling one byte at a time gains nothing), each body read may wait
  `read_timeout`, the whole body `body_timeout`; an idle keep-alive connection is closed after
  `idle_timeout`;
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
import selectors
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
    # Accepted connections waiting for a worker before the next one gets 503. A waiting connection
    # costs a socket in a queue, no thread and no buffer.
    backlog: int = 128
    max_body: int = 16 * 1024 * 1024
    body_budget: int = 64 * 1024 * 1024  # bodies of all requests being read or served at once
    header_timeout: float = 10.0
    read_timeout: float = 10.0
    body_timeout: float = 60.0
    idle_timeout: float = 5.0
    write_timeout: float = 10.0
    max_connections: int = 1024  # held open at once (parked, waiting or served); more are closed

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
        self.prefix = prefix
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
        self._write(f"{self.prefix}: {kind}: {' '.join(text.split())}{more}")


class _Reader:
    """The connection's input with deadlines: the `rfile` BaseHTTPRequestHandler reads the head from.

    Reads raise TimeoutError when a deadline passes, so a slow client is cut off after a bounded time
    whatever its pace. `buffered` says whether a pipelined request is already here.
    """

    def __init__(self, sock: socket.socket, initial: bytearray | None = None) -> None:
        self._sock = sock
        self._buf = initial if initial is not None else bytearray()
        self.deadline = float("inf")
        self.gap = float("inf")  # the longest wait for one recv

    @property
    def buffered(self) -> bool:
        return bool(self._buf)

    def head_within(self, wait: float) -> bool:
        """Whether a complete request head is buffered after at most `wait` seconds (what a client
        sending its next request right away needs; a partial head is left for the parker)."""
        if not self._buf:
            try:
                ready, _, _ = select.select([self._sock], [], [], wait)
                if ready:
                    self._sock.settimeout(0)
                    chunk = self._sock.recv(MAX_HEAD)
                    if not chunk:
                        return False
                    self._buf += chunk
            except (BlockingIOError, InterruptedError):
                pass
            except (OSError, ValueError):
                return False
        return self._buf.find(b"\r\n\r\n") >= 0 or self._buf.find(b"\n\n") >= 0

    def take_buffer(self) -> bytearray:
        buf, self._buf = self._buf, bytearray()
        return buf

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


class _Parker:
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
            self._server.quiet("timeout", f"{_peer(parked.address)}: {why}")
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


# The longest request head (request line and headers) accepted.
MAX_HEAD = 64 * 1024


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
        self.parker = _Parker(self)
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
            except Exception as e:  # noqa: BLE001 - one line, never a traceback, and the worker lives on
                self.quiet("connection failed", f"{_peer(address)}: {type(e).__name__}: {e}")
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
        self.rfile = _Reader(self.connection, self.server.initial_head())
        self._reserved = 0
        self.keep = False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """No access log (the model server logs predictions); client errors go through `quiet`."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        self.server.quiet("bad request", f"{_peer(self.client_address)}: {format % args}")

    # -- the connection's life

    def handle(self) -> None:
        """Serve the requests whose heads are here; then `keep` says whether to park the connection."""
        limits = self.server.limits
        self.keep = False
        self.close_connection = True
        while not self.server.closing.is_set():
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
            if not self.rfile.head_within(0.002):
                # Idle, or a head still on its way: the parker waits for it, not a worker.
                self.keep = True
                return

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
        if close:
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
