"""Widgets without a browser: fill forms by setting values, click buttons, drive the status view with
synthetic watch events, and count the state messages a frontend would receive.

As in ipywidgets' and anywidget's own tests, the comm is swapped for one that records messages; the
deploy function is injected only in the form's tests (they test the UI, not Kubernetes).
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

import pytest
from widget_comm import frontend_clicks, frontend_sets

from jupyter_mldeploy.api import Deployment
from jupyter_mldeploy.capacity import Capacity
from jupyter_mldeploy.diagnosis import Diagnosis
from jupyter_mldeploy.errors import MLDeployError, PreflightFailed, SpecError
from jupyter_mldeploy.spec import DeploySpec, ImageRef
from jupyter_mldeploy.status import PodRow, RolloutStatus
from jupyter_mldeploy.widgets import DeployPanel, ImageBuilder, PodStatusView, ResourcePicker
from jupyter_mldeploy.widgets.loop import HandOff
from jupyter_mldeploy.widgets.resources import EXAMPLE_PRICES, check_prices, default_prices, estimate_cost

A100 = "NVIDIA-A100-SXM4-80GB"
NS = "ml"
RS = "churn-7d9f8c6b5"


pytestmark = pytest.mark.usefixtures("recording_comm")


def node(name, cpu="8", memory="32Gi", *, gpus=0, product=None, taints=()):
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    if gpus:
        alloc["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.product"] = product
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": list(taints)},
            "status": {"allocatable": alloc, "conditions": [{"type": "Ready", "status": "True"}]}}


SANDBOX = Capacity.from_nodes([
    node("sandbox-cpu-1"), node("sandbox-cpu-2"),
    node("sandbox-gpu-1", "32", "128Gi", gpus=4, product=A100,
         taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])])


# ---------------------------------------------------------------------------------------------------
# ImageBuilder


def test_image_builder_composes_the_reference_as_fields_are_typed():
    b = ImageBuilder()
    assert b.image is None and b.error == "Enter the image: a repository and a tag or digest."
    frontend_sets(b.registry, value="ghcr.io")
    frontend_sets(b.repository, value="acme/churn")
    assert b.image is None and "no tag or digest" in b.error  # ':latest' is not reproducible
    frontend_sets(b.tag, value="1.4")
    assert b.value == "ghcr.io/acme/churn:1.4" and b.error == ""
    assert b.image == ImageRef("ghcr.io", "acme/churn", "1.4")
    assert "ghcr.io/acme/churn:1.4" in b.message.value and "#2e7d32" in b.message.value


def test_image_builder_shows_the_spec_error_sentence_for_the_wrong_part():
    b = ImageBuilder("ghcr.io/acme/churn:1.4")
    b.tag.value = "-bad"
    assert b.value == "" and b.image is None
    assert b.error.startswith("Image tag '-bad' is invalid: use at most 128 letters")
    assert b.error.endswith(".") and b.error.count(". ") == 0  # one sentence
    assert "#c62828" in b.message.value and "Image tag" in b.message.value
    b.tag.value = ""
    b.digest.value = "sha256:" + "a" * 64
    assert b.value == "ghcr.io/acme/churn@sha256:" + "a" * 64
    b.registry.value = "acme"  # no dot, no port: would be read as a Docker Hub path component
    assert "registry 'acme'" in b.error


def test_image_builder_splits_a_whole_reference():
    b = ImageBuilder()
    b.set_reference("localhost:5000/team/model:2.0@sha256:" + "b" * 64)
    assert (b.registry.value, b.repository.value, b.tag.value) == ("localhost:5000", "team/model", "2.0")
    assert b.digest.value == "sha256:" + "b" * 64 and b.image is not None


# ---------------------------------------------------------------------------------------------------
# ResourcePicker and the cost estimate


def test_picker_offers_what_the_nodes_hold():
    p = ResourcePicker(SANDBOX)
    assert p.cpu.max == 32 and p.memory.max == 128 and p.gpu.max == 4 and not p.gpu.disabled
    assert p.gpu_type.options == (A100,) and p.gpu_type.disabled  # no GPU asked: no type to pick
    assert "without GPUs 8 cpu, 32 GiB" in p.room.value
    assert f"with {A100} GPUs (up to 4) 32 cpu" in p.room.value
    p.cpu.value = 16
    assert p.problem.startswith("16 cpu does not fit: a pod without GPUs")
    assert "16 cpu does not fit" in p.message.value
    p.gpu.value = 1
    assert p.problem == "" and not p.gpu_type.disabled
    p.gpu_type.value = "Tesla-T4"
    assert p.problem == f"No node offers the GPU type Tesla-T4 (types offered: {A100})."
    p.gpu_type.value = A100
    assert p.resources().requests() == {"cpu": "16", "memory": "2Gi", "nvidia.com/gpu": "1"}
    assert p.resources().gpu_node_label == ("nvidia.com/gpu.product", A100)


def test_picker_without_gpu_nodes_disables_the_gpu_count():
    p = ResourcePicker(Capacity.from_nodes([node("small", "4", "16Gi")]))
    assert p.gpu.disabled and p.gpu.max == 0 and p.cpu.max == 4


def test_picker_allows_free_entry_when_nodes_cannot_be_listed():
    p = ResourcePicker(Capacity.from_nodes(None))
    assert "Could not read the cluster's nodes: This identity may not list" in p.room.value
    p.cpu.value, p.memory.value, p.gpu.value = 500, 2000, 16
    p.gpu_type.value = "H100"
    assert p.problem == ""
    assert p.resources().requests() == {"cpu": "500", "memory": "2000Gi", "nvidia.com/gpu": "16"}


def test_quantities_from_cores_and_gib():
    p = ResourcePicker(SANDBOX)
    p.cpu.value, p.memory.value = 0.25, 0.5
    assert (p.resources().cpu, p.resources().memory) == ("250m", "512Mi")
    p.cpu.value, p.memory.value = 0, 0
    assert (p.resources().cpu, p.resources().memory) == (None, None)  # zero means no request


def test_cost_estimate_from_a_price_table():
    table = {"cpu": 0.05, "memory_gib": 0.01, "gpu": {A100: 3.0, "default": 2.0}}
    assert estimate_cost(table, 2, 4, 1, A100).hourly == pytest.approx(0.1 + 0.04 + 3.0)
    cost = estimate_cost(table, 2, 4, 2, "L4")
    assert cost.hourly == pytest.approx(0.14 + 4.0) and cost.gpu_priced_by_default
    assert cost.monthly == pytest.approx(cost.hourly * 730)
    p = ResourcePicker(SANDBOX, price_table=table)
    p.cpu.value, p.memory.value = 2, 4
    assert "$0.140/hour, $102.20/month" in p.cost.value and "EXAMPLE" not in p.cost.value
    p.replicas = (3, 3)
    assert "for 3 replicas $0.420/hour, $306.60/month" in p.cost.value
    p.replicas = (2, 5)
    assert "for 2 to 5 replicas $0.280/hour to $0.700/hour" not in p.cost.value
    assert "for 2 to 5 replicas $0.280 to $0.700/hour, $204.40 to $511.00/month" in p.cost.value


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with no price table yet and fresh settings (no %config, no pyproject.toml
    above it: the .git folder ends the search there)."""
    from jupyter_mldeploy import config

    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    previous = config.current()
    config.set_current(config.MLDeploy())
    yield tmp_path
    config.set_current(previous)


def test_without_a_price_table_the_example_is_used_and_labelled_as_one(project):
    assert default_prices() == (EXAMPLE_PRICES, True)
    p = ResourcePicker(SANDBOX)
    assert p.prices == EXAMPLE_PRICES and "EXAMPLE prices" in p.cost.value


def test_a_project_price_table_is_used_and_not_labelled_an_example(project):
    (project / "pyproject.toml").write_text(
        "[tool.jupyter-mldeploy]\nprice_table = {cpu = 0.05, memory_gib = 0.01}\n")
    table = {"cpu": 0.05, "memory_gib": 0.01}
    assert default_prices() == (table, False)
    p = ResourcePicker(SANDBOX)
    p.cpu.value, p.memory.value = 2, 4
    assert p.prices == table and "EXAMPLE" not in p.cost.value
    assert "$0.140/hour" in p.cost.value  # 2 * 0.05 + 4 * 0.01


@pytest.mark.parametrize("table", [{"cpu": "cheap", "memory_gib": 0.01}, {"cpu": 0.1}, [1, 2],
                                   {"cpu": 0.1, "memory_gib": 0.01, "gpu": {"default": -1}}])
def test_a_malformed_price_table_is_one_sentence(table):
    with pytest.raises(SpecError) as e:
        check_prices(table)
    assert str(e.value).startswith("price_table") and str(e.value).endswith(".")


# ---------------------------------------------------------------------------------------------------
# DeployPanel


class FakeDeploy:
    """Stands in for api.deploy/undeploy in form tests: records calls, returns a handle."""

    def __init__(self, error: Exception | None = None):
        self.calls: list[tuple[DeploySpec, dict]] = []
        self.error = error

    def __call__(self, spec, **kw):
        self.calls.append((spec, kw))
        if self.error:
            raise self.error
        return Deployment(spec.name, kw["namespace"] or "default", kube=None, spec=spec,
                          created=["deployment/" + spec.name, "service/" + spec.name])


def panel(**kw) -> DeployPanel:
    kw.setdefault("capacity", SANDBOX)
    kw.setdefault("deploy_fn", FakeDeploy())
    kw.setdefault("price_table", EXAMPLE_PRICES)
    return DeployPanel("churn", namespace=NS, watch=False, **kw)


def fill_image(p: DeployPanel, ref="ghcr.io/acme/churn:1.4") -> None:
    img = ImageRef.parse(ref)
    frontend_sets(p.image.registry, value=img.registry or "")
    frontend_sets(p.image.repository, value=img.repository)
    frontend_sets(p.image.tag, value=img.tag or "")


def test_filled_form_produces_the_spec_and_deploy_sends_it():
    fake = FakeDeploy()
    p = panel(deploy_fn=fake)
    assert p.spec is None and p.deploy_button.disabled
    fill_image(p)
    p.resources.cpu.value, p.resources.memory.value = 2, 4
    p.replicas.value = 3
    p.strategy.value = "recreate"
    assert not p.deploy_button.disabled and p.problem == ""
    assert p.spec == DeploySpec.from_dict({"name": "churn", "image": "ghcr.io/acme/churn:1.4",
                                           "namespace": NS, "cpu": "2", "memory": "4Gi", "replicas": 3,
                                           "strategy": "recreate"})
    frontend_clicks(p.deploy_button)
    assert len(fake.calls) == 1
    spec, kw = fake.calls[0]
    assert spec == p.spec and kw["wait"] is False and kw["namespace"] == NS
    assert isinstance(p.status_view, PodStatusView) and p.status_area.children == (p.status_view,)
    assert p.status_view.deployment.spec == spec and not p.status_view.watching
    assert "Deployed churn to namespace ml (created: deployment/churn, service/churn)" in p.result.value


def test_invalid_form_sends_nothing_and_says_why_in_one_sentence():
    fake = FakeDeploy()
    p = panel(deploy_fn=fake)
    fill_image(p)
    p.image.tag.value = "1.4 beta"
    assert p.deploy_button.disabled and p.spec is None
    assert p.problem.startswith("Image tag '1.4 beta' is invalid")
    assert "see the message under the image fields" in p.message.value
    p.deploy_button.click()  # the handler guards too, e.g. a click queued before the field changed
    assert fake.calls == [] and "Image tag &#x27;1.4 beta&#x27; is invalid" in p.result.value

    p.image.tag.value = "1.4"
    p.name.value = "Churn_Model"
    assert p.deploy_button.disabled and p.problem.startswith("Name 'Churn_Model' is not a valid name")
    p.name.value = "churn"
    p.namespace.value = "ML"
    assert p.problem.startswith("Namespace 'ML' is not a valid name")
    p.namespace.value = NS
    p.resources.cpu.value = 16  # no CPU node holds 16 cpu; the GPU node is tainted
    assert p.deploy_button.disabled and "see the message under the resource fields" in p.message.value
    p.deploy_button.click()
    assert fake.calls == []


def test_autoscaling_needs_a_cpu_request():
    fake = FakeDeploy()
    p = panel(deploy_fn=fake)
    fill_image(p)
    p.mode.value = "Autoscale"
    p.min_replicas.value, p.max_replicas.value, p.cpu_percent.value = 2, 6, 70
    assert p.replicas.layout.display == "none" and p.autoscale_box.layout.display is None
    assert str(p.spec.autoscale) == "2:6:70" and p.spec.replicas is None
    assert "for 2 to 6 replicas" in p.resources.cost.value
    p.resources.cpu.value = 0
    assert p.spec is None and p.problem.startswith("Autoscale needs a cpu request (cpu=...)")
    p.deploy_button.click()
    assert fake.calls == []
    p.min_replicas.value = 7
    p.resources.cpu.value = 1
    assert p.problem == "Autoscale min 7 is more than max 6: min must be at most max."


def test_gpu_choice_reaches_the_spec():
    p = panel()
    fill_image(p)
    p.resources.gpu.value = 2
    p.resources.gpu_type.value = A100
    p.resources.cpu.value = 16
    assert p.problem == ""
    assert p.spec.resources.requests() == {"cpu": "16", "memory": "2Gi", "nvidia.com/gpu": "2"}
    assert p.spec.resources.gpu_type == A100


def test_a_given_spec_prefills_the_form_and_keeps_what_the_form_does_not_show():
    base = DeploySpec.from_dict({"name": "fraud", "image": "ghcr.io/acme/fraud:3.1", "cpu": "500m",
                                 "memory": "1Gi", "autoscale": "2:4:60", "env": {"MODEL": "fraud"},
                                 "labels": {"team": "risk"}, "namespace": "risk"})
    p = DeployPanel(spec=base, capacity=SANDBOX, deploy_fn=FakeDeploy(), watch=False)
    assert (p.name.value, p.namespace.value, p.image.value) == ("fraud", "risk", "ghcr.io/acme/fraud:3.1")
    assert (p.resources.cpu.value, p.resources.memory.value, p.mode.value) == (0.5, 1.0, "Autoscale")
    assert p.spec == base
    p.image.tag.value = "3.2"
    assert p.spec == base.with_(image=ImageRef.parse("ghcr.io/acme/fraud:3.2"))
    assert dict(p.spec.env) == {"MODEL": "fraud"} and dict(p.spec.labels) == {"team": "risk"}


def test_cluster_refusal_shows_as_one_sentence():
    refusal = PreflightFailed("No node can run a pod of churn, which asks for 64 cpu: sandbox-cpu-1 has 8 "
                              "cpu in all, less than the 64 cpu asked.")
    p = panel(deploy_fn=FakeDeploy(error=refusal))
    fill_image(p)
    p.deploy_button.click()
    assert "No node can run a pod of churn" in p.result.value and "#c62828" in p.result.value
    assert p.status_view is None and not p.deploy_button.disabled  # fix and try again


def test_undeploy_names_what_was_removed_or_why_not():
    removed = []

    def undeploy_fn(name, **kw):
        removed.append((name, kw["namespace"]))
        if len(removed) > 1:
            raise MLDeployError(f"Nothing named {name} was deployed by jupyter-mldeploy in namespace ml.")
        return ["deployment/churn", "service/churn"]

    p = panel(undeploy_fn=undeploy_fn)
    frontend_clicks(p.undeploy_button)
    assert removed == [("churn", NS)]
    assert "Undeployed churn: removed 2 objects (deployment/churn, service/churn)." in p.result.value
    p.undeploy_button.click()
    assert "Nothing named churn was deployed" in p.result.value and "#c62828" in p.result.value
    p.name.value = ""
    assert p.undeploy_button.disabled


def test_closing_the_panel_closes_its_status_view():
    p = panel()
    fill_image(p)
    p.deploy()
    view = p.status_view
    p.close()
    assert view.comm is None and p.comm is None and view.stopped_reason == "The view was closed."
    assert p.image.registry.comm is None and p.resources.gpu_type.comm is None  # nothing left open


# ---------------------------------------------------------------------------------------------------
# PodStatusView fed with synthetic watch events

T0 = time.time()


def iso(offset: float = 0) -> str:
    return datetime.fromtimestamp(T0 + offset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dep_obj(replicas=3, ready=0, name="churn"):
    status = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
              "readyReplicas": ready, "availableReplicas": ready,
              "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                              "message": f'ReplicaSet "{RS}" is progressing.'}]}
    return {"kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "uid": "uid-dep", "generation": 1,
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app.kubernetes.io/instance": name}}},
            "status": status}


def pod_obj(suffix, *, ready=True, restarts=0, waiting=None):
    cs = {"name": "model", "ready": ready, "restartCount": restarts,
          "state": {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": iso()}}}
    return {"kind": "Pod",
            "metadata": {"name": f"{RS}-{suffix}", "namespace": NS, "uid": f"uid-{suffix}",
                         "creationTimestamp": iso(-5), "labels": {"app.kubernetes.io/instance": "churn"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": RS}]},
            "spec": {"containers": [{"name": "model"}], "nodeName": "sandbox-cpu-1"},
            "status": {"phase": "Pending" if waiting else "Running", "containerStatuses": [cs],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def event_obj(n, reason, message, pod, *, count=1, type_="Warning"):
    return {"kind": "Event",
            "metadata": {"name": f"ev{n}", "namespace": NS, "uid": f"ev-{n}", "creationTimestamp": iso()},
            "involvedObject": {"kind": "Pod", "name": f"{RS}-{pod}", "namespace": NS},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": iso(), "lastTimestamp": iso()}


def handle() -> Deployment:
    return Deployment("churn", NS, kube=None)  # never talks: the view is fed by hand


def test_rows_progress_and_colours_follow_the_events():
    view = PodStatusView(handle(), watch=False)
    assert not view.live and str(view) == "churn: no status yet."
    view.feed("ADDED", dep_obj(ready=2))
    for s in ("aaaaa", "bbbbb"):
        view.feed("ADDED", pod_obj(s))
    view.feed("ADDED", pod_obj("ccccc", ready=False, waiting="ContainerCreating"))
    assert view.status is None  # nothing applied until poll(): no loop runs here
    assert view.poll() == 4
    assert view.pods.value.count("<tr class=\"mldeploy-pod") == 3
    assert view.pods.value.count("mldeploy-ready") == 2 and view.pods.value.count("mldeploy-pending") == 1
    assert "#b26a00" in view.pods.value and "ContainerCreating" in view.pods.value
    p = view.progress
    assert (p.value, p.max, p.description, p.bar_style) == (2, 3, "2/3 ready", "info")
    assert view.phase == "progressing" and "2/3 ready" in view.header.value

    view.feed("MODIFIED", pod_obj("ccccc"))
    view.feed("MODIFIED", {**dep_obj(ready=3), "status": {**dep_obj(ready=3)["status"], "conditions": [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": ""}]}})
    view.poll()
    assert (p.value, p.description, p.bar_style) == (3, "3/3 ready", "success")
    assert view.pods.value.count("mldeploy-ready") == 3 and view.phase == "complete"
    text = str(view)
    assert text.startswith("churn: 3/3 ready, rollout complete") and f"{RS}-ccccc" in text
    assert 'class="mldeploy-status"' in view._repr_html_()


def test_a_failing_pod_shows_red_with_the_diagnosis_in_plain_words():
    view = PodStatusView(handle(), watch=False)
    view.feed("ADDED", dep_obj(replicas=1))
    view.feed("ADDED", pod_obj("aaaaa", ready=False, waiting="ImagePullBackOff"))
    view.feed("ADDED", event_obj(1, "Failed", 'Failed to pull image "ghcr.io/acme/churn:9.9": not found',
                                 "aaaaa", count=3))
    view.feed("ADDED", event_obj(2, "BackOff", 'Back-off pulling image "ghcr.io/acme/churn:9.9"', "aaaaa",
                                 count=4))
    view.poll()
    st = view.status
    assert st.phase == "failed" and st.diagnosis.kind == "image-pull"
    assert "mldeploy-failing" in view.pods.value and "#c62828" in view.pods.value
    assert "Rollout failed: " in view.diagnosis.value and st.diagnosis.summary[:30] in view.diagnosis.value
    assert view.progress.bar_style == "danger"
    assert "Back-off pulling image" in view.events.value and "(x4)" in view.events.value
    assert "FAILED: " in str(view)


def test_a_crashed_containers_log_joins_the_diagnosis():
    view = PodStatusView(handle(), watch=False)
    view.feed("ADDED", dep_obj(replicas=1))
    crashing = pod_obj("aaaaa", ready=False, restarts=3, waiting="CrashLoopBackOff")
    crashing["status"]["phase"] = "Running"
    crashing["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "reason": "Error", "finishedAt": iso()}}
    view.feed("ADDED", crashing)
    view.poll()
    assert view.status.diagnosis.kind == "crash-loop" and "torch" not in view.diagnosis.value
    # what the log-fetching thread hands back (it found no log endpoint here: there is no cluster)
    log = "Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'"
    view.feed("LOGS", {"pod": f"{RS}-aaaaa", "text": log})
    view.poll()
    assert "No module named &#x27;torch&#x27;" in view.diagnosis.value


def test_a_snapshot_can_be_shown_directly():
    diag = Diagnosis("crash-loop", f"{RS}-aaaaa", "The model server keeps crashing (exit code 1).",
                     detail="Traceback: ModuleNotFoundError: torch", hint="check the logs", fatal=True)
    row = PodRow(f"{RS}-aaaaa", "Running", False, "0/1", 5, "sandbox-cpu-2", 185.0, "CrashLoopBackOff", "1.4",
                 "stable", diagnosis=diag)
    view = PodStatusView(handle(), watch=False)
    view.show(RolloutStatus("churn", NS, 1, 1, 0, 0, pods=(row,), diagnosis=diag))
    assert "The model server keeps crashing (exit code 1)." in view.pods.value  # the reason cell
    assert "font-weight:bold\">5<" in view.pods.value  # restarts stand out
    assert "ModuleNotFoundError: torch" in view.diagnosis.value
    assert "Hint: check the logs" in view.diagnosis.value
    assert "3m5s" in view.pods.value


def test_deletion_stops_the_view_and_later_events_are_ignored():
    view = PodStatusView(handle(), watch=False)
    view.feed("ADDED", dep_obj(replicas=1, ready=1))
    view.feed("ADDED", pod_obj("aaaaa"))
    view.poll()
    view.feed("DELETED", dep_obj(replicas=1, ready=1))
    view.poll()
    assert view.phase == "deleted" and view.stopped_reason == "churn was deleted; no longer watching."
    assert "was deleted" in view.header.value and view.pods.value == ""
    view.feed("MODIFIED", pod_obj("aaaaa", ready=False))
    assert view.poll() == 0 and str(view) == "churn: deleted; no longer watching."


def test_events_about_other_objects_change_nothing_on_screen():
    view = PodStatusView(handle(), watch=False)
    view.feed("ADDED", dep_obj(replicas=1, ready=1))
    view.feed("ADDED", pod_obj("aaaaa"))
    view.poll()
    widgets_ = (view.header, view.progress, view.pods, view.diagnosis, view.events)
    sent = [len(w.comm.updates()) for w in widgets_]
    renders = view.renders
    other = pod_obj("zzzzz")  # another model's pod in the same namespace (the watches are shared)
    other["metadata"].update(name="fraud-6b7c8d9e5-zzzzz", labels={"app.kubernetes.io/instance": "fraud"})
    noise = event_obj(9, "FailedToUpdateEndpoint", "Endpoints is invalid", "aaaaa")
    noise["involvedObject"] = {"kind": "Endpoints", "name": "churn", "namespace": NS}
    view.feed("ADDED", other)
    view.feed("ADDED", noise)
    assert view.poll() == 2
    assert view.renders == renders and [len(w.comm.updates()) for w in widgets_] == sent
    view.feed("MODIFIED", pod_obj("aaaaa", restarts=1))  # ours: shown
    view.poll()
    assert view.renders == renders + 1 and "font-weight:bold\">1<" in view.pods.value


def test_a_watch_failure_is_said_in_the_header():
    view = PodStatusView(handle(), watch=False)
    view.feed("FAILED", {"kind": "Event"}, error=MLDeployError("events is forbidden"))
    view.poll()
    assert "Watching the Events of churn stopped: events is forbidden" in view.header.value


def test_frontend_closing_the_view_stops_it():
    view = PodStatusView(handle(), watch=False)
    view.comm.handle_close({"content": {"data": {}}})
    assert view.stopped_reason == "The view was closed." and not view.watching
    view.feed("ADDED", dep_obj())
    assert view.poll() == 0


def test_without_a_frontend_the_view_prints_its_snapshot():
    view = PodStatusView(handle(), watch=False)
    view.feed("ADDED", dep_obj(replicas=1, ready=1))
    view.feed("ADDED", pod_obj("aaaaa"))
    view.poll()
    bundle = view._repr_mimebundle_()
    assert bundle["text/plain"] == str(view) and "NAME" in bundle["text/plain"]
    assert bundle["text/html"].startswith('<div class="mldeploy-status">')
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id


# ---------------------------------------------------------------------------------------------------
# The hand-over to the event loop


def test_a_burst_is_batched_to_at_most_ten_updates_a_second_on_the_loop_thread():
    async def main():
        view = PodStatusView(handle(), watch=False)  # built on the loop's thread, like in a cell
        assert view.live
        seen: list[tuple[float, str, str]] = []
        def record(change):  # stamped with when its delivery began: the rate bound's own clock
            seen.append((view._handoff.last_delivery, threading.current_thread().name, change["new"]))

        view.pods.observe(record, names="value")
        view.feed("ADDED", dep_obj(replicas=1))

        def burst():  # 500 events in 0.5 s from a watch-like thread
            start = time.monotonic()
            for i in range(500):
                view.feed("MODIFIED", pod_obj("aaaaa", restarts=i + 1))
                time.sleep(max(0.0, start + (i + 1) * 0.001 - time.monotonic()))

        feeder = threading.Thread(target=burst, name="watch-like")
        began = time.monotonic()
        feeder.start()
        while feeder.is_alive():
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - began
        await asyncio.sleep(0.3)  # the last window's delivery
        return view, seen, elapsed

    view, seen, elapsed = asyncio.run(main())
    assert 2 <= len(seen) <= 10 * elapsed + 2  # ~6 for 0.5 s, not 500
    assert {thread for _, thread, _ in seen} == {threading.main_thread().name}  # never the feeder
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:], strict=False)]
    # the rate bound, however fast events come (a delivery's own rendering time is not in the gap;
    # asyncio may run a timer up to its clock resolution early)
    assert min(gaps) >= 0.1 - 1e-6
    assert "font-weight:bold\">500<" in seen[-1][2]  # nothing lost: the last event is what shows
    updates = [s for s in view.pods.comm.updates() if "value" in s]
    assert len(updates) == len(seen)  # one message per update, to the frontend


def test_hand_off_without_a_loop_waits_for_poll():
    batches: list[list[int]] = []
    h = HandOff(batches.append, loop=None)
    for i in range(5):
        h.put(i)
    assert batches == [] and h.poll() == 5 and batches == [[0, 1, 2, 3, 4]]
    assert h.poll() == 0 and len(batches) == 1  # nothing new, no empty delivery
    h.close()
    h.put(9)
    assert h.poll() == 0 and batches == [[0, 1, 2, 3, 4]]
