"""DeploySpec's dict form (a YAML or JSON body, `%%deploy`'s cell): its keys, and both directions.

Apart from DeploySpec itself because the two grow at different rates: a new field is one line in the
dataclass and its validation, while its dict form (how it is spelled, what is left out as a default,
how a shorthand such as `pvc: claim:/path` unfolds) is written here. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .image import ImageRef
from .parts import Autoscale, Probe, Toleration, _startup_value, startup_probe
from .resources import Resources
from .rules import (
    LIVE_PATH,
    READY_PATH,
    _describe,
    _refuse_unknown,
    _strings,
    parse_env,
    parse_env_secrets,
    parse_pvc,
)

if TYPE_CHECKING:
    from .deploy import DeploySpec

__all__ = ["SPEC_FIELDS", "spec_from_dict", "spec_to_dict"]

# The keys of a YAML/dict spec, in the order `to_dict` writes them.
SPEC_FIELDS = (
    "name", "image", "allow_latest", "version", "namespace", "track",
    "cpu", "memory", "cpu_limit", "memory_limit", "gpu", "gpu_type", "gpu_resource",
    "replicas", "autoscale", "strategy", "max_surge", "max_unavailable",
    "port", "command", "args", "env", "env_from_secret", "readiness", "liveness", "startup",
    "startup_timeout", "pvc", "model_path",
    "node_selector", "tolerations", "image_pull_secrets", "service_account", "pod_security",
    "labels", "annotations", "expose", "host", "gateway", "ingress_class", "tls_secret", "cert_issuer",
    "ingress_annotations", "service_type",
)


def _whole(seconds: float | None) -> float | int | None:
    return int(seconds) if seconds is not None and seconds == int(seconds) else seconds


def spec_from_dict(cls: type[DeploySpec], data: Mapping[str, Any]) -> DeploySpec:
    """A `cls` from a YAML/JSON body with the keys in SPEC_FIELDS; `null` means the default."""
    if not isinstance(data, Mapping):
        raise SpecError(f"the spec must be a mapping of fields such as name and image, got "
                        f"{_describe(data)}.")
    _refuse_unknown(data, SPEC_FIELDS, "spec")
    for required in ("name", "image"):
        if data.get(required) is None:
            raise SpecError(f"the spec has no {required!r}: it is required.")
    d = {k: v for k, v in data.items() if v is not None or k in ("readiness", "liveness")}

    allow_latest = d.get("allow_latest", False)
    if not isinstance(allow_latest, bool):
        raise SpecError(f"allow_latest must be true or false, got {_describe(allow_latest)}.")
    image = d["image"] if isinstance(d["image"], ImageRef) else ImageRef.parse(d["image"],
                                                                              allow_latest=allow_latest)
    resources = Resources(**{k: d[k] for k in ("cpu", "memory", "cpu_limit", "memory_limit", "gpu",
                                               "gpu_type", "gpu_resource") if k in d})
    kwargs: dict[str, Any] = {k: d[k] for k in (
        "namespace", "track", "replicas", "strategy", "max_surge", "max_unavailable", "port",
        "node_selector", "service_account", "pod_security", "labels", "annotations", "version",
        "expose", "host", "gateway", "ingress_class", "model_path", "tls_secret", "cert_issuer",
        "ingress_annotations", "service_type") if k in d}
    if "autoscale" in d:
        kwargs["autoscale"] = Autoscale.from_value(d["autoscale"])
    if "env" in d:
        env = d["env"]
        kwargs["env"] = env if isinstance(env, Mapping) else parse_env(env)
    if "env_from_secret" in d:
        refs = d["env_from_secret"]
        kwargs["env_from_secret"] = refs if isinstance(refs, Mapping) else parse_env_secrets(refs)
    for key in ("args", "command", "image_pull_secrets"):
        if key in d:
            kwargs[key] = _strings(d[key], key)
    for key, default in (("readiness", READY_PATH), ("liveness", LIVE_PATH)):
        if key in d:
            kwargs[key] = Probe.from_value(d[key], default, key)
    if "startup" in d:
        kwargs["startup"] = startup_probe(d["startup"])
    if "startup_timeout" in d:
        kwargs["startup_timeout"] = d["startup_timeout"]
    if "tolerations" in d:
        items = d["tolerations"]
        if isinstance(items, (str, Mapping)) or not isinstance(items, Iterable):
            raise SpecError(f"tolerations must be a list, got {_describe(items)}.")
        kwargs["tolerations"] = tuple(Toleration.from_value(t) for t in items)
    if "pvc" in d:
        claim, path = parse_pvc(d["pvc"])
        if path is not None and "model_path" in d and d["model_path"] != path:
            raise SpecError(f"pvc mounts at {path!r} but model_path is {d['model_path']!r}: give the "
                            f"mount path in one place.")
        kwargs["model_pvc"] = claim
        if path is not None:
            kwargs["model_path"] = path
    return cls(d["name"], image, resources=resources, **kwargs)


def spec_to_dict(spec: DeploySpec) -> dict[str, Any]:
    """The dict form, leaving out defaults; `spec_from_dict(DeploySpec, spec_to_dict(spec)) == spec`."""
    r = spec.resources
    values: dict[str, Any] = {
        "name": spec.name, "image": str(spec.image), "allow_latest": spec.image.is_floating or None,
        "version": spec.version, "namespace": spec.namespace,
        "track": None if spec.track == "stable" else spec.track,
        "cpu": r.cpu, "memory": r.memory, "cpu_limit": r.cpu_limit, "memory_limit": r.memory_limit,
        "gpu": r.gpu or None, "gpu_type": r.gpu_type,
        "gpu_resource": None if r.gpu_resource == "nvidia.com/gpu" else r.gpu_resource,
        "replicas": spec.replicas, "autoscale": str(spec.autoscale) if spec.autoscale else None,
        "strategy": None if spec.strategy == "rolling" else spec.strategy,
        "max_surge": spec.max_surge, "max_unavailable": spec.max_unavailable,
        "port": None if spec.port == 8080 else spec.port,
        "startup": None if spec.startup is None else _startup_value(spec.startup),
        "startup_timeout": _whole(spec.startup_timeout),
        "command": list(spec.command) if spec.command is not None else None,
        "args": list(spec.args) or None, "env": dict(spec.env) or None,
        "env_from_secret": dict(spec.env_from_secret) or None,
        "pvc": f"{spec.model_pvc}:{spec.model_path}" if spec.model_pvc else None,
        "model_path": None if spec.model_pvc or spec.model_path == "/mnt/models" else spec.model_path,
        "node_selector": dict(spec.node_selector) or None,
        "tolerations": [t.to_manifest() for t in spec.tolerations] or None,
        "image_pull_secrets": list(spec.image_pull_secrets) or None,
        "service_account": spec.service_account, "pod_security": spec.pod_security,
        "labels": dict(spec.labels) or None, "annotations": dict(spec.annotations) or None,
        "expose": spec.expose, "host": spec.host, "gateway": spec.gateway,
        "ingress_class": spec.ingress_class, "tls_secret": spec.tls_secret,
        "cert_issuer": spec.cert_issuer,
        "ingress_annotations": dict(spec.ingress_annotations) or None,
        "service_type": None if spec.service_type == "ClusterIP" else spec.service_type,
    }
    out = {k: values[k] for k in SPEC_FIELDS if values.get(k) is not None}
    for key, default in (("readiness", READY_PATH), ("liveness", LIVE_PATH)):
        probe = getattr(spec, key)
        if probe is None:
            out[key] = None  # an explicit null disables the probe; a missing key means the default
        elif probe != Probe(default):
            out[key] = probe.to_value(default)
    return {k: out[k] for k in SPEC_FIELDS if k in out}
