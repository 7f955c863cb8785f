"""Release records: one small ConfigMap per deploy, holding the spec and the manifests written.

They are written in the same concurrent round as the objects (a unique name, so always a create)
and read only when needed: to put changed objects back after a failed deploy, and to roll back to
an earlier revision with every object (Service, HPA, route), not just the pod template. Like Helm's
release history, the newest ten are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import labels as L
from ..spec import DeploySpec
from .workload import labels_for, object_name

RECORD = "mldeploy.io/record"
CREATED_MS = "mldeploy.io/created-ms"
KEEP = 10


def record_name(spec: DeploySpec, created_ms: int) -> str:
    return f"{object_name(spec)}.release.{created_ms}"


def release_record(spec: DeploySpec, manifests: Sequence[Mapping[str, Any]], namespace: str,
                   created_ms: int) -> dict[str, Any]:
    template_hash = next((m["spec"]["template"]["metadata"]["annotations"][L.SPEC_HASH]
                          for m in manifests if m["kind"] == "Deployment"), "")
    labels = {**labels_for(spec), RECORD: "release", L.SPEC_HASH: template_hash}
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": record_name(spec, created_ms), "namespace": namespace, "labels": labels,
                     "annotations": {CREATED_MS: str(created_ms)}},
        "data": {"spec.json": json.dumps(spec.to_dict(), sort_keys=True),
                 "manifests.json": json.dumps(list(manifests), separators=(",", ":"))},
    }


def record_selector(name: str, track: str) -> str:
    return f"{L.selector_for(name, track)},{RECORD}=release"


def created_ms(record: Mapping[str, Any]) -> int:
    return int(record["metadata"].get("annotations", {}).get(CREATED_MS, "0"))


def manifests_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return json.loads(record["data"]["manifests.json"])


def spec_of(record: Mapping[str, Any]) -> DeploySpec:
    return DeploySpec.from_dict(json.loads(record["data"]["spec.json"]))
