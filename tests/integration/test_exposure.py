"""Exposure as GKE's article does it, written to the sandbox's real API server: an Ingress with TLS
(a Secret, or cert-manager's issuer annotation), annotations on the Ingress alone, and the Service
type (NodePort, as GKE's Ingress needs; LoadBalancer). The objects are read back as the server keeps
them; a wrong value never reaches it.
"""

from __future__ import annotations

import pytest

from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/iris:1.0"
HOST = "iris.example.com"
GKE = {"kubernetes.io/ingress.global-static-ip-name": "iris-ip",
       "ingress.gcp.kubernetes.io/pre-shared-cert": "iris-cert"}


def get(kube: Kube, path: str) -> dict:
    return kube.request("GET", path)[1]


def test_tls_ingress_annotations_and_a_node_port_service_are_accepted(ip, kube, namespace):
    line = (f"iris --image {IMAGE} --cpu 100m --memory 128Mi --expose ingress --host {HOST} "
            f"--tls-secret iris-tls --service-type NodePort --ingress-annotation "
            + " ".join(f"{k}={v}" for k, v in GKE.items()))
    result = ip.run_cell(f"%%deploy {line}\nannotations:\n  team.example.com/owner: ml\n")
    assert result.success, result.error_in_exec
    ing = get(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/iris")
    assert ing["spec"]["tls"] == [{"hosts": [HOST], "secretName": "iris-tls"}]
    assert ing["metadata"]["annotations"] == {"team.example.com/owner": "ml", **GKE}
    svc = get(kube, f"/api/v1/namespaces/{namespace}/services/iris")
    assert svc["spec"]["type"] == "NodePort" and 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["metadata"]["annotations"] == {"team.example.com/owner": "ml"}  # not the Ingress's
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    assert not set(GKE) & set(dep["metadata"].get("annotations", {}))

    # Back to ClusterIP and no TLS: the server drops the node port, and the Ingress its tls.
    result = ip.run_cell(f"%deploy iris --image {IMAGE} --cpu 100m --memory 128Mi --expose ingress "
                         f"--host {HOST}")
    assert result.success, result.error_in_exec
    svc = get(kube, f"/api/v1/namespaces/{namespace}/services/iris")
    assert svc["spec"]["type"] == "ClusterIP" and "nodePort" not in svc["spec"]["ports"][0]
    ing = get(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/iris")
    assert "tls" not in ing["spec"] and not set(GKE) & set(ing["metadata"].get("annotations", {}))


def test_cert_managers_issuer_annotation_and_a_load_balancer(ip, kube, namespace):
    result = ip.run_cell(f"%deploy iris --image {IMAGE} --expose ingress --host {HOST} --cert-issuer "
                         f"letsencrypt-prod --service-type LoadBalancer --no-wait")
    assert result.success, result.error_in_exec
    ing = get(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/iris")
    assert ing["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt-prod"}
    assert ing["spec"]["tls"] == [{"hosts": [HOST], "secretName": "iris-tls"}]
    svc = get(kube, f"/api/v1/namespaces/{namespace}/services/iris")
    assert svc["spec"]["type"] == "LoadBalancer"


def test_server_dry_run_of_every_exposure_object(ip, namespace):
    result = ip.run_cell(f"d = %deploy iris --image {IMAGE} --expose ingress --host {HOST} --cert-issuer "
                         f"Issuer/team-ca --tls-secret own --service-type NodePort --dry-run server")
    assert result.success, result.error_in_exec
    diff = str(ip.user_ns["d"])
    assert "+  - secretName: own" in diff or "secretName: own" in diff
    assert "cert-manager.io/issuer: team-ca" in diff and "type: NodePort" in diff


@pytest.mark.parametrize(("flags", "words"), [
    ("--tls-secret iris-tls", "tls_secret is set but expose is not 'ingress'"),
    ("--expose ingress --tls-secret iris-tls", "tls_secret needs host"),
    ("--expose gateway --gateway infra/public --tls-secret iris-tls",
     "TLS lives on the Gateway's listener (its certificateRefs)"),
    ("--service-type External", "service_type 'External' is not one of"),
])
def test_a_wrong_exposure_is_one_sentence_and_nothing_is_written(ip, kube, namespace, flags, words):
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} {flags}")
    assert words in str(e.value) and "\n" not in str(e.value)
    assert get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments")["items"] == []
