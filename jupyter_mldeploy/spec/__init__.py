"""What to deploy: `DeploySpec` and its parts, parsed and validated with no I/O.

Every bad value raises `SpecError` with one sentence naming the field and the rule, before any request
leaves the machine. Nothing is truncated, rewritten or guessed: a value is either kept exactly as given
or refused with the reason.

One module per sub-topic: rules (names, strings, maps, CLI pairs), image (the reference grammar),
quantity, resources, parts (autoscale, probes, tolerations), deploy (DeploySpec), dict_form (its
YAML/dict form and SPEC_FIELDS) and candidates (inherit, changes_of). Every name is importable from
`jupyter_mldeploy.spec` as before.
"""

from __future__ import annotations

from .candidates import changes_of, inherit
from .deploy import DeploySpec
from .dict_form import SPEC_FIELDS
from .image import ImageRef
from .parts import STARTUP_MAX, STARTUP_PERIOD, STARTUP_TIMEOUT, Autoscale, Probe, Toleration, startup_probe
from .quantity import parse_quantity, quantity_value, reported_amount
from .resources import GPU_TYPE_LABELS, Resources
from .rules import (
    CLUSTER_ISSUER,
    ISSUER,
    LIVE_PATH,
    NAME_MAX,
    READY_PATH,
    REDACTED,
    SERVICE_TYPES,
    TRACK_SUFFIX_MAX,
    Expose,
    FrozenMap,
    ServiceType,
    Strategy,
    Track,
    parse_env,
    parse_env_secrets,
    parse_pairs,
    parse_pvc,
    parse_secret_ref,
    validate_gateway,
    validate_model_name,
    validate_namespace,
    validate_object_name,
)

__all__ = [
    "CLUSTER_ISSUER", "GPU_TYPE_LABELS", "ISSUER", "LIVE_PATH", "NAME_MAX", "READY_PATH", "REDACTED",
    "SERVICE_TYPES", "SPEC_FIELDS", "STARTUP_MAX", "STARTUP_PERIOD", "STARTUP_TIMEOUT", "TRACK_SUFFIX_MAX",
    "Autoscale", "DeploySpec", "Expose", "FrozenMap", "ImageRef", "Probe", "Resources", "ServiceType",
    "Strategy", "Toleration", "Track", "changes_of", "inherit", "parse_env", "parse_env_secrets",
    "parse_pairs", "parse_pvc", "parse_quantity", "parse_secret_ref", "quantity_value", "reported_amount",
    "startup_probe",
    "validate_gateway", "validate_model_name", "validate_namespace", "validate_object_name",
]
