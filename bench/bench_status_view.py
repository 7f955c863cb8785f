"""Live status views over many pods: what watching costs the kernel once everything is Ready.

    python bench/bench_status_view.py [--seconds 30] [--deployments 20] [--replicas 25] [--extra-nodes N]

This process plays the kernel: an asyncio loop, one PodStatusView per Deployment built on it, their
watches in threads handing events over to the loop. After every pod is Ready it measures, over the
same window, the process's CPU time (time.process_time) and the widget update messages a frontend
would receive (the comm is swapped for one that counts). For scale it then measures, for as long, a
naive alternative: one `Deployment.status()` read per Deployment per second (polling at 1 Hz).

The sandbox's nodes hold 110 pods each (330 in all, 220 of them on the untainted CPU nodes): the pods
here request no CPU or memory and tolerate the GPU node's taint, and their count is capped at the pod
slots free (with a margin for whatever else runs there), and said so. `--extra-nodes N` adds N more
simulated nodes of 110 pods each for the run (kwok manages them; removed at the end), for 1,000 and
2,000 pods: `--deployments 40 --replicas 25 --extra-nodes 8`, `--deployments 80 --replicas 25
--extra-nodes 18` (with `--settle 60`: at rest, once the last Events have come).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter

import comm
from comm.base_comm import BaseComm

from jupyter_mldeploy import api
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec, Toleration, quantity_value

GPU_TOLERATION = Toleration("nvidia.com/gpu", "Exists", None, "NoSchedule")  # the GPU node holds pods too
MESSAGES: Counter[str] = Counter()  # widget model name -> update messages sent


class CountingComm(BaseComm):
    """Stands in for the kernel's comm: counts state updates per widget model, sends nothing."""

    def __init__(self, *args, **kwargs):
        self.model = ((kwargs.get("data") or {}).get("state") or {}).get("_model_name", "?")
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        if msg_type == "comm_msg" and (data or {}).get("method") == "update":
            MESSAGES[self.model] += 1


def free_pod_slots(kube: Kube) -> tuple[int, int, int]:
    """(pods the nodes hold, pods already bound, how many more fit now).

    The bench's pods request nothing, so only the nodes' pod limit (110 each) binds, whatever CPU
    other workloads on the sandbox hold.
    """
    nodes = kube.request("GET", "/api/v1/nodes")[1]["items"]
    bound = kube.request("GET", "/api/v1/pods", query={
        "fieldSelector": "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"})[1]["items"]
    per_node = Counter(p["spec"]["nodeName"] for p in bound)
    total = fits = 0
    for n in nodes:
        pods = int(quantity_value(n["status"]["allocatable"].get("pods", "0")))
        total += pods
        fits += max(0, pods - per_node[n["metadata"]["name"]])
    return total, len(bound), fits


def extra_node(i: int) -> dict:
    """A simulated node like sandbox-cpu-1 (kwok manages nodes with its annotation)."""
    name = f"bench-cpu-{i:02d}"
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "type": "kwok",
                                    "mldeploy.io/bench": "true"}},
            "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
                       "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"}}}


def add_nodes(kube: Kube, n: int) -> list[str]:
    names = []
    for i in range(n):
        node = extra_node(i)
        kube.request("POST", "/api/v1/nodes", body=node)
        names.append(node["metadata"]["name"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kwok marks them Ready
        items = kube.request("GET", "/api/v1/nodes",
                             query={"labelSelector": "mldeploy.io/bench=true"})[1]["items"]
        ready = [i for i in items if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in i.get("status", {}).get("conditions", []))]
        if len(ready) == n:
            return names
        time.sleep(0.2)
    raise SystemExit(f"the {n} extra nodes were not Ready after 60 s")


def make_namespace(kube: Kube) -> str:
    ns = f"bench-views-{uuid.uuid4().hex[:6]}"
    kube.request("POST", "/api/v1/namespaces", body={"metadata": {"name": ns}})
    deadline = time.monotonic() + 30  # pods are refused until the default ServiceAccount exists
    while time.monotonic() < deadline:
        sa = kube.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts")[1]["items"]
        if any(s["metadata"]["name"] == "default" for s in sa):
            break
        time.sleep(0.2)
    return ns


async def run(kubeconfig: str, ns: str, count: int, replicas: int, seconds: float, settle: float) -> None:
    """Deploy, watch until Ready, then measure watching and polling over `seconds` each."""
    from jupyter_mldeploy.widgets import PodStatusView

    # no cpu/memory request: only the nodes' pod limit binds
    specs = [DeploySpec.from_dict({"name": f"m{i:02d}", "image": "ghcr.io/acme/churn:1.4",
                                   "replicas": replicas, "tolerations": [GPU_TOLERATION]})
             for i in range(count)]
    kube = Kube(kubeconfig, ADMIN_CONTEXT)
    t0 = time.perf_counter()
    handles = api.deploy_many(specs, namespace=ns, kube=kube, wait=False)
    # a Kube keeps 64 connections; every view holds 4 watch streams, so a fresh Kube per 10 views
    kubes = [Kube(kubeconfig, ADMIN_CONTEXT) for _ in range((count + 9) // 10)]
    views = [PodStatusView(api.Deployment(h.name, h.namespace, kubes[i // 10], spec=h.spec))
             for i, h in enumerate(handles)]
    assert all(v.live for v in views)

    def ready() -> int:
        return sum(v.status.ready for v in views if v.status is not None and v.status.complete)

    while ready() < count * replicas:
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"not Ready after 300 s: {ready()} of {count * replicas} pods (is something "
                             f"else filling the sandbox's nodes?)")
        await asyncio.sleep(0.2)
    to_ready = time.perf_counter() - t0
    # The last events (Scheduled, Started, ... are rate-limited per object by their recorders) keep
    # arriving for a while after the pods are Ready; at rest means after they have.
    await asyncio.sleep(settle)
    print(f"{count * replicas} pods Ready in {to_ready:.1f} s (deploy_many, wait=False); measuring "
          f"{settle:.0f} s after that")

    # -- watching only --
    MESSAGES.clear()
    batches_before = sum(v._handoff.deliveries for v in views)
    events_before = sum(v._handoff.delivered for v in views)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu_watch, wall_watch = time.process_time() - cpu0, time.perf_counter() - wall0
    watch_msgs = sum(MESSAGES.values())
    batches = sum(v._handoff.deliveries for v in views) - batches_before
    events = sum(v._handoff.delivered for v in views) - events_before
    by_model = ", ".join(f"{m} {n}" for m, n in MESSAGES.most_common()) or "none"

    # -- the naive alternative, for scale: poll each Deployment once a second --
    cpu0, wall0 = time.process_time(), time.perf_counter()
    durations = []
    while time.perf_counter() - wall0 < seconds:
        tick = time.perf_counter()
        await asyncio.gather(*(asyncio.to_thread(h.status) for h in handles))
        durations.append(time.perf_counter() - tick)
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    cpu_poll, wall_poll = time.process_time() - cpu0, time.perf_counter() - wall0

    print(f"\nwatching only, {wall_watch:.0f} s, {count} live views over {count * replicas} Ready pods:")
    print(f"  kernel CPU          {cpu_watch:.3f} s  = {100 * cpu_watch / wall_watch:.2f}% of one core")
    print(f"  widget updates      {watch_msgs / wall_watch:.2f} messages/s  "
          f"({watch_msgs} in all: {by_model})")
    print(f"  watch events        {events} in {batches} batches on the event loop = "
          f"{events / wall_watch:.1f}/s over {count} views (each view watches its namespace's Events, "
          f"so one Event reaches all {count})")
    print(f"polling each Deployment once a second (Deployment.status(), 4 reads each), {wall_poll:.0f} s:")
    print(f"  kernel CPU          {cpu_poll:.3f} s  = {100 * cpu_poll / wall_poll:.2f}% of one core"
          f"  (one round of {count} reads: median {statistics.median(durations):.2f} s)")
    if cpu_watch > 0:
        print(f"ratio: polling at 1 Hz costs {cpu_poll / cpu_watch:.1f}x the CPU of watching "
              f"(and shows changes up to 1 s late, where the views show them within 0.1 s)")

    # -- undeploy: every view notices its Deployment is gone and stops watching --
    t0 = time.perf_counter()
    for h in handles:
        api.undeploy(h.name, namespace=ns, kube=kube)
    while any(v.watching for v in views) and time.perf_counter() - t0 < 120:
        await asyncio.sleep(0.1)
    stopped = sum(not v.watching for v in views)
    print(f"after undeploy: {stopped} of {count} views stopped watching on their own "
          f"in {time.perf_counter() - t0:.1f} s")
    for v in views:
        v.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each measured window")
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=25, help="asked per Deployment; capped to what fits")
    parser.add_argument("--extra-nodes", type=int, default=0, help="simulated nodes added for the run")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds to wait after Ready before measuring (at rest: 60)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured, even into a pipe

    info = Sandbox().up(progress=lambda m: print(m, file=sys.stderr))
    kube = Kube(info["kubeconfig"], ADMIN_CONTEXT)
    comm.create_comm = lambda *a, **kw: CountingComm(*a, **kw)
    added = add_nodes(kube, args.extra_nodes) if args.extra_nodes else []

    total, bound, fits = free_pod_slots(kube)
    free = int(fits * 0.9)  # leave room for whatever else runs on the sandbox meanwhile
    replicas = min(args.replicas, max(1, free // args.deployments))
    asked = args.deployments * args.replicas
    if replicas < args.replicas:
        print(f"Asked for {asked} pods ({args.deployments} x {args.replicas}), but the nodes hold {total} "
              f"pods, {bound} are already bound and {fits} more fit now: using {args.deployments} x "
              f"{replicas} = {args.deployments * replicas} pods.")
    ns = make_namespace(kube)
    try:
        asyncio.run(run(info["kubeconfig"], ns, args.deployments, replicas, args.seconds, args.settle))
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")
        for name in added:
            kube.request("DELETE", f"/api/v1/nodes/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
