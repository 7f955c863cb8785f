"""`%deploy --create-namespace` and `deploy(create_namespace=True)` against the sandbox's API server.

The namespace is made only when missing, the deploy goes on once its default ServiceAccount exists
(a pod created before that is refused by the API server), and an identity that may not create
namespaces gets one sentence, with nothing written.
"""

from __future__ import annotations

import uuid

import pytest

from jupyter_mldeploy import api
from jupyter_mldeploy.errors import ClusterError
from jupyter_mldeploy.kube import namespaces
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/iris:1.0"


def exists(kube: Kube, namespace: str) -> bool:
    try:
        kube.request("GET", f"/api/v1/namespaces/{namespace}")
        return True
    except ClusterError as e:
        assert e.status == 404, e
        return False


@pytest.fixture
def new_namespace(kube):
    """A namespace name nobody has made yet; deleted afterwards if a test made it."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    assert not exists(kube, name)
    yield name
    if exists(kube, name):
        kube.request("DELETE", f"/api/v1/namespaces/{name}", query={"propagationPolicy": "Background"})


def test_deploy_creates_the_missing_namespace_and_the_model_becomes_ready(kube, new_namespace):
    spec = DeploySpec.from_dict({"name": "iris", "image": IMAGE, "cpu": "100m", "memory": "128Mi"})
    d = api.deploy(spec, namespace=new_namespace, kube=kube, create_namespace=True, timeout=120)
    assert exists(kube, new_namespace)
    assert d.last_status.complete and d.last_status.ready == 1
    assert f"Created namespace {new_namespace}." in d.notes
    kube.request("GET", f"/api/v1/namespaces/{new_namespace}/serviceaccounts/default")  # waited for


def test_an_existing_namespace_is_left_as_it_is(kube, namespace):
    _, before = kube.request("GET", f"/api/v1/namespaces/{namespace}")
    assert namespaces.ensure(kube, namespace) is False
    _, after = kube.request("GET", f"/api/v1/namespaces/{namespace}")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_without_the_flag_a_missing_namespace_is_not_created(kube, new_namespace):
    spec = DeploySpec.from_dict({"name": "iris", "image": IMAGE})
    with pytest.raises(ClusterError) as e:
        api.deploy(spec, namespace=new_namespace, kube=kube, wait=False)
    assert "namespace" in str(e.value).lower() and not exists(kube, new_namespace)


def test_the_magic_creates_the_namespace(ip, kube, new_namespace, capsys):
    result = ip.run_cell(f"d = %deploy iris --image {IMAGE} --cpu 100m --memory 128Mi "
                         f"--namespace {new_namespace} --create-namespace")
    assert result.success, result.error_in_exec
    assert ip.user_ns["d"].namespace == new_namespace and ip.user_ns["d"].last_status.complete
    assert f"note: Created namespace {new_namespace}." in str(ip.user_ns["d"])
    # a second deploy with the flag finds it there and says nothing about it
    result = ip.run_cell(f"d = %deploy iris --image {IMAGE} --cpu 100m --memory 256Mi "
                         f"--namespace {new_namespace} --create-namespace")
    assert result.success, result.error_in_exec
    assert not any("Created namespace" in n for n in ip.user_ns["d"].notes)


def test_an_identity_that_may_not_create_namespaces_is_refused_in_one_sentence(ip, cluster, kube,
                                                                                new_namespace):
    if cluster.limited_context is None:
        pytest.skip("needs the sandbox's limited identity")
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"iris --image {IMAGE} --context {cluster.limited_context} "
                                    f"--namespace {new_namespace} --create-namespace")
    message = str(e.value)
    assert isinstance(e.value.error, ClusterError) and e.value.error.status == 403
    assert message.startswith("--create-namespace: user ") and "may not create namespaces" in message
    assert message.count(". ") == 0 and message.endswith("to a namespace you may use.")  # one sentence
    assert not exists(kube, new_namespace)


def test_the_limited_identity_deploys_to_its_own_namespace_with_the_flag(cluster, kube):
    """It may not read Namespaces, but its own namespace is there: no refusal, nothing created."""
    if cluster.limited_context is None:
        pytest.skip("needs the sandbox's limited identity")
    from jupyter_mldeploy.sandbox.control_plane import LIMITED_NAMESPACE

    limited = Kube(str(cluster.kubeconfig), cluster.limited_context)
    assert namespaces.ensure(limited, LIMITED_NAMESPACE) is False
