"""Rollout strategies and traffic layers against the sandbox's real API server."""

from __future__ import annotations

import pytest

import jupyter_mldeploy as mld
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.errors import ClusterError, MLDeployError, RolloutFailed, SpecError
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox


def spec(image: str, **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "fraud", "image": image, **kw})


def get(kube, path):
    return kube.request("GET", path)[1]


def names(kube, ns, kind_path) -> set[str]:
    return {i["metadata"]["name"] for i in get(kube, kind_path.format(ns=ns))["items"]}


DEPLOYS = "/apis/apps/v1/namespaces/{ns}/deployments"
SERVICES = "/api/v1/namespaces/{ns}/services"


def forget_process_state():
    ro._known.clear()  # as a fresh kernel would start


def test_canary_with_istio_weights_promote(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0", replicas=2), namespace=namespace, kube=kube, timeout=120)
    r = ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="canary", weight=10, router="istio",
                 namespace=namespace, kube=kube, timeout=120)
    assert r.router == "istio" and r.weight == 10
    vs_path = f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud"
    routes = get(kube, vs_path)["spec"]["http"][0]["route"]
    assert [(x["destination"]["subset"], x["weight"]) for x in routes] == [("stable", 90), ("canary", 10)]
    # Istio subsets need the stable Service to select every live pod.
    svc = get(kube, f"/api/v1/namespaces/{namespace}/services/fraud")
    assert svc["spec"]["selector"] == {"app.kubernetes.io/instance": "fraud", "mldeploy.io/live": "true"}

    ro.set_weight("fraud", 30, namespace=namespace, kube=kube)
    routes = get(kube, vs_path)["spec"]["http"][0]["route"]
    assert [x["weight"] for x in routes] == [70, 30]

    forget_process_state()  # another kernel picks the rollout up from the cluster
    seen = ro.read("fraud", namespace=namespace, kube=kube)
    assert (seen.strategy, seen.router, seen.weight, seen.candidate_version) == ("canary", "istio", 30, "2.0")

    ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    assert names(kube, namespace, SERVICES) == {"fraud"}
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/fraud:2.0"
    assert dep["spec"]["replicas"] == 2  # the stable's size, not the canary's
    routes = get(kube, vs_path)["spec"]["http"][0]["route"]
    assert [(x["destination"]["subset"], x["weight"]) for x in routes] == [("stable", 100)]
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_canary_rollback_removes_the_candidate_and_routes_all_to_stable(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0", gateway="infra/public", expose="gateway", host="fraud.example"),
               namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="canary", weight=25, namespace=namespace, kube=kube,
             timeout=120)
    path = f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/fraud"
    refs = get(kube, path)["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in refs] == [("fraud", 75), ("fraud-canary", 25)]
    ro.abort("fraud", namespace=namespace, kube=kube)
    refs = get(kube, path)["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in refs] == [("fraud", 100)]
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/fraud:1.0"


def test_shadow_mirror_with_gateway_and_istio(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0"), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="shadow", mirror=50, router="gateway",
             gateway="infra/public", namespace=namespace, kube=kube, timeout=120)
    rule = get(kube, f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/fraud")[
        "spec"]["rules"][0]
    mirror = rule["filters"][0]["requestMirror"]
    assert (mirror["backendRef"]["name"], mirror["backendRef"]["port"], mirror["percent"]) == (
        "fraud-shadow", 80, 50)
    assert [b["name"] for b in rule["backendRefs"]] == ["fraud"]  # answers come from stable only
    ro.set_mirror("fraud", 20, namespace=namespace, kube=kube)
    rule = get(kube, f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/fraud")[
        "spec"]["rules"][0]
    assert rule["filters"][0]["requestMirror"]["percent"] == 20
    ro.abort("fraud", namespace=namespace, kube=kube)
    assert names(kube, namespace, DEPLOYS) == {"fraud"}


def test_shadow_with_istio_mirror_percentage(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0"), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="shadow", mirror=30, router="istio",
             namespace=namespace, kube=kube, timeout=120)
    http = get(kube, f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud")[
        "spec"]["http"][0]
    assert http["mirror"]["host"] == f"fraud-shadow.{namespace}.svc.cluster.local"
    assert http["mirrorPercentage"]["value"] == 30
    pods = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                        query={"labelSelector": "mldeploy.io/track=shadow"})[1]["items"]
    assert pods and all(p["metadata"]["labels"]["mldeploy.io/live"] == "false" for p in pods)
    ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)
    http = get(kube, f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud")[
        "spec"]["http"][0]
    assert "mirror" not in http
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/fraud:2.0"


def test_blue_green_switch_and_release_without_router(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0", replicas=2), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0", replicas=2), strategy="blue-green", router="replicas",
             namespace=namespace, kube=kube, timeout=120)
    svc_path = f"/api/v1/namespaces/{namespace}/services/fraud"
    # Before the switch the Service selects live pods only: preview pods are live=false.
    assert get(kube, svc_path)["spec"]["selector"] == {"app.kubernetes.io/instance": "fraud",
                                                       "mldeploy.io/live": "true"}
    ro.promote("fraud", namespace=namespace, kube=kube)  # the switch
    assert get(kube, svc_path)["spec"]["selector"]["mldeploy.io/track"] == "preview"
    # The old stable stays for an instant rollback until released.
    assert names(kube, namespace, DEPLOYS) == {"fraud", "fraud-preview"}
    ro.release("fraud", namespace=namespace, kube=kube, timeout=120)
    assert get(kube, svc_path)["spec"]["selector"]["mldeploy.io/track"] == "stable"
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/fraud:2.0"


def test_canary_without_router_states_the_achievable_split(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0", replicas=4), namespace=namespace, kube=kube, timeout=120)
    r = ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="canary", weight=10, router="replicas",
                 namespace=namespace, kube=kube, timeout=120)
    assert "25%" in r.split_sentence
    stable = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    canary = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud-canary")
    assert (stable["spec"]["replicas"], canary["spec"]["replicas"]) == (3, 1)
    r = ro.set_weight("fraud", 50, namespace=namespace, kube=kube)
    canary = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud-canary")
    assert canary["spec"]["replicas"] == 2 and "50%" in r.split_sentence
    ro.abort("fraud", namespace=namespace, kube=kube)
    stable = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud")
    assert stable["spec"]["replicas"] == 4 and names(kube, namespace, DEPLOYS) == {"fraud"}


def test_refusals_happen_before_any_write(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0"), namespace=namespace, kube=kube, timeout=120)
    with pytest.raises(SpecError, match="mirror"):
        ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="shadow", router="replicas",
                 namespace=namespace, kube=kube)
    # The sandbox offers nginx (its IngressClass), which cannot mirror part of the requests; a cluster
    # without ingress-nginx refuses the router itself. test_rollout_nginx.py covers nginx in full.
    nginx_refusal = "mirrors every request or none" if "nginx" in ro.offered_routers(kube) else "not offered"
    with pytest.raises(SpecError, match=nginx_refusal):
        ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="shadow", mirror=50, router="nginx",
                 namespace=namespace, kube=kube)
    with pytest.raises(SpecError, match="Knative"):
        ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="shadow", router="knative",
                 namespace=namespace, kube=kube)
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    with pytest.raises(MLDeployError, match="no stable release"):
        ro.start(spec("ghcr.io/acme/fraud:2.0").with_(name="ghost"), strategy="canary", namespace=namespace,
                 kube=kube)


def test_steps_once_advance_and_failing_check_rolls_back(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0"), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="canary", weight=0, router="istio",
             namespace=namespace, kube=kube, timeout=120)
    plan = [10, 25, 50, 100]
    r = ro.steps("fraud", plan, once=True, namespace=namespace, kube=kube)
    assert (r.weight, r.step) == (10, 0)
    forget_process_state()  # tomorrow's pipeline run
    r = ro.steps("fraud", plan, once=True, namespace=namespace, kube=kube)
    assert (r.weight, r.step) == (25, 1)
    with pytest.raises(RolloutFailed, match="rolled back at 25%"):
        ro.steps("fraud", plan, once=True, check=lambda: False, namespace=namespace, kube=kube)
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_second_rollout_is_refused_while_one_runs(kube, namespace):
    mld.deploy(spec("ghcr.io/acme/fraud:1.0"), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("ghcr.io/acme/fraud:2.0"), strategy="canary", weight=5, router="istio",
             namespace=namespace, kube=kube, timeout=120)
    with pytest.raises(MLDeployError, match="already has a rollout"):
        ro.start(spec("ghcr.io/acme/fraud:3.0"), strategy="canary", router="istio", namespace=namespace,
                 kube=kube)
    with pytest.raises((SpecError, ClusterError)):
        ro.set_weight("fraud", 101, namespace=namespace, kube=kube)
