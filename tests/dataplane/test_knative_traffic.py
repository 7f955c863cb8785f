"""Knative models on the real node, behind Knative's real networking layer: Traefik's KIngress on
127.0.0.1 and kube-proxy's rules for the ClusterIPs it dials. Every request is real and bounded; the
split is judged within a 3-sigma binomial band, as for the Gateway.

Knative Serving's components are started for this module with that layer (sandbox/knative_ingress.py)
and stopped after it, unless they were running already with it.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from dataclasses import dataclass

import pytest
from k8s_helpers import until_test_routes_are_gone, wait_until

from jupyter_mldeploy import rollout
from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.render.routers.knative import Scale
from jupyter_mldeploy.sandbox import knative_ingress

from .realnode import INFER, Client, body, measure_canary, real_spec, versions_through

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane, pytest.mark.knative]


@dataclass(frozen=True)
class Ingress:
    port: int


@pytest.fixture(scope="module")
def kingress(real, cluster):
    from jupyter_mldeploy.sandbox import knative as kn

    missing = kn.missing_binaries() + knative_ingress.missing()
    if missing:
        pytest.skip(f"Knative Serving or its networking layer is not built ({', '.join(missing)}): run "
                    f"`python -m jupyter_mldeploy sandbox build --knative` as root")
    components = kn.Knative(real.box)
    state = components.state() or {}
    was_up = components.status()["up"] and bool(state.get("networking"))
    if components.status()["up"] and not state.get("networking"):
        components.down(progress=lambda _m: None)  # started before the real node: start it beside it
    components.up(progress=lambda _m: None)
    state = components.state() or {}
    if not state.get("networking"):
        pytest.skip(f"Knative runs without its networking layer here: {state.get('no_ingress')}")
    yield Ingress(knative_ingress.ingress_port(real.layout.port_base))
    if not was_up:
        until_test_routes_are_gone(Kube(str(cluster.kubeconfig), cluster.context), timeout=120)
        components.down(progress=lambda _m: None)


@pytest.fixture
def client(kingress):
    c = Client("127.0.0.1", kingress.port)
    yield c
    c.close()


def _host(kube, namespace: str, name: str) -> str:
    """The route's host, as Knative wrote it in the Service's status.url."""
    def url() -> str | None:
        svc = rk.read_service(kube, namespace, name) or {}
        return (svc.get("status") or {}).get("url")
    return wait_until(url, 60, f"{name}'s route URL").split("://", 1)[1]


def _answers(client: Client, host: str, expect: set[str], timeout: float = 60) -> None:
    """Until Traefik routes the host and only the expected versions answer."""
    def ok() -> bool:
        seen = versions_through(client, host, 10)
        return set(seen) <= expect and not any(k.startswith("HTTP") for k in seen)
    wait_until(ok, timeout, f"Traefik to route {host} to {sorted(expect)}", interval=0.5)


def test_a_knative_canary_split_is_measured_through_its_networking_layer(kingress, client, kube, namespace):
    name = "fraud"
    rk.deploy(real_spec(name, namespace, model_version="1"), scale=Scale(min=1), kube=kube, timeout=180)
    host = _host(kube, namespace, name)
    _answers(client, host, {"1"})
    rollout.start(real_spec(name, namespace, model_version="2"), strategy="canary", router="knative",
                  weight=30, kube=kube, timeout=180)
    # Knative's route controller, then Traefik, take each new split: measured once it is in place.
    results = measure_canary(client, host,
                             lambda w: rollout.set_weight(name, w, namespace=namespace, kube=kube))
    rollout.promote(name, namespace=namespace, kube=kube, timeout=180)
    _answers(client, host, {"2"})
    assert versions_through(client, host, 100) == {"2": 100}
    print(f"Knative canary split of 400 requests per weight: {results}")


def test_a_model_scaled_to_zero_answers_its_first_request_after_a_cold_start(kingress, client, kube,
                                                                               namespace):
    name = "fraud"
    model = rk.deploy(real_spec(name, namespace, model_version="1"), scale=Scale(min=0), kube=kube,
                      timeout=180)
    host = _host(kube, namespace, name)
    _answers(client, host, {"1"})
    deployment = f"/apis/apps/v1/namespaces/{namespace}/deployments/{model.revision}-deployment"
    pods = f"/api/v1/namespaces/{namespace}/pods"
    selector = {"labelSelector": f"serving.knative.dev/revision={model.revision}"}

    def at_zero() -> bool:
        dep = kube.request("GET", deployment)[1]
        return dep["spec"]["replicas"] == 0 and not kube.request("GET", pods, query=selector)[1]["items"]
    # Idle: the sandbox's autoscaler takes the revision to zero after its 6 s window and grace period.
    wait_until(at_zero, 90, f"{model.revision} to scale to zero", interval=1)
    cold = http.client.HTTPConnection("127.0.0.1", kingress.port, timeout=60)  # a pod must start first
    start = time.monotonic()
    cold.request("POST", INFER, body(), {"Host": host, "Content-Type": "application/json"})
    resp = cold.getresponse()
    raw = resp.read()
    took = time.monotonic() - start
    cold.close()
    assert resp.status == 200, raw  # held by the activator while a pod starts, then answered
    print(f"cold start through Knative's activator: first answer after {took:.2f} s")



def _kube_rules() -> list[str]:
    """Every iptables and ip6tables line (`-S`, per table) that names a KUBE- chain: what kube-proxy,
    and kubelet if it were allowed, write into the machine's own tables."""
    out = []
    for tool in knative_ingress.IPTABLES:
        for table in ("filter", "nat", "mangle"):
            proc = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True, check=True)
            out += [f"{tool} {table} {line}" for line in proc.stdout.splitlines() if "KUBE-" in line]
    return sorted(out)


def test_knative_up_waits_for_kube_proxys_rules_and_down_leaves_the_machines_iptables_as_found(
        kingress, real, cluster):
    from jupyter_mldeploy.sandbox import knative as kn

    components = kn.Knative(real.box)
    try:
        components.down(progress=lambda _m: None)
        found = _kube_rules()  # the machine without Knative's networking layer
        assert not knative_ingress.kube_services_present()
        components.up(progress=lambda _m: None)
        # up returns once kube-proxy has written its rules, not once its healthz first answers.
        assert knative_ingress.kube_services_present()
        assert set(_kube_rules()) > set(found)
        components.down(progress=lambda _m: None)
        assert _kube_rules() == found, "Knative's down left (or removed) KUBE- rules"
    finally:
        components.up(progress=lambda _m: None)  # the module's other tests and its fixture carry on
        assert (components.state() or {}).get("networking")
