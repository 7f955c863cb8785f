"""The prediction log: one JSON line per answered or failed request, joined later by request id.
Standard library only."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import IO, Any


class PredictionLog:
    """Writes one JSON line per prediction to a path, a text stream, or a callable (given the line).

    `None` writes nothing. Lines are written whole under a lock and flushed, so a reader (or a log
    shipper) never sees half a line.
    """

    def __init__(self, target: str | os.PathLike | IO[str] | Callable[[str], Any] | None) -> None:
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        self._stream: Any = None  # flushed after every line
        self._newline = True  # streams get "line\n"; a callable gets the line alone
        self._write: Callable[[str], Any] | None
        if target is None:
            self._write = None
        elif isinstance(target, (str, os.PathLike)):
            self._owned = self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - see close()
            self._write = self._owned.write
        elif hasattr(target, "write"):
            self._write = target.write
            self._stream = target if hasattr(target, "flush") else None
        elif callable(target):
            self._write = target
            self._newline = False
        else:
            raise TypeError(f"log must be a path, a text stream, a callable or None, not {type(target)}")

    def write(self, record: Mapping[str, Any]) -> None:
        if self._write is None:
            return
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self._write is None:  # closed meanwhile
                return
            self._write(line + "\n" if self._newline else line)
            if self._stream is not None:
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = self._stream = self._write = None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
