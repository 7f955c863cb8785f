"""Resources: cpu, memory, GPUs and what they select on nodes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from ..errors import SpecError
from .quantity import parse_quantity, quantity_value
from .rules import _describe, _label_value, _qualified_name_ok, _str

# Node label that carries the GPU model, per vendor extended resource. nvidia.com/gpu.product is set by
# NVIDIA GPU feature discovery (GPU operator), amd.com/gpu.product-name by the AMD GPU node labeller.
# Other vendors have no `gpu_type` shortcut: select their nodes with `node_selector` directly, which
# also overrides these keys when a cluster labels its GPU nodes differently.
GPU_TYPE_LABELS: Mapping[str, str] = MappingProxyType({
    "nvidia.com/gpu": "nvidia.com/gpu.product",
    "amd.com/gpu": "amd.com/gpu.product-name",
})



def _gpu_count(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"gpu must be a whole number of GPUs such as 1 (a GPU cannot be split by a "
                        f"Kubernetes request), got {_describe(value)}.")
    if value < 0:
        raise SpecError(f"gpu {value} is negative: it must be 0 or more whole GPUs.")
    return value


@dataclass(frozen=True)
class Resources:
    """Requests and limits; every value given is kept, and none overwrites another.

    `cpu`/`memory` are requests. The memory limit defaults to the memory request, so a pod is killed
    predictably at the amount it was scheduled with instead of when its node runs short; the cpu limit
    stays unset unless given (CPU throttling hurts latency more than it protects neighbours). GPUs are
    whole devices, written to both requests and limits as an integer string.
    """

    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    gpu: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    gpu_type: str | None = None

    def __post_init__(self) -> None:
        values: dict[str, Decimal] = {}
        for name in ("cpu", "memory", "cpu_limit", "memory_limit"):
            raw = getattr(self, name)
            if raw is None:
                continue
            text = parse_quantity(raw, name)
            object.__setattr__(self, name, text)
            values[name] = amount = quantity_value(text)
            if name.startswith("cpu") and (amount * 1000) % 1 != 0:
                raise SpecError(f"{name} {text!r} is finer than 1m (0.001 cores), the smallest CPU amount "
                                f"Kubernetes allows.")
            if name.startswith("memory") and amount % 1 != 0:
                hint = " ('m' means milli; mebibytes are written 'Mi')" if text.endswith("m") else ""
                raise SpecError(f"{name} {text!r} is {amount.normalize():f} bytes, not a whole number of "
                                f"bytes{hint}.")
            if name.endswith("_limit") and amount == 0:
                raise SpecError(f"{name} {text!r} is zero: a limit must be more than zero (leave it unset "
                                f"for no limit).")
        for kind in ("cpu", "memory"):
            if kind in values and f"{kind}_limit" in values and values[kind] > values[f"{kind}_limit"]:
                raise SpecError(f"{kind} request {getattr(self, kind)!r} is more than {kind}_limit "
                                f"{getattr(self, kind + '_limit')!r}: a request must not exceed its limit.")
        object.__setattr__(self, "gpu", _gpu_count(self.gpu))
        resource = _str(self.gpu_resource, "gpu_resource", example="nvidia.com/gpu")
        domain, slash, _ = resource.partition("/")
        if not (slash and "." in domain and _qualified_name_ok(resource)):
            raise SpecError(f"gpu_resource {resource!r} is not a vendor extended resource: write "
                            f"'<vendor domain>/<name>', such as nvidia.com/gpu, amd.com/gpu or "
                            f"gpu.intel.com/i915.")
        if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
            raise SpecError(f"gpu_resource {resource!r} is in the kubernetes.io domain, which extended "
                            f"resources may not use.")
        if self.gpu_type is not None:
            _label_value(self.gpu_type, "gpu_type")
            if self.gpu == 0:
                raise SpecError(f"gpu_type {self.gpu_type!r} is set but gpu is 0: request at least one GPU "
                                f"(gpu=1) to choose its type.")
            if resource not in GPU_TYPE_LABELS:
                raise SpecError(f"gpu_type has no known node label for {resource!r} (known: "
                                f"{', '.join(GPU_TYPE_LABELS)}): select the GPU nodes with node_selector.")

    @property
    def gpu_node_label(self) -> tuple[str, str] | None:
        """The (node label key, value) that selects the requested GPU type, if one was asked for."""
        if self.gpu_type is None:
            return None
        return GPU_TYPE_LABELS[self.gpu_resource], self.gpu_type

    def requests(self) -> dict[str, str]:
        out = {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v is not None}
        if self.gpu:
            out[self.gpu_resource] = str(self.gpu)
        return out

    def limits(self) -> dict[str, str]:
        memory = self.memory_limit if self.memory_limit is not None else self.memory
        out = {k: v for k, v in (("cpu", self.cpu_limit), ("memory", memory)) if v is not None}
        if self.gpu:
            # Extended resources must have request == limit; never a milli-quantity.
            out[self.gpu_resource] = str(self.gpu)
        return out


# ---------------------------------------------------------------------------------------------------------
