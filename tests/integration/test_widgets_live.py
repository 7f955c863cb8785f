"""PodStatusView fed by real watches against the sandbox's API server: rows turn Ready, a failing pod is
explained, and the view stops watching once the model is undeployed."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from jupyter_mldeploy import api
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.spec import DeploySpec
from jupyter_mldeploy.widgets import PodStatusView

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("recording_comm")]

FAIL = "sandbox.mldeploy.io/fail"


def spec(**kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "churn", "image": "ghcr.io/acme/churn:1.4", "cpu": "50m",
                                 "memory": "64Mi", **kw})


def ready_rows(view: PodStatusView) -> int:
    return view.pods.value.count("mldeploy-pod mldeploy-ready")


def settled(view: PodStatusView, pods: int):
    return lambda: view.status is not None and view.status.complete and ready_rows(view) == pods


def poll_until(view: PodStatusView, done, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"gave up waiting; the view shows:\n{view}"
        view.poll()
        time.sleep(0.1)


def test_rows_turn_ready_on_the_event_loop_and_the_view_stops_after_undeploy(kube, namespace):
    handle = api.deploy(spec(replicas=3), wait=False, kube=kube, namespace=namespace)
    before = set(threading.enumerate())

    async def watch_on_a_loop() -> tuple[PodStatusView, set[threading.Thread], list[int]]:
        view = PodStatusView(handle)  # a running loop: updates arrive without poll(), as in a kernel
        assert view.live and view.watching
        watch_threads = set(threading.enumerate()) - before
        shown: list[int] = []
        view.progress.observe(lambda c: shown.append(c["new"]), names="value")
        deadline = time.monotonic() + 90
        while not settled(view, 3)():
            assert time.monotonic() < deadline, f"not ready in time:\n{view}"
            await asyncio.sleep(0.1)
        shown_until_ready = list(shown)
        api.undeploy("churn", namespace=namespace, kube=kube)
        while view.watching:
            assert time.monotonic() < deadline + 60, f"still watching after undeploy:\n{view}"
            await asyncio.sleep(0.1)
        return view, watch_threads, shown_until_ready

    view, watch_threads, shown = asyncio.run(watch_on_a_loop())
    assert len(watch_threads) == 4  # Deployment, ReplicaSets, Pods, Events
    assert shown and shown[-1] == 3 and shown == sorted(shown)  # the bar only ever grew, to 3 of 3
    assert view.phase == "deleted" and view.stopped_reason == "churn was deleted; no longer watching."
    assert "was deleted" in view.header.value and view.progress.description == "deleted"
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in watch_threads):  # the watch connections are shut, threads end
        assert time.monotonic() < deadline, "watch threads still running after the view stopped"
        time.sleep(0.05)


def test_rows_show_name_node_and_readiness_through_poll(kube, namespace):
    handle = api.deploy(spec(replicas=3), wait=False, kube=kube, namespace=namespace)
    view = PodStatusView(handle)
    try:
        assert not view.live  # no loop here: poll() applies what the watches saw
        poll_until(view, settled(view, 3))
        rows = view.status.pods
        assert len(rows) == 3 and all(r.ready and r.phase == "Running" for r in rows)
        assert {r.node for r in rows} <= {"sandbox-cpu-1", "sandbox-cpu-2"}  # the GPU node is tainted
        for r in rows:
            assert r.name in view.pods.value and r.node in view.pods.value
        assert view.progress.description == "3/3 ready" and view.progress.bar_style == "success"
        assert str(view).startswith("churn: 3/3 ready, rollout complete")
        updates = [d for t, d in view.pods.comm.messages if t == "comm_msg" and d.get("method") == "update"]
        assert updates and "3/3" in view.header.value
    finally:
        view.close()
    assert not view.watching and view.stopped_reason == "The view was closed."


def test_a_failing_pod_shows_the_diagnosis(kube, namespace):
    handle = api.deploy(spec(image="ghcr.io/acme/churn:9.9", labels={FAIL: "image-pull"}), wait=False,
                        kube=kube, namespace=namespace)
    view = PodStatusView(handle)
    try:
        poll_until(view, lambda: view.status is not None and view.status.phase == "failed")
        d = view.status.diagnosis
        assert d.kind == "image-pull" and d.fatal
        assert "Rollout failed: " in view.diagnosis.value and d.summary[:40] in view.diagnosis.value
        assert "mldeploy-failing" in view.pods.value and view.progress.bar_style == "danger"
        assert "ghcr.io/acme/churn:9.9" in view.diagnosis.value + view.events.value
        assert "FAILED: " in str(view)
    finally:
        view.close()


def test_views_in_one_namespace_share_one_set_of_watches(kube, namespace):
    a, b = (api.deploy(spec(name=n, replicas=2), wait=False, kube=kube, namespace=namespace)
            for n in ("churn", "fraud"))
    before = set(threading.enumerate())
    first = PodStatusView(a)
    late = None
    hub = first._watches
    try:
        poll_until(first, settled(first, 2))
        late = PodStatusView(b)  # subscribes to the running watches and gets what they already know
        assert late._watches is hub and len(hub.threads) == 4
        assert set(threading.enumerate()) - before == set(hub.threads)  # no watches of its own
        poll_until(late, settled(late, 2))
        assert {r.name.rsplit("-", 2)[0] for r in first.status.pods} == {"churn"}  # each its own pods
        assert {r.name.rsplit("-", 2)[0] for r in late.status.pods} == {"fraud"}
        first.close()
        assert all(t.is_alive() for t in hub.threads) and late.watching  # one subscriber is left
    finally:
        first.close()
        if late is not None:
            late.close()
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in hub.threads):
        assert time.monotonic() < deadline, "the shared watches outlived their last view"
        time.sleep(0.05)


def test_the_panel_offers_what_the_sandbox_nodes_hold(kube, namespace):
    from jupyter_mldeploy.widgets import DeployPanel

    p = DeployPanel("churn", namespace=namespace, kube=kube)
    cap = p.resources.capacity
    assert cap.known and {n.name for n in cap.nodes} >= {"sandbox-cpu-1", "sandbox-cpu-2", "sandbox-gpu-1"}
    assert cap.gpu_types() == {"NVIDIA-A100-SXM4-80GB": 4} and p.resources.gpu.max == 4
    assert p.resources.cpu.max == 32 and "without GPUs 8 cpu, 32 GiB" in p.resources.room.value
    p.resources.cpu.value = 16
    assert p.deploy_button.disabled and "a pod without GPUs" in p.resources.problem
    p.resources.gpu.value = 1
    assert p.resources.problem == ""


def test_an_identity_that_may_not_list_nodes_gets_free_entry(cluster):
    if cluster.limited_context is None:
        pytest.skip("only the sandbox has the limited identity")
    from jupyter_mldeploy.widgets import DeployPanel

    limited = Kube(str(cluster.kubeconfig), cluster.limited_context)
    p = DeployPanel("churn", kube=limited)
    assert not p.resources.capacity.known and p.namespace.value == limited.namespace
    assert "Could not read the cluster's nodes: This identity may not list" in p.resources.room.value
    p.resources.cpu.value = 500  # more than any node: the cluster decides at deploy time
    assert p.resources.problem == ""
