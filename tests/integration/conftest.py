"""Fixtures shared by the integration tests (the cluster ones live in tests/conftest.py)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_mldeploy import magics
from jupyter_mldeploy import rollout as ro


@pytest.fixture
def ip(cluster, namespace, monkeypatch, tmp_path):
    """A shell with the extension loaded, pointed at the test cluster and this test's namespace."""
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml settings from the repository
    shell = InteractiveShell.instance()
    magics.unload(shell)
    magics.forget_settings()
    shell.config.pop("MLDeploy", None)
    shell.run_line_magic("reload_ext", "jupyter_mldeploy")
    shell.run_line_magic("config", f"MLDeploy.kubeconfig = {str(cluster.kubeconfig)!r}")
    if cluster.context:
        shell.run_line_magic("config", f"MLDeploy.context = {cluster.context!r}")
    shell.run_line_magic("config", f"MLDeploy.namespace = {namespace!r}")
    shell.run_line_magic("config", "MLDeploy.interactive = 'no'")
    shell.run_line_magic("config", "MLDeploy.timeout = 120")
    ro.forget_cache()  # each test starts like a fresh kernel
    yield shell
    magics.unload(shell)
    magics.forget_settings()
    shell.config.pop("MLDeploy", None)
    ro.forget_cache()

