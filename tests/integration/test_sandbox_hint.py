"""With nothing configured (no KUBECONFIG, no ~/.kube/config) but the local sandbox up, a magic says the
exact line that uses it; `%config MLDeploy.context = "sandbox"` then uses it. Against the real sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shells import fresh_shell

from jupyter_mldeploy.kube import client
from jupyter_mldeploy.magics.display import MLDeployFailed, Overview

pytestmark = pytest.mark.sandbox


@pytest.fixture
def bare(cluster, monkeypatch, tmp_path):
    """A shell as a newcomer's: no kubeconfig anywhere, no MLDeploy setting; the sandbox is up."""
    if not cluster.is_sandbox:
        pytest.skip("the hint is about the local sandbox")
    from jupyter_mldeploy.sandbox.control_plane import state_dir

    monkeypatch.setenv("MLDEPLOY_SANDBOX_DIR", str(state_dir()))  # found by its folder, whatever HOME is
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    for var in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT",
                "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    client.forget_connections()  # no connection cached by earlier tests
    with fresh_shell(interactive="no") as shell:
        yield shell
    client.forget_connections()  # none made from this test's environment outlives it


def test_nothing_configured_and_the_sandbox_up_says_exactly_what_to_run(bare, cluster):
    with pytest.raises(MLDeployFailed) as e:
        bare.run_line_magic("mldeploy", "")
    text = str(e.value)
    assert text == ("No Kubernetes cluster is configured, but the local sandbox is up: run "
                    "%config MLDeploy.context = \"sandbox\" in the notebook (or set "
                    f"MLDEPLOY_CONTEXT=sandbox, or `export KUBECONFIG={cluster.kubeconfig}`, before starting "
                    "Jupyter or papermill).")


def test_the_sandbox_context_uses_the_sandbox(bare, cluster):
    bare.run_line_magic("config", 'MLDeploy.context = "sandbox"')
    overview = bare.run_line_magic("mldeploy", "")
    assert isinstance(overview, Overview) and overview.context == "mldeploy-sandbox"
    # the API without kube= follows the same setting
    from jupyter_mldeploy import rollout

    assert rollout.read("nothing-here", namespace="default") is None


def test_the_sandbox_contexts_by_name_when_no_kubeconfig_is_given(bare, cluster):
    overview = bare.run_line_magic("mldeploy", "--context mldeploy-sandbox-limited --namespace ml-team")
    assert overview.context == "mldeploy-sandbox-limited"


def test_the_sandbox_context_when_the_sandbox_is_down(bare, monkeypatch, tmp_path):
    monkeypatch.setenv("MLDEPLOY_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    bare.run_line_magic("config", 'MLDeploy.context = "sandbox"')
    with pytest.raises(MLDeployFailed) as e:
        bare.run_line_magic("mldeploy", "")
    assert str(e.value).startswith("The kube context 'sandbox' is the local sandbox, which is not up")
    assert str(e.value).endswith("start it with `jupyter-mldeploy sandbox up`.")


def test_nothing_configured_and_no_sandbox_keeps_the_plain_sentence(bare, monkeypatch, tmp_path):
    monkeypatch.setenv("MLDEPLOY_SANDBOX_DIR", str(tmp_path / "no-sandbox"))
    with pytest.raises(MLDeployFailed) as e:
        bare.run_line_magic("mldeploy", "")
    assert str(e.value) == ("No Kubernetes cluster is configured: set KUBECONFIG, pass kubeconfig=/context=, "
                            "or start the local sandbox with `jupyter-mldeploy sandbox up`.")
    assert not Path(tmp_path / "no-sandbox").exists()  # nothing was started or written


def test_a_pipeline_uses_the_sandbox_by_name_with_no_kubeconfig(cluster, monkeypatch, tmp_path):
    """papermill from / with MLDEPLOY_CONTEXT=sandbox and no KUBECONFIG: the notebook runs on the sandbox."""
    if not cluster.is_sandbox:
        pytest.skip("the context 'sandbox' is the local sandbox")
    import os
    import subprocess
    import sys
    import uuid

    from jupyter_mldeploy.sandbox.control_plane import state_dir

    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb"
    unset = ("KUBECONFIG", "MLDEPLOY_NAMESPACE", "JPY_SESSION_NAME")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(HOME=str(tmp_path), MLDEPLOY_CONTEXT="sandbox", MLDEPLOY_SANDBOX_DIR=str(state_dir()))
    ns = f"t-{uuid.uuid4().hex[:10]}"
    done = subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(tmp_path / "out.ipynb"),
                           "--kernel", "python3", "--no-progress-bar", "-p", "namespace", ns,
                           "-p", "interactive", "no"], cwd="/", env=env, capture_output=True, text=True,
                          timeout=600)
    try:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    finally:
        from jupyter_mldeploy.kube.client import Kube

        Kube(str(cluster.kubeconfig), cluster.context).request(
            "DELETE", f"/api/v1/namespaces/{ns}", query={"propagationPolicy": "Background"})
