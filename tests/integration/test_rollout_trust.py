"""Rollouts that can be trusted, against the sandbox's real API server (no mock of the API):

- the candidate is the stable spec with only the given fields changed, and promote makes the stable
  exactly the candidate, for every router that drives rollouts; the routes keep the spec's annotations;
- every route write carries the resourceVersion (and uid) it was based on: two kernels, as two real
  processes, racing on set_weight and on promote, one wins and the other writes nothing and says why; a
  kernel's cached view after another promoted is refused; a controller's status write is not a race;
- a promotion interrupted in any phase leaves a state another call finishes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import jupyter_mldeploy as mld
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.errors import MLDeployError, NoRollout, RolloutInterrupted, StaleRollout
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox

V1, V2 = "ghcr.io/acme/churn:1.4", "ghcr.io/acme/churn:1.5"
AUTH = {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check",
        "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8"}
ROUTES = {
    "istio": "/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices/churn",
    "gateway": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes/churn",
    "nginx": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/churn",
    "replicas": "/api/v1/namespaces/{ns}/services/churn",
}
# Where each router's stable is exposed (its route replaces that object) and its own flags.
STABLE_BODY = {
    "istio": "",
    "gateway": "expose: gateway\ngateway: infra/public\nhost: churn.example.com\n",
    "nginx": "expose: ingress\ningress_class: nginx\nhost: churn.example.com\n",
    "replicas": "",
}


def get(kube: Kube, path: str) -> dict:
    return kube.request("GET", path)[1]


def deployment(kube: Kube, ns: str, name: str) -> dict:
    return get(kube, f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")


def container(dep: dict) -> dict:
    return dep["spec"]["template"]["spec"]["containers"][0]


def deployments(kube: Kube, ns: str) -> set[str]:
    return {d["metadata"]["name"] for d in get(kube, f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]}


def route(kube: Kube, ns: str, router: str = "istio") -> dict:
    return get(kube, ROUTES[router].format(ns=ns))


def stable(image: str = V1, **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "churn", "image": image, **kw})


def assert_production_spec(dep: dict, image: str) -> None:
    """What the README's stable line asked for, still there."""
    c = container(dep)
    assert c["image"] == image
    assert {"name": "MODEL_STAGE", "value": "prod"} in c["env"]
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert c["resources"]["limits"]["memory"] == "4Gi"
    for key, value in AUTH.items():
        assert dep["metadata"]["annotations"][key] == value
        assert dep["spec"]["template"]["metadata"]["annotations"][key] == value


# ---------------------------------------------------------------------------------------------------
# the candidate inherits, promote copies everything


@pytest.mark.parametrize("router", ["istio", "gateway", "nginx", "replicas"])
def test_the_readme_canary_line_keeps_env_resources_and_annotations(ip, kube, namespace, router):
    annotations = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in AUTH.items())
    readme = f"churn --image {V1} --cpu 2 --memory 4Gi --replicas 3 --env MODEL_STAGE=prod"
    ip.run_cell_magic("deploy", readme, f"{STABLE_BODY[router]}annotations:\n{annotations}")
    gateway = " --gateway infra/public" if router == "gateway" else ""
    r = ip.run_line_magic("deploy", f"churn --image {V2} --strategy canary --weight 10 --router {router}"
                                    f"{gateway}")
    assert (r.router, r.weight) == (router, 10)
    assert_production_spec(deployment(kube, namespace, "churn-canary"), V2)
    assert route(kube, namespace, router)["metadata"]["annotations"].items() >= AUTH.items()
    if router == "nginx":  # the allow-list guards the canary's share of requests too
        canary = get(kube, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/churn-canary")
        assert canary["metadata"]["annotations"].items() >= AUTH.items()

    ip.run_line_magic("canary", "churn 50")
    assert route(kube, namespace, router)["metadata"]["annotations"].items() >= AUTH.items()

    done = ip.run_line_magic("promote", "churn")
    assert str(done).startswith("Promoted churn: version 1.5 is now the stable model")
    dep = deployment(kube, namespace, "churn")
    assert_production_spec(dep, V2)
    assert dep["spec"]["replicas"] == 3  # the stable's own count: no split count leaked in
    assert deployments(kube, namespace) == {"churn"}
    assert route(kube, namespace, router)["metadata"]["annotations"].items() >= AUTH.items()
    assert ro.read("churn", namespace=namespace, kube=kube) is None


def test_a_rollout_dry_run_shows_the_candidates_differences_with_env_values_redacted(ip, kube, namespace):
    ip.run_line_magic("deploy", f"churn --image {V1} --cpu 500m --env MODEL_STAGE=prod")
    dry = ip.run_line_magic("deploy", f"churn --image {V2} --strategy canary --weight 10 --router istio "
                                      f"--env LOG=debug --dry-run")
    assert str(dry) == ("--- stable/churn\n+++ candidate/churn-canary\n@@ -1,5 +1,6 @@\n name: churn\n"
                        f"-image: {V1}\n+image: {V2}\n cpu: 500m\n env:\n   MODEL_STAGE: <redacted>\n"
                        "+  LOG: <redacted>\n")
    shown = str(ip.run_line_magic("deploy", f"churn --image {V2} --strategy canary --env LOG=debug "
                                            f"--router istio --dry-run server --show-values"))
    assert "   MODEL_STAGE: prod\n+  LOG: debug\n" in shown
    assert deployments(kube, namespace) == {"churn"}  # nothing written
    assert ro.read("churn", namespace=namespace, kube=kube) is None


def test_a_deploy_dry_run_redacts_env_values_client_and_server_side(ip, kube, namespace):
    ip.run_line_magic("deploy", f"churn --image {V1} --env MODEL_STAGE=prod")
    client = str(ip.run_line_magic("deploy", f"churn --image {V1} --env MODEL_STAGE=staging --dry-run"))
    assert "value: <redacted>" in client and "staging" not in client
    line = f"churn --image {V1} --env MODEL_STAGE=staging --dry-run"
    server = str(ip.run_line_magic("deploy", f"{line} server"))
    assert "-          value: <redacted>\n+          value: <redacted, changed>\n" in server
    assert "staging" not in server and "prod" not in server
    shown = str(ip.run_line_magic("deploy", f"churn --image {V1} --env MODEL_STAGE=staging --dry-run server "
                                            f"--show-values"))
    assert "-          value: prod" in shown and "+          value: staging" in shown
    html = ip.run_line_magic("deploy", line)._repr_html_()
    assert "staging" not in html and "&lt;redacted&gt;" in html


def test_env_from_a_secret_is_a_reference_the_api_server_accepts(ip, kube, namespace):
    kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets",
                 body={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-creds"},
                       "stringData": {"password": "s3cret-value"}})
    ip.run_line_magic("deploy", f"churn --image {V1} --env MODEL_STAGE=prod "
                                f"--env-secret DB_PASSWORD=db-creds:password")
    env = container(deployment(kube, namespace, "churn"))["env"]
    assert env == [{"name": "MODEL_STAGE", "value": "prod"},
                   {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds",
                                                                          "key": "password"}}}]
    configmaps = json.dumps(get(kube, f"/api/v1/namespaces/{namespace}/configmaps"))
    assert "s3cret-value" not in configmaps  # referenced, never copied into a record
    # and a canary keeps the reference
    ip.run_line_magic("deploy", f"churn --image {V2} --strategy canary --router istio")
    assert container(deployment(kube, namespace, "churn-canary"))["env"] == env


# ---------------------------------------------------------------------------------------------------
# no stale state: two kernels as two processes


KERNEL = textwrap.dedent("""
    import json, os, sys, time
    from jupyter_mldeploy import api, rollout as ro
    from jupyter_mldeploy.kube import apply as kapply
    from jupyter_mldeploy.kube.client import Kube

    kube = Kube(os.environ["TEST_KUBECONFIG"], os.environ.get("TEST_CONTEXT") or None)
    ns, op, arg, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    writes = []  # every write this kernel had accepted (the API server's answers, not a mock)
    original = kapply.apply_all
    def counted(kube, manifests, **kw):
        report = original(kube, manifests, **kw)
        writes.extend(f"{m['kind']}/{m['metadata']['name']}" for m in manifests)
        return report
    kapply.apply_all = counted
    ro.read("churn", namespace=ns, kube=kube)  # this kernel's view, cached
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    try:
        if op == "weight":
            ro.set_weight("churn", int(arg), namespace=ns, kube=kube)
        else:  # "promote"; with arg "phases" it says each phase as it begins (for a test to signal it)
            say = (lambda p: print("phase", p, flush=True)) if arg == "phases" else None
            ro.promote("churn", namespace=ns, kube=kube, timeout=120, on_phase=say)
        print(json.dumps({"ok": True, "writes": writes}), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "error": type(e).__name__, "message": str(e), "writes": writes}),
              flush=True)
""")


def kernels(cluster, ns: str, tmp_path: Path, *ops: tuple[str, str]) -> list[dict]:
    """Start one process per op, each caching the rollout first, then let them all go at once."""
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "TEST_KUBECONFIG": str(cluster.kubeconfig), "TEST_CONTEXT": cluster.context or ""}
    procs = [subprocess.Popen([sys.executable, "-c", KERNEL, ns, op, arg, str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for op, arg in ops]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    go.touch()
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def canary(kube: Kube, ns: str, router: str = "istio", weight: int = 10, **kw) -> None:
    mld.deploy(stable(V1, **kw), namespace=ns, kube=kube, timeout=120)
    ro.start({"name": "churn", "image": V2}, strategy="canary", weight=weight, router=router,
             namespace=ns, kube=kube, timeout=120)


def vs_weights(kube: Kube, ns: str) -> list[int]:
    return [d["weight"] for d in route(kube, ns)["spec"]["http"][0]["route"]]


def test_two_kernels_racing_on_set_weight_one_wins_the_other_writes_nothing(cluster, kube, namespace,
                                                                           tmp_path):
    canary(kube, namespace)
    a, b = kernels(cluster, namespace, tmp_path, ("weight", "30"), ("weight", "60"))
    assert sorted([a["ok"], b["ok"]]) == [False, True], (a, b)
    winner, loser = (a, b) if a["ok"] else (b, a)
    won = 30 if winner is a else 60
    assert vs_weights(kube, namespace) == [100 - won, won]
    assert loser["error"] == "StaleRollout" and loser["writes"] == []
    assert loser["message"].startswith(f"the canary weight of churn was moved from 10% to {won}% from "
                                       f"another kernel ")
    assert loser["message"].endswith(" s ago; nothing was written.")
    assert winner["writes"] == ["VirtualService/churn"]  # one write moves the weight


def test_two_kernels_racing_on_promote_one_promotes_the_other_writes_nothing(cluster, kube, namespace,
                                                                            tmp_path):
    canary(kube, namespace)
    a, b = kernels(cluster, namespace, tmp_path, ("promote", ""), ("promote", ""))
    assert sorted([a["ok"], b["ok"]]) == [False, True], (a, b)
    loser = b if a["ok"] else a
    assert loser["error"] == "StaleRollout" and loser["writes"] == []
    assert loser["message"].startswith("churn is being promoted from another kernel (since ")
    assert loser["message"].endswith("); nothing was written; if that kernel stopped, %promote churn again "
                                     "carries the promotion on.")
    assert container(deployment(kube, namespace, "churn"))["image"] == V2
    assert deployments(kube, namespace) == {"churn"} and vs_weights(kube, namespace) == [100]


def test_a_cached_view_after_another_kernel_promoted_is_refused_and_the_route_stays(cluster, kube, namespace,
                                                                                    tmp_path):
    canary(kube, namespace)
    ro.read("churn", namespace=namespace, kube=kube)  # kernel A's view
    (b,) = kernels(cluster, namespace, tmp_path, ("promote", ""))
    assert b["ok"], b
    before = route(kube, namespace)
    with pytest.raises(StaleRollout) as e:
        ro.set_weight("churn", 30, namespace=namespace, kube=kube)
    assert str(e.value).startswith("churn was promoted from another kernel ")
    assert str(e.value).endswith(" s ago; nothing was written.")
    after = route(kube, namespace)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert vs_weights(kube, namespace) == [100]
    # the next call reads the cluster again and says so plainly
    with pytest.raises(NoRollout, match=r"churn has no rollout in progress in namespace .* \(it was promo"):
        ro.set_weight("churn", 30, namespace=namespace, kube=kube)


def test_a_weight_moved_by_another_kernel_refuses_the_stale_write(cluster, kube, namespace, tmp_path):
    canary(kube, namespace, router="gateway", gateway="infra/public", expose="gateway")
    ro.read("churn", namespace=namespace, kube=kube)
    (b,) = kernels(cluster, namespace, tmp_path, ("weight", "40"))
    assert b["ok"], b
    with pytest.raises(StaleRollout, match=r"moved from 10% to 40% from another kernel \d+ s ago; nothing"):
        ro.set_weight("churn", 20, namespace=namespace, kube=kube)
    refs = route(kube, namespace, "gateway")["spec"]["rules"][0]["backendRefs"]
    assert [b["weight"] for b in refs] == [60, 40]
    # refused once, this kernel now holds the cluster's view: the next move is accepted
    ro.set_weight("churn", 20, namespace=namespace, kube=kube)
    refs = route(kube, namespace, "gateway")["spec"]["rules"][0]["backendRefs"]
    assert [b["weight"] for b in refs] == [80, 20]


def test_a_status_write_to_the_route_does_not_make_set_weight_fail(kube, namespace):
    canary(kube, namespace, router="gateway", gateway="infra/public", expose="gateway")
    ro.read("churn", namespace=namespace, kube=kube)  # the view before the controller writes status
    path = ROUTES["gateway"].format(ns=namespace)
    before = route(kube, namespace, "gateway")["metadata"]["resourceVersion"]
    status = {"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                      "namespace": "infra"},
        "controllerName": "example.com/gateway-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok",
                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}]}}
    kube.request("PATCH", f"{path}/status", body=status, content_type="application/merge-patch+json",
                 query={"fieldManager": "example-gateway-controller"})
    assert route(kube, namespace, "gateway")["metadata"]["resourceVersion"] != before
    r = ro.set_weight("churn", 30, namespace=namespace, kube=kube)
    live = route(kube, namespace, "gateway")
    assert [b["weight"] for b in live["spec"]["rules"][0]["backendRefs"]] == [70, 30]
    assert live["status"]["parents"][0]["controllerName"] == "example.com/gateway-controller"
    assert r.versions["httproute/churn"][0] == live["metadata"]["resourceVersion"]


@pytest.mark.parametrize("router", ["istio", "gateway"])
def test_a_route_deleted_elsewhere_is_not_created_again_by_a_stale_view(kube, namespace, router):
    extra = {"gateway": "infra/public", "expose": "gateway"} if router == "gateway" else {}
    canary(kube, namespace, router=router, **extra)
    ro.read("churn", namespace=namespace, kube=kube)  # this kernel's view, with the route's uid
    kube.request("DELETE", ROUTES[router].format(ns=namespace))  # kubectl delete, from elsewhere
    with pytest.raises(StaleRollout) as e:
        ro.set_weight("churn", 30, namespace=namespace, kube=kube)
    assert str(e.value).startswith("churn's route ") and str(e.value).endswith(" was removed; nothing was "
                                                                               "written.")
    with pytest.raises(MLDeployError) as gone:
        route(kube, namespace, router)
    assert gone.value.status == 404  # the weight move did not bring the deleted route back


def test_set_weight_on_a_model_without_a_rollout_says_so_plainly(kube, namespace):
    mld.deploy(stable(V1), namespace=namespace, kube=kube, timeout=120)
    with pytest.raises(NoRollout) as e:
        ro.set_weight("churn", 30, namespace=namespace, kube=kube)
    assert str(e.value) == (f"churn has no rollout in progress in namespace {namespace}: start one with "
                            f"%deploy churn --image ... --strategy canary (or blue-green, shadow).")


# ---------------------------------------------------------------------------------------------------
# promote: order and interruption


def interrupt_at(phase_name: str):
    def on_phase(phase: str) -> None:
        if phase == phase_name:
            raise KeyboardInterrupt
    return on_phase


def promoted(kube: Kube, ns: str) -> None:
    assert container(deployment(kube, ns, "churn"))["image"] == V2
    assert deployments(kube, ns) == {"churn"} and vs_weights(kube, ns) == [100]
    assert ro.read("churn", namespace=ns, kube=kube) is None


def test_ctrl_c_while_round_one_waits_stops_before_the_switch_and_promote_carries_on(kube, namespace):
    canary(kube, namespace, replicas=2)
    before = ro.read("churn", namespace=namespace, kube=kube)  # a view from before the promotion

    def on_status(status) -> None:
        raise KeyboardInterrupt  # Ctrl-C (or papermill's cell timeout) while the stable rolls

    with pytest.raises(RolloutInterrupted) as e:
        ro.promote("churn", namespace=namespace, kube=kube, timeout=120, on_status=on_status)
    assert e.value.phase == "roll"
    assert str(e.value).startswith("The promotion of churn stopped before the stable churn finished rolling "
                                   "to 1.5 (traffic still goes as before, and churn-canary still runs) "
                                   "(interrupted); run %promote churn")
    assert vs_weights(kube, namespace) == [90, 10]  # round 2 did not run
    assert deployments(kube, namespace) == {"churn", "churn-canary"}
    # the claim guards it: a kernel holding the pre-promotion view cannot move the weight...
    ro._remember(before)
    with pytest.raises(StaleRollout, match=r"churn is being promoted from another kernel \(since \d+ s ago"):
        ro.set_weight("churn", 50, namespace=namespace, kube=kube)
    with pytest.raises(MLDeployError, match="is being promoted"):
        ro.set_weight("churn", 50, namespace=namespace, kube=kube)  # ...and neither can a fresh one
    assert vs_weights(kube, namespace) == [90, 10]
    ro.forget_cache()  # another kernel carries on
    assert ro.read("churn", namespace=namespace, kube=kube).phase == "promoting"
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    promoted(kube, namespace)


def test_ctrl_c_between_the_rounds_leaves_a_state_promote_finishes(kube, namespace):
    canary(kube, namespace)
    with pytest.raises(RolloutInterrupted) as e:
        ro.promote("churn", namespace=namespace, kube=kube, timeout=120, on_phase=interrupt_at("switch"))
    assert e.value.phase == "switch" and "before the route switched to it" in str(e.value)
    assert container(deployment(kube, namespace, "churn"))["image"] == V2  # round 1 done
    assert vs_weights(kube, namespace) == [90, 10] and "churn-canary" in deployments(kube, namespace)
    ro.forget_cache()
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    promoted(kube, namespace)


def test_ctrl_c_after_the_switch_leaves_the_candidate_for_finish_interrupted(ip, kube, namespace):
    canary(kube, namespace)
    with pytest.raises(RolloutInterrupted) as e:
        ro.promote("churn", namespace=namespace, kube=kube, timeout=120, on_phase=interrupt_at("cleanup"))
    assert ("after the switch: churn is promoted and answers every request, but churn-canary still runs"
            in str(e.value))
    # the route switched first; the candidate is removed only after that write was accepted
    assert vs_weights(kube, namespace) == [100] and "churn-canary" in deployments(kube, namespace)
    assert ro.read("churn", namespace=namespace, kube=kube) is None
    done = ip.run_line_magic("promote", "churn")  # from the notebook: finishes what was left
    assert str(done).startswith("Finished the promotion of churn that had stopped after its switch: removed ")
    promoted(kube, namespace)
    assert ro.finish_interrupted("churn", namespace=namespace, kube=kube) == []


def test_promote_switches_the_route_before_it_removes_the_candidate(kube, namespace):
    canary(kube, namespace)
    order = []
    start = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments")["metadata"]["resourceVersion"]
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120, on_phase=order.append)
    assert order == ["claim", "roll", "switch", "cleanup"]
    # replay the writes from the watch cache: the VirtualService's 100% comes before the canary's deletion
    seen = []
    for path in ("/apis/networking.istio.io/v1/namespaces/{ns}/virtualservices",
                 "/apis/apps/v1/namespaces/{ns}/deployments"):
        query = {"watch": "true", "resourceVersion": start, "timeoutSeconds": 1}
        for event in kube.stream(path.format(ns=namespace), query, read_timeout=30):
            obj = event["object"]
            weights = [d["weight"] for d in obj.get("spec", {}).get("http", [{}])[0].get("route", [])] \
                if obj["kind"] == "VirtualService" else None
            seen.append((int(obj["metadata"]["resourceVersion"]), event["type"], obj["metadata"]["name"],
                         weights))
    seen.sort()
    switched = next(rv for rv, _t, name, w in seen if name == "churn" and w == [100])
    deleted = next(rv for rv, t, name, _w in seen if name == "churn-canary" and t == "DELETED")
    assert switched < deleted  # by the API server's order, not by any clock


def test_the_slider_shows_the_refusal_and_snaps_to_what_the_cluster_holds(cluster, kube, namespace,
                                                                         tmp_path):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    canary(kube, namespace)
    slider = CanarySlider("churn", namespace=namespace, kube=kube)  # no event loop: writes on flush()
    assert (slider.value, slider.ready) == (10, True)
    (b,) = kernels(cluster, namespace, tmp_path, ("weight", "40"))
    assert b["ok"], b
    slider.value = 20  # dragged against the old view
    slider.flush()
    assert slider.error.startswith("the canary weight of churn was moved from 10% to 40% from another kernel")
    assert slider.value == 40 and str(slider.weights) == "stable 60% / canary 40%"
    assert vs_weights(kube, namespace) == [60, 40]  # the refused write changed nothing
    slider.value = 25  # from the view it now shows, the next move is accepted
    slider.flush()
    assert slider.error == "" and vs_weights(kube, namespace) == [75, 25]
    slider.close()


def test_a_mirror_change_after_another_kernel_rolled_back_is_refused(kube, namespace):
    mld.deploy(stable(V1), namespace=namespace, kube=kube, timeout=120)
    ro.start({"name": "churn", "image": V2}, strategy="shadow", mirror=50, router="gateway",
             gateway="infra/public", namespace=namespace, kube=kube, timeout=120)
    mine = ro.read("churn", namespace=namespace, kube=kube)
    ro.abort("churn", namespace=namespace, kube=kube)  # "another kernel": this view is now old
    ro._remember(mine)
    before = route(kube, namespace, "gateway")
    with pytest.raises(StaleRollout, match=r"^churn was rolled back from another kernel \d+ s ago; nothing"):
        ro.set_mirror("churn", 100, namespace=namespace, kube=kube)
    assert route(kube, namespace, "gateway")["metadata"]["resourceVersion"] == before["metadata"][
        "resourceVersion"]
    assert "filters" not in route(kube, namespace, "gateway")["spec"]["rules"][0]  # no mirror came back
    ro._remember(mine)
    with pytest.raises(StaleRollout, match="rolled back"):
        ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    assert deployments(kube, namespace) == {"churn"}
    assert container(deployment(kube, namespace, "churn"))["image"] == V1  # the stale promote rolled nothing


def test_a_timeout_while_round_one_waits_stops_before_the_switch(kube, namespace):
    canary(kube, namespace)
    with pytest.raises(RolloutInterrupted) as e:
        ro.promote("churn", namespace=namespace, kube=kube, timeout=0.001)
    assert e.value.phase == "roll"
    assert "(the wait timed out after 0.001 s); run %promote churn" in str(e.value)
    assert vs_weights(kube, namespace) == [90, 10] and "churn-canary" in deployments(kube, namespace)
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    promoted(kube, namespace)


def test_steps_from_an_old_view_are_refused(kube, namespace):
    canary(kube, namespace, weight=0)
    mine = ro.read("churn", namespace=namespace, kube=kube)
    ro.set_weight("churn", 25, namespace=namespace, kube=kube)  # elsewhere
    ro._remember(mine)
    with pytest.raises(StaleRollout, match="moved from 0% to 25%"):
        ro.steps("churn", [10, 50, 100], once=True, namespace=namespace, kube=kube)
    assert vs_weights(kube, namespace) == [75, 25]
    r = ro.steps("churn", [10, 50, 100], once=True, namespace=namespace, kube=kube)  # the fresh view
    assert (r.weight, r.step) == (50, 1) and vs_weights(kube, namespace) == [50, 50]


def kernel_in_phase(cluster, ns: str, tmp_path: Path, phase: str) -> subprocess.Popen:
    """A kernel promoting churn, returned once it says `phase` began."""
    go = tmp_path / "go"
    go.touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
           "TEST_KUBECONFIG": str(cluster.kubeconfig), "TEST_CONTEXT": cluster.context or ""}
    proc = subprocess.Popen([sys.executable, "-c", KERNEL, ns, "promote", "phases", str(go)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.strip() == f"phase {phase}":
            return proc
    raise AssertionError(f"the kernel ended before phase {phase}: {proc.stderr.read()}")


def test_a_real_ctrl_c_in_another_kernels_round_one_says_where_it_stopped(cluster, kube, namespace, tmp_path):
    import signal

    canary(kube, namespace, replicas=2)
    proc = kernel_in_phase(cluster, namespace, tmp_path, "roll")
    proc.send_signal(signal.SIGINT)  # what Ctrl-C (or papermill's interrupt on a cell timeout) sends
    stdout, stderr = proc.communicate(timeout=120)
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["error"] == "RolloutInterrupted", (result, stderr)
    assert result["message"].startswith("The promotion of churn stopped ")
    assert "run %promote churn (rollout.promote) again, from any kernel, to carry on." in result["message"]
    assert "churn-canary" in deployments(kube, namespace)  # no cleanup ran after the interruption
    # this kernel's view is from before the promotion: the first call says so, the second carries on
    with pytest.raises(StaleRollout, match="if that kernel stopped, %promote churn again carries"):
        ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    promoted(kube, namespace)


def test_a_kernel_killed_while_it_promotes_leaves_a_state_another_kernel_finishes(cluster, kube, namespace,
                                                                                  tmp_path):
    canary(kube, namespace, replicas=2)
    proc = kernel_in_phase(cluster, namespace, tmp_path, "roll")
    proc.kill()  # a papermill cell timeout shuts the kernel down: no Python code runs any more
    proc.communicate(timeout=60)
    seen = ro.read("churn", namespace=namespace, kube=kube)
    assert seen.phase == "promoting" and vs_weights(kube, namespace) == [90, 10]
    ro.promote("churn", namespace=namespace, kube=kube, timeout=120)
    promoted(kube, namespace)


def test_promote_magic_that_times_out_says_where_and_never_promoted(ip, kube, namespace, capsys):
    from jupyter_mldeploy.magics.display import MLDeployFailed

    canary(kube, namespace)
    capsys.readouterr()
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("promote", "churn --timeout 0.001")
    assert str(e.value).startswith("The promotion of churn stopped before the stable churn finished rolling")
    assert "\n" not in str(e.value) and "Promoted" not in capsys.readouterr().out
    done = ip.run_line_magic("promote", "churn")
    assert str(done).startswith("Promoted churn: version 1.5 is now the stable model")
    promoted(kube, namespace)
