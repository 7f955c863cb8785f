"""The deploy engine against a real API server: writes, undo, watches, diagnoses, history, undeploy."""

from __future__ import annotations

import threading

import pytest
from k8s_helpers import exists, get, labelled

import jupyter_mldeploy as mld
from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import (
    ClusterError,
    MLDeployError,
    NotOurs,
    PreflightFailed,
    RolloutFailed,
    WaitTimeout,
)
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.kube.watch import Watch
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox

FAIL = "sandbox.mldeploy.io/fail"


def spec(name="churn", image="ghcr.io/acme/churn:1.4", **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": name, "image": image, **kw})


def test_full_spec_deploys_every_object_and_waits_until_ready(kube, namespace):
    s = spec(cpu="500m", memory="1Gi", autoscale="2:5:70", expose="gateway", host="churn.example",
             gateway="infra/public", env={"MODEL": "churn"})
    seen = []
    d = mld.deploy(s, namespace=namespace, kube=kube, on_status=seen.append, timeout=120)
    assert d.last_status.complete and d.last_status.ready == 2
    assert set(d.created) == {"deployment/churn", "service/churn", "horizontalpodautoscaler/churn",
                              "poddisruptionbudget/churn", "httproute/churn"}
    assert seen and seen[-1].complete and any(not st.complete for st in seen)
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    assert dep["metadata"]["labels"][L.APP_MANAGED_BY] == "jupyter-mldeploy"
    assert "replicas" in dep["spec"]  # set by the HPA's scale subresource, not by us
    owners = {e["manager"] for e in dep["metadata"]["managedFields"] if not e.get("subresource")}
    assert "jupyter-mldeploy" in owners
    route = get(kube, f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/churn")
    assert route["spec"]["hostnames"] == ["churn.example"]


def test_same_spec_again_changes_and_restarts_nothing(kube, namespace):
    s = spec(replicas=2)
    mld.deploy(s, namespace=namespace, kube=kube, timeout=120)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/churn"
    before = get(kube, path)
    pods_before = {p["metadata"]["uid"] for p in get(kube, f"/api/v1/namespaces/{namespace}/pods")["items"]}
    again = mld.deploy(s, namespace=namespace, kube=kube, timeout=60)
    after = get(kube, path)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert again.created == [] and "deployment/churn" in again.changed
    pods_after = {p["metadata"]["uid"] for p in get(kube, f"/api/v1/namespaces/{namespace}/pods")["items"]}
    assert pods_after == pods_before


def test_image_pull_failure_fails_fast_with_plain_words(kube, namespace):
    s = spec(image="ghcr.io/acme/churn:9.9", labels={FAIL: "image-pull"})
    # RolloutFailed, not WaitTimeout: it failed on the diagnosis, not at the timeout (the time it
    # takes is measured in bench/bench_deploy.py).
    with pytest.raises(RolloutFailed) as err:
        mld.deploy(s, namespace=namespace, kube=kube, timeout=120)
    assert err.value.diagnosis.kind == "image-pull"
    assert "ghcr.io/acme/churn:9.9" in str(err.value)
    # Only the waiting failed: the objects stay, and the handle can be watched again.
    assert exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    with pytest.raises(RolloutFailed):
        err.value.deployment.watch(timeout=30)


def test_crash_loop_is_diagnosed_with_restarts(kube, namespace):
    with pytest.raises(RolloutFailed) as err:
        mld.deploy(spec(labels={FAIL: "crash-loop"}), namespace=namespace, kube=kube, timeout=120)
    d = err.value.diagnosis
    assert d.kind == "crash-loop" and d.fatal
    # The sandbox's crash-loop container exits with code 1 and is restarted (stages.yaml).
    assert "exited with an error (exit code 1)" in d.summary
    assert f"(pod {d.pod}, CrashLoopBackOff" in d.summary
    assert ", restarted " in d.summary and d.hint.startswith("read the log below")


def test_gpu_request_no_node_can_hold_is_refused_before_any_write(kube, namespace):
    with pytest.raises(PreflightFailed) as err:
        mld.deploy(spec(gpu=8), namespace=namespace, kube=kube)
    text = str(err.value)
    assert "8 nvidia.com/gpu" in text and "sandbox-gpu-1" in text and "4 nvidia.com/gpu" in text
    assert not exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    assert labelled(kube, namespace, "churn") == []  # no anchor, no record, nothing


def test_gpu_model_lands_on_gpu_node_and_a_second_one_is_unschedulable(kube, namespace):
    first = mld.deploy(spec(name="big", gpu=3, gpu_type="NVIDIA-A100-SXM4-80GB"), namespace=namespace,
                       kube=kube, timeout=120)
    assert first.last_status.pods[0].node == "sandbox-gpu-1"
    with pytest.raises(RolloutFailed) as err:
        mld.deploy(spec(name="bigger", gpu=3), namespace=namespace, kube=kube, timeout=120)
    assert err.value.diagnosis.kind == "unschedulable"
    # The first model holds 3 of the GPU node's 4: no node has 3 free, and that does not pass by itself.
    assert err.value.diagnosis.fatal
    assert "it asks for 3 GPUs (nvidia.com/gpu) and no node has that many free" in str(err.value)


def _foreign_service(kube, namespace, name):
    # Created the way `kubectl create service` does it: a plain POST under another manager.
    kube.request("POST", f"/api/v1/namespaces/{namespace}/services",
                 query={"fieldManager": "kubectl-create"},
                 body={"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": name, "labels": {"team": "x"}},
                       "spec": {"selector": {"app": "other"}, "ports": [{"port": 80, "targetPort": 9000}]}})


def test_object_managed_by_someone_else_is_never_changed_and_the_rest_is_undone(kube, namespace):
    _foreign_service(kube, namespace, "churn")
    before = get(kube, f"/api/v1/namespaces/{namespace}/services/churn")
    with pytest.raises(ClusterError) as err:
        mld.deploy(spec(), namespace=namespace, kube=kube)
    text = str(err.value)
    assert isinstance(err.value, NotOurs) and err.value.obj == "service/churn"
    assert text.startswith(f"service/churn already exists in namespace {namespace} and is not "
                           f"jupyter-mldeploy's (it is managed by kubectl-create); it was left as it was.")
    after = get(kube, f"/api/v1/namespaces/{namespace}/services/churn")
    assert after["spec"]["selector"] == before["spec"]["selector"] == {"app": "other"}
    assert after["metadata"]["labels"] == {"team": "x"}
    # What this call created is gone again: no half-deployed model.
    assert not exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    assert labelled(kube, namespace, "churn") == []  # no anchor, no record, nothing


def test_failed_redeploy_puts_changed_objects_back(kube, namespace):
    mld.deploy(spec(image="ghcr.io/acme/churn:1.4"), namespace=namespace, kube=kube, timeout=120)
    # A foreign HTTPRoute where v2 wants to expose the model makes v2's write fail.
    kube.request("POST", f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes",
                 query={"fieldManager": "someone-else"},
                 body={"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                       "metadata": {"name": "churn"},
                       "spec": {"hostnames": ["other.example"], "rules": [{"backendRefs": [
                           {"name": "other", "port": 80}]}]}})
    with pytest.raises(ClusterError) as err:
        mld.deploy(spec(image="ghcr.io/acme/churn:2.0", expose="gateway", host="churn.example",
                        gateway="infra/public"),
                   namespace=namespace, kube=kube, timeout=60)
    assert "httproute/churn" in str(err.value) and "restored deployment/churn" in str(err.value)
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/churn:1.4"
    route = get(kube, f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/churn")
    assert route["spec"]["hostnames"] == ["other.example"]


def test_rbac_refusal_is_one_sentence(cluster):
    if not cluster.limited_context:
        pytest.skip("the limited identity exists only in the sandbox")
    limited = Kube(str(cluster.kubeconfig), cluster.limited_context)
    with pytest.raises(ClusterError) as err:
        mld.deploy(spec(name="nope"), namespace="default", kube=limited)
    text = str(err.value)
    assert "sandbox-limited may not" in text and "namespace default" in text
    assert "\n" not in text.split(" Undone:")[0]


def test_limited_identity_deploys_in_its_namespace_without_node_access(cluster):
    if not cluster.limited_context:
        pytest.skip("the limited identity exists only in the sandbox")
    limited = Kube(str(cluster.kubeconfig), cluster.limited_context)
    try:
        d = mld.deploy(spec(name="team-model"), kube=limited, timeout=120)
        assert d.namespace == "ml-team" and d.last_status.complete
        assert any("pre-flight skipped" in n for n in d.notes)
    finally:
        mld.undeploy("team-model", kube=limited)


def test_restricted_namespace_accepts_restricted_pods(cluster, kube):
    if not cluster.restricted_namespace:
        pytest.skip("sandbox only")
    s = spec(name="strict", pod_security="restricted")
    try:
        d = mld.deploy(s, namespace=cluster.restricted_namespace, kube=kube, timeout=120)
        assert d.last_status.complete
    finally:
        mld.undeploy("strict", namespace=cluster.restricted_namespace, kube=kube)


def test_undeploy_removes_ours_and_nothing_else(kube, namespace):
    mld.deploy(spec(replicas=2, expose="ingress", host="churn.example"), namespace=namespace, kube=kube,
               timeout=120)
    # An object with our instance label that jupyter-mldeploy did not make.
    kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "churn-notes", "labels": {L.APP_INSTANCE: "churn"}}})
    gone = mld.undeploy("churn", namespace=namespace, kube=kube)
    assert {"deployment/churn", "service/churn", "poddisruptionbudget/churn", "ingress/churn"} <= set(gone)
    assert exists(kube, f"/api/v1/namespaces/{namespace}/configmaps/churn-notes")
    assert not exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    with pytest.raises(MLDeployError) as err:
        mld.undeploy("churn", namespace=namespace, kube=kube)
    assert str(err.value) == f"Nothing named churn was deployed by jupyter-mldeploy in namespace {namespace}."


def test_history_and_rollback_to_previous_revision(kube, namespace):
    mld.deploy(spec(image="ghcr.io/acme/churn:1.4"), namespace=namespace, kube=kube, timeout=120)
    mld.deploy(spec(image="ghcr.io/acme/churn:1.5", cpu="250m"), namespace=namespace, kube=kube,
               timeout=120)
    revs = mld.history("churn", namespace=namespace, kube=kube)
    assert [r.revision for r in revs] == [1, 2] and revs[-1].current and revs[-1].version == "1.5"
    back = mld.rollback("churn", namespace=namespace, kube=kube, timeout=120)
    assert back.last_status.complete
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/churn:1.4"
    assert "cpu" not in container.get("resources", {}).get("requests", {})
    revs = mld.history("churn", namespace=namespace, kube=kube)
    assert next(r for r in revs if r.current).version == "1.4"
    with pytest.raises(MLDeployError, match="no revision 42"):
        mld.rollback("churn", 42, namespace=namespace, kube=kube)


def test_dry_runs_write_nothing(kube, namespace):
    s = spec()
    client_side = mld.deploy(s, namespace=namespace, kube=kube, dry_run=True)
    assert "kind: Deployment" in client_side.yaml and "ghcr.io/acme/churn:1.4" in client_side.yaml
    server = mld.deploy(s, namespace=namespace, kube=kube, dry_run="server")
    assert "+++ new/deployment/churn" in server.diff
    assert not exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    mld.deploy(s, namespace=namespace, kube=kube, timeout=120)
    changed = mld.deploy(spec(image="ghcr.io/acme/churn:1.5"), namespace=namespace, kube=kube,
                         dry_run="server")
    lines = changed.diff.splitlines()
    assert any(x.startswith("-") and "image: ghcr.io/acme/churn:1.4" in x for x in lines)
    assert any(x.startswith("+") and "image: ghcr.io/acme/churn:1.5" in x for x in lines)


def test_timeout_stops_only_the_waiting(kube, namespace):
    s = spec(labels={FAIL: "never-ready"})
    with pytest.raises(WaitTimeout) as err:
        mld.deploy(s, namespace=namespace, kube=kube, timeout=4)
    assert "goes on in the cluster" in str(err.value)
    assert exists(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/churn")
    status = mld.get("churn", namespace=namespace, kube=kube).status()
    assert status.pods and not status.complete


def test_deploy_many_writes_all_at_once(kube, namespace):
    specs = [spec(name=f"m{i}") for i in range(5)]
    handles = mld.deploy_many(specs, namespace=namespace, kube=kube, wait=True, timeout=120)
    assert [h.name for h in handles] == [f"m{i}" for i in range(5)]
    assert all(h.last_status.complete for h in handles)


@pytest.mark.parametrize("wait", [False, True])
def test_deploy_many_of_more_models_than_writer_threads_finishes(kube, namespace, wait):
    """40 models (the writer pool has 32 threads): every release record is written and every handle
    answers. With one shared pool the records, each waiting on its own writes, took every thread."""
    import threading

    specs = [spec(name=f"m{i:02d}") for i in range(40)]
    out: dict = {}

    def run() -> None:
        handles = mld.deploy_many(specs, namespace=namespace, kube=kube, wait=wait, timeout=300)
        out["ready"] = [h.status().ready for h in handles]

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=400)  # a bound on a deadlock, not a speed: 40 small models take seconds
    assert not worker.is_alive(), "deploy_many never returned: its background jobs wait on each other"
    assert len(out["ready"]) == 40
    managed = {"labelSelector": "app.kubernetes.io/managed-by=jupyter-mldeploy"}
    records = kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets", query=managed)[1]["items"]
    assert len(records) == 40  # one release record per model


def test_watch_relists_after_410_gone(cluster, kube, namespace):
    kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seen"}})
    if cluster.is_sandbox:
        # A young sandbox still answers from revision 1: its watch cache replays its first list.
        # Compact etcd (as the API server does every 5 minutes) and restart the API server, so its
        # cache starts after the compaction, as on any cluster that has run a while.
        from jupyter_mldeploy.sandbox.control_plane import Sandbox

        Sandbox().compact_etcd()
        Sandbox().restart("kube-apiserver", progress=lambda _m: None)
    w = Watch(kube, f"/api/v1/namespaces/{namespace}/configmaps", "ConfigMap", initial_list=False,
              resource_version="1")  # compacted: the server answers 410 Gone
    got = []
    for etype, obj in w.events():
        got.append((etype, obj["metadata"]["name"]))
        if obj["metadata"]["name"] == "seen":
            w.stop()
            break
    assert ("ADDED", "seen") in got and w.relists >= 1


def test_watch_survives_an_api_server_restart(cluster, kube, namespace):
    if not cluster.is_sandbox:
        pytest.skip("restarts the sandbox's API server")
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    w = Watch(kube, f"/api/v1/namespaces/{namespace}/configmaps", "ConfigMap")
    names: list[str] = []
    done = threading.Event()

    def consume():
        for _etype, obj in w.events():
            names.append(obj["metadata"]["name"])
            if obj["metadata"]["name"] == "after":
                done.set()
                return

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "before"}})
    Sandbox().restart("kube-apiserver", progress=lambda _m: None)
    kube.request("POST", f"/api/v1/namespaces/{namespace}/configmaps", body={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "after"}})
    assert done.wait(60), names
    w.stop()
    assert names.index("before") < names.index("after") and w.reconnects >= 1
