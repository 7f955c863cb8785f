"""Fixtures shared by the integration tests (the cluster ones live in tests/conftest.py)."""

from __future__ import annotations

import pytest
from shells import fresh_shell


@pytest.fixture
def ip(cluster, namespace, monkeypatch, tmp_path):
    """A shell with the extension loaded, pointed at the test cluster and this test's namespace."""
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml settings from the repository
    with fresh_shell(kubeconfig=str(cluster.kubeconfig), context=cluster.context or None, namespace=namespace,
                     interactive="no", timeout=120) as shell:
        yield shell

