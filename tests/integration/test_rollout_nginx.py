"""The ingress-nginx traffic layer's rollouts against the sandbox's real API server: no mocks.

The sandbox simulates a cluster with ingress-nginx installed (its IngressClass `nginx`, controller
k8s.io/ingress-nginx) but runs no controller, so these tests check what the API server holds after
each operation (the Ingresses, their annotations, which objects exist), not what nginx would route.
"""

from __future__ import annotations

import uuid

import pytest

import jupyter_mldeploy as mld
from jupyter_mldeploy import labels as L
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed
from jupyter_mldeploy.render.routers import ROUTER, nginx
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox

V1, V2 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0"
HOST = "fraud.example.com"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
DEPLOYS = "/apis/apps/v1/namespaces/{ns}/deployments"
SERVICES = "/api/v1/namespaces/{ns}/services"
CONFIGMAPS = "/api/v1/namespaces/{ns}/configmaps"
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"


def spec(image: str, **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "fraud", "image": image, **kw})


def get(kube: Kube, path: str) -> dict:
    return kube.request("GET", path)[1]


def names(kube: Kube, ns: str, kind_path: str) -> set[str]:
    return {i["metadata"]["name"] for i in get(kube, kind_path.format(ns=ns))["items"]}


def ingress(kube: Kube, ns: str, name: str) -> dict:
    return get(kube, f"{INGRESSES.format(ns=ns)}/{name}")


def nginx_annotations(obj: dict) -> dict[str, str]:
    """Only the annotations ingress-nginx reads (ours sit beside them under mldeploy.io/)."""
    return {k: v for k, v in obj["metadata"].get("annotations", {}).items() if k.startswith(NGINX_PREFIX)}


def rule(obj: dict) -> tuple[str | None, str, str, str, int]:
    """(host, path, pathType, backend Service, backend port) of the one rule the router writes."""
    (r,) = obj["spec"]["rules"]
    (p,) = r["http"]["paths"]
    svc = p["backend"]["service"]
    return r.get("host"), p["path"], p["pathType"], svc["name"], svc["port"]["number"]


def canary_annotations(weight: int) -> dict[str, str]:
    return {nginx.CANARY: "true", nginx.CANARY_WEIGHT: str(weight), nginx.CANARY_WEIGHT_TOTAL: "100"}


def forget_process_state() -> None:
    ro._known.clear()  # as a fresh kernel would start


def changes_since(kube: Kube, ns: str, resource_version: str) -> list[tuple[int, str, str, str]]:
    """(resourceVersion, event type, kind, name) of every Ingress, Deployment and Service change in `ns`
    after `resource_version`, replayed by watches from it, ordered as they were written. The sandbox's
    one etcd numbers every write with one revision, so the order holds across kinds."""
    seen = []
    for path in (INGRESSES, DEPLOYS, SERVICES):
        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": 1}
        for event in kube.stream(path.format(ns=ns), query, read_timeout=30):
            meta = event["object"]["metadata"]
            seen.append((int(meta["resourceVersion"]), event["type"], event["object"]["kind"], meta["name"]))
    return sorted(seen)


def snapshot(kube: Kube, ns: str) -> dict[str, set[str]]:
    """Every object the operations could write (route, workloads, release records), by kind."""
    return {path: names(kube, ns, path) for path in (INGRESSES, DEPLOYS, SERVICES, CONFIGMAPS)}


@pytest.fixture
def offered(kube: Kube, cluster) -> tuple[str, ...]:
    """The routers this cluster offers; the sandbox must offer nginx, another cluster may not."""
    routers = ro.offered_routers(kube)
    if cluster.is_sandbox:
        assert "nginx" in routers, "the sandbox's IngressClass 'nginx' is missing"
    elif "nginx" not in routers:
        pytest.skip("this cluster has no IngressClass named 'nginx'")
    return routers


def test_the_sandbox_has_the_ingress_class_the_chart_installs(cluster, kube):
    if not cluster.is_sandbox:
        pytest.skip("the IngressClass is the sandbox's")
    cls = get(kube, "/apis/networking.k8s.io/v1/ingressclasses/nginx")
    assert cls["spec"]["controller"] == "k8s.io/ingress-nginx"
    # Not the default class, as the chart installs it: an Ingress must name it to be served by nginx.
    assert "ingressclass.kubernetes.io/is-default-class" not in cls["metadata"].get("annotations", {})
    assert "nginx" in ro.offered_routers(kube)


def test_canary_weight_then_promote_leaves_only_the_stable_ingress(kube, namespace, offered):
    exposed = dict(expose="ingress", host=HOST, ingress_class="nginx")
    mld.deploy(spec(V1, replicas=2, **exposed), namespace=namespace, kube=kube, timeout=120)
    uid = ingress(kube, namespace, "fraud")["metadata"]["uid"]
    r = ro.start(spec(V2), strategy="canary", weight=10, router="nginx", namespace=namespace, kube=kube,
                 timeout=120)
    assert (r.router, r.weight, r.host) == ("nginx", 10, HOST)
    assert names(kube, namespace, INGRESSES) == {"fraud", "fraud-canary"}
    primary, canary = ingress(kube, namespace, "fraud"), ingress(kube, namespace, "fraud-canary")
    # ingress-nginx pairs a canary with its primary by class, host and path: all three must match.
    assert primary["spec"]["ingressClassName"] == canary["spec"]["ingressClassName"] == "nginx"
    assert rule(primary) == (HOST, "/", "Prefix", "fraud", 80)
    assert rule(canary) == (HOST, "/", "Prefix", "fraud-canary", 80)
    assert nginx_annotations(canary) == canary_annotations(10)
    assert nginx_annotations(primary) == {}  # the primary itself is never a canary
    assert primary["metadata"]["uid"] == uid  # the exposure's Ingress was taken over, not replaced
    state = primary["metadata"]["annotations"]
    assert (state[ROUTER], state[ro.STRATEGY], state[L.WEIGHT]) == ("nginx", "canary", "10")
    # The backends the Ingresses name exist, with the port they name.
    for svc in ("fraud", "fraud-canary"):
        ports = get(kube, f"{SERVICES.format(ns=namespace)}/{svc}")["spec"]["ports"]
        assert [p["port"] for p in ports] == [80]

    ro.set_weight("fraud", 30, namespace=namespace, kube=kube)
    assert nginx_annotations(ingress(kube, namespace, "fraud-canary")) == canary_annotations(30)

    forget_process_state()  # another kernel picks the rollout up from the cluster
    seen = ro.read("fraud", namespace=namespace, kube=kube)
    assert (seen.strategy, seen.router, seen.weight, seen.host, seen.candidate_version) == (
        "canary", "nginx", 30, HOST, "2.0")
    ro.set_weight("fraud", 60, namespace=namespace, kube=kube)  # from what was read back
    assert nginx_annotations(ingress(kube, namespace, "fraud-canary")) == canary_annotations(60)

    ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)
    assert names(kube, namespace, INGRESSES) == {"fraud"}
    primary = ingress(kube, namespace, "fraud")
    assert primary["metadata"]["uid"] == uid
    assert rule(primary) == (HOST, "/", "Prefix", "fraud", 80)
    assert primary["spec"]["ingressClassName"] == "nginx"
    assert nginx_annotations(primary) == {}
    assert ro.STRATEGY not in primary["metadata"]["annotations"]
    assert names(kube, namespace, DEPLOYS) == {"fraud"} and names(kube, namespace, SERVICES) == {"fraud"}
    dep = get(kube, f"{DEPLOYS.format(ns=namespace)}/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert dep["spec"]["replicas"] == 2  # the stable's size, not the canary's
    assert ro.read("fraud", namespace=namespace, kube=kube) is None
    # The promoted release keeps the exposure, class included, so the next rollout starts from it.
    assert ro.stable_spec(kube, namespace, "fraud").ingress_class == "nginx"

    # A plain redeploy of the same spec (same field manager) keeps the class the rollout wrote.
    mld.deploy(spec(V2, replicas=2, **exposed), namespace=namespace, kube=kube, timeout=120)
    primary = ingress(kube, namespace, "fraud")
    assert primary["metadata"]["uid"] == uid
    assert primary["spec"]["ingressClassName"] == "nginx"
    assert primary["spec"]["rules"][0]["host"] == HOST


def test_canary_rollback_removes_the_canary_ingress_before_the_candidate(cluster, kube, namespace, offered):
    mld.deploy(spec(V1), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec(V2), strategy="canary", weight=25, router="nginx", namespace=namespace, kube=kube,
             timeout=120)
    ro.set_weight("fraud", 50, namespace=namespace, kube=kube)
    uid = ingress(kube, namespace, "fraud")["metadata"]["uid"]
    before = get(kube, INGRESSES.format(ns=namespace))["metadata"]["resourceVersion"]

    ro.abort("fraud", namespace=namespace, kube=kube)
    assert names(kube, namespace, INGRESSES) == {"fraud"}
    primary = ingress(kube, namespace, "fraud")
    assert primary["metadata"]["uid"] == uid
    assert rule(primary) == (None, "/", "Prefix", "fraud", 80) and nginx_annotations(primary) == {}
    assert names(kube, namespace, DEPLOYS) == {"fraud"} and names(kube, namespace, SERVICES) == {"fraud"}
    dep = get(kube, f"{DEPLOYS.format(ns=namespace)}/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert ro.read("fraud", namespace=namespace, kube=kube) is None
    if cluster.is_sandbox:
        # The canary's share must leave it before its Service and pods go, not race with them.
        order = [(kind, name) for _, kind_of_event, kind, name in changes_since(kube, namespace, before)
                 if kind_of_event == "DELETED"]
        assert ("Ingress", "fraud-canary") in order
        assert order.index(("Ingress", "fraud-canary")) < order.index(("Service", "fraud-canary"))
        assert order.index(("Ingress", "fraud-canary")) < order.index(("Deployment", "fraud-canary"))


def test_blue_green_switches_with_the_canary_ingress(cluster, kube, namespace, offered):
    mld.deploy(spec(V1, replicas=2), namespace=namespace, kube=kube, timeout=120)
    ro.start(spec(V2, replicas=2), strategy="blue-green", router="nginx", namespace=namespace, kube=kube,
             timeout=120)
    # The preview waits behind a canary Ingress at weight 0 (one canary Ingress per host and path).
    assert names(kube, namespace, INGRESSES) == {"fraud", "fraud-canary"}
    preview = ingress(kube, namespace, "fraud-canary")
    assert rule(preview)[3] == "fraud-preview" and nginx_annotations(preview) == canary_annotations(0)
    with pytest.raises(SpecError, match="blue-green rollout; a weight applies to canary"):
        ro.set_weight("fraud", 50, namespace=namespace, kube=kube)

    ro.promote("fraud", namespace=namespace, kube=kube)  # the switch
    assert nginx_annotations(ingress(kube, namespace, "fraud-canary")) == canary_annotations(100)
    assert names(kube, namespace, DEPLOYS) == {"fraud", "fraud-preview"}  # kept for an instant rollback
    assert rule(ingress(kube, namespace, "fraud")) == (None, "/", "Prefix", "fraud", 80)

    # Rolled back after the switch: the preview's Ingress (all the traffic) goes before the preview.
    before = get(kube, INGRESSES.format(ns=namespace))["metadata"]["resourceVersion"]
    ro.abort("fraud", namespace=namespace, kube=kube)
    assert names(kube, namespace, INGRESSES) == {"fraud"} and names(kube, namespace, DEPLOYS) == {"fraud"}
    dep = get(kube, f"{DEPLOYS.format(ns=namespace)}/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    if cluster.is_sandbox:
        order = [(kind, name) for _, what, kind, name in changes_since(kube, namespace, before)
                 if what == "DELETED"]
        assert order.index(("Ingress", "fraud-canary")) < order.index(("Deployment", "fraud-preview"))

    # Again, switched and released this time: the preview becomes stable and its Ingress goes.
    forget_process_state()
    ro.start(spec(V2, replicas=2), strategy="blue-green", router="nginx", namespace=namespace, kube=kube,
             timeout=120)
    ro.promote("fraud", namespace=namespace, kube=kube)
    forget_process_state()  # released from another kernel
    ro.release("fraud", namespace=namespace, kube=kube, timeout=120)
    assert names(kube, namespace, INGRESSES) == {"fraud"} and names(kube, namespace, DEPLOYS) == {"fraud"}
    primary = ingress(kube, namespace, "fraud")
    assert rule(primary)[3] == "fraud" and nginx_annotations(primary) == {}
    dep = get(kube, f"{DEPLOYS.format(ns=namespace)}/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert dep["spec"]["replicas"] == 2
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_shadow_mirrors_every_request_or_none(kube, namespace, offered):
    mld.deploy(spec(V1), namespace=namespace, kube=kube, timeout=120)
    r = ro.start(spec(V2), strategy="shadow", router="nginx", namespace=namespace, kube=kube, timeout=120)
    assert r.mirror == 100
    target = f"http://fraud-shadow.{namespace}.svc.cluster.local$request_uri"
    # mirror-target sits on the primary Ingress; there is no canary Ingress, answers come from stable.
    assert names(kube, namespace, INGRESSES) == {"fraud"}
    primary = ingress(kube, namespace, "fraud")
    assert nginx_annotations(primary) == {nginx.MIRROR_TARGET: target}
    assert rule(primary)[3] == "fraud"
    pods = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                        query={"labelSelector": f"{L.TRACK}=shadow"})[1]["items"]
    assert pods and all(p["metadata"]["labels"][L.LIVE] == "false" for p in pods)

    with pytest.raises(SpecError) as e:
        ro.set_mirror("fraud", 50, namespace=namespace, kube=kube)
    assert "ingress-nginx mirrors every request or none" in str(e.value) and "\n" not in str(e.value)
    assert nginx_annotations(ingress(kube, namespace, "fraud")) == {nginx.MIRROR_TARGET: target}

    ro.set_mirror("fraud", 0, namespace=namespace, kube=kube)  # none: the annotation goes
    assert nginx_annotations(ingress(kube, namespace, "fraud")) == {}
    forget_process_state()
    assert ro.read("fraud", namespace=namespace, kube=kube).mirror == 0
    ro.set_mirror("fraud", 100, namespace=namespace, kube=kube)
    assert nginx_annotations(ingress(kube, namespace, "fraud")) == {nginx.MIRROR_TARGET: target}

    ro.abort("fraud", namespace=namespace, kube=kube)
    assert names(kube, namespace, INGRESSES) == {"fraud"}
    assert nginx_annotations(ingress(kube, namespace, "fraud")) == {}
    assert names(kube, namespace, DEPLOYS) == {"fraud"}
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_refusals_are_one_sentence_and_write_nothing(kube, namespace, offered):
    mld.deploy(spec(V1), namespace=namespace, kube=kube, timeout=120)
    before = snapshot(kube, namespace)
    cases = [
        (dict(strategy="shadow", mirror=50), "ingress-nginx mirrors every request or none (its mirror-target "
                                             "annotation has no percentage), so a 50% mirror cannot be "
                                             "honoured"),
        (dict(strategy="canary", weight=10, gateway="infra/public"),
         "the nginx router routes through the ingress-nginx controller, so gateway cannot be set"),
        (dict(strategy="blue-green", weight=100),
         "a blue-green rollout starts with no traffic on the preview"),
    ]
    for kw, words in cases:
        with pytest.raises(SpecError) as e:
            ro.start(spec(V2), router="nginx", namespace=namespace, kube=kube, timeout=120, **kw)
        text = str(e.value)
        assert words in text and "\n" not in text and text.endswith("."), kw
    assert snapshot(kube, namespace) == before
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


@pytest.mark.parametrize(("ingress_class", "has"), [
    (None, "has no class (the cluster default)"), ("traefik", "has class 'traefik'")])
def test_a_model_exposed_through_another_ingress_class_is_refused_with_nothing_written(
        kube, namespace, offered, ingress_class, has):
    # The rollout would rewrite the model's Ingress with class nginx: moved to another controller without
    # being asked, and a plain redeploy of the same spec would then remove the class again.
    mld.deploy(spec(V1, expose="ingress", host=HOST, ingress_class=ingress_class), namespace=namespace,
               kube=kube, timeout=120)
    exposure = ingress(kube, namespace, "fraud")
    before = snapshot(kube, namespace)
    for strategy, how in (("canary", "splits traffic with a canary Ingress that ingress-nginx serves only "
                                     "beside a main Ingress of class nginx"),
                          ("blue-green", "splits traffic with a canary Ingress"),
                          ("shadow", "mirrors with an annotation that only ingress-nginx reads")):
        with pytest.raises(SpecError) as e:
            ro.start(spec(V2), strategy=strategy, router="nginx", namespace=namespace, kube=kube, timeout=120)
        text = str(e.value)
        assert text.startswith(f"the nginx router {how}") and "\n" not in text, text
        assert text.endswith(f"; fraud's Ingress {has}: redeploy it with --ingress-class nginx "
                             f"(ingress_class='nginx') first, or use another router.")
    assert snapshot(kube, namespace) == before
    after = ingress(kube, namespace, "fraud")
    assert after["metadata"]["resourceVersion"] == exposure["metadata"]["resourceVersion"]  # not written
    assert after["spec"].get("ingressClassName") == ingress_class
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_the_magics_refuse_an_ingress_without_a_class(ip, kube, namespace, offered):
    ip.run_line_magic("deploy", f"fraud --image {V1} --expose ingress --host {HOST}")
    before = snapshot(kube, namespace)
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router nginx")
    assert isinstance(e.value.error, SpecError) and "\n" not in str(e.value)
    assert "fraud's Ingress has no class (the cluster default): redeploy it with --ingress-class nginx" in (
        str(e.value))
    assert snapshot(kube, namespace) == before
    assert "ingressClassName" not in ingress(kube, namespace, "fraud")["spec"]


def test_with_ingress_class_nginx_the_magics_canary_promote_and_redeploy_keep_the_class(
        ip, kube, namespace, offered):
    plain = f"fraud --image {V2} --replicas 2 --expose ingress --host {HOST} --ingress-class nginx"
    ip.run_line_magic("deploy", plain.replace(V2, V1))
    assert ingress(kube, namespace, "fraud")["spec"]["ingressClassName"] == "nginx"
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 20 --router nginx")
    assert names(kube, namespace, INGRESSES) == {"fraud", "fraud-canary"}
    for name in ("fraud", "fraud-canary"):
        assert ingress(kube, namespace, name)["spec"]["ingressClassName"] == "nginx"
    ip.run_line_magic("promote", "fraud")
    assert names(kube, namespace, INGRESSES) == {"fraud"}
    assert ingress(kube, namespace, "fraud")["spec"]["ingressClassName"] == "nginx"

    ip.run_line_magic("deploy", plain)  # the same spec, plainly: the class stays
    primary = ingress(kube, namespace, "fraud")
    assert primary["spec"]["ingressClassName"] == "nginx"
    assert rule_host(primary) == HOST
    assert ro.STRATEGY not in primary["metadata"].get("annotations", {})
    dep = get(kube, f"{DEPLOYS.format(ns=namespace)}/fraud")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == V2


def rule_host(obj: dict) -> str | None:
    return obj["spec"]["rules"][0].get("host")


def test_an_identity_that_cannot_list_ingress_classes_is_told_so(cluster):
    if not cluster.limited_context:
        pytest.skip("the limited identity exists only in the sandbox")
    # IngressClasses are cluster-scoped, so the limited identity's namespaced Role cannot list them.
    limited = Kube(str(cluster.kubeconfig), cluster.limited_context)
    name = f"ngx-{uuid.uuid4().hex[:6]}"  # ml-team is shared: a name of this test's own
    try:
        mld.deploy(spec(V1).with_(name=name), kube=limited, timeout=120)
        assert "nginx" not in ro.offered_routers(limited)
        before = snapshot(limited, "ml-team")
        with pytest.raises(SpecError) as e:
            ro.start(spec(V2).with_(name=name), strategy="canary", weight=10, router="nginx", kube=limited)
        assert str(e.value) == (
            "the nginx router needs an IngressClass named 'nginx', and this identity may not list "
            "IngressClasses, so whether ingress-nginx is installed cannot be checked; ask for list on "
            "ingressclasses.networking.k8s.io, or use another router.")
        assert snapshot(limited, "ml-team") == before
    finally:
        mld.undeploy(name, kube=limited)


def test_the_magics_drive_an_nginx_canary(ip, kube, namespace, offered):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router nginx")
    assert nginx_annotations(ingress(kube, namespace, "fraud-canary")) == canary_annotations(10)
    ip.run_line_magic("canary", "fraud 40")
    assert nginx_annotations(ingress(kube, namespace, "fraud-canary")) == canary_annotations(40)
    ip.run_line_magic("rollback", "fraud")
    assert names(kube, namespace, INGRESSES) == {"fraud"} and names(kube, namespace, DEPLOYS) == {"fraud"}
