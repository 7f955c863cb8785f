"""What the benchmarks share: one inference request and its timing, one quantile rule, one bounded wait,
and a client that records the requests it sends. Imported beside the scripts (`python bench/X.py` puts
bench/ first on sys.path), like latency_proxy."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from jupyter_mldeploy.kube.client import Kube

T = TypeVar("T")

INFER = "/v2/models/model/infer"
BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]})


def latencies(host: str, port: int, n: int, headers: dict[str, str], timeout: float = 5) -> list[float]:
    """`n` sequential keep-alive inference requests on one connection, each one's seconds; a non-200
    answer raises AssertionError (a route that is not there yet)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            c.request("POST", INFER, BODY, {"Content-Type": "application/json", **headers})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise AssertionError(f"HTTP {r.status}")
            out.append(time.perf_counter() - t)
    finally:
        c.close()
    return out


def quantile(values: list[float], p: float) -> float:
    """The nearest-rank quantile of `values` (nan when there are none)."""
    if not values:
        return float("nan")
    return sorted(values)[int(p * (len(values) - 1))]


def until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """`check()`'s first truthy answer, polled every `interval`; after `timeout` s the bench stops
    with one sentence saying what it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(interval)
    raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")


class RecordingKube(Kube):
    """The real client, recording when each request starts, as (perf_counter, method, path)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[float, str, str]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((time.perf_counter(), method, path))
        return super().request(method, path, **kwargs)

    def sent_of(self, *methods: str) -> list[tuple[float, str, str]]:
        return [s for s in self.sent if s[1] in methods]
