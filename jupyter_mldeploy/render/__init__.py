"""DeploySpec -> list of manifest dicts; pure functions, no I/O."""

from __future__ import annotations

from .workload import (
    labels_for,
    live_selector,
    object_name,
    pod_template,
    redact,
    redact_pair,
    render,
    resolve_namespace,
    selector_labels,
    spec_hash,
    to_yaml,
    track_name,
)

__all__ = [
    "labels_for", "live_selector", "object_name", "pod_template", "redact", "redact_pair", "render",
    "resolve_namespace", "selector_labels", "spec_hash", "to_yaml", "track_name",
]
