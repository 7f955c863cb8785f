"""The real data plane's figures, from one run against the sandbox (root; brings it up or reuses it).

    python bench/bench_dataplane.py

1. Cold build time of each part, read from its build log (the first build on this machine).
2. Time from `deploy()` to the first answered request on the real node, beside the model server's
   own start (container started -> first answer) and the Ready the readiness probe reports, for the
   default probe period (5 s) and a 1 s period.
3. Requests through Envoy vs straight to the pod: throughput, p50 and p99 of sequential keep-alive
   requests (interleaved in blocks, so drift hits both), printed as ratios from this one run.
"""

from __future__ import annotations

import calendar
import http.client
import threading
import time
import uuid

from measure import BODY, INFER, latencies, quantile, until  # beside this script

from jupyter_mldeploy import deploy, undeploy
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.sandbox import dataplane, dataplane_build, gateway, images, node
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec, Probe


def build_times() -> None:
    print("Cold build time of each part (from its build log):")
    for part in (*dataplane_build.PARTS, dataplane_build.TRAEFIK):
        secs = dataplane_build.build_seconds(part)
        took = f"{secs[0]:5.0f} s" if secs else "   (no log)"
        again = f"   (rebuilt: {', '.join(f'{x:.0f} s' for x in secs[1:])})" if len(secs) > 1 else ""
        print(f"  {part.name:<14} {part.version:<8} {took}{again}")
    log = images.ROOTFS_LOG
    for line in (log.read_text().splitlines() if log.exists() else []):
        if line.startswith("# rootfs took"):
            print(f"  {'rootfs':<14} {'bookworm':<8} {line.split()[-2]:>5} s (mmdebstrap)")


def _pod_ip(kube: Kube, ns: str, name: str, timeout: float) -> tuple[str, dict]:
    def found() -> tuple[str, dict] | None:
        _, pods = kube.request("GET", f"/api/v1/namespaces/{ns}/pods",
                               query={"labelSelector": f"app.kubernetes.io/instance={name}"})
        return next(((p["status"]["podIP"], p) for p in pods.get("items", [])
                     if p.get("status", {}).get("podIP")), None)

    return until(found, timeout, f"a pod IP for {name}", interval=0.02)


def _rfc3339(text: str) -> float:
    """An RFC 3339 time with nanoseconds (kubelet's log timestamps) as epoch seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{frac or 0}")


def first_answer(kube: Kube, ns: str, name: str, period: int) -> dict:
    spec = DeploySpec(name=name, image=images.serving_ref(), namespace=ns, readiness=Probe(period=period),
                      **node.placement())
    t0 = time.time()
    th = threading.Thread(target=deploy, args=(spec,), kwargs={"kube": kube, "timeout": 180})
    th.start()
    ip, pod = _pod_ip(kube, ns, name, 120)
    answered = None
    while answered is None and time.time() - t0 < 120:
        try:
            c = http.client.HTTPConnection(ip, 8080, timeout=1)
            c.request("POST", INFER, BODY, {"Content-Type": "application/json"})
            if c.getresponse().status == 200:
                answered = time.time()
            c.close()
        except OSError:
            time.sleep(0.01)
    th.join()
    ready_at = time.time()
    # The model server's own start: the time kubelet stamped on its "listening" line.
    log = kube.text(f"/api/v1/namespaces/{ns}/pods/{pod['metadata']['name']}/log",
                    query={"timestamps": "true"}, timeout=5)
    listening = next(_rfc3339(ln.split()[0]) for ln in log.splitlines() if "listening on" in ln)
    return {"period": period, "first_answer": answered - t0, "deploy_returned": ready_at - t0,
            "listening_to_answer": answered - listening}


def gateway_vs_pod(kube: Kube, ns: str, port: int) -> None:
    name = "bench-gw"
    host = f"{name}.{ns}.bench"
    spec = DeploySpec(name=name, image=images.serving_ref(), namespace=ns, expose="gateway",
                      gateway=gateway.gateway_ref(), host=host, **node.placement())
    deploy(spec, kube=kube, timeout=180)
    ip, _ = _pod_ip(kube, ns, name, 30)
    def routed() -> bool:
        try:
            return bool(latencies("127.0.0.1", port, 1, {"Host": host}))
        except (AssertionError, OSError, http.client.HTTPException):
            return False

    until(routed, 60, "Envoy to route the host", interval=0.5)
    via, direct = [], []
    for _ in range(5):  # interleaved blocks
        via += latencies("127.0.0.1", port, 400, {"Host": host})
        direct += latencies(ip, 8080, 400, {})

    def q(xs: list[float], p: float) -> float:
        return quantile(xs, p) * 1000

    tv, td = len(via) / sum(via), len(direct) / sum(direct)
    print(f"Sequential keep-alive requests, {len(via)} each way (one client, interleaved):")
    print(f"  via Envoy   : {tv:7.0f} req/s  p50 {q(via, .5):6.2f} ms  p99 {q(via, .99):6.2f} ms")
    print(f"  to the pod  : {td:7.0f} req/s  p50 {q(direct, .5):6.2f} ms  p99 {q(direct, .99):6.2f} ms")
    print(f"  ratio Envoy/pod: throughput {tv / td:.2f}x, p50 {q(via, .5) / q(direct, .5):.2f}x, "
          f"p99 {q(via, .99) / q(direct, .99):.2f}x")


def main() -> None:
    box = Sandbox()
    box.up(progress=lambda _m: None)
    info = dataplane.up(box, progress=print)
    kube = Kube(str(box.kubeconfig), ADMIN_CONTEXT)
    ns = f"bench-dp-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    try:
        build_times()
        print("Deploy to first answered request on the real node (the image is on the node after the first):")
        for i, period in enumerate((5, 5, 5, 1, 1, 1)):
            r = first_answer(kube, ns, f"first-{i}", period)
            print(f"  probe period {r['period']} s: first answer {r['first_answer']:.2f} s after deploy() "
                  f"({r['listening_to_answer']:.2f} s after the server logged it listens); deploy() returned "
                  f"(Ready) at {r['deploy_returned']:.2f} s")
            undeploy(f"first-{i}", namespace=ns, kube=kube)
        gateway_vs_pod(kube, ns, int(info["gateway_url"].rsplit(":", 1)[1]))
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")


if __name__ == "__main__":
    main()
