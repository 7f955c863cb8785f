"""The parts of a spec beside its resources: Autoscale, Probe, Toleration. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import SpecError
from .rules import (
    _QUALIFIED_RULE,
    READY_PATH,
    _choice,
    _describe,
    _int,
    _label_value,
    _qualified_name_ok,
    _refuse_unknown,
    _str,
)

# Autoscale, probes, tolerations


@dataclass(frozen=True)
class Autoscale:
    """Horizontal autoscaling on CPU utilization, as a percentage of the cpu request."""

    min: int
    max: int
    cpu_percent: int = 80

    def __post_init__(self) -> None:
        _int(self.min, "autoscale min", minimum=1)
        _int(self.max, "autoscale max", minimum=1)
        _int(self.cpu_percent, "autoscale cpu percent", minimum=1, maximum=100)
        if self.min > self.max:
            raise SpecError(f"autoscale min {self.min} is more than max {self.max}: min must be at most max.")

    @classmethod
    def parse(cls, text: str) -> Autoscale:
        """Parse 'MIN:MAX' or 'MIN:MAX:CPU%' (the '%' is optional), e.g. '2:10:70'."""
        text = _str(text, "autoscale", example="2:10:70")
        parts = text.split(":")
        if parts and parts[-1].endswith("%"):
            parts[-1] = parts[-1][:-1]
        if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts):
            raise SpecError(f"autoscale {text!r} is not valid: write MIN:MAX or MIN:MAX:CPU_PERCENT with "
                            f"whole numbers, such as 2:10:70.")
        return cls(*(int(p) for p in parts))

    @classmethod
    def from_value(cls, value: object) -> Autoscale | None:
        """An Autoscale, a 'MIN:MAX[:CPU]' string, a mapping {min, max, cpu}, or None."""
        if value is None or isinstance(value, Autoscale):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            allowed = ("min", "max", "cpu", "cpu_percent")
            _refuse_unknown(value, allowed, "autoscale")
            if "min" not in value or "max" not in value:
                raise SpecError("autoscale needs both 'min' and 'max', such as {min: 2, max: 10, cpu: 70}.")
            cpu = value.get("cpu", value.get("cpu_percent", 80))
            return cls(value["min"], value["max"], cpu)
        raise SpecError(f"autoscale must be 'MIN:MAX[:CPU]' or a mapping with min, max and cpu, "
                        f"got {_describe(value)}.")

    def __str__(self) -> str:
        return f"{self.min}:{self.max}:{self.cpu_percent}"


@dataclass(frozen=True)
class Probe:
    """An HTTP GET probe on the container; `port` None means the container's 'http' port."""

    path: str = READY_PATH
    port: int | None = None
    initial_delay: int = 0
    period: int = 5
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        path = _str(self.path, "probe path", example="/v2/health/ready")
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise SpecError(f"probe path {path!r} is not valid: it must start with '/' and contain no "
                            f"spaces.")
        if self.port is not None:
            _int(self.port, "probe port", minimum=1, maximum=65535)
        _int(self.initial_delay, "probe initial_delay", minimum=0)
        _int(self.period, "probe period", minimum=1)
        _int(self.failure_threshold, "probe failure_threshold", minimum=1)

    @classmethod
    def from_value(cls, value: object, default_path: str, field_: str) -> Probe | None:
        """A Probe, a path string, a mapping of Probe fields, or None (probe disabled)."""
        if value is None or isinstance(value, Probe):
            return value
        if isinstance(value, str):
            return cls(path=value)
        if isinstance(value, Mapping):
            allowed = tuple(f.name for f in dataclasses.fields(cls))
            _refuse_unknown(value, allowed, field_)
            return cls(**{"path": default_path, **value})
        raise SpecError(f"{field_} must be a path string, a mapping or null, got {_describe(value)}.")

    def to_value(self, default_path: str) -> str | dict[str, Any]:
        """The dict-form value: just the path when only the path differs, else a mapping."""
        if self == Probe(path=self.path):
            return self.path
        out: dict[str, Any] = {"path": self.path} if self.path != default_path else {}
        for f in dataclasses.fields(self):
            if f.name != "path" and getattr(self, f.name) != f.default:
                out[f.name] = getattr(self, f.name)
        return out


_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Toleration:
    """A pod toleration; `key` None with operator Exists tolerates every taint."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.key is not None and not _qualified_name_ok(_str(self.key, "toleration key")):
            raise SpecError(f"toleration key {self.key!r} is not valid: {_QUALIFIED_RULE}.")
        _choice(self.operator, "toleration operator", ("Equal", "Exists"))
        if self.value is not None:
            _label_value(self.value, "toleration value")
        if self.operator == "Exists" and self.value:
            raise SpecError(f"toleration {self.key!r} has operator Exists and value {self.value!r}: Exists "
                            f"matches any value, so leave value empty.")
        if self.key is None and self.operator != "Exists":
            raise SpecError("a toleration without a key must use operator Exists (it then tolerates every "
                            "taint).")
        if self.effect is not None:
            _choice(self.effect, "toleration effect", _EFFECTS)
        if self.toleration_seconds is not None:
            _int(self.toleration_seconds, "toleration tolerationSeconds")
            if self.effect != "NoExecute":
                raise SpecError("toleration tolerationSeconds only applies to the NoExecute effect.")

    @classmethod
    def parse(cls, text: str) -> Toleration:
        """Parse kubectl's taint syntax: 'key=value:Effect' (Equal) or 'key:Effect' / 'key' (Exists)."""
        text = _str(text, "toleration", example="nvidia.com/gpu:NoSchedule")
        rest, colon, effect = text.rpartition(":")
        if not colon:
            rest, effect = text, ""
        key, eq, value = rest.partition("=")
        if not key:
            raise SpecError(f"toleration {text!r} is not valid: write key=value:Effect or key:Effect, "
                            f"such as nvidia.com/gpu:NoSchedule.")
        return cls(key, "Equal" if eq else "Exists", value if eq else None, effect or None)

    @classmethod
    def from_value(cls, value: object) -> Toleration:
        """A Toleration, a kubectl-style string, or a mapping with Kubernetes or snake_case keys."""
        if isinstance(value, Toleration):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            _refuse_unknown(value, ("key", "operator", "value", "effect", "tolerationSeconds",
                                    "toleration_seconds"), "toleration")
            seconds = value.get("tolerationSeconds", value.get("toleration_seconds"))
            return cls(value.get("key"), value.get("operator", "Equal"), value.get("value"),
                       value.get("effect"), seconds)
        raise SpecError(f"a toleration must be a mapping or 'key=value:Effect', got {_describe(value)}.")

    def to_manifest(self) -> dict[str, Any]:
        out = {"key": self.key, "operator": self.operator, "value": self.value, "effect": self.effect,
               "tolerationSeconds": self.toleration_seconds}
        return {k: v for k, v in out.items() if v is not None}


# ---------------------------------------------------------------------------------------------------------


# Startup probes: a path or Probe fields, probed every STARTUP_PERIOD seconds over a window.

STARTUP_TIMEOUT = 600.0  # seconds a startup probe allows when no startup_timeout is given
STARTUP_MAX = 24 * 3600
STARTUP_PERIOD = 10  # seconds between startup probes unless the probe says otherwise


def startup_probe(value: object) -> Probe:
    """The startup probe from a path or a mapping of Probe fields; probed every STARTUP_PERIOD s."""
    if isinstance(value, Probe):
        return value
    if isinstance(value, str):
        return Probe(path=value, period=STARTUP_PERIOD)
    if isinstance(value, Mapping):
        return Probe.from_value({"period": STARTUP_PERIOD, **value}, READY_PATH, "startup")
    raise SpecError(f"startup must be a path string such as /v2/health/ready, or a mapping, got "
                    f"{_describe(value)}.")


def _startup_value(probe: Probe) -> str | dict[str, Any]:
    if probe == Probe(path=probe.path, period=STARTUP_PERIOD):
        return probe.path
    value = probe.to_value(READY_PATH)
    out = {"path": probe.path} if isinstance(value, str) else {"path": probe.path, **value}
    out["period"] = probe.period
    return out
