"""What the cluster's nodes can offer one pod: CPU, memory and GPUs per node, and the GPU types.

Pure code over node JSON (from `kube.inventory.nodes`). A form uses it to offer only what some node
could actually hold. It follows the scheduler's rules that a resource picker can influence: Ready and
schedulable nodes only, NoSchedule/NoExecute taints tolerated only the way our rendered pods tolerate
them (a pod asking for GPUs tolerates its GPU resource's taint, nothing else), and a GPU type selects
nodes by the vendor's product label. Figures are allocatable (what a node could ever hold), not free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from .preflight import blocking_taint, node_ready
from .render.workload import gpu_toleration_for
from .spec import GPU_TYPE_LABELS, quantity_value

__all__ = ["Capacity", "NodeOffer", "PodRoom", "gib", "is_gpu_resource"]

GIB = Decimal(2**30)


def gib(amount: Decimal) -> float:
    """Bytes as GiB, for display and form bounds."""
    return float(amount / GIB)


def is_gpu_resource(name: str) -> bool:
    """Extended resources that are GPUs: the known vendors' '<domain>/gpu' and Intel's 'gpu.intel.com/*'."""
    return name in GPU_TYPE_LABELS or name.endswith("/gpu") or name.startswith("gpu.intel.com/")


@dataclass(frozen=True)
class NodeOffer:
    """One schedulable node as a form sees it."""

    name: str
    cpu: Decimal  # cores
    memory: Decimal  # bytes
    gpus: Mapping[str, int] = field(default_factory=dict)  # extended resource -> devices
    gpu_type: Mapping[str, str] = field(default_factory=dict)  # extended resource -> product label
    taints: tuple[Mapping, ...] = ()  # NoSchedule / NoExecute only: the ones that keep pods away
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_node(cls, node: Mapping) -> NodeOffer:
        meta, status = node.get("metadata") or {}, node.get("status") or {}
        alloc = {k: quantity_value(v) for k, v in (status.get("allocatable") or {}).items()}
        labels = dict(meta.get("labels") or {})
        gpus = {k: int(v) for k, v in alloc.items() if is_gpu_resource(k) and v >= 1}
        types = {r: labels[GPU_TYPE_LABELS[r]] for r in gpus
                 if r in GPU_TYPE_LABELS and labels.get(GPU_TYPE_LABELS[r])}
        taints = tuple(t for t in (node.get("spec") or {}).get("taints") or []
                       if t.get("effect") in ("NoSchedule", "NoExecute"))
        return cls(meta.get("name") or "?", alloc.get("cpu", Decimal(0)), alloc.get("memory", Decimal(0)),
                   gpus, types, taints, labels)

    def admits(self, gpu: int, gpu_type: str | None, gpu_resource: str) -> bool:
        """Could a pod with this GPU request land here (taints, GPU count, GPU type)?"""
        # The pre-flight's taint rule, with the tolerations render gives a pod asking for GPUs.
        tolerations = [gpu_toleration_for(gpu_resource)] if gpu else []
        if blocking_taint({"spec": {"taints": list(self.taints)}}, tolerations) is not None:
            return False
        if gpu and self.gpus.get(gpu_resource, 0) < gpu:
            return False
        return not (gpu_type is not None and self.gpu_type.get(gpu_resource) != gpu_type)


@dataclass(frozen=True)
class PodRoom:
    """The most one pod with a given GPU request can get: the largest eligible node's allocatable."""

    cpu: Decimal
    memory: Decimal
    nodes: tuple[str, ...]  # the nodes such a pod could land on


@dataclass(frozen=True)
class Capacity:
    """The schedulable nodes' offers; `known` is False when nodes could not be listed (free entry)."""

    nodes: tuple[NodeOffer, ...] = ()
    known: bool = True
    reason: str | None = None  # why the nodes are unknown, as a sentence

    @classmethod
    def from_nodes(cls, nodes: Iterable[Mapping] | None) -> Capacity:
        """From the node list; None (the identity may not list nodes) gives an unknown capacity."""
        if nodes is None:
            return cls.unknown("This identity may not list the cluster's nodes.")
        usable = [n for n in nodes if not (n.get("spec") or {}).get("unschedulable") and node_ready(n)]
        return cls(tuple(NodeOffer.from_node(n) for n in usable))

    @classmethod
    def unknown(cls, reason: str) -> Capacity:
        return cls((), known=False, reason=reason)

    @property
    def max_cpu(self) -> Decimal | None:
        return max((n.cpu for n in self.nodes), default=None) if self.known else None

    @property
    def max_memory(self) -> Decimal | None:
        return max((n.memory for n in self.nodes), default=None) if self.known else None

    def gpu_resources(self) -> list[str]:
        """GPU extended resources some node offers, NVIDIA's first."""
        found = {r for n in self.nodes for r in n.gpus}
        return sorted(found, key=lambda r: (r != "nvidia.com/gpu", r))

    def max_gpu(self, gpu_resource: str = "nvidia.com/gpu", gpu_type: str | None = None) -> int:
        """The most GPUs of this resource (and type) one node holds, so the most one pod can ask for."""
        return max((n.gpus.get(gpu_resource, 0) for n in self.nodes
                    if gpu_type is None or n.gpu_type.get(gpu_resource) == gpu_type), default=0)

    def gpu_types(self, gpu_resource: str = "nvidia.com/gpu") -> dict[str, int]:
        """GPU product label -> the most devices of it on one node (nodes without the label are left out)."""
        out: dict[str, int] = {}
        for n in self.nodes:
            kind = n.gpu_type.get(gpu_resource)
            if kind is not None:
                out[kind] = max(out.get(kind, 0), n.gpus.get(gpu_resource, 0))
        return dict(sorted(out.items()))

    def room(self, gpu: int = 0, gpu_type: str | None = None,
             gpu_resource: str = "nvidia.com/gpu") -> PodRoom | None:
        """What one pod with this GPU request can get at most; None when no node admits it."""
        eligible = [n for n in self.nodes if n.admits(gpu, gpu_type, gpu_resource)]
        if not eligible:
            return None
        return PodRoom(max(n.cpu for n in eligible), max(n.memory for n in eligible),
                       tuple(n.name for n in eligible))

    def problem(self, cpu: Decimal | None, memory: Decimal | None, gpu: int = 0, gpu_type: str | None = None,
                gpu_resource: str = "nvidia.com/gpu") -> str | None:
        """One sentence when no node could hold one pod asking for this, else None (also when unknown)."""
        if not self.known:
            return None
        if not self.nodes:
            return "The cluster has no Ready, schedulable node."
        if gpu:
            most = self.max_gpu(gpu_resource, gpu_type)
            if most < gpu:
                what = f"{gpu_type} GPUs" if gpu_type else f"{gpu_resource} devices"
                if gpu_type is not None and gpu_type not in self.gpu_types(gpu_resource):
                    known = ", ".join(self.gpu_types(gpu_resource)) or "none"
                    return f"No node offers the GPU type {gpu_type} (types offered: {known})."
                return (f"{gpu} {what} do not fit on one node: the most any node has is {most}."
                        if most else f"No node offers {what}.")
        room = self.room(gpu, gpu_type, gpu_resource)
        if room is None:
            return "No node admits this pod: every node has a taint it does not tolerate."
        who = (f"a pod with {gpu} GPU{'s' if gpu > 1 else ''}" if gpu
               else "a pod without GPUs" + (" (GPU nodes are tainted)" if any(n.taints for n in self.nodes)
                                            else ""))
        if cpu is not None and cpu > room.cpu:
            return f"{_num(cpu)} cpu does not fit: {who} can get at most {_num(room.cpu)} cpu on one node."
        if memory is not None and memory > room.memory:
            return (f"{_num(Decimal(gib(memory)))} GiB memory does not fit: {who} can get at most "
                    f"{_num(Decimal(gib(room.memory)))} GiB on one node.")
        if cpu is not None and memory is not None and not any(
                n.cpu >= cpu and n.memory >= memory for n in self.nodes
                if n.admits(gpu, gpu_type, gpu_resource)):
            return (f"No single node offers both {_num(cpu)} cpu and {_num(Decimal(gib(memory)))} GiB "
                    f"memory to {who}.")
        return None


def _num(value: Decimal) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
