"""ResourcePicker: CPU, memory, GPU count and type, offered within what the cluster's nodes hold,
with an estimated cost per hour and per month.

The bounds come from `capacity.Capacity` (node allocatable, GPU taints and product labels). When the
nodes cannot be listed the picker says so and takes free entry; the API server has the last word.

Prices: a table of hourly prices, e.g. `EXAMPLE_PRICES`. Those figures are an EXAMPLE to show the shape
of the table, not anyone's real prices; pass `price_table=` (or configure one, see `default_prices`).
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import traitlets

from ..capacity import GIB, Capacity, gib
from ..config import check_price_table, price_table
from ..spec import Resources, quantity_value
from .messages import note_html

__all__ = ["EXAMPLE_PRICES", "HOURS_PER_MONTH", "Cost", "ResourcePicker", "check_prices", "default_prices",
           "estimate_cost"]

# An EXAMPLE price table (USD per hour): the shape is the point, the numbers are made up.
EXAMPLE_PRICES: Mapping[str, Any] = {
    "cpu": 0.031,  # per core-hour
    "memory_gib": 0.004,  # per GiB-hour
    "gpu": {"NVIDIA-A100-SXM4-80GB": 3.67, "default": 2.5},  # per device-hour, by GPU type
}
HOURS_PER_MONTH = 730  # 365 * 24 / 12
_STYLE = {"description_width": "100px"}


def check_prices(table: Mapping[str, Any]) -> Mapping[str, Any]:
    """Refuse a malformed price table with one sentence (the same rule as MLDeploy.price_table)."""
    return check_price_table(table)


def default_prices() -> tuple[Mapping[str, Any], bool]:
    """(table, is_example): the configured price table (%config or pyproject.toml), else the example."""
    table = price_table()
    if table:
        return check_prices(table), False
    return EXAMPLE_PRICES, True


@dataclass(frozen=True)
class Cost:
    hourly: float
    gpu_priced_by_default: bool = False  # the GPU type had no price of its own

    @property
    def monthly(self) -> float:
        return self.hourly * HOURS_PER_MONTH


def estimate_cost(table: Mapping[str, Any], cpu: float, memory_gib: float, gpu: int = 0,
                  gpu_type: str | None = None) -> Cost:
    """The hourly cost of one replica's requests under `table`."""
    hourly = cpu * table["cpu"] + memory_gib * table["memory_gib"]
    by_default = False
    if gpu:
        prices = table.get("gpu", 0)
        if isinstance(prices, Mapping):
            by_default = gpu_type not in prices
            price = prices.get(gpu_type, prices.get("default", 0)) if gpu_type else prices.get("default", 0)
        else:
            price = prices
        hourly += gpu * price
    return Cost(hourly, by_default)


def cpu_quantity(cores: float) -> str | None:
    """Cores as a Kubernetes quantity: 2 -> '2', 0.5 -> '500m'; 0 means no request."""
    milli = round(cores * 1000)
    if milli <= 0:
        return None
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def memory_quantity(gib_: float) -> str | None:
    """GiB as a quantity: 4 -> '4Gi', 0.5 -> '512Mi'; 0 means no request."""
    mib = round(gib_ * 1024)
    if mib <= 0:
        return None
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def _money(x: float) -> str:
    return f"${x:,.2f}" if x >= 0.995 or x == 0 else f"${x:.3f}"


class ResourcePicker(widgets.VBox):
    """CPU cores, memory GiB, GPU count and type for one replica, bounded by the nodes' allocatable."""

    problem = traitlets.Unicode("", help="Why no node could hold one pod of this, one sentence; '' if fine.")
    replicas = traitlets.Tuple((1, 1), help="(min, max) replicas, for the total cost line.")

    def __init__(self, capacity: Capacity, *, price_table: Mapping[str, Any] | None = None,
                 resources: Resources | None = None, **kwargs: Any) -> None:
        self.capacity = capacity
        if price_table is None:
            self.prices, self.example_prices = default_prices()
        else:
            self.prices, self.example_prices = check_prices(price_table), False
        gpu_resources = capacity.gpu_resources()
        self.gpu_resource = gpu_resources[0] if gpu_resources else "nvidia.com/gpu"
        known = capacity.known
        self.cpu = widgets.BoundedFloatText(
            value=1.0, min=0.0, step=0.25, description="CPU (cores)", style=_STYLE,
            max=float(capacity.max_cpu) if known and capacity.max_cpu else 1024.0)
        self.memory = widgets.BoundedFloatText(
            value=2.0, min=0.0, step=0.5, description="Memory (GiB)", style=_STYLE,
            max=gib(capacity.max_memory) if known and capacity.max_memory else 4096.0)
        max_gpu = capacity.max_gpu(self.gpu_resource) if known else 64
        self.gpu = widgets.BoundedIntText(value=0, min=0, max=max(max_gpu, 0), description="GPUs",
                                          style=_STYLE, disabled=known and max_gpu == 0)
        types = list(capacity.gpu_types(self.gpu_resource)) if known else []
        # Combobox: the offered types as suggestions, and free entry when the nodes are unknown
        self.gpu_type = widgets.Combobox(options=types, value="", placeholder="any type",
                                         description="GPU type", style=_STYLE, ensure_option=known,
                                         disabled=True)
        self.room = widgets.HTML()
        self.cost = widgets.HTML()
        self.message = widgets.HTML()
        super().__init__([widgets.HBox([self.cpu, self.memory]), widgets.HBox([self.gpu, self.gpu_type]),
                          self.room, self.message, self.cost], **kwargs)
        self.add_class("mldeploy-resource-picker")
        if resources is not None:
            self.set_resources(resources)
        for w in (self.cpu, self.memory, self.gpu, self.gpu_type):
            w.observe(self._update, names="value")
        self.observe(self._update, names="replicas")
        self._update()

    # -- values ----------------------------------------------------------------------------------------

    def set_resources(self, resources: Resources) -> None:
        """Fill the form from a Resources value (quantities become cores and GiB)."""
        with self.hold_trait_notifications():
            self.cpu.value = float(quantity_value(resources.cpu)) if resources.cpu else 0.0
            self.memory.value = gib(quantity_value(resources.memory)) if resources.memory else 0.0
            if resources.gpu:
                self.gpu.max = max(self.gpu.max, resources.gpu)
                self.gpu.disabled = False
            self.gpu.value = resources.gpu
            self.gpu_type.value = resources.gpu_type or ""
        self._update()

    @property
    def gpu_type_value(self) -> str | None:
        return (self.gpu_type.value.strip() or None) if self.gpu.value else None

    def resources(self, base: Resources | None = None) -> Resources:
        """The Resources the form describes (limits and other fields of `base` are kept)."""
        fields = {"cpu": cpu_quantity(self.cpu.value), "memory": memory_quantity(self.memory.value),
                  "gpu": self.gpu.value, "gpu_type": self.gpu_type_value}
        if self.gpu.value:
            fields["gpu_resource"] = self.gpu_resource
        if base is None:
            return Resources(**fields)
        return dataclasses.replace(base, **fields)

    # -- feedback --------------------------------------------------------------------------------------

    def _update(self, _change: Any = None) -> None:
        self.gpu_type.disabled = self.gpu.value == 0
        cap = self.capacity
        gpu, gpu_type = self.gpu.value, self.gpu_type_value
        if not cap.known:
            why = html.escape(cap.reason or "No reason was given.")
            self.room.value = (f'<span style="color:#b26a00">Could not read the cluster\'s nodes: {why} Any '
                               f"amount may be entered; the cluster decides at deploy time.</span>")
            self.problem = ""
        else:
            self.room.value = self._room_words(gpu, gpu_type)
            cpu = Decimal(str(self.cpu.value)) if self.cpu.value else None
            memory = Decimal(str(self.memory.value)) * GIB if self.memory.value else None
            self.problem = cap.problem(cpu, memory, gpu, gpu_type, self.gpu_resource) or ""
        self.message.value = note_html(self.problem, "error") if self.problem else ""
        self.cost.value = self._cost_words()

    def _room_words(self, gpu: int, gpu_type: str | None) -> str:
        cap = self.capacity
        parts = []
        cpu_room = cap.room(0)
        if cpu_room is not None:
            parts.append(f"without GPUs {_n(cpu_room.cpu)} cpu, {_n(gib(cpu_room.memory))} GiB")
        for kind, most in cap.gpu_types(self.gpu_resource).items():
            room = cap.room(1, kind, self.gpu_resource)
            if room is not None:
                parts.append(f"with {html.escape(kind)} GPUs (up to {most}) {_n(room.cpu)} cpu, "
                             f"{_n(gib(room.memory))} GiB")
        if not parts:
            return note_html("No Ready, schedulable node was found.", "error")
        words = "; ".join(parts)
        return f'<span style="color:#555;font-size:12px">Largest pod the nodes can hold: {words}.</span>'

    def _cost_words(self) -> str:
        cost = estimate_cost(self.prices, self.cpu.value, self.memory.value, self.gpu.value,
                             self.gpu_type_value)
        lo, hi = self.replicas
        line = f"Estimated cost per replica: {_money(cost.hourly)}/hour, {_money(cost.monthly)}/month"
        if (lo, hi) != (1, 1):
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            total = (_money(cost.hourly * lo) if lo == hi
                     else f"{_money(cost.hourly * lo)} to {_money(cost.hourly * hi)}")
            monthly = (_money(cost.monthly * lo) if lo == hi
                       else f"{_money(cost.monthly * lo)} to {_money(cost.monthly * hi)}")
            line += f"; for {count} replicas {total}/hour, {monthly}/month"
        notes = []
        if cost.gpu_priced_by_default and self.gpu.value:
            notes.append("GPU at the default price")
        if self.example_prices:
            notes.append("EXAMPLE prices, not your provider's: pass price_table=")
        note = f" <i>({'; '.join(notes)})</i>" if notes else ""
        return f'<div class="mldeploy-cost" style="font-size:12px">{line}.{note}</div>'


def _n(x: float | Decimal) -> str:
    return f"{float(x):.2f}".rstrip("0").rstrip(".")
