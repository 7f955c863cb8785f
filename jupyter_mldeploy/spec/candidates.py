"""Rollout candidates: the stable spec with some fields changed (inherit), and the fields a spec
changes (changes_of). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpecError
from .deploy import DeploySpec
from .dict_form import SPEC_FIELDS
from .rules import _describe, _refuse_unknown

# Fields that say where and which track, never "what runs": a change never carries them.
_PLACE = ("name", "namespace", "track")
# Mappings merge key by key: `--env LOG=debug` on a canary adds LOG and keeps the stable's other vars.
_MERGED_MAPS = ("env", "env_from_secret", "labels", "annotations", "node_selector")
# Giving the first field drops the stable's value of the others (they would contradict it).
_REPLACES = {
    "image": ("version", "allow_latest"),
    "autoscale": ("replicas",),
    "replicas": ("autoscale",),
    "pvc": ("model_path",),
    "model_path": ("pvc",),
    "expose": ("host", "gateway", "ingress_class"),
}


def changes_of(spec: DeploySpec) -> dict[str, Any]:
    """The fields of `spec` that differ from DeploySpec's defaults, as `from_dict` keys (without name,
    namespace and track): what a DeploySpec means when it is given as the changes of a rollout."""
    return {k: v for k, v in spec.to_dict().items() if k not in _PLACE}


def inherit(stable: DeploySpec, changes: Mapping[str, Any]) -> DeploySpec:
    """The stable spec with only `changes` (from_dict keys) changed, validated as a whole.

    Mappings (env, env_from_secret, labels, annotations, node_selector) merge key by key; a field that
    contradicts others drops the stable's value of those (a new image drops a pinned version, replicas
    drops autoscale, and the other way round); name, namespace and track are not changes and are refused.
    """
    if not isinstance(changes, Mapping):
        raise SpecError(f"the changes must be a mapping of fields such as image and env, got "
                        f"{_describe(changes)}.")
    _refuse_unknown(changes, SPEC_FIELDS, "changes")
    place = [k for k in _PLACE if k in changes and changes[k] != getattr(stable, k)]
    if place:
        raise SpecError(f"{place[0]} cannot be changed by a rollout: the candidate runs beside "
                        f"{stable.name}'s stable model, in its namespace.")
    base = stable.to_dict()
    for key, value in changes.items():
        if key in _PLACE:
            continue
        for dropped in _REPLACES.get(key, ()):
            if dropped not in changes:
                base.pop(dropped, None)
        if key in _MERGED_MAPS and isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    if "env" in changes or "env_from_secret" in changes:
        # A name moved from a value to a Secret (or back) keeps only its new source.
        for key, other in (("env", "env_from_secret"), ("env_from_secret", "env")):
            if key in changes and isinstance(changes[key], Mapping) and isinstance(base.get(other), Mapping):
                base[other] = {k: v for k, v in base[other].items() if k not in changes[key]}
    return DeploySpec.from_dict(base)
