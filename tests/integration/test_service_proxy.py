"""compare() through the real API server's service proxy: missing pods in one sentence, and the happy path.

The happy path needs an address the API server will proxy to. The sandbox's simulated pods have loopback
IPs, which Kubernetes refuses, so the model servers run in a network namespace on this machine
(tests/netns.py) and the cluster learns about them the way it would about a pod:

- a stand-in Pod whose status carries the namespace's address (it has a scheduler nobody runs, so
  neither the scheduler nor kwok touches it);
- a selector-less Service `<name>` / `<name>-shadow` on port 80;
- an EndpointSlice (discovery.k8s.io/v1, label kubernetes.io/service-name) and, because the
  service proxy of Kubernetes 1.36 still reads v1 Endpoints and only dials addresses whose targetRef
  is a Pod with that IP (pkg/registry/core/service/storage ResourceLocation), the matching Endpoints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import models_for_tests as mft
import pytest
from netns import NetnsHost

from jupyter_mldeploy.errors import ClusterError, MLDeployError
from jupyter_mldeploy.kube.client import connect
from jupyter_mldeploy.shadow import compare, live

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
ROWS = [[i, i + 1] for i in range(20)] + [[-1, 2], [-2, 3]]  # the shadow fails the last two
NOBODY = "mldeploy-test-unscheduled"  # a scheduler name no scheduler answers to


@pytest.fixture
def kube(cluster):
    return connect(str(cluster.kubeconfig), cluster.context)


def _service(kube, ns: str, name: str, *, selector: dict | None, target_port: int | str) -> None:
    spec: dict = {"ports": [{"name": "http", "port": 80, "targetPort": target_port, "protocol": "TCP"}]}
    if selector is not None:
        spec["selector"] = selector
    kube.request("POST", f"/api/v1/namespaces/{ns}/services",
                 body={"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})


def _standin_pod(kube, ns: str, name: str, ip: str) -> None:
    kube.request("POST", f"/api/v1/namespaces/{ns}/pods", body={
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"mldeploy.io/test": "standin"}},
        "spec": {"schedulerName": NOBODY, "automountServiceAccountToken": False,
                 "containers": [{"name": "model", "image": "registry.example/standin:1"}]}})
    kube.request("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status",
                 content_type="application/merge-patch+json", body={"status": {
                     "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True"}]}})


def _endpoints(kube, ns: str, service: str, pod: str, ip: str, port: int) -> None:
    ref = {"kind": "Pod", "namespace": ns, "name": pod}
    kube.request("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", body={
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-netns", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "targetRef": ref}]})
    kube.request("POST", f"/api/v1/namespaces/{ns}/endpoints", body={
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": service},
        "subsets": [{"addresses": [{"ip": ip, "targetRef": ref}],
                     "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}]})


def _wait_proxied(kube, ns: str, service: str, timeout: float = 20.0) -> None:
    """Poll until the API server proxies to the service (observing the cluster, bounded)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            kube.request("GET", f"/api/v1/namespaces/{ns}/services/{service}:80/proxy/v2/health/ready",
                         timeout=5)
            return
        except ClusterError as e:
            last = e
            time.sleep(0.2)
    raise AssertionError(f"the API server did not proxy to {service} within {timeout} s: {last}")


def _start_in(host: NetnsHost, model: str, version: str, log: Path) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    proc = host.popen([sys.executable, "-m", "jupyter_mldeploy.serving", "--model", model, "--name", "churn",
                       "--version", version, "--host", host.address, "--port", "0", "--log-file", str(log)],
                      env=env, stderr=subprocess.PIPE, text=True)
    banner = proc.stderr.readline()
    assert f"listening on http://{host.address}:" in banner, banner
    return int(banner.rsplit(":", 1)[1])


# --- (a) no ready pod: one sentence ----------------------------------------------------------------


def test_services_without_a_ready_pod_give_one_clear_sentence(cluster, namespace, kube):
    for svc, track in (("churn", "stable"), ("churn-shadow", "shadow")):
        _service(kube, namespace, svc, target_port="http",
                 selector={"app.kubernetes.io/instance": "churn", "mldeploy.io/track": track})
    with pytest.raises(MLDeployError) as err:
        compare("churn", ROWS, namespace=namespace, kube=kube)
    assert not isinstance(err.value, ClusterError)
    assert str(err.value) == ("Neither the primary model churn nor the shadow model churn-shadow has a ready "
                              "pod behind its Service, so nothing answered; check their pods with "
                              "%rollout churn.")


def test_a_missing_service_is_named(cluster, namespace, kube):
    with pytest.raises(MLDeployError) as err:
        compare("ghost", ROWS, namespace=namespace, kube=kube)
    assert str(err.value) == (f"There is no Service ghost in namespace {namespace}, so there is no primary "
                              f"model to ask. There is no Service ghost-shadow in namespace {namespace}, so "
                              f"there is no shadow model to ask.")


# --- (b) the happy path, through the proxy to servers in a network namespace -----------------------


def test_compare_through_the_service_proxy(cluster, namespace, kube, tmp_path):
    if not cluster.is_sandbox:
        pytest.skip("the model servers run in a network namespace on this machine; only the local sandbox's "
                    "API server can reach them")
    reason = NetnsHost.unavailable()
    if reason:
        pytest.skip(reason)

    plog, slog = tmp_path / "primary.jsonl", tmp_path / "shadow.jsonl"
    host = NetnsHost()
    with host:
        p_port = _start_in(host, "models_for_tests:primary", "1", plog)
        s_port = _start_in(host, "models_for_tests:shadow", "2", slog)
        for svc, port in (("churn", p_port), ("churn-shadow", s_port)):
            _standin_pod(kube, namespace, f"{svc}-standin", host.address)
            _service(kube, namespace, svc, selector=None, target_port=port)
            _endpoints(kube, namespace, svc, f"{svc}-standin", host.address, port)
            _wait_proxied(kube, namespace, svc)

        report = compare("churn", ROWS, namespace=namespace, kube=kube, concurrency=4)
        s = report.summary
        assert (s.n, s.compared, s.agreeing) == (22, 20, 15)
        assert s.agreement_pct == pytest.approx(75.0)
        assert s.max_abs_diff == pytest.approx(mft.SHADOW_OFFSET)
        assert (s.primary_errors, s.shadow_errors) == (0, 2)
        assert all("HTTP 500" in e for e in report.rows["shadow_error"].dropna())
        assert (report.rows["primary_ms"] > 0).all() and (report.rows["shadow_ms"] > 0).all()
        assert report.shadow == f"Service {namespace}/churn-shadow (through the API server's service proxy)"

        # The answers came from the servers in the namespace, through the proxy, with the row's id.
        ids = set(report.rows["request_id"])
        assert {json.loads(x)["request_id"] for x in plog.read_text().splitlines()} == ids
        assert {json.loads(x)["request_id"] for x in slog.read_text().splitlines()} == ids
        joined = live("churn", primary_log=plog, shadow_log=slog)
        assert (joined.summary.n, joined.summary.agreeing, joined.summary.unmatched_primary) == (22, 15, 0)

        # A working primary and a shadow Service with no ready pod: the shadow is named, in one sentence.
        _service(kube, namespace, "fraud", selector=None, target_port=p_port)
        _endpoints(kube, namespace, "fraud", "churn-standin", host.address, p_port)
        _service(kube, namespace, "fraud-shadow", target_port="http",
                 selector={"app.kubernetes.io/instance": "fraud", "mldeploy.io/track": "shadow"})
        _wait_proxied(kube, namespace, "fraud")
        with pytest.raises(MLDeployError) as err:
            compare("fraud", ROWS, model="churn", namespace=namespace, kube=kube)
        assert str(err.value) == ("The shadow model fraud-shadow has no ready pod behind its Service, so "
                                  "nothing answered; check its pods with %rollout fraud.")
    assert not host.exists()
