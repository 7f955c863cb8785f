"""Suite-wide fixtures: one Kubernetes API server for the whole run.

By default the sandbox (a real kube-apiserver, controller-manager and scheduler with kwok nodes) is
brought up once; set MLDEPLOY_TEST_KUBECONFIG (and optionally MLDEPLOY_TEST_CONTEXT) to run the same
suite against kind or a real cluster instead.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class TestCluster:
    kubeconfig: Path
    context: str | None
    # Only the sandbox has these identities and namespaces; tests needing them skip elsewhere.
    limited_context: str | None
    restricted_namespace: str | None
    is_sandbox: bool

    def api_client(self, context: str | None = None):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig),
                                             context=context or self.context)


@pytest.fixture(scope="session")
def cluster() -> TestCluster:
    external = os.environ.get("MLDEPLOY_TEST_KUBECONFIG")
    if external:
        yield TestCluster(Path(external), os.environ.get("MLDEPLOY_TEST_CONTEXT"), None, None, False)
        return
    from jupyter_mldeploy.sandbox import control_plane as cp

    box = cp.Sandbox()
    was_up = box.status()["up"]
    info = box.up()
    yield TestCluster(Path(info["kubeconfig"]), cp.ADMIN_CONTEXT, cp.LIMITED_CONTEXT,
                      cp.RESTRICTED_NAMESPACE, True)
    # Leave a sandbox someone else started; stop the one this run started unless asked to keep it.
    if not was_up and not os.environ.get("MLDEPLOY_KEEP_SANDBOX"):
        box.down(progress=lambda _m: None)


@pytest.fixture
def kube(cluster: TestCluster):
    """jupyter-mldeploy's own connection to the test cluster."""
    from jupyter_mldeploy.kube.client import Kube

    return Kube(str(cluster.kubeconfig), cluster.context)


@pytest.fixture
def namespace(cluster: TestCluster):
    """A fresh namespace per test, deleted afterwards (its service account is waited for)."""
    from kubernetes import client, watch

    api = client.CoreV1Api(cluster.api_client())
    name = f"t-{uuid.uuid4().hex[:10]}"
    api.create_namespace({"metadata": {"name": name, "labels": {"mldeploy.io/test": "true"}}})
    # A pod created before the controller-manager makes the default ServiceAccount is rejected.
    w = watch.Watch()
    for ev in w.stream(api.list_namespaced_service_account, name, timeout_seconds=30):
        if ev["object"].metadata.name == "default":
            w.stop()
    yield name
    api.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def recording_comm(monkeypatch):
    """The widgets' frontend side, swapped as ipywidgets' own tests do: every widget made while this
    fixture is active gets a RecordingComm. Widget test modules use it with
    `pytestmark = pytest.mark.usefixtures("recording_comm")`."""
    import comm
    from widget_comm import RecordingComm

    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: RecordingComm(*a, **kw))
