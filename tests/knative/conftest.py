"""Knative Serving's real components beside the sandbox, for the tests marked `knative`.

They are started once for this package (sandbox/knative.py; about 5 s) when their binaries are built
and this process may make network namespaces, and stopped after it unless they were running already;
otherwise every test here is skipped with the exact reason. Each test gets a
fresh namespace and a shell with the extension loaded (as tests/integration does).
"""

from __future__ import annotations

import os
import shutil

import pytest
from k8s_helpers import until_test_routes_are_gone
from shells import fresh_shell

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.kube.client import Kube


@pytest.fixture(scope="package")
def knative(cluster):
    if not cluster.is_sandbox:
        pytest.skip("the Knative tests start Knative Serving's components beside the sandbox; "
                    "MLDEPLOY_TEST_KUBECONFIG points at another cluster")
    from jupyter_mldeploy.sandbox import knative as kn
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    missing = kn.missing_binaries()
    if missing:
        pytest.skip(f"Knative Serving {kn.VERSION} is not built ({', '.join(missing)} missing from "
                    f"{kn.bin_dir()}): run `python -m jupyter_mldeploy sandbox up --knative` once "
                    f"(about 6 minutes of Go build)")
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("Knative's components run in network namespaces of their own, which needs root and "
                    "iproute2's `ip`")
    box = Sandbox()
    components = kn.Knative(box)
    was_up = components.status()["up"]
    components.up(progress=lambda _m: None)
    yield box
    # Stopped after this package, unless it was running before: the rest of the suite runs on the plain
    # sandbox, and its CPU is not spent on idle controllers. First the test namespaces' Routes must go:
    # each carries Knative's finalizer, which only its controller removes.
    if not was_up:
        until_test_routes_are_gone(Kube(str(cluster.kubeconfig), cluster.context), timeout=120)
        components.down(progress=lambda _m: None)


@pytest.fixture(scope="package")
def networking(knative) -> bool:
    """Whether Knative runs with its networking layer (Traefik's KIngress), as it does when the real
    node was up before it (tests/dataplane runs first and leaves it up)."""
    from jupyter_mldeploy.sandbox import knative as kn

    return bool((kn.Knative(knative).state() or {}).get("networking"))


@pytest.fixture
def ip(cluster, knative, namespace, monkeypatch, tmp_path):
    """A headless shell pointed at the sandbox and this test's namespace."""
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    with fresh_shell(kubeconfig=str(cluster.kubeconfig), context=cluster.context, namespace=namespace,
                     interactive="no", timeout=120) as shell:
        yield shell
    shell.config.pop("MLDeploy", None)
    ro._known.clear()
