"""BoundedHandler: one connection's requests, each body checked (length, budget, time) before it is read,
and every answer JSON."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from .limits import HTTPError, peer
from .reader import Reader

if TYPE_CHECKING:
    from .server import BoundedServer

__all__ = ["BoundedHandler"]

_DIGITS = frozenset(b"0123456789")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


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
        self.rfile = Reader(self.connection, self.server.initial_head())
        self._reserved = 0
        self.keep = False

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        """No access log (the model server logs predictions); client errors go through `quiet`."""

    def log_error(self, format: str, *args: Any) -> None:
        self.server.quiet("bad request", f"{peer(self.client_address)}: {format % args}")

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
                self.server.quiet("client gone", f"{peer(self.client_address)}: {e}")
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
