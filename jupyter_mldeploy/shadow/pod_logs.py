"""`live_from_pods()`: `live()` over the model's pods' logs, read through the API server (bounded)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..connection import cluster
from ..errors import MLDeployError, SpecError
from ..spec import validate_model_name, validate_namespace
from .comparison import Mode
from .logjoin import live
from .report import ShadowReport

if TYPE_CHECKING:
    from ..kube.client import Kube

# What one pod's log read may bring back at most: its newest TAIL_LINES lines, and of those at most
# LIMIT_BYTES (the API server cuts there; the cut line is dropped). Both are said in the report.
TAIL_LINES = 50_000
LIMIT_BYTES = 32 * 1024 * 1024


def _get_text(kube: Kube, path: str, query: Mapping[str, Any], timeout: float, what: str) -> str:
    """GET a plain-text subresource (a pod log); the query bounds it (tailLines, limitBytes)."""
    return kube.text(path, query=query, timeout=timeout, what=what)


def _bounded_log(text: str, pod: str, tail_lines: int, limit_bytes: int) -> tuple[list[str], str | None]:
    """A pod log's lines, and a note when a bound was reached (so older or newer lines were not read)."""
    lines = text.splitlines()
    if len(text.encode("utf-8", errors="replace")) >= limit_bytes:
        if lines and not text.endswith("\n"):
            lines.pop()  # cut mid-line by limitBytes
        return lines, f"pod {pod}: only the first {limit_bytes} bytes of its last {tail_lines} lines read"
    if len(lines) >= tail_lines:
        return lines, f"pod {pod}: only its last {tail_lines} lines read"
    return lines, None


def live_from_pods(name: str, since: float | timedelta | None = None, *, namespace: str | None = None,
                   kube: Kube | None = None, kubeconfig: str | None = None, context: str | None = None,
                   container: str | None = None, mode: Mode = "auto", tolerance: float = 1e-6, k: int = 5,
                   output: str | None = None, timeout: float = 30.0, tail_lines: int = TAIL_LINES,
                   limit_bytes: int = LIMIT_BYTES) -> ShadowReport:
    """`live()` over the logs of the model's pods: stable track = primary, shadow track = shadow.

    Pods are found with `app.kubernetes.io/instance=<name>,mldeploy.io/track=<track>`; each pod's log is
    read with `GET .../pods/{pod}/log?sinceSeconds=...&tailLines=...&limitBytes=...` (all at once), so
    one read brings back at most `tail_lines` lines and `limit_bytes` bytes; when a pod's log reaches
    either bound, `report.primary` / `report.shadow` say so. `container` defaults to each pod's first
    container. Tested against the sandbox, whose kwok serves pod logs from files
    (tests/integration/test_pod_logs.py).
    """
    from .. import labels

    # Both go into request paths and sentences: a bad one is one sentence here, before any request.
    name = validate_model_name(name)
    kube = cluster(kube, kubeconfig, context)
    namespace = validate_namespace(namespace or kube.namespace)
    seconds = None
    if since is not None:
        seconds = since.total_seconds() if isinstance(since, timedelta) else float(since)
        if seconds <= 0:
            raise SpecError(f"since must be a positive number of seconds, not {since!r}.")
    for value, what in ((tail_lines, "tail_lines"), (limit_bytes, "limit_bytes")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{what} must be a positive whole number, not {value!r}.")
    tracks = {"primary": "stable", "shadow": "shadow"}
    notes: dict[str, list[str]] = {role: [] for role in tracks}

    def pods(track: str) -> list[dict]:
        selector = f"{labels.APP_INSTANCE}={name},{labels.TRACK}={track}"
        _, body = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               query={"labelSelector": selector}, what=f"pods of {name}")
        return body.get("items", [])

    def log(pod: dict) -> tuple[list[str], str | None]:
        pod_name = pod["metadata"]["name"]
        chosen = container or (pod.get("spec", {}).get("containers") or [{}])[0].get("name")
        query: dict[str, Any] = {"container": chosen, "tailLines": tail_lines, "limitBytes": limit_bytes}
        if seconds is not None:
            query["sinceSeconds"] = max(1, math.ceil(seconds))
        text = _get_text(kube, f"/api/v1/namespaces/{namespace}/pods/{pod_name}/log", query, timeout,
                         f"log of pod {pod_name}")
        return _bounded_log(text, pod_name, tail_lines, limit_bytes)

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = dict(zip(tracks, pool.map(pods, tracks.values()), strict=True))
        for role, track in tracks.items():
            if not found[role]:
                raise MLDeployError(f"No {track} pods of {name} in namespace {namespace} "
                                    f"({labels.APP_INSTANCE}={name},{labels.TRACK}={track}): there are no "
                                    f"{role} logs to read.")
        logs: dict[str, list[str]] = {}
        for role in tracks:
            logs[role] = []
            for lines, note in pool.map(log, found[role]):
                logs[role].extend(lines)
                if note:
                    notes[role].append(note)
    report = live(name, primary_log=logs["primary"], shadow_log=logs["shadow"], mode=mode,
                  tolerance=tolerance, k=k, output=output)
    for role, track in tracks.items():
        where = f"logs of {len(found[role])} {track} pod(s) in {namespace}"
        if notes[role]:
            where += " (bounded read: " + "; ".join(notes[role]) + ")"
        setattr(report, role, where)
    return report
