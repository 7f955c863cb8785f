"""A rollout's state annotation edited by hand on the real API server (text where a number was): the
magics that read it back say so in one sentence, and write nothing."""

from __future__ import annotations

import pytest

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.magics.display import MLDeployFailed

pytestmark = pytest.mark.sandbox

V1, V2 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0"


def vs_path(namespace: str) -> str:
    return f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud"


def annotate(kube, namespace: str, key: str, value: str) -> None:
    # What `kubectl annotate --overwrite` sends: a merge patch from another field manager.
    kube.request("PATCH", vs_path(namespace), body={"metadata": {"annotations": {key: value}}},
                 content_type="application/merge-patch+json", query={"fieldManager": "kubectl-annotate"})


@pytest.mark.parametrize(("key", "value"), [("mldeploy.io/weight", "fifty"), ("mldeploy.io/step", "2.5"),
                                            ("mldeploy.io/steps", "10,x,100")])
def test_a_hand_edited_rollout_number_is_one_sentence_and_nothing_is_written(ip, kube, namespace, key,
                                                                            value):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router istio")
    annotate(kube, namespace, key, value)
    before = kube.request("GET", vs_path(namespace))[1]
    ro._known.clear()  # another kernel, or tomorrow's run: the state is read back from the cluster
    for line in ("canary fraud 20", "rollback fraud", "promote fraud"):
        magic, _, rest = line.partition(" ")
        with pytest.raises(MLDeployFailed) as e:
            ip.run_line_magic(magic, rest)
        text = str(e.value)
        assert "\n" not in text and "Traceback" not in text and text.endswith(".")
        assert text.startswith(f"The annotation {key} on VirtualService fraud in namespace {namespace} is "
                               f"{value!r}, not a ")
    after = kube.request("GET", vs_path(namespace))[1]
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
