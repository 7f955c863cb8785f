"""Replay 1000 rows to two local reference servers and compare wall time with the servers' own time.

    python bench/bench_shadow.py [--rows 1000] [--concurrency 8] [--model-ms 2]

Both servers run as their own processes on 127.0.0.1 with a model that takes `--model-ms` per request.
The servers' own latencies come from their prediction log lines (`latency_ms`, request in to answer
out). A serial client would need at least the sum of both; the ratio wall / sum shows what sending
both sides of each row at once, `concurrency` rows at a time, buys. One line of figures is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def primary(rows: list) -> list[float]:
    time.sleep(float(os.environ.get("BENCH_MODEL_MS", "2")) / 1000)
    return [float(sum(r)) for r in rows]


def shadow(rows: list) -> list[float]:
    time.sleep(float(os.environ.get("BENCH_MODEL_MS", "2")) / 1000)
    return [float(sum(r)) + (0.25 if r[0] % 10 == 0 else 0.0) for r in rows]


def _start(model: str, log: Path, model_ms: float) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_MODEL_MS": str(model_ms)}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_mldeploy.serving", "--model", model,
                             "--name", "bench", "--port", "0", "--host", "127.0.0.1", "--log-file", str(log)],
                            env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    banner = proc.stderr.readline()
    if "listening on" not in banner:
        proc.kill()
        raise SystemExit(f"the reference server did not start: {banner}{proc.stderr.read()}")
    return proc, banner.split("listening on ")[1].strip()


def _server_ms(log: Path, ids: set[str]) -> float:
    total = 0.0
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec["request_id"] in ids:
            total += rec["latency_ms"]
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--model-ms", type=float, default=2.0)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from jupyter_mldeploy.shadow import compare

    rows = [[i, i % 7, (i * 13) % 11] for i in range(args.rows)]
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        plog, slog = Path(tmp) / "primary.jsonl", Path(tmp) / "shadow.jsonl"
        procs = []
        try:
            p, p_url = _start("bench.bench_shadow:primary", plog, args.model_ms)
            procs.append(p)
            s, s_url = _start("bench.bench_shadow:shadow", slog, args.model_ms)
            procs.append(s)
            compare("bench", rows[:20], primary_url=p_url, shadow_url=s_url)  # warm up connections
            report = compare("bench", rows, primary_url=p_url, shadow_url=s_url, concurrency=args.concurrency)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=10)
                proc.stderr.close()
        ids = set(report.rows["request_id"])
        p_ms, s_ms = _server_ms(plog, ids), _server_ms(slog, ids)
    sm = report.summary
    wall = sm.wall_s
    serial = (p_ms + s_ms) / 1000
    print(f"shadow replay: rows={sm.n} concurrency={args.concurrency} model_ms={args.model_ms:g} "
          f"wall={wall:.3f}s server_sum={serial:.3f}s "
          f"(primary {p_ms / 1000:.3f}s + shadow {s_ms / 1000:.3f}s) "
          f"ratio wall/server_sum={wall / serial:.3f} (x{serial / wall:.1f}) "
          f"round-trip p50 primary={sm.primary_p50_ms:.2f}ms shadow={sm.shadow_p50_ms:.2f}ms "
          f"agreement={sm.agreement_pct:.1f}% errors={sm.primary_errors + sm.shadow_errors}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
