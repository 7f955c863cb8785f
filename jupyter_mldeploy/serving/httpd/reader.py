"""The connection's input with deadlines, read by a worker: a slow client is cut off after a bounded time
whatever its pace, and a body is read into one preallocated buffer."""

from __future__ import annotations

import select
import socket
import time

from .limits import MAX_HEAD

__all__ = ["Reader"]


class Reader:
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
