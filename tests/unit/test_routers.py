"""Traffic layers: capabilities and refusals (traffic.py) and each router's manifests (render/routers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_mldeploy import labels as L
from jupyter_mldeploy import traffic
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.render import pod_template, render
from jupyter_mldeploy.render.routers import (
    CANDIDATE_TRACK,
    MIRROR_PERCENT,
    ROUTER,
    ROUTER_KINDS,
    gateway,
    istio,
    knative,
    nginx,
    replicas,
    route_for,
)
from jupyter_mldeploy.spec import DeploySpec, Resources
from jupyter_mldeploy.traffic import (
    ROUTERS,
    STRATEGIES,
    Split,
    achievable_split,
    check_supported,
    served_routers,
)

LABELS = {L.APP_NAME: "churn", L.APP_INSTANCE: "churn", L.APP_COMPONENT: L.COMPONENT_PREDICTOR,
          L.APP_MANAGED_BY: L.MANAGED_BY}
ALL_APIS = ("gateway.networking.k8s.io/v1", "networking.istio.io/v1", "serving.knative.dev/v1",
            "networking.k8s.io/v1")
FQDN = "churn.ml.svc.cluster.local"


def one_sentence(message: str) -> bool:
    """One sentence: a single terminal '.', '!' or '?', at the end."""
    return len(re.findall(r"[.!?](?:\s|$)", message)) == 1 and message.endswith(".")


def refusal(fn, *args, **kw) -> str:
    with pytest.raises(SpecError) as info:
        fn(*args, **kw)
    message = str(info.value)
    assert one_sentence(message), message
    return message


def template(version: str = "1.5", track: str = "canary", **kw) -> dict:
    return pod_template(DeploySpec("churn", f"ghcr.io/acme/churn:{version}", track=track, **kw))


def knative_route(**kw) -> dict:
    args = dict(stable_weight=90, candidate_weight=10, labels=LABELS, template=template(),
                stable_version="1.4", candidate_version="1.5")
    args.update(kw)
    (svc,) = knative.route("churn", "ml", **args)
    return svc


# ---------------------------------------------------------------------------------------------------------
# served_routers


def test_served_routers_all():
    assert served_routers(ALL_APIS, ["nginx"]) == ROUTERS


def test_served_routers_replicas_always_offered():
    assert served_routers([]) == ("replicas",)


def test_served_routers_nginx_needs_ingress_class():
    assert "nginx" not in served_routers(["networking.k8s.io/v1"])
    assert "nginx" not in served_routers(["networking.k8s.io/v1"], ["traefik"])
    assert served_routers(["networking.k8s.io/v1"], ["traefik", "nginx"]) == ("nginx", "replicas")


def test_served_routers_needs_the_version_we_write():
    # Istio before 1.22 served only v1beta1/v1alpha3; we write v1.
    assert served_routers(["networking.istio.io/v1beta1", "gateway.networking.k8s.io/v1beta1"]) == (
        "replicas",)
    assert served_routers(["gateway.networking.k8s.io/v1", "serving.knative.dev/v1"]) == (
        "gateway", "knative", "replicas")


def test_served_routers_refuses_a_lone_string():
    refusal(served_routers, "networking.istio.io/v1")


# ---------------------------------------------------------------------------------------------------------
# check_supported: what works


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_every_router_carries_rolling_blue_green_and_canary(router, strategy):
    weight = {"rolling": None, "blue-green": 100, "canary": 10}[strategy]
    check_supported(strategy, router, weight=weight, offered=ROUTERS)


@pytest.mark.parametrize("router", ["gateway", "istio", "knative", "nginx", "replicas"])
@pytest.mark.parametrize("weight", [0, 1, 33, 99, 100])
def test_canary_any_weight(router, weight):
    check_supported("canary", router, weight=weight)


@pytest.mark.parametrize("router, mirror", [("gateway", 10), ("gateway", 100), ("istio", 1), ("istio", None),
                                            ("nginx", 100), ("nginx", None), ("nginx", 0)])
def test_shadow_with_mirroring_routers(router, mirror):
    check_supported("shadow", router, mirror=mirror)


def test_gateway_partial_mirror_with_features_and_new_crds():
    check_supported("shadow", "gateway", mirror=10, gateway_version="v1.4.1",
                    gateway_features=["HTTPRouteRequestMirror", "HTTPRouteRequestPercentageMirror"])


# ---------------------------------------------------------------------------------------------------------
# check_supported: refusals, one sentence each, with the reason


def test_shadow_with_replicas_refused():
    message = refusal(check_supported, "shadow", "replicas", mirror=100)
    assert message.startswith("shadow traffic needs a router that can mirror requests; ")
    assert "gateway, istio, nginx" in message


def test_shadow_with_knative_refused():
    message = refusal(check_supported, "shadow", "knative")
    assert "mirror" in message and "Knative" in message


def test_nginx_partial_mirror_refused():
    message = refusal(check_supported, "shadow", "nginx", mirror=50)
    assert "50%" in message and "no percentage" in message


def test_router_not_offered_refused_naming_what_is():
    message = refusal(check_supported, "canary", "istio", weight=10, offered=("gateway", "replicas"))
    assert "'istio' is not offered" in message
    assert "networking.istio.io/v1" in message
    assert message.endswith("offers: gateway, replicas.")


def test_nginx_not_offered_names_the_ingress_class():
    message = refusal(check_supported, "canary", "nginx", offered=("replicas",))
    assert "IngressClass named 'nginx'" in message


def test_gateway_without_mirror_feature_refused():
    message = refusal(check_supported, "shadow", "gateway", mirror=100, gateway_features=["HTTPRoute"])
    assert "HTTPRouteRequestMirror" in message


def test_gateway_without_percentage_mirror_feature_refused():
    message = refusal(check_supported, "shadow", "gateway", mirror=10,
                      gateway_features=["HTTPRouteRequestMirror"])
    assert "HTTPRouteRequestPercentageMirror" in message
    check_supported("shadow", "gateway", mirror=100, gateway_features=["HTTPRouteRequestMirror"])


@pytest.mark.parametrize("version", ["v1.2.1", "v1.0.0", "bogus"])
def test_gateway_partial_mirror_on_old_crds_refused(version):
    message = refusal(check_supported, "shadow", "gateway", mirror=10, gateway_version=version)
    assert "v1.3" in message
    check_supported("shadow", "gateway", mirror=100, gateway_version=version)


def test_recreate_with_knative_refused():
    assert "recreate" in refusal(check_supported, "recreate", "knative")


@pytest.mark.parametrize("kw", [
    {"strategy": "rolling", "weight": 10},
    {"strategy": "canary", "mirror": 10},
    {"strategy": "blue-green", "weight": 50},
    {"strategy": "canary", "weight": 101},
    {"strategy": "canary", "weight": -1},
    {"strategy": "canary", "weight": True},
    {"strategy": "shadow", "mirror": 100.0},
    {"strategy": "slow"},
])
def test_bad_values_refused(kw):
    strategy = kw.pop("strategy")
    refusal(check_supported, strategy, "gateway", **kw)


def test_unknown_router_refused():
    assert "linkerd" in refusal(check_supported, "canary", "linkerd")


def test_constants():
    assert ROUTERS == ("gateway", "istio", "knative", "nginx", "replicas")
    assert STRATEGIES == ("rolling", "recreate", "canary", "blue-green", "shadow")
    assert set(ROUTER_KINDS) == set(ROUTERS)


# ---------------------------------------------------------------------------------------------------------
# check_supported: what the removed TrafficPlan dataclass only forwarded to


def test_check_supported_refuses_what_no_cluster_can_carry():
    check_supported("shadow", "istio", mirror=25)
    refusal(check_supported, "shadow", "replicas")
    refusal(check_supported, "canary", "gateway", weight=150)


def test_check_supported_against_the_cluster():
    check_supported("canary", "gateway", weight=10, offered=served_routers(ALL_APIS))
    assert "offers: replicas" in refusal(check_supported, "canary", "gateway", weight=10,
                                         offered=served_routers([]))


# ---------------------------------------------------------------------------------------------------------
# achievable_split


def _triple(split: Split) -> tuple[int, int, float]:
    return split.stable, split.canary, split.percent


def test_one_canary_of_four_is_25_percent():
    split = achievable_split(25, 4)
    assert split == Split(3, 1, 25.0, split.sentence)
    assert "as asked" in split.sentence and one_sentence(split.sentence)


def test_ten_percent_with_four_replicas_says_25():
    split = achievable_split(10, 4)
    assert (split.stable, split.canary, split.percent) == (3, 1, 25.0)
    assert "10%" in split.sentence and "not possible" in split.sentence and "25%" in split.sentence
    assert one_sentence(split.sentence)


def test_weight_zero_gives_no_canary_pod():
    assert _triple(achievable_split(0, 4)) == (4, 0, 0.0)


def test_weight_100_gives_every_pod_to_the_canary():
    assert _triple(achievable_split(100, 4)) == (0, 4, 100.0)


def test_single_replica_says_the_canary_gets_everything():
    split = achievable_split(10, 1)
    assert (split.stable, split.canary, split.percent) == (0, 1, 100.0)
    assert "100%" in split.sentence and "1 replica" in split.sentence


def test_inexact_percent_is_not_presented_as_exact():
    split = achievable_split(50, 3)
    assert (split.stable, split.canary) == (2, 1)  # a tie goes to the stable side
    assert "about 33.3%" in split.sentence


def test_a_weight_below_100_keeps_a_stable_pod():
    assert _triple(achievable_split(99, 4))[:2] == (1, 3)
    assert _triple(achievable_split(1, 50))[:2] == (49, 1)


@pytest.mark.parametrize("weight, replicas", [(-1, 4), (101, 4), (10, 0), (10, -2), (10, 2.0), (None, 4)])
def test_split_bad_values(weight, replicas):
    refusal(achievable_split, weight, replicas)


@given(st.integers(0, 100), st.integers(1, 50))
def test_split_property(weight, replicas):
    split = achievable_split(weight, replicas)
    assert split.stable + split.canary == replicas == split.total
    assert split.stable >= 0 and split.canary >= 0
    assert split.percent == split.canary / replicas * 100
    assert (split.canary == 0) == (weight == 0)
    if 0 < weight < 100 and replicas > 1:
        assert split.stable >= 1
    # Closest achievable (within the one-pod-each-side rule), and said so when it is not exact.
    if weight not in (0, 100) and replicas > 1:
        best = min(abs(c / replicas * 100 - weight) for c in range(1, replicas))
        assert abs(split.percent - weight) == pytest.approx(best)
    assert ("as asked" in split.sentence) == (split.percent == weight)
    assert one_sentence(split.sentence)


# ---------------------------------------------------------------------------------------------------------
# common to every router


def _route(router: str, **kw):
    args = dict(stable_weight=80, candidate_weight=20, labels=LABELS)
    if router == "gateway":
        args["gateway"] = "infra/public"
    if router == "knative":
        args.update(template=template(), stable_version="1.4", candidate_version="1.5")
    args.update(kw)
    return route_for(router, args.pop("name", "churn"), "ml", **args)


@pytest.mark.parametrize("router", ROUTERS)
def test_every_object_carries_labels_and_state(router):
    state = {L.STABLE_VERSION: "1.4", L.CANDIDATE_VERSION: "1.5", L.STEP: "2"}
    objects = _route(router, state=state)
    assert objects
    for obj in objects:
        assert (obj["apiVersion"], obj["kind"]) in ROUTER_KINDS[router]
        meta = obj["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["labels"] == LABELS
        assert meta["annotations"][ROUTER] == router
        if obj["kind"] == "DestinationRule":
            # State lives on the VirtualService alone, so a weight move rewrites one object.
            assert L.WEIGHT not in meta["annotations"]
            continue
        assert meta["annotations"][L.WEIGHT] == "20"
        assert meta["annotations"][ROUTER] == router
        assert meta["annotations"][CANDIDATE_TRACK] == "canary"
        for key, value in state.items():
            assert meta["annotations"][key] == value


@pytest.mark.parametrize("router", ROUTERS)
@pytest.mark.parametrize("kw", [
    {"stable_weight": 80, "candidate_weight": 30},
    {"stable_weight": 110, "candidate_weight": -10},
    {"stable_weight": 80.0, "candidate_weight": 20},
    {"candidate_track": None},
    {"candidate_track": "shadow"},
    {"port": 0},
    {"state": {"other.io/x": "1"}},
    {"state": {L.WEIGHT: "50"}},
])
def test_every_router_refuses_bad_inputs(router, kw):
    refusal(_route, router, **kw)


@pytest.mark.parametrize("router", ROUTERS)
def test_bad_name_refused_not_mangled(router):
    with pytest.raises(SpecError, match="model name .Churn_Model. is not a valid name"):
        _route(router, name="Churn_Model")


def test_route_for_unknown_router():
    assert "linkerd" in refusal(route_for, "linkerd", "churn", "ml")


def test_router_modules_share_one_signature():
    import inspect

    base = list(inspect.signature(gateway.route).parameters)
    for module in (istio, knative, nginx, replicas):
        assert list(inspect.signature(module.route).parameters)[:len(base)] == base


# ---------------------------------------------------------------------------------------------------------
# gateway


def _httproute(**kw) -> dict:
    args = dict(stable_weight=90, candidate_weight=10, gateway="infra/public", labels=LABELS)
    args.update(kw)
    (obj,) = gateway.route("churn", "ml", **args)
    return obj


def test_gateway_weights():
    route = _httproute(host="churn.example.com")
    assert (route["apiVersion"], route["kind"], route["metadata"]["name"]) == (
        "gateway.networking.k8s.io/v1", "HTTPRoute", "churn")
    spec = route["spec"]
    assert spec["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                   "namespace": "infra"}]
    assert spec["hostnames"] == ["churn.example.com"]
    (rule,) = spec["rules"]
    assert rule["backendRefs"] == [{"name": "churn", "port": 80, "weight": 90},
                                   {"name": "churn-canary", "port": 80, "weight": 10}]
    assert sum(b["weight"] for b in rule["backendRefs"]) == 100
    assert "filters" not in rule


def test_gateway_keeps_weight_zero_backends():
    (rule,) = _httproute(stable_weight=100, candidate_weight=0)["spec"]["rules"]
    assert [b["weight"] for b in rule["backendRefs"]] == [100, 0]


def test_gateway_parent_in_own_namespace():
    assert _httproute(gateway="public")["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}]


def test_gateway_mirror():
    route = _httproute(stable_weight=100, candidate_weight=0, candidate_track=None, mirror_percent=25)
    (rule,) = route["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestMirror", "requestMirror": {
        "backendRef": {"name": "churn-shadow", "port": 80}, "percent": 25}}]
    assert rule["backendRefs"] == [{"name": "churn", "port": 80, "weight": 100}]
    assert route["metadata"]["annotations"][MIRROR_PERCENT] == "25"


def test_gateway_blue_green_switch():
    (rule,) = _httproute(stable_weight=0, candidate_weight=100, candidate_track="preview")["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": "churn", "port": 80, "weight": 0},
                                   {"name": "churn-preview", "port": 80, "weight": 100}]


def test_gateway_needs_a_gateway():
    assert "parent Gateway" in refusal(gateway.route, "churn", "ml", stable_weight=100, candidate_weight=0,
                                       labels=LABELS)


@pytest.mark.parametrize("bad", ["", "a/b/c", "Infra/public", "infra/", "*.x"])
def test_gateway_bad_parent_refused(bad):
    refusal(_httproute, gateway=bad)


def test_gateway_route_matches_exposure_shape():
    # The same object as render()'s exposure, so swapping one for the other changes only the rule.
    spec = DeploySpec("churn", "ghcr.io/acme/churn:1.4", expose="gateway", gateway="infra/public",
                      host="churn.example.com")
    exposure = [m for m in render(spec, "ml") if m["kind"] == "HTTPRoute"][0]
    route = _httproute(host="churn.example.com")
    assert route["metadata"]["name"] == exposure["metadata"]["name"]
    assert route["spec"]["parentRefs"] == exposure["spec"]["parentRefs"]
    assert route["spec"]["rules"][0]["matches"] == exposure["spec"]["rules"][0]["matches"]


# ---------------------------------------------------------------------------------------------------------
# istio


def _istio(**kw) -> tuple[dict, dict]:
    args = dict(stable_weight=90, candidate_weight=10, labels=LABELS)
    args.update(kw)
    rule, service = istio.route("churn", "ml", **args)
    return rule, service


def test_istio_destination_rule_subsets_by_track():
    rule, _ = _istio()
    assert (rule["apiVersion"], rule["kind"], rule["metadata"]["name"]) == (
        "networking.istio.io/v1", "DestinationRule", "churn")
    assert rule["spec"] == {"host": FQDN, "subsets": [
        {"name": "stable", "labels": {L.TRACK: "stable"}}, {"name": "canary", "labels": {L.TRACK: "canary"}}]}


def test_istio_weights_to_subsets():
    _, vs = _istio()
    assert (vs["apiVersion"], vs["kind"], vs["metadata"]["name"]) == (
        "networking.istio.io/v1", "VirtualService", "churn")
    assert vs["spec"]["hosts"] == [FQDN]
    assert "gateways" not in vs["spec"]
    (http,) = vs["spec"]["http"]
    assert http["route"] == [
        {"destination": {"host": FQDN, "subset": "stable", "port": {"number": 80}}, "weight": 90},
        {"destination": {"host": FQDN, "subset": "canary", "port": {"number": 80}}, "weight": 10}]
    assert sum(d["weight"] for d in http["route"]) == 100
    assert all(isinstance(d["weight"], int) for d in http["route"])
    assert "mirror" not in http and "mirrorPercentage" not in http


def test_istio_mirror_to_the_shadow_service():
    _, vs = _istio(stable_weight=100, candidate_weight=0, candidate_track=None, mirror_percent=30)
    (http,) = vs["spec"]["http"]
    assert http["route"] == [
        {"destination": {"host": FQDN, "subset": "stable", "port": {"number": 80}}, "weight": 100}]
    # Shadow pods are not live, so they are outside `<name>`: the mirror uses their own Service.
    assert http["mirror"] == {"host": "churn-shadow.ml.svc.cluster.local", "port": {"number": 80}}
    assert http["mirrorPercentage"] == {"value": 30.0}


def test_istio_blue_green_preview_uses_its_own_service():
    _, vs = _istio(stable_weight=0, candidate_weight=100, candidate_track="preview")
    (http,) = vs["spec"]["http"]
    assert http["route"][1] == {"destination": {"host": "churn-preview.ml.svc.cluster.local",
                                                "port": {"number": 80}}, "weight": 100}


def test_istio_host_and_gateway():
    _, vs = _istio(host="churn.example.com", gateway="istio-system/public")
    assert vs["spec"]["hosts"] == [FQDN, "churn.example.com"]
    assert vs["spec"]["gateways"] == ["istio-system/public", "mesh"]


def test_istio_subsets_match_the_live_stable_service():
    # The documented requirement: with istio, `<name>` selects every live pod (replica_split=True), so
    # each subset's pods are among the Service's endpoints.
    stable = DeploySpec("churn", "ghcr.io/acme/churn:1.4")
    canary = stable.with_(track="canary", image="ghcr.io/acme/churn:1.5")
    service = [m for m in render(stable, "ml", replica_split=True) if m["kind"] == "Service"][0]
    rule, _ = _istio()
    for s, subset in zip((stable, canary), rule["spec"]["subsets"], strict=True):
        pod_labels = pod_template(s)["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert subset["labels"].items() <= pod_labels.items()
    shadow = pod_template(stable.with_(track="shadow"))["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= shadow.items()


# ---------------------------------------------------------------------------------------------------------
# knative


def test_knative_traffic_and_revisions():
    svc = knative_route()
    assert (svc["apiVersion"], svc["kind"], svc["metadata"]["name"]) == (
        "serving.knative.dev/v1", "Service", "churn")
    assert svc["spec"]["traffic"] == [{"revisionName": "churn-1-4", "percent": 90, "tag": "stable"},
                                      {"revisionName": "churn-1-5", "percent": 10, "tag": "canary"}]
    assert sum(t["percent"] for t in svc["spec"]["traffic"]) == 100
    meta = svc["spec"]["template"]["metadata"]
    assert meta["name"] == "churn-1-5"  # the template is the newest revision: the candidate
    assert meta["annotations"][knative.MIN_SCALE] == "1"
    assert meta["labels"][L.TRACK] == "canary"
    assert L.SPEC_HASH in meta["annotations"]


def test_knative_scale_to_zero():
    assert knative_route(scale_to_zero=True)["spec"]["template"]["metadata"]["annotations"][
        knative.MIN_SCALE] == "0"


def test_knative_stable_only():
    svc = knative_route(stable_weight=100, candidate_weight=0, candidate_track=None, candidate_version=None,
                        template=template("1.4", "stable"))
    assert svc["spec"]["traffic"] == [{"revisionName": "churn-1-4", "percent": 100, "tag": "stable"}]
    assert svc["spec"]["template"]["metadata"]["name"] == "churn-1-4"


def test_knative_blue_green_preview_tag():
    svc = knative_route(stable_weight=100, candidate_weight=0, candidate_track="preview",
                        template=template("1.5", "preview"))
    assert svc["spec"]["traffic"][1] == {"revisionName": "churn-1-5", "percent": 0, "tag": "preview"}


def test_knative_pod_spec_is_what_the_webhook_accepts():
    spec = knative_route()["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]  # no name 'http'
    assert "port" not in container["readinessProbe"]["httpGet"]
    assert "port" not in container["livenessProbe"]["httpGet"]
    assert "securityContext" not in spec and "terminationGracePeriodSeconds" not in spec
    assert container["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["automountServiceAccountToken"] is False


def test_knative_pod_spec_leaves_the_input_alone():
    before = template()
    copy = pod_template(DeploySpec("churn", "ghcr.io/acme/churn:1.5", track="canary"))
    knative.knative_pod_spec(before["spec"])
    assert before == copy


def test_knative_required_features():
    gpu = template(resources=Resources(gpu=1, gpu_type="NVIDIA-A100-SXM4-80GB"), model_pvc="models")
    assert knative.required_features(gpu["spec"]) == (
        knative.FEATURE_NODE_SELECTOR, knative.FEATURE_TOLERATIONS, knative.FEATURE_PVC)
    assert knative.required_features(template()["spec"]) == ()
    # Kept, not dropped: a GPU pod without its node selector would land on the wrong node.
    spec = knative_route(template=gpu)["spec"]["template"]["spec"]
    assert spec["nodeSelector"] and spec["tolerations"] and spec["volumes"]


def test_knative_revision_name():
    assert knative.revision_name("churn", "1.4") == "churn-1-4"
    assert knative.revision_name("churn", "V2_rc.1") == "churn-v2-rc-1"
    assert "63-character" in refusal(knative.revision_name, "churn", "x" * 60)
    refusal(knative.revision_name, "churn", "...")


@pytest.mark.parametrize("kw, reason", [
    ({"mirror_percent": 100}, "cannot mirror"),
    ({"host": "churn.example.com"}, "DomainMapping"),
    ({"candidate_version": "1-4"}, "both name revision"),
    ({"candidate_version": None}, "candidate_version is required"),
    ({"candidate_track": None, "candidate_weight": 0, "stable_weight": 100}, "no candidate track"),
    ({"template": {"metadata": {}}}, "pod template"),
    ({"scale_to_zero": "yes"}, "scale_to_zero"),
])
def test_knative_refusals(kw, reason):
    assert reason in refusal(knative_route, **kw)


# ---------------------------------------------------------------------------------------------------------
# nginx


def _nginx(**kw) -> list[dict]:
    args = dict(stable_weight=90, candidate_weight=10, host="churn.example.com", labels=LABELS)
    args.update(kw)
    return nginx.route("churn", "ml", **args)


def test_nginx_canary_ingress():
    primary, canary = _nginx()
    assert [o["metadata"]["name"] for o in (primary, canary)] == ["churn", "churn-canary"]
    assert primary["spec"]["ingressClassName"] == canary["spec"]["ingressClassName"] == "nginx"
    ann = canary["metadata"]["annotations"]
    assert ann[nginx.CANARY] == "true"
    assert ann[nginx.CANARY_WEIGHT] == "10"
    assert ann[nginx.CANARY_WEIGHT_TOTAL] == "100"
    assert nginx.CANARY not in primary["metadata"]["annotations"]
    # Same host and path: ingress-nginx pairs the canary with the primary by them.
    (p_rule,), (c_rule,) = primary["spec"]["rules"], canary["spec"]["rules"]
    assert p_rule["host"] == c_rule["host"] == "churn.example.com"
    p_path, c_path = p_rule["http"]["paths"][0], c_rule["http"]["paths"][0]
    assert (p_path["path"], p_path["pathType"]) == (c_path["path"], c_path["pathType"]) == ("/", "Prefix")
    assert p_path["backend"]["service"] == {"name": "churn", "port": {"number": 80}}
    assert c_path["backend"]["service"] == {"name": "churn-canary", "port": {"number": 80}}


def test_nginx_mirror_target():
    (primary,) = _nginx(stable_weight=100, candidate_weight=0, candidate_track=None, mirror_percent=100)
    assert primary["metadata"]["annotations"][nginx.MIRROR_TARGET] == (
        "http://churn-shadow.ml.svc.cluster.local$request_uri")


def test_nginx_mirror_zero_is_none():
    (primary,) = _nginx(stable_weight=100, candidate_weight=0, candidate_track=None, mirror_percent=0)
    assert nginx.MIRROR_TARGET not in primary["metadata"]["annotations"]


def test_nginx_route_refuses_a_partial_mirror():
    assert "no percentage" in refusal(_nginx, mirror_percent=50)


def test_nginx_blue_green_uses_the_canary_ingress():
    _, canary = _nginx(stable_weight=0, candidate_weight=100, candidate_track="preview")
    assert canary["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "churn-preview"
    assert canary["metadata"]["annotations"][nginx.CANARY_WEIGHT] == "100"


def test_nginx_refuses_gateway():
    refusal(_nginx, gateway="infra/public")


@pytest.mark.parametrize(("ingress_class", "has"), [
    (None, "has no class (the cluster default)"), ("traefik", "has class 'traefik'")])
def test_nginx_refuses_a_stable_ingress_of_another_class(ingress_class, has):
    message = refusal(nginx.check_exposure, "fraud", "ingress", ingress_class, strategy="canary")
    assert message == (
        "the nginx router splits traffic with a canary Ingress that ingress-nginx serves only beside a main "
        f"Ingress of class nginx; fraud's Ingress {has}: redeploy it with --ingress-class nginx "
        "(ingress_class='nginx') first, or use another router.")
    shadow = refusal(nginx.check_exposure, "fraud", "ingress", ingress_class, strategy="shadow")
    assert shadow.startswith("the nginx router mirrors with an annotation that only ingress-nginx reads")


@pytest.mark.parametrize(("expose", "ingress_class"), [("ingress", "nginx"), (None, None),
                                                        ("gateway", None)])
def test_nginx_takes_a_stable_of_class_nginx_or_without_an_ingress(expose, ingress_class):
    # Without an Ingress exposure the router writes its own Ingress <name>; nothing is moved.
    for strategy in ("canary", "blue-green", "shadow"):
        nginx.check_exposure("fraud", expose, ingress_class, strategy=strategy)


# ---------------------------------------------------------------------------------------------------------
# replicas


def _replicas(**kw) -> dict:
    args = dict(stable_weight=90, candidate_weight=10, labels=LABELS)
    args.update(kw)
    (svc,) = replicas.route("churn", "ml", **args)
    return svc


def test_replicas_canary_selects_live_pods():
    svc = _replicas()
    assert (svc["apiVersion"], svc["kind"], svc["metadata"]["name"]) == ("v1", "Service", "churn")
    assert svc["spec"]["selector"] == {L.APP_INSTANCE: "churn", L.LIVE: "true"}
    # The same selector and ports as render(replica_split=True), so swapping them changes nothing else.
    stable = DeploySpec("churn", "ghcr.io/acme/churn:1.4")
    rendered = [m for m in render(stable, "ml", replica_split=True) if m["kind"] == "Service"][0]
    assert svc["spec"] == rendered["spec"]


def test_replicas_no_candidate_selects_stable_only():
    svc = _replicas(stable_weight=100, candidate_weight=0, candidate_track=None)
    assert svc["spec"]["selector"] == {L.APP_INSTANCE: "churn", L.TRACK: "stable"}


def test_replicas_blue_green_switch():
    before = _replicas(stable_weight=100, candidate_weight=0, candidate_track="preview")
    after = _replicas(stable_weight=0, candidate_weight=100, candidate_track="preview")
    assert before["spec"]["selector"] == {L.APP_INSTANCE: "churn", L.LIVE: "true"}
    assert after["spec"]["selector"] == {L.APP_INSTANCE: "churn", L.TRACK: "preview"}
    assert "0 or 100" in refusal(_replicas, stable_weight=50, candidate_weight=50, candidate_track="preview")


def test_replicas_refuses_a_mirror():
    message = refusal(_replicas, mirror_percent=100)
    assert message.startswith("shadow traffic needs a router that can mirror requests; ")


def test_replicas_refuses_host_and_gateway():
    refusal(_replicas, host="churn.example.com")
    refusal(_replicas, gateway="infra/public")


def test_replicas_plan():
    plan = replicas.plan("churn", "ml", stable_weight=90, candidate_weight=10, total_replicas=4,
                         labels=LABELS)
    assert (plan.stable_replicas, plan.canary_replicas, plan.split.percent) == (3, 1, 25.0)
    assert "25%" in plan.split.sentence
    assert plan.service == _replicas()
    switch = replicas.plan("churn", "ml", stable_weight=0, candidate_weight=100, total_replicas=4,
                           candidate_track="preview", labels=LABELS)
    assert switch.split is None and switch.stable_replicas is None
    assert switch.service["spec"]["selector"][L.TRACK] == "preview"


@pytest.mark.parametrize("router", ROUTERS)
def test_router_table_agrees_with_the_rules(router):
    """traffic.ROUTER_INFO is the one table: check_supported refuses just what it says a router can't do."""
    info = traffic.ROUTER_INFO[router]
    for strategy, can, kw in (("shadow", info.mirror, {}), ("shadow", info.partial_mirror, {"mirror": 10}),
                              ("canary", info.canary, {"weight": 10}),
                              ("blue-green", info.blue_green, {"weight": 0})):
        if can:
            traffic.check_supported(strategy, router, **kw)
        else:
            with pytest.raises(SpecError):
                traffic.check_supported(strategy, router, **kw)
    assert ROUTER_KINDS[router] == info.kinds
    assert (router in traffic.MIRROR_ROUTERS) == info.mirror
