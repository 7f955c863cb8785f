"""A steady, bounded load through the sandbox's Gateway, from a process of its own.

    python -m tests.dataplane.load URL HOST RPS MAX_SECONDS OUT.json

sends POST /v2/models/model/infer to URL (127.0.0.1 only) with the Host header HOST, RPS times a
second, until SIGTERM or MAX_SECONDS; then writes {"sent", "ok", "failed", "errors", "versions"}
to OUT.json. A request fails on any status but 200 or any connection error.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
from collections import Counter
from urllib.parse import urlsplit

BODY = json.dumps({"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]})


def main(url: str, host: str, rps: float, max_seconds: float, out: str) -> None:
    target = urlsplit(url)
    if target.hostname != "127.0.0.1":
        sys.exit("the load goes to 127.0.0.1 only")
    stop = False

    def _stop(*_a: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    sent = ok = 0
    errors: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    conn = None
    start = time.monotonic()
    while not stop and time.monotonic() - start < max_seconds:
        due = start + sent / rps
        time.sleep(max(0.0, due - time.monotonic()))
        sent += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
            conn.request("POST", "/v2/models/model/infer", BODY,
                         {"Host": host, "Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status == 200:
                ok += 1
                versions[json.loads(body).get("model_version", "?")] += 1
            else:
                errors[f"HTTP {resp.status}"] += 1
        except (OSError, http.client.HTTPException) as e:
            errors[type(e).__name__] += 1
            conn = None
    with open(out, "w") as f:
        json.dump({"sent": sent, "ok": ok, "failed": sent - ok, "errors": dict(errors),
                   "versions": dict(versions)}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
