"""Release records: one small Secret per deploy, holding the spec and the manifests written.

Like Helm 3's release history, they are Secrets (a spec's env values may be credentials) numbered by
the model's revision, which the API server orders (see `kube/owner.py`): never by a client clock, so
two kernels cannot collide on a name and a clock that is off changes nothing. They are written in the
same concurrent round as the objects (create-only) and read only when needed: to put changed objects
back after a failed deploy, and to roll back with every object (Service, HPA, route), not just the pod
template. The newest ten of each track are kept.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .. import labels as L
from ..spec import DeploySpec
from .workload import labels_for, object_name, track_name

RECORD = L.RECORD
REVISION = L.REVISION
SECRET_TYPE = L.RELEASE_SECRET_TYPE
KEEP = 10


def record_name(name: str, track: str, revision: int) -> str:
    return f"{track_name(name, track)}.release.v{revision}"


def release_record(spec: DeploySpec, manifests: Sequence[Mapping[str, Any]], namespace: str,
                   revision: int) -> dict[str, Any]:
    template_hash = next((m["spec"]["template"]["metadata"]["annotations"][L.SPEC_HASH]
                          for m in manifests if m["kind"] == "Deployment"), "")
    labels = {**labels_for(spec), RECORD: "release", L.SPEC_HASH: template_hash, REVISION: str(revision)}
    return {
        "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
        "metadata": {"name": record_name(spec.name, spec.track, revision), "namespace": namespace,
                     "labels": labels},
        "stringData": {"spec.json": json.dumps(spec.to_dict(), sort_keys=True),
                       "manifests.json": json.dumps(list(manifests), separators=(",", ":"))},
    }


def record_selector(name: str, track: str) -> str:
    return f"{L.selector_for(name, track)},{RECORD}=release"


def revision_of(record: Mapping[str, Any]) -> int:
    try:
        return int(record["metadata"].get("labels", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _field(record: Mapping[str, Any], key: str) -> str:
    if "stringData" in record and key in record["stringData"]:
        return record["stringData"][key]
    return base64.b64decode(record["data"][key]).decode()


def manifests_of(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return json.loads(_field(record, "manifests.json"))


def spec_of(record: Mapping[str, Any]) -> DeploySpec:
    return DeploySpec.from_dict(json.loads(_field(record, "spec.json")))


__all__ = ["KEEP", "RECORD", "REVISION", "SECRET_TYPE", "manifests_of", "object_name", "record_name",
           "record_selector", "release_record", "revision_of", "spec_of"]
