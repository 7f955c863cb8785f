"""A client-side dry run renders what would be written without a cluster: with the namespace known,
`api.deploy(..., dry_run="client")` (and `%deploy --dry-run`, which calls it) makes no connection."""

from __future__ import annotations

import pytest

from jupyter_mldeploy import api
from jupyter_mldeploy.errors import MLDeployError
from jupyter_mldeploy.render import render
from jupyter_mldeploy.spec import DeploySpec

SPEC = DeploySpec("churn", "ghcr.io/acme/churn:1.4", replicas=2)


@pytest.mark.parametrize("dry_run", [True, "client"])
def test_a_client_dry_run_with_its_namespace_needs_no_cluster(dry_run, tmp_path):
    missing = str(tmp_path / "no-such-kubeconfig")  # any connection attempt would fail on it
    dry = api.deploy(SPEC, namespace="ml", dry_run=dry_run, kubeconfig=missing)
    assert isinstance(dry, api.DryRun)
    assert dry.manifests == render(SPEC, "ml")


def test_an_extra_object_replaces_the_rendered_one_of_its_kind_and_name(tmp_path):
    service = next(m for m in render(SPEC, "ml") if m["kind"] == "Service")
    mine = {**service, "metadata": {**service["metadata"], "labels": {"extra": "yes"}}}
    dry = api.deploy(SPEC, namespace="ml", dry_run="client", extra=[mine],
                     kubeconfig=str(tmp_path / "none"))
    services = [m for m in dry.manifests if m["kind"] == "Service"]
    assert services == [mine]


def test_without_a_namespace_the_dry_run_asks_the_cluster_for_its_default(tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    with pytest.raises(MLDeployError) as e:
        api.deploy(SPEC, dry_run="client", kubeconfig=str(missing))
    assert str(missing) in str(e.value)
