"""The nginx router's Ingresses served for real: Traefik's ingress-nginx provider (sandbox/ingress_nginx.py)
reads their `canary` and `canary-weight` annotations and sends real requests to the real node's pods.
Every request goes to 127.0.0.1; a split is judged within a 3-sigma binomial band, as for the Gateway.

Traefik does not carry ingress-nginx's `mirror-target`, so a shadow on this router is not measured here
(tests/integration/test_rollout_nginx.py checks its objects as the API server accepted them).
"""

from __future__ import annotations

import pytest
from k8s_helpers import exists

from jupyter_mldeploy import deploy, rollout

from .realnode import (
    Client,
    host_for,
    measure_canary,
    real_spec,
    settle_share,
    settle_split,
    versions_through,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]


@pytest.fixture
def client(real):
    url = real.info.get("ingress_nginx_url")
    if not url:
        pytest.skip("Traefik is not built, so the data plane serves no nginx Ingress: run "
                    "`python -m jupyter_mldeploy sandbox build --knative` as root")
    c = Client("127.0.0.1", int(url.rsplit(":", 1)[1]))
    yield c
    c.close()


def _stable(name: str, namespace: str, kube) -> str:
    host = host_for(name, namespace)
    deploy(real_spec(name, namespace, model_version="1", expose="ingress", ingress_class="nginx", host=host),
           kube=kube, timeout=180)
    return host


def test_a_canary_on_the_nginx_router_is_measured_at_30_and_70_percent(client, kube, namespace):
    name = "churn"
    host = _stable(name, namespace, kube)
    settle_split(client, host, {"1"})
    rollout.start(real_spec(name, namespace, model_version="2"), strategy="canary", router="nginx",
                  weight=30, kube=kube, timeout=180)
    results = measure_canary(client, host,
                             lambda w: rollout.set_weight(name, w, namespace=namespace, kube=kube))
    rollout.promote(name, namespace=namespace, kube=kube, timeout=180)
    assert not exists(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}-canary")
    settle_split(client, host, {"2"})
    assert versions_through(client, host, 100) == {"2": 100}
    print(f"nginx canary split of 400 requests per weight (Traefik's ingress-nginx provider): {results}")


def test_a_blue_green_switch_on_the_nginx_router_moves_every_request_at_once(client, kube, namespace):
    name = "fraud"
    host = _stable(name, namespace, kube)
    settle_split(client, host, {"1"})
    rollout.start(real_spec(name, namespace, model_version="2"), strategy="blue-green", router="nginx",
                  kube=kube, timeout=180)
    # The preview runs at 0%: it answers nothing yet.
    settle_share(client, host, 0)
    assert versions_through(client, host, 100) == {"1": 100}
    rollout.promote(name, namespace=namespace, kube=kube, timeout=180)  # the switch
    settle_share(client, host, 100)
    assert versions_through(client, host, 100) == {"2": 100}
    rollout.release(name, namespace=namespace, kube=kube, timeout=180)
    assert not exists(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}-canary")
    settle_split(client, host, {"2"})
    assert versions_through(client, host, 100) == {"2": 100}
