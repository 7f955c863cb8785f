"""capacity: what node allocatable, taints and labels offer one pod (pure, over node JSON)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jupyter_mldeploy import preflight
from jupyter_mldeploy.capacity import GIB, Capacity, NodeOffer
from jupyter_mldeploy.spec import DeploySpec, quantity_value

A100 = "NVIDIA-A100-SXM4-80GB"
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def node(name, cpu="8", memory="32Gi", *, gpus=0, product=None, taints=(), ready=True, cordoned=False,
         resource="nvidia.com/gpu", product_label="nvidia.com/gpu.product"):
    alloc = {"cpu": cpu, "memory": memory, "pods": "110"}
    labels = {"kubernetes.io/hostname": name}
    if gpus:
        alloc[resource] = str(gpus)
    if product:
        labels[product_label] = product
    spec = {"taints": list(taints)} if taints else {}
    if cordoned:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"allocatable": alloc, "capacity": dict(alloc),
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


# the sandbox's nodes
SANDBOX = [node("sandbox-cpu-1"), node("sandbox-cpu-2"),
           node("sandbox-gpu-1", "32", "128Gi", gpus=4, product=A100, taints=[GPU_TAINT])]


def test_sandbox_offers_per_node_maxima_and_gpu_types():
    cap = Capacity.from_nodes(SANDBOX)
    assert cap.known and [n.name for n in cap.nodes] == ["sandbox-cpu-1", "sandbox-cpu-2", "sandbox-gpu-1"]
    assert cap.max_cpu == 32 and cap.max_memory == 128 * GIB
    assert cap.gpu_resources() == ["nvidia.com/gpu"]
    assert cap.max_gpu() == 4 and cap.max_gpu(gpu_type=A100) == 4 and cap.max_gpu(gpu_type="T4") == 0
    assert cap.gpu_types() == {A100: 4}


def test_gpu_taint_keeps_cpu_only_pods_on_the_small_nodes():
    cap = Capacity.from_nodes(SANDBOX)
    cpu_only = cap.room(gpu=0)
    assert (cpu_only.cpu, cpu_only.memory) == (8, 32 * GIB)
    assert cpu_only.nodes == ("sandbox-cpu-1", "sandbox-cpu-2")
    with_gpu = cap.room(gpu=2, gpu_type=A100)
    assert (with_gpu.cpu, with_gpu.memory, with_gpu.nodes) == (32, 128 * GIB, ("sandbox-gpu-1",))
    assert cap.room(gpu=5) is None and cap.room(gpu=1, gpu_type="T4") is None


def test_problem_sentences_name_the_limit():
    cap = Capacity.from_nodes(SANDBOX)
    assert cap.problem(Decimal(8), 32 * GIB) is None
    assert cap.problem(Decimal(16), None) == (
        "16 cpu does not fit: a pod without GPUs (GPU nodes are tainted) can get at most 8 cpu on one node.")
    assert cap.problem(Decimal(16), None, gpu=1) is None  # the GPU node tolerates it and is bigger
    assert cap.problem(None, 64 * GIB) == ("64 GiB memory does not fit: a pod without GPUs (GPU nodes are "
                                           "tainted) can get at most 32 GiB on one node.")
    assert cap.problem(None, None, gpu=8) == (
        "8 nvidia.com/gpu devices do not fit on one node: the most any node has is 4.")
    assert cap.problem(None, None, gpu=1, gpu_type="Tesla-T4") == (
        f"No node offers the GPU type Tesla-T4 (types offered: {A100}).")
    assert cap.problem(Decimal(64), None, gpu=1) == (
        "64 cpu does not fit: a pod with 1 GPU can get at most 32 cpu on one node.")


def test_cpu_and_memory_must_fit_on_the_same_node():
    cap = Capacity.from_nodes([node("wide", "16", "8Gi"), node("deep", "2", "64Gi")])
    assert cap.problem(Decimal(16), 8 * GIB) is None and cap.problem(Decimal(2), 64 * GIB) is None
    assert cap.problem(Decimal(16), 64 * GIB) == (
        "No single node offers both 16 cpu and 64 GiB memory to a pod without GPUs.")


def test_not_ready_and_cordoned_nodes_offer_nothing():
    cap = Capacity.from_nodes([node("down", "64", ready=False), node("drained", "64", cordoned=True),
                               node("up", "4")])
    assert [n.name for n in cap.nodes] == ["up"] and cap.max_cpu == 4
    assert Capacity.from_nodes([]).problem(Decimal(1), None) == "The cluster has no Ready, schedulable node."


def test_only_the_gpu_taint_is_tolerated_and_only_with_gpus():
    other = {"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}
    prefer = {"key": "spot", "effect": "PreferNoSchedule"}
    cap = Capacity.from_nodes([node("team", "64", taints=[other]), node("spot", "4", taints=[prefer]),
                               node("gpu", "32", gpus=2, product=A100, taints=[GPU_TAINT, other])])
    assert cap.room().nodes == ("spot",)  # PreferNoSchedule does not keep pods away
    assert cap.room(gpu=1) is None  # the GPU node also carries a taint our pods do not tolerate
    assert cap.problem(None, None, gpu=1) == (
        "No node admits this pod: every node has a taint it does not tolerate.")


def test_other_vendors_gpus_are_seen_with_their_own_labels():
    amd = node("mi300", "64", "512Gi", gpus=8, product="AMD-Instinct-MI300X", resource="amd.com/gpu",
               product_label="amd.com/gpu.product-name",
               taints=[{"key": "amd.com/gpu", "effect": "NoSchedule"}])
    cap = Capacity.from_nodes([*SANDBOX, amd])
    assert cap.gpu_resources() == ["nvidia.com/gpu", "amd.com/gpu"]
    assert cap.gpu_types("amd.com/gpu") == {"AMD-Instinct-MI300X": 8}
    assert cap.room(4, "AMD-Instinct-MI300X", "amd.com/gpu").nodes == ("mi300",)
    # an AMD GPU pod does not tolerate the NVIDIA taint, and vice versa
    assert cap.room(1, None, "nvidia.com/gpu").nodes == ("sandbox-gpu-1",)


def test_unknown_nodes_mean_free_entry():
    cap = Capacity.from_nodes(None)
    assert not cap.known and cap.reason == "This identity may not list the cluster's nodes."
    assert cap.max_cpu is None and cap.max_memory is None and cap.gpu_types() == {}
    assert cap.problem(Decimal(1000), 10**6 * GIB, gpu=64) is None  # the cluster decides


def test_node_offer_reads_quantities_exactly():
    offer = NodeOffer.from_node(node("n", "7910m", "31Gi", gpus=1, product=A100))
    assert offer.cpu == Decimal("7.91") and offer.memory == 31 * GIB
    assert offer.gpus == {"nvidia.com/gpu": 1} and offer.gpu_type == {"nvidia.com/gpu": A100}


@pytest.mark.parametrize("cpu", ["500m", "4", "8", "9", "16", "32", "33"])
@pytest.mark.parametrize("memory", ["1Gi", "32Gi", "33Gi", "128Gi", "129Gi"])
@pytest.mark.parametrize("gpu", [0, 1, 4, 5])
def test_capacity_agrees_with_the_preflight_check(cpu, memory, gpu):
    """What the picker accepts is exactly what the pre-flight check lets through (capacity terms)."""
    spec = DeploySpec.from_dict({"name": "churn", "image": "ghcr.io/acme/churn:1.4", "cpu": cpu,
                                 "memory": memory, "gpu": gpu})
    fits = any(f.fits for f in preflight.check(spec, SANDBOX))
    cap = Capacity.from_nodes(SANDBOX)
    assert (cap.problem(quantity_value(cpu), quantity_value(memory), gpu) is None) == fits


def test_preflight_checks_the_rendered_pod_spec_without_rendering_again(monkeypatch):
    """api.deploy renders once: the pre-flight takes the pod spec of the Deployment about to be written."""
    from jupyter_mldeploy import api
    from jupyter_mldeploy.render import render

    spec = DeploySpec.from_dict({"name": "churn", "image": "ghcr.io/acme/churn:1.4", "cpu": "4", "gpu": 1})
    manifests = render(spec, "ml")
    pod_spec = api.rendered_pod_spec(spec, manifests)
    assert pod_spec == next(m for m in manifests if m["kind"] == "Deployment")["spec"]["template"]["spec"]

    def no_render(_spec):
        raise AssertionError("rendered again")
    monkeypatch.setattr(preflight, "pod_template", no_render)
    assert any(f.fits for f in preflight.check(pod_spec, SANDBOX))
    too_big = api.rendered_pod_spec(spec.with_(cpu="64"), render(spec.with_(cpu="64"), "ml"))
    assert not any(f.fits for f in preflight.check(too_big, SANDBOX))
    assert "asks for 64 cpu" in preflight.refusal(spec, SANDBOX, None, pod_spec=too_big)
    assert api.rendered_pod_spec(spec, [m for m in manifests if m["kind"] != "Deployment"]) is None


def test_capacity_takes_the_preflight_taint_rule():
    """One node-fit rule: a tainted node admits a pod exactly when preflight.blocking_taint says so."""
    taint = {"key": "nvidia.com/gpu", "effect": "NoSchedule"}
    offer = NodeOffer.from_node(node("g", "8", "32Gi", gpus=2, product=A100, taints=[taint]))
    assert offer.admits(1, None, "nvidia.com/gpu") and not offer.admits(0, None, "nvidia.com/gpu")
    assert not offer.admits(1, None, "amd.com/gpu")  # the NVIDIA taint is not the AMD pod's to tolerate
    no_execute = NodeOffer.from_node(node("x", "8", "32Gi", gpus=2, product=A100,
                                          taints=[{**taint, "effect": "NoExecute"}]))
    assert not no_execute.admits(1, None, "nvidia.com/gpu")  # the rendered toleration is NoSchedule only
