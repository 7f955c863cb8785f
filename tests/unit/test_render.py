"""render(): DeploySpec -> manifests; pure, deterministic, and shaped for server-side apply."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.render import (
    labels_for,
    object_name,
    render,
    spec_hash,
    to_yaml,
    track_name,
)
from jupyter_mldeploy.spec import Autoscale, DeploySpec, Probe, Resources

IMAGE = "ghcr.io/acme/churn:1.4"


def spec(**kw) -> DeploySpec:
    return DeploySpec(kw.pop("name", "churn"), kw.pop("image", IMAGE), **kw)


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    kinds = [m["kind"] for m in manifests]
    assert len(kinds) == len(set(kinds)), kinds
    return {m["kind"]: m for m in manifests}


def kinds(s: DeploySpec, **kw) -> list[str]:
    return [m["kind"] for m in render(s, "ml", **kw)]


def pod(s: DeploySpec) -> dict:
    return by_kind(render(s, "ml"))["Deployment"]["spec"]["template"]


def container(s: DeploySpec) -> dict:
    (c,) = pod(s)["spec"]["containers"]
    return c


AUTOSCALED = dict(resources=Resources(cpu="1"), autoscale=Autoscale(2, 10, 70))

# ---------------------------------------------------------------------------------------------------------
# objects per spec variant


@pytest.mark.parametrize("kw, expected", [
    ({}, ["Deployment", "Service"]),
    ({"replicas": 3}, ["Deployment", "Service", "PodDisruptionBudget"]),
    ({"replicas": 0}, ["Deployment", "Service"]),
    ({"resources": Resources(cpu="1"), "autoscale": Autoscale(1, 5)}, ["Deployment", "Service",
                                                                         "HorizontalPodAutoscaler"]),
    (AUTOSCALED, ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]),
    ({"expose": "ingress"}, ["Deployment", "Service", "Ingress"]),
    ({"expose": "gateway", "gateway": "gw", "replicas": 2}, ["Deployment", "Service", "PodDisruptionBudget",
                                                              "HTTPRoute"]),
])
def test_objects_and_order_per_variant(kw, expected):
    assert kinds(spec(**kw)) == expected


def test_api_versions():
    s = spec(**AUTOSCALED, expose="gateway", gateway="gw")
    versions = {m["kind"]: m["apiVersion"] for m in render(s, "ml")}
    assert versions == {"Deployment": "apps/v1", "Service": "v1", "HorizontalPodAutoscaler": "autoscaling/v2",
                        "PodDisruptionBudget": "policy/v1", "HTTPRoute": "gateway.networking.k8s.io/v1"}
    assert by_kind(render(spec(expose="ingress"), "ml"))["Ingress"]["apiVersion"] == "networking.k8s.io/v1"


# ---------------------------------------------------------------------------------------------------------
# names and namespaces


@pytest.mark.parametrize("track, name", [("stable", "churn"), ("canary", "churn-canary"),
                                         ("shadow", "churn-shadow"), ("preview", "churn-preview")])
def test_names_for_tracks(track, name):
    s = spec(track=track, replicas=2)
    assert object_name(s) == track_name("churn", track) == name
    assert {m["metadata"]["name"] for m in render(s, "ml")} == {name}


def test_longest_allowed_name_fits_every_object():
    s = spec(name="m" * 55, track="preview", replicas=2)
    assert all(len(m["metadata"]["name"]) <= 63 for m in render(s, "ml"))


def test_namespace_from_argument_or_spec():
    assert {m["metadata"]["namespace"] for m in render(spec(replicas=2), "ml")} == {"ml"}
    assert {m["metadata"]["namespace"] for m in render(spec(namespace="team"), "ml")} == {"team"}
    assert {m["metadata"]["namespace"] for m in render(spec(namespace="team"))} == {"team"}


def test_no_namespace_at_all_is_a_clear_error():
    with pytest.raises(SpecError, match="has no namespace"):
        render(spec())
    with pytest.raises(SpecError, match="DNS-1123"):
        render(spec(), "Bad_NS")


# ---------------------------------------------------------------------------------------------------------
# labels and selectors


def test_labels_on_every_object_and_the_pod_template():
    s = spec(**AUTOSCALED, labels={"team": "risk"}, expose="ingress")
    expected = {
        L.APP_NAME: "churn", L.APP_INSTANCE: "churn", L.APP_VERSION: "1.4", L.APP_COMPONENT: "predictor",
        L.APP_MANAGED_BY: "jupyter-mldeploy", L.TRACK: "stable", L.LIVE: "true", "team": "risk",
    }
    manifests = render(s, "ml")
    assert len(manifests) == 5
    for m in manifests:
        assert m["metadata"]["labels"] == expected, m["kind"]
    assert by_kind(manifests)["Deployment"]["spec"]["template"]["metadata"]["labels"] == expected


def test_selectors_are_instance_and_track_never_version():
    s = spec(replicas=2)
    objs = by_kind(render(s, "ml"))
    selector = {L.APP_INSTANCE: "churn", L.TRACK: "stable"}
    assert objs["Deployment"]["spec"]["selector"] == {"matchLabels": selector}
    assert objs["Service"]["spec"]["selector"] == selector
    assert objs["PodDisruptionBudget"]["spec"]["selector"] == {"matchLabels": selector}
    # a new version keeps the (immutable) Deployment selector
    newer = by_kind(render(s.with_(image="ghcr.io/acme/churn:1.5"), "ml"))["Deployment"]
    assert newer["spec"]["selector"] == objs["Deployment"]["spec"]["selector"]


@pytest.mark.parametrize("track", L.TRACKS)
@pytest.mark.parametrize("replica_split", [False, True])
def test_every_selector_matches_its_own_pods(track, replica_split):
    s = spec(track=track, replicas=2)
    objs = by_kind(render(s, "ml", replica_split=replica_split))
    pod_labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for selector in (objs["Deployment"]["spec"]["selector"]["matchLabels"],
                     objs["Service"]["spec"]["selector"],
                     objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= pod_labels.items()


def test_tracks_do_not_select_each_others_pods():
    stable = by_kind(render(spec(), "ml"))
    canary_pods = pod(spec(track="canary"))["metadata"]["labels"]
    assert not stable["Deployment"]["spec"]["selector"]["matchLabels"].items() <= canary_pods.items()
    assert not stable["Service"]["spec"]["selector"].items() <= canary_pods.items()


def test_replica_split_service_selects_stable_and_canary_but_not_shadow_or_preview():
    service = by_kind(render(spec(), "ml", replica_split=True))["Service"]
    selector = service["spec"]["selector"]
    assert selector == {L.APP_INSTANCE: "churn", L.LIVE: "true"}
    matches = {t: selector.items() <= pod(spec(track=t))["metadata"]["labels"].items() for t in L.TRACKS}
    assert matches == {"stable": True, "canary": True, "shadow": False, "preview": False}
    # a canary's own Service always stays on its track
    canary_service = by_kind(render(spec(track="canary"), "ml", replica_split=True))["Service"]
    assert canary_service["spec"]["selector"] == {L.APP_INSTANCE: "churn", L.TRACK: "canary"}


def test_labels_for_puts_user_labels_last():
    assert list(labels_for(spec(labels={"team": "x"})))[-1] == "team"


# ---------------------------------------------------------------------------------------------------------
# determinism and the spec hash


def test_same_spec_gives_identical_manifests_and_hash():
    a = render(spec(env={"A": "1"}, replicas=2), "ml")
    b = render(spec(env={"A": "1"}, replicas=2), "ml")
    assert a == b and to_yaml(a) == to_yaml(b)
    assert json.dumps(a, sort_keys=False) == json.dumps(b, sort_keys=False)


def test_hash_is_the_hash_of_the_template_without_itself():
    template = copy.deepcopy(pod(spec(annotations={"note": "x"})))
    recorded = template["metadata"]["annotations"].pop(L.SPEC_HASH)
    assert re.fullmatch(r"[0-9a-f]{16}", recorded), recorded
    assert spec_hash(template) == recorded


def _hash(s: DeploySpec) -> str:
    return pod(s)["metadata"]["annotations"][L.SPEC_HASH]


@pytest.mark.parametrize("change", [
    {"image": "ghcr.io/acme/churn:1.5"}, {"env": {"A": "2"}}, {"resources": Resources(cpu="2")},
    {"readiness": Probe("/healthz")}, {"args": ("--fast",)}, {"labels": {"team": "y"}},
    {"pod_security": "restricted"}, {"port": 9000},
])
def test_any_change_to_the_pod_changes_the_hash(change):
    base = spec(env={"A": "1"})
    assert _hash(base) != _hash(base.with_(**change))


def test_changes_outside_the_pod_keep_the_hash():
    base = spec(replicas=2)
    for other in (base.with_(replicas=5), base.with_(strategy="recreate"),
                  base.with_(expose="ingress", host="c.example.com")):
        assert _hash(other) == _hash(base)


def test_deployment_carries_the_hash_too_and_no_timestamps():
    deployment = by_kind(render(spec(), "ml"))["Deployment"]
    assert deployment["metadata"]["annotations"][L.SPEC_HASH] == _hash(spec())
    assert "creationTimestamp" not in json.dumps(deployment)


def test_rollout_state_goes_on_the_deployment_only_and_restarts_nothing():
    state = {L.WEIGHT: "10", L.STABLE_VERSION: "1.3", L.CANDIDATE_VERSION: "1.4", L.STEP: "1"}
    objs = by_kind(render(spec(), "ml", state=state))
    assert state.items() <= objs["Deployment"]["metadata"]["annotations"].items()
    assert "annotations" not in objs["Service"]["metadata"]
    assert objs["Deployment"]["spec"]["template"]["metadata"]["annotations"][L.SPEC_HASH] == _hash(spec())
    with pytest.raises(SpecError, match="rollout state"):
        render(spec(), "ml", state={"weight": "10"})


# ---------------------------------------------------------------------------------------------------------
# container and pod


def test_container_basics():
    c = container(spec(env={"B": "2", "A": "1"}, args=("--workers", "2"), command=("serve",)))
    assert c["name"] == "model" and c["image"] == IMAGE and c["imagePullPolicy"] == "IfNotPresent"
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]  # order given
    assert c["args"] == ["--workers", "2"] and c["command"] == ["serve"]


def test_pull_policy():
    digest = "sha256:" + "a" * 64
    assert container(spec(image=f"ghcr.io/acme/churn@{digest}"))["imagePullPolicy"] == "IfNotPresent"
    latest = DeploySpec.from_dict({"name": "churn", "image": "ghcr.io/acme/churn", "allow_latest": True})
    assert container(latest)["imagePullPolicy"] == "Always"
    assert container(latest)["image"] == "ghcr.io/acme/churn:latest"


def test_resources_keep_every_value():
    c = container(spec(resources=Resources(cpu="2", memory="4Gi", cpu_limit="4", memory_limit="8Gi")))
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"},
                              "limits": {"cpu": "4", "memory": "8Gi"}}
    assert container(spec(resources=Resources(memory="1Gi")))["resources"] == {
        "requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}
    assert "resources" not in container(spec())


def test_gpu_spec():
    s = spec(resources=Resources(cpu="4", memory="16Gi", gpu=1, gpu_type="NVIDIA-A100-SXM4-40GB"))
    p = pod(s)["spec"]
    res = p["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == "1" and res["limits"]["nvidia.com/gpu"] == "1"
    assert p["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}
    assert p["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_gpu_toleration_added_to_user_ones_once():
    user = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    p = pod(spec(resources=Resources(gpu=2, gpu_resource="amd.com/gpu"),
                 tolerations=["pool=gpu:NoSchedule", user], node_selector={"pool": "gpu"}))["spec"]
    assert p["tolerations"] == [
        {"key": "pool", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}, user,
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert p["nodeSelector"] == {"pool": "gpu"}
    same = pod(spec(resources=Resources(gpu=1), tolerations=[user]))["spec"]["tolerations"]
    assert same == [user]


def test_no_gpu_no_scheduling_extras():
    p = pod(spec())["spec"]
    assert "tolerations" not in p and "nodeSelector" not in p


def test_probes():
    c = container(spec(readiness=Probe("/healthz", initial_delay=10), liveness=Probe("/live", port=9090)))
    assert c["readinessProbe"] == {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 10,
                                   "periodSeconds": 5, "failureThreshold": 3}
    assert c["livenessProbe"]["httpGet"] == {"path": "/live", "port": 9090}
    none = container(spec(readiness=None, liveness=None))
    assert "readinessProbe" not in none and "livenessProbe" not in none


def test_model_volume_is_read_only():
    s = spec(model_pvc="models", model_path="/models")
    p = pod(s)["spec"]
    claim = {"claimName": "models", "readOnly": True}
    assert p["volumes"] == [{"name": "model", "persistentVolumeClaim": claim}]
    assert p["containers"][0]["volumeMounts"] == [{"name": "model", "mountPath": "/models", "readOnly": True}]
    assert "volumes" not in pod(spec())["spec"] and "volumeMounts" not in container(spec())


def test_pod_defaults():
    p = pod(spec(image_pull_secrets=("regcred",), service_account="reader"))["spec"]
    assert p["automountServiceAccountToken"] is False
    assert p["enableServiceLinks"] is False
    assert p["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert p["terminationGracePeriodSeconds"] == 30
    assert p["imagePullSecrets"] == [{"name": "regcred"}] and p["serviceAccountName"] == "reader"
    sc = p["containers"][0]["securityContext"]
    assert sc == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                  "readOnlyRootFilesystem": False}


def _violations_of_restricted(pod_spec: dict) -> list[str]:
    """The Pod Security Standard 'restricted' checks that apply to what render can produce."""
    out = []
    pod_sc = pod_spec.get("securityContext", {})
    for vol in pod_spec.get("volumes", []):
        if set(vol) - {"name"} - {"persistentVolumeClaim", "configMap", "secret", "emptyDir", "projected",
                                  "downwardAPI", "csi", "ephemeral"}:
            out.append(f"volume type {vol}")
    if pod_spec.get("hostNetwork") or pod_spec.get("hostPID") or pod_spec.get("hostIPC"):
        out.append("host namespaces")
    for c in pod_spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            out.append("privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append("allowPrivilegeEscalation")
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))):
            out.append("runAsNonRoot")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            out.append("runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append("seccomp")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append("capabilities")
        if any("hostPort" in port for port in c.get("ports", [])):
            out.append("hostPort")
    return out


def test_restricted_pod_security_passes_the_restricted_standard():
    s = spec(pod_security="restricted", model_pvc="models", resources=Resources(gpu=1))
    p = pod(s)["spec"]
    assert _violations_of_restricted(p) == []
    assert p["securityContext"]["runAsNonRoot"] is True
    assert p["containers"][0]["securityContext"]["runAsNonRoot"] is True


def test_default_pod_security_only_misses_run_as_non_root():
    assert _violations_of_restricted(pod(spec())["spec"]) == ["runAsNonRoot"]


# ---------------------------------------------------------------------------------------------------------
# Deployment, Service, HPA, PDB


def test_deployment_spec():
    d = by_kind(render(spec(replicas=3), "ml"))["Deployment"]["spec"]
    assert d["replicas"] == 3 and d["revisionHistoryLimit"] == 10 and d["progressDeadlineSeconds"] == 600
    assert d["strategy"] == {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
    assert by_kind(render(spec(), "ml"))["Deployment"]["spec"]["replicas"] == 1


def test_strategies():
    recreate = by_kind(render(spec(strategy="recreate"), "ml"))["Deployment"]["spec"]["strategy"]
    assert recreate == {"type": "Recreate"}
    custom = by_kind(render(spec(max_surge=0, max_unavailable="50%"), "ml"))["Deployment"]["spec"]["strategy"]
    assert custom["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "50%"}


def test_no_replicas_field_with_autoscale():
    objs = by_kind(render(spec(**AUTOSCALED), "ml"))
    assert "replicas" not in objs["Deployment"]["spec"]
    assert objs["HorizontalPodAutoscaler"]["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "churn"},
        "minReplicas": 2, "maxReplicas": 10,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                               "averageUtilization": 70}}}],
    }


def test_hpa_targets_the_tracks_deployment():
    hpa = by_kind(render(spec(**AUTOSCALED, track="canary"), "ml"))["HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "churn-canary"


def test_pdb_only_with_more_than_one_pod():
    assert "PodDisruptionBudget" not in kinds(spec(replicas=1))
    assert "PodDisruptionBudget" not in kinds(spec(resources=Resources(cpu="1"), autoscale=Autoscale(1, 9)))
    pdb = by_kind(render(spec(replicas=2), "ml"))["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1 and "minAvailable" not in pdb
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_service():
    svc = by_kind(render(spec(port=9000), "ml"))["Service"]["spec"]
    assert svc["type"] == "ClusterIP"
    assert svc["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP",
                             "appProtocol": "http"}]


# ---------------------------------------------------------------------------------------------------------
# exposure


def test_httproute_shape():
    route = by_kind(render(spec(expose="gateway", gateway="infra/public", host="churn.example.com"),
                           "ml"))["HTTPRoute"]
    assert route["metadata"]["name"] == "churn" and route["metadata"]["namespace"] == "ml"
    assert route["spec"] == {
        "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                        "namespace": "infra"}],
        "hostnames": ["churn.example.com"],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                   "backendRefs": [{"name": "churn", "port": 80}]}],
    }
    assert "weight" not in json.dumps(route)


def test_httproute_gateway_in_the_same_namespace_and_no_host():
    route = by_kind(render(spec(expose="gateway", gateway="public"), "ml"))["HTTPRoute"]["spec"]
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public"}
    assert route["parentRefs"] == [parent]
    assert "hostnames" not in route


def test_ingress_shape():
    ingress = by_kind(render(spec(expose="ingress", host="churn.example.com"), "ml"))["Ingress"]
    assert ingress["spec"] == {"rules": [{"host": "churn.example.com", "http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "churn", "port": {"name": "http"}}},
    }]}}]}
    no_host = by_kind(render(spec(expose="ingress"), "ml"))["Ingress"]["spec"]["rules"][0]
    assert "host" not in no_host


def test_ingress_class_only_when_the_spec_names_one():
    # Unset: no ingressClassName, so the cluster's default IngressClass serves it (as kubectl and charts).
    assert "ingressClassName" not in by_kind(render(spec(expose="ingress"), "ml"))["Ingress"]["spec"]
    ingress = by_kind(render(spec(expose="ingress", host="churn.example.com", ingress_class="nginx"),
                             "ml"))["Ingress"]
    assert list(ingress["spec"]) == ["ingressClassName", "rules"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["rules"][0]["host"] == "churn.example.com"


@pytest.mark.parametrize("track", ["canary", "shadow", "preview"])
def test_only_the_stable_track_is_exposed(track):
    assert kinds(spec(expose="ingress", track=track)) == ["Deployment", "Service"]


# ---------------------------------------------------------------------------------------------------------
# YAML


def test_to_yaml_round_trips_and_keeps_strings_strings():
    manifests = render(spec(resources=Resources(gpu=1), env={"N": "1", "T": "true"}, replicas=2), "ml")
    text = to_yaml(manifests)
    assert text.startswith("---\napiVersion: apps/v1\nkind: Deployment\n")
    assert text.count("\n---\n") == len(manifests) - 1
    assert list(yaml.safe_load_all(text)) == manifests


def test_manifests_are_plain_json_data():
    s = spec(env={"A": "1"}, labels={"team": "x"}, node_selector={"pool": "a"}, annotations={"n": "y"},
             tolerations=["k:NoSchedule"], args=("a",))
    manifests = render(s, "ml")
    assert json.loads(json.dumps(manifests)) == manifests


_names = st.from_regex(r"[a-z][a-z0-9]{0,20}", fullmatch=True)


@given(
    name=_names, track=st.sampled_from(L.TRACKS), replicas=st.one_of(st.none(), st.integers(0, 5)),
    gpu=st.integers(0, 2), env=st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True),
                                               st.text(max_size=8), max_size=3),
    restricted=st.booleans(), replica_split=st.booleans(),
)
def test_render_properties(name, track, replicas, gpu, env, restricted, replica_split):
    s = DeploySpec(name, IMAGE, replicas=replicas, resources=Resources(gpu=gpu), env=env, track=track,
                   pod_security="restricted" if restricted else None)
    manifests = render(s, "ml", replica_split=replica_split)
    assert manifests == render(DeploySpec.from_dict(s.to_dict()), "ml", replica_split=replica_split)
    objs = by_kind(manifests)
    pod_labels = objs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert objs["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert objs["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert all(m["metadata"]["name"] == object_name(s) for m in manifests)
    assert ("PodDisruptionBudget" in objs) == ((replicas or 0) > 1)
    assert (_violations_of_restricted(objs["Deployment"]["spec"]["template"]["spec"]) == []) == restricted
