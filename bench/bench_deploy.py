"""Deploy-engine benchmarks against the sandbox: every figure a ratio to a baseline from the same run.

    python bench/bench_deploy.py            # brings the sandbox up (or reuses it)

Pairs run interleaved (A B A B ...) and the median of the pairwise ratios is printed, so a
machine that drifts in speed during the run does not tilt the comparison.
"""

from __future__ import annotations

import atexit
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

import jupyter_mldeploy as mld
from jupyter_mldeploy.errors import RolloutFailed
from jupyter_mldeploy.kube import apply as kapply
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.kube.watch import Watch
from jupyter_mldeploy.render import render
from jupyter_mldeploy.sandbox.control_plane import ADMIN_CONTEXT, Sandbox
from jupyter_mldeploy.spec import DeploySpec

ROUNDS = 9


def full_spec(name: str) -> DeploySpec:
    # Five objects: Deployment, Service, HPA, PDB, Ingress.
    return DeploySpec.from_dict({"name": name, "image": "ghcr.io/acme/churn:1.4", "cpu": "500m",
                                 "memory": "1Gi", "autoscale": "2:5:70", "expose": "ingress",
                                 "host": f"{name}.example"})


def uid() -> str:
    return uuid.uuid4().hex[:8]


def median_ratio(pairs: list[tuple[float, float]]) -> float:
    return statistics.median(a / b for a, b in pairs)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- the baseline: the seed article's deploy service, reimplemented in Python --------------------------


def seed_method(api_client, ns: str, manifests: dict[str, dict]) -> None:
    """GET each object, then create or replace it: Deployment, Service and Ingress concurrently,
    then the HPA, through the official client's typed API (as a Python port would do it)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    net, hpa = client.NetworkingV1Api(api_client), client.AutoscalingV2Api(api_client)

    def upsert(read, create, replace, body):
        name = body["metadata"]["name"]
        try:
            read(name, ns)
        except ApiException as e:
            if e.status != 404:
                raise
            return create(ns, body)
        return replace(name, ns, body)

    with ThreadPoolExecutor(3) as pool:
        jobs = [
            pool.submit(upsert, apps.read_namespaced_deployment, apps.create_namespaced_deployment,
                        apps.replace_namespaced_deployment, manifests["Deployment"]),
            pool.submit(upsert, core.read_namespaced_service, core.create_namespaced_service,
                        core.replace_namespaced_service, manifests["Service"]),
            pool.submit(upsert, net.read_namespaced_ingress, net.create_namespaced_ingress,
                        net.replace_namespaced_ingress, manifests["Ingress"]),
        ]
        for j in jobs:
            j.result()
    upsert(hpa.read_namespaced_horizontal_pod_autoscaler, hpa.create_namespaced_horizontal_pod_autoscaler,
           hpa.replace_namespaced_horizontal_pod_autoscaler, manifests["HorizontalPodAutoscaler"])


RTT_MS = 20


def remote(info: dict):
    """Both clients connected to the same API server through a proxy adding RTT_MS per round trip.

    Through a kubeconfig of their own that names the proxy: the official client's token-refresh hook
    puts the kubeconfig's server back before every request, so setting `configuration.host` after
    loading silently sent the baseline straight to the API server.
    """
    from kubernetes import config
    from latency_proxy import spawn  # beside this script

    direct = Kube(info["kubeconfig"], ADMIN_CONTEXT)
    proc, port = spawn(int(direct.server.rsplit(":", 1)[1]), RTT_MS / 2)
    atexit.register(proc.terminate)
    kc = yaml.safe_load(Path(info["kubeconfig"]).read_text())
    for cluster in kc["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = Path(tempfile.mkdtemp()) / "kubeconfig-via-proxy"
    path.write_text(yaml.safe_dump(kc))
    kube = Kube(str(path), ADMIN_CONTEXT)
    client = config.new_client_from_config(config_file=str(path), context=ADMIN_CONTEXT)
    return kube, client


def write_ratios(kube: Kube, api_client, ns: str) -> tuple[list[tuple[str, float, str]], float]:
    out = []
    # 1. a full deploy (5 objects + release record) vs one single-object apply
    pairs = []
    for _ in range(ROUNDS):
        a = timed(lambda: mld.deploy(full_spec(f"f-{uid()}"), namespace=ns, kube=kube, wait=False))
        one = render(full_spec(f"s-{uid()}"), ns)[0]
        b = timed(lambda one=one: kapply.apply_one(kube, one))
        pairs.append((a, b))
    out.append(("first release of a full spec (5 objects) / one single-object apply", median_ratio(pairs),
                "target <= 1.5"))
    single = statistics.median(b for _, b in pairs)

    # 1b. a new release of a model this kernel deployed before (its anchor cached, guarded by a
    # resourceVersion precondition): the common case of a data scientist redeploying
    pairs = []
    name = f"r-{uid()}"
    mld.deploy(full_spec(name), namespace=ns, kube=kube, wait=False)
    for i in range(ROUNDS):
        changed = full_spec(name).with_(env={"ROUND": str(i)})
        a = timed(lambda changed=changed: mld.deploy(changed, namespace=ns, kube=kube, wait=False))
        one = render(full_spec(f"s-{uid()}"), ns)[0]
        b = timed(lambda one=one: kapply.apply_one(kube, one))
        pairs.append((a, b))
    out.append(("a later release of the same model, same kernel / one single-object apply",
                median_ratio(pairs), "target <= 1.5"))

    # 2. the same deploy vs the seed article's method (GET then create/update; HPA after)
    pairs = []
    for _ in range(ROUNDS):
        a = timed(lambda: mld.deploy(full_spec(f"f-{uid()}"), namespace=ns, kube=kube, wait=False))
        ms = {m["kind"]: m for m in render(full_spec(f"g-{uid()}"), ns)}
        b = timed(lambda ms=ms: seed_method(api_client, ns, ms))
        pairs.append((a, b))
    out.append(("the same deploy / the seed article's method in Python", median_ratio(pairs),
                "target <= 0.4"))

    # 3. undeploy vs one delete: returning at once, then waiting until every object is gone
    for wait, what, target in ((False, "undeploy (one delete of the anchor, the garbage collector does the "
                                       "rest) / one delete", "target <= 1.5"),
                               (True, "undeploy, waiting until every object is gone / one delete",
                                "reported")):
        out.append((what, median_ratio([undeploy_pair(kube, ns, wait) for _ in range(ROUNDS)]), target))
    return out, single


def undeploy_pair(kube: Kube, ns: str, wait: bool) -> tuple[float, float]:
    name = f"u-{uid()}"
    mld.deploy(full_spec(name), namespace=ns, kube=kube, wait=False)
    lone = render(full_spec(f"d-{uid()}"), ns)[1]
    kapply.apply_one(kube, lone)
    a = timed(lambda: mld.undeploy(name, namespace=ns, kube=kube, wait=wait))
    b = timed(lambda: kapply.delete_one(kube, lone))
    return a, b


def main() -> int:
    info = Sandbox().up(progress=lambda m: print(m, file=sys.stderr))
    kube = Kube(info["kubeconfig"], ADMIN_CONTEXT)
    ns = f"bench-{uid()}"
    kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": ns}})
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=info["kubeconfig"], context=ADMIN_CONTEXT)
    results: list[tuple[str, float, str]] = []
    try:
        single = 0.0
        for where, k, client in (("loopback", kube, api_client), (f"{RTT_MS} ms RTT", *remote(info))):
            mld.deploy(full_spec(f"warm-{uid()}"), namespace=ns, kube=k, wait=False)  # caches, pools
            figures, median_single = write_ratios(k, client, ns)
            single = single or median_single
            results.extend((f"[{where}] {what}", value, target) for what, value, target in figures)

        # 4. last pod Ready (as our own separate watch receives it) -> deploy(wait=True) returns
        lags = []
        for _ in range(5):
            lags.append(ready_to_return(kube, ns))
        results.append(("last pod Ready -> deploy(wait=True) returns, ms (median of 5)",
                        statistics.median(lags) * 1000, "target <= 100 ms"))

        # 5. pod condition -> error. A model holding 3 of the GPU node's 4 GPUs makes a 2-GPU pod
        # unschedulable while the pre-flight (capacity) check still passes.
        hog = f"hog-{uid()}"
        mld.deploy(DeploySpec.from_dict({"name": hog, "image": "ghcr.io/acme/big:1", "gpu": 3}),
                   namespace=ns, kube=kube, timeout=60)
        for label, kwargs in (("ImagePullBackOff", {"labels": {"sandbox.mldeploy.io/fail": "image-pull"}}),
                              ("Unschedulable", {"gpu": 2})):
            lags = [condition_to_error(kube, ns, label, kwargs) for _ in range(3)]
            results.append((f"{label} seen -> RolloutFailed raised, ms (median of 3)",
                            statistics.median(lags) * 1000, "target <= 1000 ms"))
        mld.undeploy(hog, namespace=ns, kube=kube)

        # 6. 100 deployments in one deploy_many vs 100 sequential single-object applies
        specs = [DeploySpec.from_dict({"name": f"m{i}-{uid()}", "image": "ghcr.io/acme/m:1"})
                 for i in range(100)]
        a = timed(lambda: mld.deploy_many(specs, namespace=ns, kube=kube))
        singles = [render(DeploySpec.from_dict({"name": f"q{i}-{uid()}", "image": "ghcr.io/acme/m:1",
                                                "replicas": 0}), ns)[0] for i in range(100)]
        b = timed(lambda: [kapply.apply_one(kube, m) for m in singles])
        results.append(("100 models in one deploy_many (400 objects) / 100 sequential single applies",
                        a / b, "lower is better"))
    finally:
        kube.request("DELETE", f"/api/v1/namespaces/{ns}")

    # 7. import cost
    def imp(mod: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {mod}"], check=True)
        return time.perf_counter() - t0

    pairs = [(imp("jupyter_mldeploy"), imp("kubernetes")) for _ in range(7)]
    results.append(("import jupyter_mldeploy / import kubernetes (whole process)", median_ratio(pairs),
                    "target < 1"))

    print(f"single-object apply on loopback, median: {single * 1000:.1f} ms")
    for what, value, target in results:
        print(f"{what:<92} {value:8.3f}   ({target})")
    return 0


def ready_to_return(kube: Kube, ns: str) -> float:
    name = f"r-{uid()}"
    s = DeploySpec.from_dict({"name": name, "image": "ghcr.io/acme/churn:1.4", "replicas": 3})
    ready_at: dict[str, float] = {}
    w = Watch(kube, f"/api/v1/namespaces/{ns}/pods", "Pod",
              label_selector=f"app.kubernetes.io/instance={name}")

    def watch() -> None:
        for _t, pod in w.events():
            conds = pod.get("status", {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                ready_at.setdefault(pod["metadata"]["name"], time.perf_counter())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.3)  # the watch is open before the deploy starts
    mld.deploy(s, namespace=ns, kube=kube, timeout=60)
    returned = time.perf_counter()
    time.sleep(0.3)
    w.stop()
    # Negative when deploy returned before this independent watch saw the last Ready.
    return returned - max(ready_at.values())


def condition_to_error(kube: Kube, ns: str, reason: str, extra: dict) -> float:
    name = f"c-{uid()}"
    s = DeploySpec.from_dict({"name": name, "image": "ghcr.io/acme/churn:1.4", **extra})
    seen: list[float] = []
    w = Watch(kube, f"/api/v1/namespaces/{ns}/pods", "Pod",
              label_selector=f"app.kubernetes.io/instance={name}")

    def watch() -> None:
        for _t, pod in w.events():
            st = pod.get("status", {})
            waiting = [c.get("state", {}).get("waiting", {}).get("reason") for c in
                       st.get("containerStatuses") or []]
            unsched = [c for c in st.get("conditions") or [] if c.get("reason") == "Unschedulable"]
            if (reason in waiting or (reason == "Unschedulable" and unsched)) and not seen:
                seen.append(time.perf_counter())

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    time.sleep(0.3)
    try:
        mld.deploy(s, namespace=ns, kube=kube, timeout=60)
        raise AssertionError(f"{name} was expected to fail")
    except RolloutFailed:
        failed = time.perf_counter()
    # The independent watch may receive the same event a moment after our follow did.
    deadline = time.perf_counter() + 2
    while not seen and time.perf_counter() < deadline:
        time.sleep(0.01)
    w.stop()
    mld.undeploy(name, namespace=ns, kube=kube)
    return failed - seen[0]


if __name__ == "__main__":
    sys.exit(main())
