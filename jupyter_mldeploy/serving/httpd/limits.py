"""What a client may hold (`Limits`), how a refused request is raised (`HTTPError`), and the one short log
line per kind of client error (`QuietLog`): the bounds every other part of the server reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_HEAD", "HTTPError", "Limits", "QuietLog", "peer"]

# The longest request head (request line and headers) accepted.
MAX_HEAD = 64 * 1024


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


def peer(address: Any) -> str:
    """A client's address as "host:port", for a log line."""
    try:
        return f"{address[0]}:{address[1]}"
    except (TypeError, IndexError):
        return str(address)
