"""Real requests through the sandbox's Envoy Gateway to real pods: canary weights, mirrors, and
promote/abort under a steady load, all started with the public API (`deploy`, `rollout`).

Counts are judged as the Gateway API conformance suite judges weights: within a 3-sigma binomial
band. Before measuring, each test waits until Envoy's own admin server shows the weights or mirror
asked (so a measurement never mixes two configurations). Every request goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from k8s_helpers import wait_until

from jupyter_mldeploy import deploy, rollout, shadow
from jupyter_mldeploy.labels import selector_for

from .realnode import (
    INFER,
    Client,
    band,
    body,
    envoy_admin_url,
    envoy_route,
    host_for,
    prediction_ids,
    real_spec,
    settle_split,
    versions_through,
    wait_for_envoy,
    within_3_sigma,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]


@pytest.fixture
def gw_client(real_gateway):
    client = Client("127.0.0.1", real_gateway.gateway_port)
    yield client
    client.close()


def _stable(name: str, namespace: str, kube, **kw):
    handle = deploy(real_spec(name, namespace, gateway_host=True, model_version="1", **kw), kube=kube,
                    timeout=180)
    return handle


def _weights(route: dict) -> tuple[int, int]:
    """(stable, canary) weights, as Envoy applies them."""
    w = route["weights"]
    return w.get(0, 0), w.get(1, 0)


def test_canary_split_at_10_30_50_percent_is_measured_through_the_gateway(real_gateway, kube, namespace,
                                                                          gw_client):
    name, host = "churn", host_for("churn", namespace)
    _stable(name, namespace, kube)
    settle_split(gw_client, host, {"1"})
    admin = envoy_admin_url(real_gateway.box)
    rollout.start(real_spec(name, namespace, model_version="2", version="v2"), strategy="canary",
                  router="gateway", weight=10, kube=kube, timeout=180)
    n = 600
    results = {}
    # 10 -> 30 -> 50 -> 10: every change is weight-only (the same pods): Envoy kept the first split for
    # those until the route's split annotation made each one a new cluster (see sandbox/gateway.py).
    for weight in (10, 30, 50, 10):
        if results:
            rollout.set_weight(name, weight, namespace=namespace, kube=kube)
        route = wait_for_envoy(admin, namespace, name,
                               lambda r, w=weight: _weights(r) == (100 - w, w), f"{weight}%")
        # The weights are the cluster's localities, and the cluster itself was rebuilt for them.
        assert route["split"] == "localities" and route["cluster_split"] == f"{100 - weight}/{weight}", route
        seen = versions_through(gw_client, host, n)
        results[f"{len(results) + 1}: {weight}%"] = dict(seen)
        after = _weights(envoy_route(admin, namespace, name))
        assert after == (100 - weight, weight), f"Envoy's weights moved to {after} while measuring {weight}%"
        assert set(seen) == {"1", "2"}, seen  # every request answered, by one of the two tracks
        assert within_3_sigma(seen["2"], n, weight / 100), \
            f"canary answered {seen['2']} of {n} at {weight}%: outside {band(n, weight / 100)}"
    print(f"canary split of {n} requests per weight: {results}")


def _shadow_log_ids(core, namespace: str, name: str) -> set[str]:
    pods = core.list_namespaced_pod(namespace, label_selector=selector_for(name, "shadow")).items
    assert pods, "no shadow pod"
    return set().union(*(prediction_ids(core.read_namespaced_pod_log(p.metadata.name, namespace))
                         for p in pods))


def _send_and_collect_ids(client: Client, host: str, n: int) -> set[str]:
    ids = set()
    for _ in range(n):
        status, raw = client.request("POST", INFER, body(), {"Host": host})
        assert status == 200, raw
        ids.add(json.loads(raw)["id"])
    return ids


def test_shadow_mirror_20_and_100_is_measured_from_the_shadows_prediction_log(real_gateway, kube, namespace,
                                                                             gw_client, core):
    name, host = "fraud", host_for("fraud", namespace)
    _stable(name, namespace, kube)
    settle_split(gw_client, host, {"1"})
    admin = envoy_admin_url(real_gateway.box)
    rollout.start(real_spec(name, namespace, model_version="2", version="v2"), strategy="shadow",
                  router="gateway", mirror=20, kube=kube, timeout=180)
    wait_for_envoy(admin, namespace, name, lambda r: r["mirrors"] == [20.0], "a 20% mirror")
    for percent, n in ((20, 500), (100, 200)):
        if percent == 100:
            rollout.set_mirror(name, 100, namespace=namespace, kube=kube)
            wait_for_envoy(admin, namespace, name, lambda r: r["mirrors"] == [100.0], "a 100% mirror")
        before = _shadow_log_ids(core, namespace, name)
        sent = _send_and_collect_ids(gw_client, host, n)
        # Mirrored requests are sent beside the primary's and their answers discarded: wait until the
        # shadow's log stops growing, then count the ids of our requests in it.
        last = [-1]

        def settled(sent=sent, before=before, last=last) -> int | None:
            got = len((_shadow_log_ids(core, namespace, name) - before) & sent)
            done = got == last[0]
            last[0] = got
            return got if done else None

        mirrored = wait_until(settled, 30, "the shadow's log to settle", interval=1.0)
        print(f"mirror {percent}%: {mirrored} of {n} requests reached the shadow")
        if percent == 100:
            assert mirrored == n
            # %shadow --live on this really mirrored traffic: the pods' logs joined by request id.
            report = shadow.live_from_pods(name, namespace=namespace, kube=kube)
            joined = report.summary.compared
            print(f"live join: {joined} pairs, agreement {report.summary.agreement_pct}%")
            assert joined >= n and report.summary.agreement_pct == 100.0, report.summary
        else:
            assert within_3_sigma(mirrored, n, percent / 100), \
                f"the shadow got {mirrored} of {n} at {percent}%: outside {band(n, percent / 100)}"


class _Load:
    """50 requests a second from a second process, counted there."""

    def __init__(self, port: int, host: str, out: Path, rps: int = 50, max_seconds: int = 120) -> None:
        self.out = out
        root = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.dataplane.load", f"http://127.0.0.1:{port}",
                                      host, str(rps), str(max_seconds), str(out)], cwd=root)

    def stop(self) -> dict:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        return json.loads(self.out.read_text())


def _under_load(real_gateway, host: str, tmp_path: Path, action) -> dict:
    load = _Load(real_gateway.gateway_port, host, tmp_path / f"load-{time.monotonic_ns()}.json")
    try:
        time.sleep(2)  # a steady stream before the change
        action()
        time.sleep(3)  # and after it, while the old pods go away
    finally:
        result = load.stop()
    return result


def test_promote_and_abort_under_steady_load_drop_no_request(real_gateway, kube, namespace, gw_client,
                                                           tmp_path):
    name, host = "steady", host_for("steady", namespace)
    _stable(name, namespace, kube)
    settle_split(gw_client, host, {"1"})
    admin = envoy_admin_url(real_gateway.box)

    rollout.start(real_spec(name, namespace, model_version="2", version="v2"), strategy="canary",
                  router="gateway", weight=50, kube=kube, timeout=180)
    wait_for_envoy(admin, namespace, name, lambda r: _weights(r) == (50, 50), "50%")
    promoted = _under_load(real_gateway, host, tmp_path,
                           lambda: rollout.promote(name, namespace=namespace, kube=kube, timeout=180))
    print(f"promote under load: {promoted}")
    assert promoted["sent"] > 100 and promoted["failed"] == 0, promoted
    settle_split(gw_client, host, {"2"})

    rollout.start(real_spec(name, namespace, model_version="3", version="v3"), strategy="canary",
                  router="gateway", weight=50, kube=kube, timeout=180)
    wait_for_envoy(admin, namespace, name, lambda r: _weights(r) == (50, 50), "50%")
    aborted = _under_load(real_gateway, host, tmp_path,
                          lambda: rollout.abort(name, namespace=namespace, kube=kube))
    print(f"abort under load: {aborted}")
    assert aborted["sent"] > 100 and aborted["failed"] == 0, aborted
    assert set(versions_through(gw_client, host, 50)) == {"2"}


def test_blue_green_switch_and_release_under_steady_load_drop_no_request(real_gateway, kube, namespace,
                                                                         gw_client, tmp_path):
    name, host = "bluegreen", host_for("bluegreen", namespace)
    _stable(name, namespace, kube)
    settle_split(gw_client, host, {"1"})
    admin = envoy_admin_url(real_gateway.box)
    rollout.start(real_spec(name, namespace, model_version="2", version="v2"), strategy="blue-green",
                  router="gateway", kube=kube, timeout=180)
    # The preview is ready (start waited for it) and gets nothing: Envoy Gateway leaves a weight-0
    # backendRef out of the cluster.
    wait_for_envoy(admin, namespace, name, lambda r: _weights(r)[1] == 0 and r["ready"].get(0),
                   "no share for the preview")
    switched = _under_load(real_gateway, host, tmp_path,
                           lambda: rollout.promote(name, namespace=namespace, kube=kube, timeout=180))
    print(f"blue-green switch under load: {switched}")
    assert switched["sent"] > 100 and switched["failed"] == 0, switched
    settle_split(gw_client, host, {"2"})
    released = _under_load(real_gateway, host, tmp_path,
                           lambda: rollout.release(name, namespace=namespace, kube=kube, timeout=180))
    print(f"blue-green release under load: {released}")
    assert released["sent"] > 100 and released["failed"] == 0, released
    assert set(versions_through(gw_client, host, 50)) == {"2"}
