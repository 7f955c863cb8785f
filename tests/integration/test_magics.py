"""The magics in a real InteractiveShell against a real API server (the sandbox): no mocks.

The shell has no kernel, so it is "headless": progress lines and tables as text, and a failure
raises MLDeployFailed (a UsageError whose traceback is its one sentence). One test switches the
live view on (MLDeploy.interactive = 'yes') and checks what a notebook frontend would be sent.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_mldeploy import api
from jupyter_mldeploy import labels as L
from jupyter_mldeploy.errors import ClusterError, RolloutFailed
from jupyter_mldeploy.follow import WaitTimeout
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed, Overview, RolloutReport, Undeployed
from jupyter_mldeploy.rollout import offered_routers

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/iris:1.0"
IMAGE2 = "ghcr.io/acme/iris:1.1"
FAIL = "sandbox.mldeploy.io/fail"


def get(kube: Kube, path: str) -> dict:
    return kube.request("GET", path)[1]


def deployments(kube: Kube, namespace: str) -> list[str]:
    body = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments")
    return sorted(d["metadata"]["name"] for d in body["items"])


def test_deploy_waits_prints_progress_and_returns_the_handle(ip, kube, namespace, capsys):
    result = ip.run_cell(f"d = %deploy iris --image {IMAGE} --replicas 2 --cpu 100m --memory 128Mi")
    assert result.success, result.error_in_exec
    d = ip.user_ns["d"]
    assert isinstance(d, api.Deployment) and d.namespace == namespace
    assert d.last_status.complete and d.last_status.ready == 2
    out = capsys.readouterr().out.splitlines()
    # The first deploy in a kernel says where the cluster came from (here: the fixture's %config).
    assert out[0].startswith(f"Cluster: context {kube.context}")
    assert out[0].endswith(f"from %config (MLDeploy.kubeconfig and MLDeploy.context) ({kube.server}).")
    assert out[1] == f"Deploying iris ({IMAGE}) to namespace {namespace}, context {kube.context}"
    progress = [line for line in out if line.startswith("iris  [")]
    assert progress[-1] == "iris  [##########] 2/2 ready  rolled out"
    # a line is printed only when it changes; the same words may come back later (pods become ready
    # a moment before the Deployment's status counts them), so only neighbours are compared
    assert all(a != b for a, b in zip(progress, progress[1:], strict=False))
    assert all("/2 ready" in line for line in progress)  # nothing shown before the Deployment is seen
    assert "iris: 2/2 ready, rollout complete" in out and any(line.startswith("NAME") for line in out)
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == IMAGE and container["resources"]["requests"] == {"cpu": "100m",
                                                                                   "memory": "128Mi"}
    # the handle's text form is shown, not the dataclass repr
    assert ip.display_formatter.format(d)[0]["text/plain"].startswith(f"iris in namespace {namespace}")


def test_rollout_rollback_and_undeploy(ip, kube, namespace):
    ip.run_line_magic("deploy", f"iris --image {IMAGE}")
    ip.run_line_magic("deploy", f"iris --image {IMAGE2}")
    report = ip.run_line_magic("rollout", "iris")
    assert isinstance(report, RolloutReport) and report.status.complete
    revisions = [(r.revision, r.image, r.current) for r in report.revisions]
    assert revisions == [(1, IMAGE, False), (2, IMAGE2, True)]
    text = str(report)
    assert "iris: 1/1 ready, rollout complete" in text and "Revisions (oldest first, * = live):" in text
    assert "<table" in report._repr_html_() and "1.1" in report._repr_html_()

    back = ip.run_line_magic("rollback", "iris")
    assert isinstance(back, api.Deployment) and back.last_status.complete
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    revs = ip.run_line_magic("rollout", "iris").revisions
    # Kubernetes renumbers the revision it went back to: 1.0 is now revision 3
    assert [(r.revision, r.image, r.current) for r in revs] == [(2, IMAGE2, False), (3, IMAGE, True)]
    with pytest.raises(MLDeployFailed, match="Revision 3 of iris is already live."):
        ip.run_line_magic("rollback", "iris --to 3")
    with pytest.raises(MLDeployFailed, match="iris has no revision 1; its revisions are 2, 3."):
        ip.run_line_magic("rollback", "iris --to 1")
    ip.run_line_magic("rollback", "iris --to 2")
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE2

    gone = ip.run_line_magic("undeploy", "iris")
    assert isinstance(gone, Undeployed)
    assert "deployment/iris" in gone.deleted and "service/iris" in gone.deleted
    assert str(gone).startswith(f"Removed iris from namespace {namespace}: ")
    assert deployments(kube, namespace) == []
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("undeploy", "iris")
    assert str(e.value) == f"Nothing named iris was deployed by jupyter-mldeploy in namespace {namespace}."


def test_dry_runs_write_nothing(ip, kube, namespace):
    dry = ip.run_line_magic("deploy", f"iris --image {IMAGE} --replicas 2 --dry-run -o yaml")
    text = str(dry)
    assert "kind: Deployment" in text and "kind: Service" in text and f"namespace: {namespace}" in text
    assert isinstance(dry, api.DryRun) and "<pre>" in dry._repr_html_()
    server = ip.run_line_magic("deploy", f"iris --image {IMAGE} --dry-run server")
    assert server.diff is not None and "+++ new/deployment/iris" in server.diff
    assert deployments(kube, namespace) == []


def test_cell_magic_with_notebook_variables(ip, kube, namespace):
    ip.user_ns.update(version="1.0", team={"name": "ml"}, replicas=2)
    result = ip.run_cell(
        "%%deploy iris --no-wait\n"
        "image: ghcr.io/acme/iris:{version}\n"
        "replicas: {replicas}\n"
        "labels:\n"
        "  team: {team.name}\n"
        "env:\n"
        "  GREETING: hello {team.name}\n")
    assert result.success, result.error_in_exec
    handle = result.result
    assert isinstance(handle, api.Deployment) and handle.last_status is None  # --no-wait
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "ml"
    assert pod["spec"]["containers"][0]["image"] == "ghcr.io/acme/iris:1.0"
    assert {"name": "GREETING", "value": "hello ml"} in pod["spec"]["containers"][0]["env"]
    # the rollout goes on in the cluster; %rollout --watch follows it to the end
    report = ip.run_line_magic("rollout", "iris --watch")
    assert report.status.complete and report.status.ready == 2


def test_mldeploy_lists_the_models_and_the_traffic_layers(ip, kube, namespace, cluster):
    ip.run_line_magic("deploy", f"iris --image {IMAGE} --no-wait")
    ip.run_line_magic("deploy", "churn --image ghcr.io/acme/churn:2.0 --no-wait")
    view = ip.run_line_magic("mldeploy", "")
    assert isinstance(view, Overview)
    assert [(m.name, m.version) for m in view.models] == [("churn", "2.0"), ("iris", "1.0")]
    text = str(view)
    assert text.startswith(f"Context {kube.context} ({kube.server}), namespace {namespace} (from %config).")
    assert "iris" in text and "ghcr.io/acme/churn:2.0" in text
    layers = [t.name for t in view.layers]
    assert layers == list(offered_routers(kube)) and layers[-1] == "replicas"  # what rollouts may use
    if cluster.is_sandbox:  # the sandbox serves the Gateway API, Istio and Knative CRDs, and has nginx
        assert layers == ["gateway", "istio", "knative", "nginx", "replicas"]
        assert "Traffic layers served: gateway (Gateway API HTTPRoute" in text
    shown = ip.display_formatter.format(view)[0]  # what a notebook saves: text and HTML
    assert shown["text/plain"] == text and "Gateway API HTTPRoute" in shown["text/html"]
    everywhere = ip.run_line_magic("mldeploy", "-A")
    assert {(m.namespace, m.name) for m in everywhere.models} >= {(namespace, "iris"), (namespace, "churn")}
    assert "NAMESPACE" in str(everywhere)


def test_failed_deploy_raises_headless_with_the_diagnosis(ip, kube, namespace, capsys):
    result = ip.run_cell(f"%deploy iris --image ghcr.io/acme/iris:9.9 --label {FAIL}=image-pull")
    err = result.error_in_exec
    assert isinstance(err, MLDeployFailed) and isinstance(err.error, RolloutFailed)
    assert err.error.diagnosis.kind == "image-pull"
    message = str(err)
    assert message.startswith("The rollout of iris failed: The image ghcr.io/acme/iris:9.9 could not be "
                              "pulled")
    assert "\n" not in message
    out = capsys.readouterr().out
    # the final table with the plain-words reason stays in the output, then the one-line error
    assert "FAILED: The image ghcr.io/acme/iris:9.9 could not be pulled" in out
    assert out.rstrip().splitlines()[-1] == f"MLDeployFailed: {message}" and "Traceback" not in out
    assert deployments(kube, namespace) == ["iris"]  # only the waiting failed


def test_atomic_failed_first_release_is_removed(ip, kube, namespace):
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"iris --image ghcr.io/acme/iris:9.9 --label {FAIL}=crash-loop --atomic")
    assert "it was the first release, so it was removed" in str(e.value)
    assert deployments(kube, namespace) == []


def test_wait_timeout_is_one_sentence_and_the_rollout_goes_on(ip, kube, namespace):
    body = f"image: {IMAGE}\nannotations:\n  sandbox.mldeploy.io/ready-delay: 30s\n"
    with pytest.raises(MLDeployFailed) as e:
        ip.run_cell_magic("deploy", "iris --timeout 2", body)
    assert isinstance(e.value.error, WaitTimeout)
    assert str(e.value).startswith("Stopped waiting for iris after 2 s (")
    assert "the rollout goes on in the cluster" in str(e.value)
    assert deployments(kube, namespace) == ["iris"]


def test_cluster_refusal_is_one_sentence(ip, cluster, namespace):
    if cluster.limited_context is None:
        pytest.skip("needs the sandbox's limited identity")
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --context {cluster.limited_context}")
    assert isinstance(e.value.error, ClusterError) and e.value.error.status == 403
    assert str(e.value).startswith("Kubernetes refused: user ") and f"namespace {namespace}" in str(e.value)


@pytest.mark.parametrize("line", [
    f"iris --image {IMAGE} --cpus 2",
    f"iris --image {IMAGE} --cpu 2 cores",
    "iris --image ghcr.io/Acme/iris:1.0",
    f"iris --image {IMAGE} --gpu 0.5",
    f"Iris --image {IMAGE}",
    f"{'i' * 60} --image {IMAGE}",
    f"iris --image {IMAGE} --strategy canary --mirror 10",
    f"iris --image {IMAGE} --strategy shadow --router replicas",
])
def test_bad_input_is_one_line_and_nothing_reaches_the_cluster(ip, kube, namespace, capsys, line):
    result = ip.run_cell(f"%deploy {line}")
    assert isinstance(result.error_in_exec, UsageError)
    out = capsys.readouterr()
    shown = (out.out + out.err).strip().splitlines()
    assert shown == [f"MLDeployFailed: {result.error_in_exec}"]
    assert deployments(kube, namespace) == []


def test_bad_body_is_one_line_and_nothing_reaches_the_cluster(ip, kube, namespace):
    for body in ("image: [", f"image: {IMAGE}\nreplicaz: 2", "image: {undefined_variable}"):
        with pytest.raises(UsageError) as e:
            ip.run_cell_magic("deploy", "iris", body)
        assert "\n" not in str(e.value)
    assert deployments(kube, namespace) == []


def test_flag_beats_config_for_the_namespace(ip, kube, namespace, cluster):
    other = cluster.api_client()
    from kubernetes import client

    core = client.CoreV1Api(other)
    extra = f"{namespace}-b"
    core.create_namespace({"metadata": {"name": extra, "labels": {"mldeploy.io/test": "true"}}})
    try:
        dry = ip.run_line_magic("deploy", f"iris --image {IMAGE} --namespace {extra} --dry-run server")
        assert f"namespace: {extra}" in dry.diff
        assert ip.run_line_magic("mldeploy", f"-n {extra}").namespace_source == "--namespace"
    finally:
        core.delete_namespace(extra, propagation_policy="Background")


def test_live_view_updates_widgets_and_leaves_the_final_state(ip, kube, namespace):
    pytest.importorskip("ipywidgets")
    ip.run_line_magic("config", "MLDeploy.interactive = 'yes'")
    with capture_output() as captured:
        handle = ip.run_line_magic("deploy", f"iris --image {IMAGE} --replicas 2")
    assert handle.last_status.complete
    outputs = captured.outputs
    # Where the cluster came from, first (the first deploy in this kernel), as an output of its own.
    assert outputs[0].data["text/plain"].startswith(f"Cluster: context {kube.context}")
    assert "application/vnd.jupyter.widget-view+json" in outputs[1].data  # then the live widgets
    final = outputs[-1]
    assert final.update  # ... replaced in place by a static copy of the final state
    assert final.data["text/plain"].startswith("iris: 2/2 ready, rollout complete")
    assert "mldeploy-status" in final.data["text/html"]
    assert captured.stdout == ""  # no text progress in a live frontend
    # interactive errors are plain UsageErrors (one line on stderr), not error outputs
    with pytest.raises(UsageError) as e:
        ip.run_line_magic("undeploy", "nothing-here")
    assert type(e.value) is UsageError


def test_deployed_objects_carry_our_labels(ip, kube, namespace):
    ip.run_line_magic("deploy", f"iris --image {IMAGE} --no-wait --label team=ml")
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/iris")
    labels = dep["metadata"]["labels"]
    assert labels[L.APP_MANAGED_BY] == L.MANAGED_BY and labels["team"] == "ml"


def test_panel_opens_filled_with_the_line(ip, namespace):
    pytest.importorskip("ipywidgets")
    try:
        from jupyter_mldeploy.widgets import DeployPanel
    except ImportError:
        pytest.skip("the widgets package is not there")
    panel = ip.run_line_magic("deploy", f"iris --image {IMAGE} --cpu 100m --panel")
    assert isinstance(panel, DeployPanel)
    assert (panel.spec.name, str(panel.spec.image), panel.spec.resources.cpu) == ("iris", IMAGE, "100m")
    assert panel.spec.namespace == namespace  # from %config MLDeploy.namespace
