"""The routers' manifests against a real API server: created for real (no dry run), read back, and
the stored weights and mirrors compared with what was asked. Where a CRD validates a value itself,
the API server's refusal of an out-of-range one is checked too.

The sandbox serves the published CRDs of Gateway API, Istio and Knative Serving, with no controller
or webhook behind them (unless Knative's run, `sandbox up --knative`: its webhook then adds defaults,
so what we sent is checked to be kept, not to be all): these tests show what the schemas accept and
store, not what a data plane does.
"""

from __future__ import annotations

import copy

import pytest
from k8s_helpers import wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException

from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.render import pod_template, render
from jupyter_mldeploy.render.routers import MIRROR_PERCENT, ROUTER, gateway, istio, knative, nginx, replicas
from jupyter_mldeploy.spec import DeploySpec
from jupyter_mldeploy.traffic import ROUTER_APIS, check_supported, served_routers

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/churn"


def labels(name: str) -> dict[str, str]:
    return {L.APP_NAME: name, L.APP_INSTANCE: name, L.APP_COMPONENT: L.COMPONENT_PREDICTOR,
            L.APP_MANAGED_BY: L.MANAGED_BY}


@pytest.fixture(scope="module")
def api(cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture(scope="module")
def served(api) -> set[str]:
    """The cluster's served group/versions, as discovery reports them."""
    groups = client.ApisApi(api).get_api_versions().groups
    return {v.group_version for g in groups for v in g.versions}


@pytest.fixture(scope="module")
def ingress_classes(api) -> list[str]:
    return [c.metadata.name for c in client.NetworkingV1Api(api).list_ingress_class().items]


def kept(sent, stored) -> bool:
    """Everything sent is in what was stored (a mutating webhook, such as Knative's when it runs, may
    add defaults beside it, and its Go round trip drops zero values such as initialDelaySeconds: 0)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(kept(v, stored[k]) if k in stored else v in (0, False, "")
                                                for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(stored, list) and len(sent) == len(stored) and all(map(kept, sent, stored))
    return sent == stored


def need(router: str, served: set[str]) -> None:
    if ROUTER_APIS[router] not in served:
        pytest.skip(f"the cluster does not serve {ROUTER_APIS[router]}")


def create(api: client.ApiClient, obj: dict) -> dict:
    """Create one rendered object for real and return what the API server stored."""
    group_version, kind, ns = obj["apiVersion"], obj["kind"], obj["metadata"]["namespace"]
    if kind == "Ingress":
        net = client.NetworkingV1Api(api)
        net.create_namespaced_ingress(ns, obj)
        return api.sanitize_for_serialization(net.read_namespaced_ingress(obj["metadata"]["name"], ns))
    if kind == "Service" and group_version == "v1":
        core = client.CoreV1Api(api)
        core.create_namespaced_service(ns, obj)
        return api.sanitize_for_serialization(core.read_namespaced_service(obj["metadata"]["name"], ns))
    group, version = group_version.split("/")
    plural = {"HTTPRoute": "httproutes", "VirtualService": "virtualservices",
              "DestinationRule": "destinationrules", "Service": "services"}[kind]
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(group, version, ns, plural, obj)
    return custom.get_namespaced_custom_object(group, version, ns, plural, obj["metadata"]["name"])


def refused(api: client.ApiClient, obj: dict) -> str:
    with pytest.raises(ApiException) as info:
        create(api, obj)
    assert info.value.status == 422, info.value.body
    return info.value.body


def annotations(stored: dict) -> dict[str, str]:
    return stored["metadata"]["annotations"]


# ---------------------------------------------------------------------------------------------------------
# what the cluster offers


def test_offered_routers_follow_discovery(cluster, served, ingress_classes):
    offered = served_routers(served, ingress_classes)
    assert "replicas" in offered
    for router, group_version in ROUTER_APIS.items():
        if router != "nginx":
            assert (router in offered) == (group_version in served)
    assert ("nginx" in offered) == (ROUTER_APIS["nginx"] in served and "nginx" in ingress_classes)
    if cluster.is_sandbox:
        # The sandbox simulates ingress-nginx by its IngressClass, so it offers every router.
        assert offered == ("gateway", "istio", "knative", "nginx", "replicas")
    # The Ingress API alone is served by every cluster: without that IngressClass, nginx is refused.
    without = served_routers(served, [c for c in ingress_classes if c != "nginx"])
    assert "nginx" not in without
    with pytest.raises(SpecError, match="IngressClass named 'nginx'"):
        check_supported("canary", "nginx", weight=10, offered=without)


def test_gateway_crds_support_mirror_percent(api, served):
    need("gateway", served)
    extensions = client.ApiextensionsV1Api(api)
    crd = extensions.read_custom_resource_definition("httproutes.gateway.networking.k8s.io")
    version = crd.metadata.annotations["gateway.networking.k8s.io/bundle-version"]
    check_supported("shadow", "gateway", mirror=25, gateway_version=version)


# ---------------------------------------------------------------------------------------------------------
# gateway


def test_gateway_canary_weights_stored(api, served, namespace):
    need("gateway", served)
    (obj,) = gateway.route("churn", namespace, stable_weight=90, candidate_weight=10, gateway="infra/public",
                           host="churn.example.com", labels=labels("churn"))
    stored = create(api, obj)
    (rule,) = stored["spec"]["rules"]
    assert [(b["name"], b["port"], b["weight"]) for b in rule["backendRefs"]] == [
        ("churn", 80, 90), ("churn-canary", 80, 10)]
    assert stored["spec"]["hostnames"] == ["churn.example.com"]
    assert stored["spec"]["parentRefs"][0]["namespace"] == "infra"
    assert annotations(stored)[L.WEIGHT] == "10"
    assert stored["metadata"]["labels"] == labels("churn")


def test_gateway_mirror_percent_stored_not_pruned(api, served, namespace):
    need("gateway", served)
    (obj,) = gateway.route("churn", namespace, stable_weight=100, candidate_weight=0, candidate_track=None,
                           mirror_percent=25, gateway="public", labels=labels("churn"))
    stored = create(api, obj)
    (rule,) = stored["spec"]["rules"]
    (mirror,) = rule["filters"]
    assert mirror["type"] == "RequestMirror"
    # An old CRD would prune `percent` silently and mirror everything; this one keeps it.
    assert mirror["requestMirror"]["percent"] == 25
    assert mirror["requestMirror"]["backendRef"]["name"] == "churn-shadow"
    assert mirror["requestMirror"]["backendRef"]["port"] == 80
    assert annotations(stored)[MIRROR_PERCENT] == "25"


def test_gateway_blue_green_switch_stored(api, served, namespace):
    need("gateway", served)
    (obj,) = gateway.route("bg", namespace, stable_weight=0, candidate_weight=100, candidate_track="preview",
                           gateway="public", labels=labels("bg"))
    (rule,) = create(api, obj)["spec"]["rules"]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("bg", 0), ("bg-preview", 100)]


@pytest.mark.parametrize("weight", [1_000_001, -1])
def test_api_server_refuses_out_of_range_httproute_weight(api, served, namespace, weight):
    need("gateway", served)
    (obj,) = gateway.route("churn", namespace, stable_weight=90, candidate_weight=10, gateway="public",
                           labels=labels("churn"))
    obj["spec"]["rules"][0]["backendRefs"][1]["weight"] = weight
    body = refused(api, obj)
    assert "weight" in body


@pytest.mark.parametrize("percent", [101, -1])
def test_api_server_refuses_out_of_range_mirror_percent(api, served, namespace, percent):
    need("gateway", served)
    (obj,) = gateway.route("churn", namespace, stable_weight=100, candidate_weight=0, candidate_track=None,
                           mirror_percent=50, gateway="public", labels=labels("churn"))
    obj["spec"]["rules"][0]["filters"][0]["requestMirror"]["percent"] = percent
    body = refused(api, obj)
    assert "percent" in body


def test_api_server_refuses_mirror_percent_and_fraction_together(api, served, namespace):
    need("gateway", served)
    (obj,) = gateway.route("churn", namespace, stable_weight=100, candidate_weight=0, candidate_track=None,
                           mirror_percent=50, gateway="public", labels=labels("churn"))
    obj["spec"]["rules"][0]["filters"][0]["requestMirror"]["fraction"] = {"numerator": 1}
    assert "Only one of percent or fraction" in refused(api, obj)


# ---------------------------------------------------------------------------------------------------------
# istio


def test_istio_weights_subsets_and_mirror_stored(api, served, namespace):
    need("istio", served)
    rule, vs = istio.route("churn", namespace, stable_weight=70, candidate_weight=30, mirror_percent=15,
                           host="churn.example.com", gateway="istio-system/public", labels=labels("churn"))
    stored_rule = create(api, rule)
    stored_vs = create(api, vs)
    host = f"churn.{namespace}.svc.cluster.local"
    assert stored_rule["spec"]["host"] == host
    assert stored_rule["spec"]["subsets"] == [{"name": "stable", "labels": {L.TRACK: "stable"}},
                                              {"name": "canary", "labels": {L.TRACK: "canary"}}]
    (http,) = stored_vs["spec"]["http"]
    assert [(d["destination"]["host"], d["destination"]["subset"], d["weight"]) for d in http["route"]] == [
        (host, "stable", 70), (host, "canary", 30)]
    assert http["mirror"] == {"host": f"churn-shadow.{namespace}.svc.cluster.local", "port": {"number": 80}}
    assert http["mirrorPercentage"]["value"] == 15
    assert stored_vs["spec"]["hosts"] == [host, "churn.example.com"]
    assert stored_vs["spec"]["gateways"] == ["istio-system/public", "mesh"]
    assert annotations(stored_vs)[ROUTER] == "istio"


def test_istio_crd_does_not_guard_weights_so_we_do(api, served, namespace):
    # The VirtualService schema types weight as int32 with no range (istiod's webhook checks it in a
    # real mesh); the route refuses before any write instead.
    need("istio", served)
    _, vs = istio.route("loose", namespace, stable_weight=90, candidate_weight=10, labels=labels("loose"))
    vs["spec"]["http"][0]["route"][0]["weight"] = 150
    assert create(api, vs)["spec"]["http"][0]["route"][0]["weight"] == 150
    with pytest.raises(SpecError, match="from 0 to 100, not 150"):
        istio.route("loose", namespace, stable_weight=150, candidate_weight=10, labels=labels("loose"))


def test_api_server_refuses_istio_destination_without_host(api, served, namespace):
    need("istio", served)
    _, vs = istio.route("churn", namespace, stable_weight=90, candidate_weight=10, labels=labels("churn"))
    del vs["spec"]["http"][0]["route"][1]["destination"]["host"]
    assert "host" in refused(api, vs)


# ---------------------------------------------------------------------------------------------------------
# knative


def test_knative_traffic_and_template_stored_without_pruning(api, served, namespace):
    need("knative", served)
    candidate = DeploySpec("churn", f"{IMAGE}:1.5", track="canary", namespace=namespace)
    template = pod_template(candidate)
    (obj,) = knative.route("churn", namespace, stable_weight=80, candidate_weight=20, labels=labels("churn"),
                           template=template, stable_version="1.4", candidate_version="1.5")
    stored = create(api, obj)
    assert kept([{"revisionName": "churn-1-4", "percent": 80, "tag": "stable"},
                 {"revisionName": "churn-1-5", "percent": 20, "tag": "canary"}], stored["spec"]["traffic"])
    meta = stored["spec"]["template"]["metadata"]
    assert meta["name"] == "churn-1-5"
    assert meta["annotations"][knative.MIN_SCALE] == "1"
    # The schema is structural: a field outside it would be dropped silently. Everything we send stays.
    assert kept(obj["spec"]["template"]["spec"], stored["spec"]["template"]["spec"])
    assert annotations(stored)[L.WEIGHT] == "20"


def test_knative_scale_to_zero_stored(api, served, namespace):
    need("knative", served)
    stable = DeploySpec("cold", f"{IMAGE}:1.4", namespace=namespace)
    (obj,) = knative.route("cold", namespace, stable_weight=100, candidate_weight=0, candidate_track=None,
                           labels=labels("cold"), template=pod_template(stable), stable_version="1.4",
                           scale_to_zero=True)
    stored = create(api, obj)
    assert stored["spec"]["template"]["metadata"]["annotations"][knative.MIN_SCALE] == "0"
    assert kept([{"revisionName": "cold-1-4", "percent": 100, "tag": "stable"}], stored["spec"]["traffic"])


# ---------------------------------------------------------------------------------------------------------
# nginx (the Ingress API is always served; the annotations are read by ingress-nginx alone)


def test_nginx_canary_and_mirror_annotations_stored(api, served, namespace):
    need("nginx", served)
    primary, canary = nginx.route("churn", namespace, stable_weight=75, candidate_weight=25,
                                  host="churn.example.com", labels=labels("churn"))
    create(api, primary)
    stored = create(api, canary)
    ann = annotations(stored)
    assert ann[nginx.CANARY] == "true"
    assert (ann[nginx.CANARY_WEIGHT], ann[nginx.CANARY_WEIGHT_TOTAL]) == ("25", "100")
    (rule,) = stored["spec"]["rules"]
    assert rule["host"] == "churn.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {"name": "churn-canary", "port": {"number": 80}}

    (mirrored,) = nginx.route("shadowed", namespace, stable_weight=100, candidate_weight=0,
                              candidate_track=None, mirror_percent=100, labels=labels("shadowed"))
    assert annotations(create(api, mirrored))[nginx.MIRROR_TARGET] == (
        f"http://shadowed-shadow.{namespace}.svc.cluster.local$request_uri")


# ---------------------------------------------------------------------------------------------------------
# replicas: the stored selector against real pods of every track


def test_replica_split_and_blue_green_switch_select_the_right_pods(api, namespace):
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    plan = replicas.plan("churn", namespace, stable_weight=90, candidate_weight=10, total_replicas=4,
                         labels=labels("churn"))
    assert (plan.stable_replicas, plan.canary_replicas) == (3, 1)
    assert "25%" in plan.split.sentence
    stable = DeploySpec("churn", f"{IMAGE}:1.4", namespace=namespace, replicas=plan.stable_replicas)
    tracks = [stable, stable.with_(track="canary", image=f"{IMAGE}:1.5", replicas=plan.canary_replicas),
              stable.with_(track="shadow", image=f"{IMAGE}:1.5", replicas=1),
              stable.with_(track="preview", image=f"{IMAGE}:1.6", replicas=2)]
    for spec in tracks:
        for obj in render(spec, replica_split=True):
            if obj["kind"] == "Deployment":
                apps.create_namespaced_deployment(namespace, obj)
            elif obj["kind"] == "Service" and spec.track != "stable":
                core.create_namespaced_service(namespace, obj)
    # The router's Service stands in for render()'s stable Service.
    stored = create(api, copy.deepcopy(plan.service))

    def running(selector: dict[str, str]) -> set[str]:
        # The sandbox gives pods loopback addresses, which the EndpointSlice API refuses, so the pods a
        # Service reaches are read as its selector matches them: the same match the controller makes.
        text = ",".join(f"{k}={v}" for k, v in selector.items())
        pods = core.list_namespaced_pod(namespace, label_selector=text, field_selector="status.phase=Running")
        return {p.metadata.name for p in pods.items}

    wait_until(lambda: len(running({L.APP_INSTANCE: "churn"})) == 7, timeout=60)
    stable_pods, canary_pods = running({L.TRACK: "stable"}), running({L.TRACK: "canary"})
    behind = running(stored["spec"]["selector"])
    assert behind == stable_pods | canary_pods  # shadow and preview pods are not live
    assert len(canary_pods) / len(behind) * 100 == plan.split.percent == 25.0

    (switched,) = replicas.route("churn", namespace, stable_weight=0, candidate_weight=100,
                                 candidate_track="preview", labels=labels("churn"))
    core.replace_namespaced_service("churn", namespace, switched)
    stored = api.sanitize_for_serialization(core.read_namespaced_service("churn", namespace))
    assert running(stored["spec"]["selector"]) == running({L.TRACK: "preview"})
    assert len(running(stored["spec"]["selector"])) == 2
    assert annotations(stored)[L.WEIGHT] == "100"
