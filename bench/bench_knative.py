"""Knative on the real node, behind its networking layer (Traefik's KIngress + kube-proxy): figures from
one run against the sandbox (root; brings up the data plane and Knative, or reuses them).

    python bench/bench_knative.py [--cold-starts 3]

1. Warm requests through Traefik and Knative's queue-proxy vs straight to the model server in the pod:
   throughput, p50 and p99 of sequential keep-alive requests (interleaved blocks), as ratios.
2. Scale to zero and back: how long an idle revision takes to reach zero pods, and the time to the
   first answer of a request sent at zero (the activator holds it while a pod starts), beside the
   warm p50 of the same route, as a ratio.
Every request goes to 127.0.0.1 or to a pod address on the sandbox's own bridge, bounded in count.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import time
import uuid

from measure import latencies, quantile, until  # beside this script

from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.render.routers.knative import Scale
from jupyter_mldeploy.sandbox import dataplane, images, knative, knative_ingress, node
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec


def q(xs: list[float], p: float) -> float:
    return quantile(xs, p) * 1000


def _host(kube: Kube, ns: str, name: str) -> str:
    return until(lambda: ((rk.read_service(kube, ns, name) or {}).get("status") or {}).get("url"), 60,
                  "the route URL").split("://", 1)[1]


def _routed(port: int, host: str) -> bool:
    try:
        latencies("127.0.0.1", port, 3, {"Host": host})
        return True
    except (AssertionError, OSError, http.client.HTTPException):
        return False


def _spec(name: str, ns: str) -> DeploySpec:
    return DeploySpec(name=name, image=images.serving_ref(), namespace=ns, **node.placement())


def warm(kube: Kube, ns: str, port: int) -> float:
    name = "bench-warm"
    model = rk.deploy(_spec(name, ns), scale=Scale(min=1), kube=kube, timeout=180)
    host = _host(kube, ns, name)
    until(lambda: _routed(port, host), 60, "Traefik to route the host")
    pods = kube.request("GET", f"/api/v1/namespaces/{ns}/pods",
                        query={"labelSelector": f"serving.knative.dev/revision={model.revision}"})[1]["items"]
    ip = pods[0]["status"]["podIP"]
    via, direct = [], []
    for _ in range(5):
        via += latencies("127.0.0.1", port, 300, {"Host": host})
        direct += latencies(ip, 8080, 300, {})
    tv, td = len(via) / sum(via), len(direct) / sum(direct)
    print(f"Warm sequential keep-alive requests, {len(via)} each way (one client, interleaved):")
    print(f"  via Traefik + queue-proxy: {tv:6.0f} req/s  p50 {q(via, .5):6.2f} ms  "
          f"p99 {q(via, .99):6.2f} ms")
    print(f"  to the model server      : {td:6.0f} req/s  p50 {q(direct, .5):6.2f} ms  "
          f"p99 {q(direct, .99):6.2f} ms")
    print(f"  ratio Knative path/pod: throughput {tv / td:.2f}x, p50 {q(via, .5) / q(direct, .5):.2f}x, "
          f"p99 {q(via, .99) / q(direct, .99):.2f}x")
    return q(via, .5) / 1000


def cold(kube: Kube, ns: str, port: int, rounds: int, warm_p50: float) -> None:
    name = "bench-cold"
    model = rk.deploy(_spec(name, ns), scale=Scale(min=0), kube=kube, timeout=180)
    host = _host(kube, ns, name)
    until(lambda: _routed(port, host), 60, "Traefik to route the host")
    deployment = f"/apis/apps/v1/namespaces/{ns}/deployments/{model.revision}-deployment"
    selector = {"labelSelector": f"serving.knative.dev/revision={model.revision}"}

    def at_zero() -> bool:
        return (kube.request("GET", deployment)[1]["spec"]["replicas"] == 0 and not
                kube.request("GET", f"/api/v1/namespaces/{ns}/pods", query=selector)[1]["items"])
    to_zero, first = [], []
    for _ in range(rounds):
        idle = time.monotonic()
        until(at_zero, 180, "the revision to scale to zero", interval=0.5)
        to_zero.append(time.monotonic() - idle)
        first.append(latencies("127.0.0.1", port, 1, {"Host": host}, timeout=60)[0])
    print(f"Scale to zero and back, {rounds} rounds (the sandbox's window: 6 s stable + 6 s grace):")
    print(f"  idle to zero pods       : median {statistics.median(to_zero):5.1f} s  "
          f"({', '.join(f'{x:.1f}' for x in to_zero)})")
    print(f"  first answer from zero  : median {statistics.median(first):5.2f} s  "
          f"({', '.join(f'{x:.2f}' for x in first)})")
    print(f"  ratio cold first answer / warm p50: {statistics.median(first) / warm_p50:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold-starts", type=int, default=3)
    args = parser.parse_args()
    box = Sandbox()
    box.up(progress=lambda _m: None)
    dataplane.up(box, progress=print, with_gateway=False)
    components = knative.Knative(box)
    if components.status()["up"] and not (components.state() or {}).get("networking"):
        components.down(progress=lambda _m: None)
    components.up(progress=print)
    state = components.state() or {}
    if not state.get("networking"):
        raise SystemExit(f"Knative runs without its networking layer here: {state.get('no_ingress')}")
    port = knative_ingress.ingress_port(dataplane.layout(box).port_base)
    kube = Kube(str(box.kubeconfig), ADMIN_CONTEXT)
    ns = f"bench-kn-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    try:
        cold(kube, ns, port, args.cold_starts, warm(kube, ns, port))
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")


if __name__ == "__main__":
    main()
