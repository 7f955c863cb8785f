"""Load on the reference model server from a second process, against the stdlib server it replaced.

    python bench/bench_serving.py [--requests 3000] [--seconds 6] [--slowloris 200] [--hold 4]

Two servers run as their own processes on 127.0.0.1 with the same trivial model: the bounded server of
this tree and the `ThreadingHTTPServer` one as of commit 278d706 (read with `git show` into a temp
folder). This process is the client: asyncio keep-alive connections (reconnecting when the server
closes one), at 1, 8 and 64 concurrent clients, each level bounded by `--requests` answers and
`--seconds`. Then a slowloris: `--slowloris` connections each send part of a request head and a
byte a second for `--hold` seconds, while the server's RSS and threads are sampled from /proc and
one well-behaved request a tenth of a second is sent to see who is still answered.

Figures are printed per server and as ratios new/old, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "278d706"
LEVELS = (1, 8, 64)


def model(rows: list) -> list[float]:
    return [float(sum(r)) for r in rows]


BODY = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 8], "datatype": "FP64",
                               "data": [0.5, 1, 2, 3, 4, 5, 6, 7]}]}).encode()
REQUEST = (b"POST /v2/models/bench/infer HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
PROBE = b"GET /v2/health/ready HTTP/1.1\r\nHost: bench\r\n\r\n"


# -- the servers -------------------------------------------------------------------------------------

_OLD_LAUNCH = """
import sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import old_server as s
srv = s.make_server("bench.bench_serving:model", name="bench", port=0, log=sys.argv[3])
print(s.banner(srv), file=sys.stderr, flush=True)
srv.serve_forever(poll_interval=0.2)
"""


def _start(cmd: list[str], env: dict) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=ROOT)
    banner = proc.stderr.readline()
    if "listening on" not in banner:
        proc.kill()
        raise SystemExit(f"a server did not start: {banner}{proc.stderr.read()}")
    return proc, int(banner.rsplit(":", 1)[1])


def start_new(tmp: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return _start([sys.executable, "-m", "jupyter_mldeploy.serving", "--model", "bench.bench_serving:model",
                   "--name", "bench", "--port", "0", "--log-file", str(tmp / "new.jsonl")], env)


def start_old(tmp: Path) -> tuple[subprocess.Popen, int]:
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:jupyter_mldeploy/serving/server.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    (tmp / "old_server.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return _start([sys.executable, "-c", _OLD_LAUNCH, str(tmp), str(ROOT), str(tmp / "old.jsonl")], env)


def proc_status(pid: int) -> tuple[int, int]:
    """(RSS in kB, threads) of a process, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


# -- the client --------------------------------------------------------------------------------------


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bool]:
    """Send one request, read its response: (status, the server keeps the connection)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


async def _client(port: int, stop: dict, latencies: list[float], statuses: dict[str, int]) -> None:
    conn = None
    while stop["left"] > 0 and time.perf_counter() < stop["until"]:
        stop["left"] -= 1
        started = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            status, keep = await asyncio.wait_for(_exchange(*conn, REQUEST), 10)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            statuses["error"] = statuses.get("error", 0) + 1
            conn = _close(conn)
            continue
        latencies.append(time.perf_counter() - started)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if not keep:
            conn = _close(conn)
    _close(conn)


def _close(conn: tuple | None) -> None:
    if conn is not None:
        conn[1].close()
    return None


async def load(port: int, clients: int, requests: int, seconds: float) -> dict:
    # here, not at the top: the servers import this file as bench.bench_serving, where `measure` is not
    from measure import quantile  # beside this script

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    stop = {"left": requests, "until": time.perf_counter() + seconds}
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, stop, latencies, statuses) for _ in range(clients)))
    wall = time.perf_counter() - started
    ok = statuses.get("200", 0)
    return {"clients": clients, "ok": ok, "statuses": statuses, "rps": ok / wall,
            "p50_ms": 1000 * quantile(latencies, 0.5), "p99_ms": 1000 * quantile(latencies, 0.99)}


async def slowloris(port: int, pid: int, n: int, hold: float) -> dict:
    """n connections that never finish their head; RSS/threads sampled, one probe each 0.1 s."""
    rss0, threads0 = proc_status(pid)
    conns = []
    for _ in range(n):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        w.write(b"POST /v2/models/bench/infer HTTP/1.1\r\nHost: x\r\n")
        conns.append((r, w))
    peak_rss, peak_threads = rss0, threads0
    probes: dict[str, int] = {}
    until = time.perf_counter() + hold
    tick = 0
    while time.perf_counter() < until:
        tick += 1
        if tick % 10 == 0:
            for _, w in conns:  # a byte a second: each read is well within any per-read timeout
                if not w.is_closing():
                    w.write(b"X")
        try:
            rc = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
            status, _ = await asyncio.wait_for(_exchange(*rc, PROBE), 1)
            probes[str(status)] = probes.get(str(status), 0) + 1
            rc[1].close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            probes["no answer in 1 s"] = probes.get("no answer in 1 s", 0) + 1
        rss, threads = proc_status(pid)
        peak_rss, peak_threads = max(peak_rss, rss), max(peak_threads, threads)
        await asyncio.sleep(0.1)
    alive = sum(1 for r, _ in conns if not r.at_eof())
    for _, w in conns:
        w.close()
    return {"connections": len(conns), "rss_kb_before": rss0, "rss_kb_peak": peak_rss,
            "rss_kb_added": peak_rss - rss0, "threads_peak": peak_threads, "held_at_end": alive,
            "probes": probes}


# -- the run -----------------------------------------------------------------------------------------


def bench(port: int, pid: int, args: argparse.Namespace) -> dict:
    asyncio.run(load(port, 4, 200, 2))  # warm up
    out = {f"c{c}": asyncio.run(load(port, c, args.requests, args.seconds)) for c in LEVELS}
    out["slowloris"] = asyncio.run(slowloris(port, pid, args.slowloris, args.hold))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="answers per level at most")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds per level at most")
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--hold", type=float, default=4.0)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        for label, start in (("old", start_old), ("new", start_new)):
            proc, port = start(Path(tmp))
            try:
                results[label] = bench(port, proc.pid, args)
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    for label in ("old", "new"):
        r = results[label]
        name = (f"stdlib ThreadingHTTPServer ({OLD_COMMIT})" if label == "old"
                else "bounded server (this tree)")
        print(f"{name}:")
        for c in LEVELS:
            x = r[f"c{c}"]
            print(f"  {c:>2} clients: {x['rps']:8.0f} req/s  p50 {x['p50_ms']:6.2f} ms  "
                  f"p99 {x['p99_ms']:7.2f} ms  answers {x['statuses']}")
        s = r["slowloris"]
        print(f"  slowloris {s['connections']} connections for {args.hold:g} s: RSS {s['rss_kb_before']} -> "
              f"{s['rss_kb_peak']} kB (+{s['rss_kb_added']} kB), threads up to {s['threads_peak']}, "
              f"{s['held_at_end']} still open at the end; probes {s['probes']}")
    old, new = results["old"], results["new"]
    print("ratios new/old (same run):")
    for c in LEVELS:
        o, n = old[f"c{c}"], new[f"c{c}"]
        print(f"  {c:>2} clients: throughput x{n['rps'] / o['rps']:.2f}, "
              f"p50 x{n['p50_ms'] / o['p50_ms']:.2f}, p99 x{n['p99_ms'] / o['p99_ms']:.2f}")
    so, sn = old["slowloris"], new["slowloris"]
    print(f"  slowloris: RSS added x{sn['rss_kb_added'] / max(so['rss_kb_added'], 1):.2f} "
          f"({sn['rss_kb_added']} vs {so['rss_kb_added']} kB), peak threads {sn['threads_peak']} vs "
          f"{so['threads_peak']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
