"""The sandbox behaves like a cluster: real API server, controllers and scheduler over kwok nodes."""

from __future__ import annotations

import os
import socket
import time

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.sandbox


def _core(cluster, context=None) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client(context))


def _pod(name: str, *, labels=None, gpu: int = 0, tolerate_gpu: bool = False, privileged=False,
         node_selector=None) -> dict:
    resources = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if gpu:
        resources["limits"] = {"nvidia.com/gpu": str(gpu)}
    container = {"name": "model", "image": "registry.example/model:1", "resources": resources}
    if privileged:
        container["securityContext"] = {"privileged": True}
    spec = {"containers": [container], "automountServiceAccountToken": False}
    if tolerate_gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def _wait_for(fn, timeout=30.0, interval=0.2):
    """Poll a read until it returns something truthy; used only to observe the cluster in tests."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s; last value: {last!r}")


def test_three_nodes_ready_with_gpu_pool(cluster):
    if not cluster.is_sandbox:
        pytest.skip("node layout is the sandbox's")
    nodes = {n.metadata.name: n for n in _core(cluster).list_node().items}
    assert set(nodes) >= {"sandbox-cpu-1", "sandbox-cpu-2", "sandbox-gpu-1"}
    for node in nodes.values():
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
    gpu = nodes["sandbox-gpu-1"]
    assert gpu.status.allocatable["nvidia.com/gpu"] == "4"
    assert gpu.metadata.labels["nvidia.com/gpu.product"]
    assert [(t.key, t.value, t.effect) for t in gpu.spec.taints] == [
        ("nvidia.com/gpu", "present", "NoSchedule")]
    assert nodes["sandbox-cpu-1"].status.allocatable["cpu"] == "8"


def test_deployment_becomes_available_with_three_ready_pods(cluster, namespace):
    apps = client.AppsV1Api(cluster.api_client())
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": _pod("x")["spec"]}},
    })

    def available():
        d = apps.read_namespaced_deployment_status("web", namespace)
        conds = {c.type: c.status for c in (d.status.conditions or [])}
        return d.status.ready_replicas == 3 and conds.get("Available") == "True" and d

    _wait_for(available, timeout=60)
    pods = _core(cluster).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert all(c.ready for p in pods for c in p.status.container_statuses)
    # The scheduler placed them, and never on the tainted GPU node.
    assert all(p.spec.node_name and p.spec.node_name != "sandbox-gpu-1" for p in pods)


def test_pod_asking_for_eight_gpus_stays_pending_with_failed_scheduling(cluster, namespace):
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("greedy", gpu=8, tolerate_gpu=True))

    def failed_scheduling():
        evs = core.list_namespaced_event(namespace, field_selector="involvedObject.name=greedy").items
        return [e for e in evs if e.reason == "FailedScheduling"]

    events = _wait_for(failed_scheduling)
    assert "nvidia.com/gpu" in events[0].message
    pod = core.read_namespaced_pod("greedy", namespace)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    cond = [c for c in pod.status.conditions if c.type == "PodScheduled"][0]
    assert cond.status == "False" and cond.reason == "Unschedulable"


def test_gpu_pod_with_toleration_lands_on_gpu_node(cluster, namespace):
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("trainer", gpu=2, tolerate_gpu=True))
    pod = _wait_for(lambda: (p := core.read_namespaced_pod("trainer", namespace)).status.phase == "Running"
                    and p)
    assert pod.spec.node_name == "sandbox-gpu-1"


def test_pod_without_gpu_toleration_never_lands_on_gpu_node(cluster, namespace):
    core = _core(cluster)
    # Pinned to the GPU pool by its label but without the toleration: the taint keeps it off.
    core.create_namespaced_pod(namespace, _pod(
        "pinned", node_selector={"nvidia.com/gpu.present": "true"}))
    events = _wait_for(lambda: [e for e in core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=pinned").items if e.reason == "FailedScheduling"])
    # Kubernetes 1.36 no longer names the taint in this message ("had untolerated taint(s)").
    assert "untolerated taint" in events[0].message
    assert not core.read_namespaced_pod("pinned", namespace).spec.node_name
    # And many free-floating pods spread over the CPU nodes only.
    for i in range(8):
        core.create_namespaced_pod(namespace, {**_pod(f"free-{i}"), "metadata": {
            "name": f"free-{i}", "labels": {"group": "free"}}})
    pods = _wait_for(lambda: (items := core.list_namespaced_pod(namespace, label_selector="group=free")
                              .items) and all(p.spec.node_name for p in items) and items)
    assert {p.spec.node_name for p in pods} <= {"sandbox-cpu-1", "sandbox-cpu-2"}


def test_httproute_with_negative_weight_is_refused(cluster, namespace):
    custom = client.CustomObjectsApi(cluster.api_client())
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "split"},
        "spec": {"rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": -5}]}]},
    }
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes",
                                               route)
    assert err.value.status == 422
    assert "weight" in err.value.body
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 90
    created = custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace,
                                                     "httproutes", route)
    assert created["spec"]["rules"][0]["backendRefs"][0]["weight"] == 90


def test_istio_and_knative_kinds_are_served(cluster, namespace):
    custom = client.CustomObjectsApi(cluster.api_client())
    vs = custom.create_namespaced_custom_object("networking.istio.io", "v1", namespace, "virtualservices", {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "m"},
        "spec": {"hosts": ["m"], "http": [{"route": [
            {"destination": {"host": "m", "subset": "stable"}, "weight": 90},
            {"destination": {"host": "m", "subset": "canary"}, "weight": 10}]}]},
    })
    assert vs["spec"]["http"][0]["route"][1]["weight"] == 10
    ksvc = custom.create_namespaced_custom_object("serving.knative.dev", "v1", namespace, "services", {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "m"},
        "spec": {"template": {"spec": {"containers": [{"image": "registry.example/model:1"}]}},
                 "traffic": [{"latestRevision": True, "percent": 100}]},
    })
    assert ksvc["spec"]["traffic"][0]["percent"] == 100


def test_limited_identity_is_confined_to_its_namespace(cluster):
    if not cluster.limited_context:
        pytest.skip("the limited identity exists only in the sandbox")
    limited = client.AppsV1Api(cluster.api_client(cluster.limited_context))
    assert limited.list_namespaced_deployment("ml-team").items is not None
    with pytest.raises(ApiException) as err:
        limited.list_namespaced_deployment("default")
    assert err.value.status == 403
    assert "sandbox-limited" in err.value.body
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(cluster.api_client(cluster.limited_context)).list_node()
    assert err.value.status == 403


def test_privileged_pod_is_refused_in_restricted_namespace(cluster):
    if not cluster.restricted_namespace:
        pytest.skip("the restricted namespace exists only in the sandbox")
    with pytest.raises(ApiException) as err:
        _core(cluster).create_namespaced_pod(cluster.restricted_namespace, _pod("root", privileged=True))
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body and "restricted" in err.value.body


def _container_state(core, name, namespace):
    pod = core.read_namespaced_pod(name, namespace)
    statuses = pod.status.container_statuses or []
    return pod, (statuses[0] if statuses else None)


def test_image_pull_failure_switch(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("nopull", labels={"sandbox.mldeploy.io/fail": "image-pull"}))
    seen = _wait_for(lambda: (s := _container_state(core, "nopull", namespace)[1]) and s.state.waiting
                     and s.state.waiting.reason == "ImagePullBackOff" and s)
    assert "registry.example/model:1" in seen.state.waiting.message
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=nopull").items
    assert {"Failed", "BackOff"} <= {e.reason for e in events}


def test_crash_loop_failure_switch_restarts_grow(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("crashy", labels={"sandbox.mldeploy.io/fail": "crash-loop"}))
    first = _wait_for(lambda: (s := _container_state(core, "crashy", namespace)[1]) and s.state.waiting
                      and s.state.waiting.reason == "CrashLoopBackOff" and s)
    assert first.last_state.terminated.exit_code == 1
    later = _wait_for(lambda: (s := _container_state(core, "crashy", namespace)[1])
                      and s.restart_count >= first.restart_count + 1 and s)
    assert later.restart_count > first.restart_count >= 1


def test_never_ready_failure_switch(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("sulky", labels={"sandbox.mldeploy.io/fail": "never-ready"}))
    pod, status = _wait_for(lambda: (r := _container_state(core, "sulky", namespace))[0].status.phase
                            == "Running" and r)
    time.sleep(4)  # longer than a healthy pod needs to turn Ready
    pod, status = _container_state(core, "sulky", namespace)
    assert pod.status.phase == "Running" and status.ready is False
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=sulky").items
    assert any(e.reason == "Unhealthy" and "Readiness probe failed" in e.message for e in events)


def test_up_when_up_reuses_it(cluster):
    if not cluster.is_sandbox:
        pytest.skip("sandbox only")
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    said = []
    before = Sandbox().status()
    after = Sandbox().up(progress=said.append)
    assert "already up" in said[0]
    assert {n: p["pid"] for n, p in after["processes"].items()} == {
        n: p["pid"] for n, p in before["processes"].items()}


def test_port_in_use_is_one_clear_sentence(tmp_path, monkeypatch):
    from jupyter_mldeploy.sandbox.control_plane import Sandbox
    from jupyter_mldeploy.sandbox.errors import SandboxError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", str(port))
        with pytest.raises(SandboxError) as err:
            Sandbox(tmp_path / "box").up(progress=lambda _m: None)
    assert f"apiserver ({port})" in str(err.value)
    assert "in use" in str(err.value) and "MLDEPLOY_SANDBOX_PORT" in str(err.value)
    # Refused before anything started: no state was written.
    assert not (tmp_path / "box" / "state.json").exists()


def test_down_leaves_no_process(tmp_path, monkeypatch, cluster):
    if not cluster.is_sandbox:
        pytest.skip("sandbox only")
    from jupyter_mldeploy.sandbox.control_plane import Sandbox, _alive

    # A second sandbox on other ports, so the suite's shared one keeps running.
    monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", "17443")
    box = Sandbox(tmp_path / "second")
    info = box.up(progress=lambda _m: None)
    procs = info["processes"]
    assert set(procs) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert all(_alive(p) for p in procs.values())
    assert box.down(progress=lambda _m: None) is True
    assert not any(_alive(p) for p in procs.values())
    assert not any(os.path.exists(f"/proc/{p['pid']}") and _alive(p) for p in procs.values())
    assert not (tmp_path / "second").exists()
    assert box.status()["up"] is False
