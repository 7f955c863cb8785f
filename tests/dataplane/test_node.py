"""Real pods on the sandbox's real node: readiness, crash loops, OOM kills and image pulls as they happen.

Each model is deployed with the public API (`jupyter_mldeploy.deploy`) onto the real node (its label
and taint), pulled from the sandbox's registry on 127.0.0.1, and judged by what kubelet really saw.
"""

from __future__ import annotations

import json

import pytest

from jupyter_mldeploy import deploy
from jupyter_mldeploy.errors import MLDeployError
from jupyter_mldeploy.sandbox import images, node
from jupyter_mldeploy.spec import Probe, Resources

from .realnode import Client, body, real_spec

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]


def _failure(spec, kube, timeout: float):
    """Deploy and expect the wait to end in a failure; return the diagnosis it carries."""
    with pytest.raises(MLDeployError) as info:
        deploy(spec, kube=kube, timeout=timeout)
    err = info.value
    diagnosis = getattr(err, "diagnosis", None) or getattr(getattr(err, "status", None), "diagnosis", None)
    assert diagnosis is not None, f"the failure carries no diagnosis: {err}"
    return diagnosis, str(err)


def test_model_is_ready_because_its_probe_passes_and_answers(real, kube, namespace, core):
    spec = real_spec("ready", namespace, readiness=Probe(period=1))
    handle = deploy(spec, kube=kube, timeout=180)
    status = handle.status()
    assert status.ready == 1
    pod = core.read_namespaced_pod(status.pods[0].name, namespace)
    assert pod.spec.node_name == node.NODE_NAME
    # The address is on the sandbox's bridge, and the probe's own path really answers there.
    assert pod.status.pod_ip in {str(a) for a in real.layout.subnet.hosts()}
    client = Client(pod.status.pod_ip, 8080, real.layout.subnet)
    try:
        assert client.request("GET", "/v2/health/ready")[0] == 200
        code, raw = client.request("POST", "/v2/models/model/infer", body("probe-free-id"))
    finally:
        client.close()
    assert code == 200 and json.loads(raw)["outputs"][0]["data"] == [1.0, 2.0]
    # The image's contract: user 10001, and the prediction line in the pod's log (read through the
    # API server, which reaches kubelet at the node's InternalIP).
    cs = pod.status.container_statuses[0]
    assert cs.ready and cs.image.startswith(images.serving_ref().rsplit(":", 1)[0])
    log = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    assert '"request_id": "probe-free-id"' in log.replace('":"', '": "')


def test_a_kwok_deploy_does_not_land_on_the_real_node(real, kube, namespace, core):
    spec = real_spec("sim", namespace).with_(node_selector={}, tolerations=())
    handle = deploy(spec, kube=kube, timeout=60)
    assert handle.status().pods[0].node != node.NODE_NAME


def test_wrong_readiness_path_stays_unready_and_is_diagnosed(real, kube, namespace):
    spec = real_spec("unready", namespace, readiness=Probe("/v2/nope", period=1, failure_threshold=1))
    diagnosis, text = _failure(spec, kube, timeout=25)
    assert diagnosis.kind == "never-ready", text
    assert "404" in diagnosis.summary and "/v2/nope" in diagnosis.summary, diagnosis


def test_a_real_crash_loop_shows_the_real_last_log_lines(real, kube, namespace):
    spec = real_spec("crashy", namespace, env={"MODEL": "no_such_module:predict"})
    diagnosis, text = _failure(spec, kube, timeout=90)
    assert diagnosis.kind == "crash-loop", text
    # The model server's own words, as it printed them in the container before exiting.
    assert "Cannot start the model server" in (diagnosis.detail or "") + text, diagnosis
    assert "no_such_module" in (diagnosis.detail or "") + text


def test_a_real_oom_kill_is_diagnosed(real, kube, namespace):
    # busybox holds 200 MB in a shell variable under a 32 MiB limit: the kernel's OOM killer ends it
    # before it would serve (the readiness probe keeps the rollout waiting until then).
    spec = real_spec("hungry", namespace, image=images.TESTBOX_REF, liveness=None,
                     resources=Resources(memory="32Mi"),
                     command=("sh", "-c", "echo allocating; x=$(head -c 200000000 /dev/zero | tr '\\0' a); "
                              "exec httpd -f -p 8080"))
    diagnosis, text = _failure(spec, kube, timeout=90)
    assert diagnosis.kind == "oom-killed", text
    assert "memory limit of 32Mi" in diagnosis.summary, diagnosis


def test_a_missing_tag_is_a_real_err_image_pull(real, kube, namespace):
    missing = images.serving_ref().rsplit(":", 1)[0] + ":0.0.404"
    spec = real_spec("nopull", namespace, image=missing)
    diagnosis, text = _failure(spec, kube, timeout=60)
    assert diagnosis.kind == "image-pull", text
    # containerd asked our registry, which answered that the tag does not exist.
    assert "0.0.404" in (diagnosis.detail or "") + diagnosis.summary
    assert "not found" in ((diagnosis.detail or "") + diagnosis.summary).lower()
