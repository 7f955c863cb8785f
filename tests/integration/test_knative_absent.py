"""Without Knative Serving's components (the sandbox's default), the knative router refuses plainly and
writes nothing; %mldeploy says what is missing. tests/knative covers the components running."""

from __future__ import annotations

import pytest

from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.magics.display import MLDeployFailed

pytestmark = pytest.mark.sandbox


@pytest.fixture
def no_knative(kube):
    if rk.components(kube).get("controller"):
        pytest.skip("Knative Serving's controller runs in this cluster (sandbox up --knative); "
                    "tests/knative covers it")


def test_a_knative_deploy_is_refused_without_the_controller(no_knative, ip, kube, namespace):
    with pytest.raises(MLDeployFailed, match="Knative Serving's controller is not running on this cluster"):
        ip.run_line_magic("deploy", "fraud --image ghcr.io/acme/fraud:1.0 --router knative")
    assert rk.read_service(kube, namespace, "fraud") is None  # nothing written
    text = str(ip.run_line_magic("mldeploy", ""))
    if "knative (" in text.split("Not served")[0]:  # the sandbox serves Knative's API (its CRDs)
        assert "Knative Serving's API is served but none of its components runs." in text
        assert "no Knative controller runs, so nothing turns a Knative Service into revisions" in text
