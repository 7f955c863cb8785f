"""Where the cluster comes from, against the real sandbox: a project file never overrides $KUBECONFIG
(its kubeconfig's exec plugin never runs then), and %mldeploy and the first deploy in a kernel say
which source picked the cluster."""

from __future__ import annotations

import shutil

import pytest
from IPython.utils.capture import capture_output
from shells import fresh_shell

from jupyter_mldeploy import config
from jupyter_mldeploy.magics.display import MLDeployFailed

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/iris:1.0"


@pytest.fixture
def shell(cluster, namespace, monkeypatch, tmp_path):
    """A shell with no %config cluster, working two folders below a project file."""
    if not cluster.is_sandbox:
        pytest.skip("the project file names the sandbox's kubeconfig")
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT", "KUBECONFIG"):
        monkeypatch.delenv(var, raising=False)
    cwd = tmp_path / "project" / "notebooks" / "2026"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    with fresh_shell(interactive="no") as ip:
        yield ip, tmp_path / "project", cwd


def _project(folder, kubeconfig, context, namespace):
    path = folder / "pyproject.toml"
    path.write_text(f"[tool.jupyter-mldeploy]\nkubeconfig = {str(kubeconfig)!r}\ncontext = {context!r}\n"
                    f"namespace = {namespace!r}\n")
    return path


def test_mldeploy_and_the_first_deploy_say_the_project_file_picked_the_cluster(shell, cluster, namespace):
    ip, project, _cwd = shell
    found = _project(project, cluster.kubeconfig, "mldeploy-sandbox", namespace)
    said = f"context mldeploy-sandbox: the sandbox, from pyproject.toml two folders up ({found})"
    view = ip.run_line_magic("mldeploy", "")
    assert f"The cluster: {said}." in str(view).splitlines()
    assert said in ip.display_formatter.format(view)[0]["text/html"]
    with capture_output() as first:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --dry-run server")
    server = view.server
    assert first.stdout.splitlines()[0] == f"Cluster: {said} ({server})."
    with capture_output() as second:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --dry-run server")
    assert "Cluster:" not in second.stdout  # said once per kernel ...
    with capture_output() as flagged:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --dry-run server --context mldeploy-sandbox")
    # ... and again when the cluster (or what chose it) changes.
    flag_said = f"Cluster: context mldeploy-sandbox: the sandbox, from --context ({server})."
    assert flagged.stdout.splitlines()[0] == flag_said


def test_kubeconfig_in_the_environment_beats_the_project_file_and_its_exec_plugin(shell, cluster, namespace,
                                                                                  monkeypatch, tmp_path):
    ip, project, _cwd = shell
    # The project's kubeconfig would run a command to get a token; it must never run.
    ran = tmp_path / "exec-plugin-ran"
    hostile = project / "kubeconfig"
    hostile.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "clusters:\n- name: prod\n  cluster:\n    server: https://127.0.0.1:1\n"
        "users:\n- name: prod\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
        f"      command: /bin/sh\n      args: ['-c', 'touch {ran}; exit 1']\n      interactiveMode: Never\n"
        "contexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\n")
    found = _project(project, hostile, "prod", namespace)
    mine = tmp_path / "my-kubeconfig"  # the user's own copy, outside the sandbox folder
    shutil.copy(cluster.kubeconfig, mine)
    monkeypatch.setenv("KUBECONFIG", str(mine))
    view = ip.run_line_magic("mldeploy", "")
    assert view.context == "mldeploy-sandbox" and view.server.startswith("https://127.0.0.1:")
    assert "The cluster: context mldeploy-sandbox, from $KUBECONFIG." in str(view)
    with capture_output() as out:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --dry-run server")
    said = f"Cluster: context mldeploy-sandbox, from $KUBECONFIG ({view.server})."
    assert out.stdout.splitlines()[0] == said
    assert view.namespace == namespace  # the project's other settings still apply
    assert not ran.exists()
    # Without $KUBECONFIG the project's cluster is taken: its plugin runs (and fails to log in).
    monkeypatch.delenv("KUBECONFIG")
    with pytest.raises(MLDeployFailed, match=r"https://127\.0\.0\.1:1\b"):
        ip.run_line_magic("mldeploy", "")
    assert ran.exists()
    assert config.current().resolve().cluster_source == f"from pyproject.toml two folders up ({found})"
