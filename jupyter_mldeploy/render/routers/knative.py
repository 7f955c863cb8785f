"""Knative router: one Knative Service `<name>` (serving.knative.dev/v1) that carries the model's pod
template and splits requests between revisions with `spec.traffic`.

Knative replaces the workload objects: it creates a Deployment per revision, its own autoscaler, and a
Kubernetes Service named `<name>` (plus `<tag>-<name>` per tagged revision). So with this router the
rollout applies none of `render()`'s Deployments, Services or HorizontalPodAutoscalers for the model: a
Service `<name>` that Knative does not own makes its route fail. Knative cannot mirror requests
(`traffic.check_supported` refuses shadow), and it always starts a revision before retiring the old one
(recreate is refused).

Revisions are named `<name>-<version slug>` through `spec.template.metadata.name`; Knative refuses a
template change under an existing revision name, so a changed template needs a new version (two
versions with the same slug, such as '1.4' and '1-4', are the same revision). The template is the
newest revision: the candidate's during a canary or blue-green, the stable one's otherwise; earlier
revisions stay and are addressed by name in `spec.traffic`. Each traffic entry has a tag (its track),
which Knative turns into a URL that reaches that revision directly (a blue-green preview at 0%, for
example).

`autoscaling.knative.dev/min-scale` is "1" to keep a pod warm, or "0" with `scale_to_zero=True` (when
the cluster allows scale to zero); a model server's cold start is often tens of seconds.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ... import labels as L
from ...errors import SpecError
from . import Traffic

ROUTER = "knative"
MIN_SCALE = "autoscaling.knative.dev/min-scale"

# Knative's config-features flags that a pod spec needs (all disabled by default); its webhook refuses
# the fields otherwise. Names from knative.dev/serving pkg/apis/config/features.go.
FEATURE_NODE_SELECTOR = "kubernetes.podspec-nodeselector"
FEATURE_TOLERATIONS = "kubernetes.podspec-tolerations"
FEATURE_PVC = "kubernetes.podspec-persistent-volume-claim"
FEATURE_AFFINITY = "kubernetes.podspec-affinity"

_SLUG_BAD = re.compile(r"[^a-z0-9-]+")


def revision_name(name: str, version: str) -> str:
    """`<name>-<version slug>`: the version lower-cased, runs of other characters turned into '-'."""
    if not isinstance(version, str):
        raise SpecError(f"version must be a string, got {version!r}.")
    slug = _SLUG_BAD.sub("-", version.lower()).strip("-")
    if not slug:
        raise SpecError(f"version {version!r} has no letters or digits to name a Knative revision.")
    revision = f"{name}-{slug}"
    if len(revision) > 63:
        raise SpecError(f"Knative revision name {revision!r} is {len(revision)} characters, over the "
                        f"63-character limit: use a shorter version or model name.")
    return revision


def knative_pod_spec(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    """A Deployment pod spec (render's) reshaped into what Knative's webhook accepts, same behaviour.

    The port keeps its number but loses the name 'http' (Knative allows only '', 'http1', 'h2c');
    probes on that named port lose the port (Knative fills in the serving port); the pod securityContext
    (refused unless a feature flag is on) moves to each container, which accepts the same
    seccompProfile and runAsNonRoot; terminationGracePeriodSeconds is dropped (Knative drains with its
    own timeout). Everything else is kept, including fields that need a feature flag (see
    `required_features`), because dropping a GPU node selector would misplace pods silently.
    """
    spec = copy.deepcopy(dict(pod_spec))
    spec.pop("terminationGracePeriodSeconds", None)
    pod_security = spec.pop("securityContext", None) or {}
    moved = {k: pod_security[k] for k in ("seccompProfile", "runAsNonRoot", "runAsUser", "runAsGroup")
             if k in pod_security}
    for container in spec.get("containers", []):
        named = {p.get("name") for p in container.get("ports", []) if p.get("name") not in ("http1", "h2c")}
        for port in container.get("ports", []):
            if port.get("name") not in ("http1", "h2c"):
                port.pop("name", None)
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            get = container.get(probe, {}).get("httpGet")
            if get is not None and get.get("port") in named:
                del get["port"]
        if moved:
            container["securityContext"] = {**moved, **container.get("securityContext", {})}
    return spec


def required_features(pod_spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The Knative feature flags (config-features ConfigMap) this pod spec needs enabled."""
    needed = []
    if pod_spec.get("nodeSelector"):
        needed.append(FEATURE_NODE_SELECTOR)
    if pod_spec.get("tolerations"):
        needed.append(FEATURE_TOLERATIONS)
    if pod_spec.get("affinity"):
        needed.append(FEATURE_AFFINITY)
    if any("persistentVolumeClaim" in v for v in pod_spec.get("volumes", [])):
        needed.append(FEATURE_PVC)
    return tuple(needed)


def route(name: str, namespace: str, *, stable_weight: int, candidate_weight: int,
          candidate_track: str | None = "canary", mirror_percent: int | None = None,
          mirror_track: str = "shadow", host: str | None = None, gateway: str | None = None,
          labels: Mapping[str, str], port: int = 80, state: Mapping[str, str] | None = None,
          annotations: Mapping[str, str] | None = None, template: Mapping[str, Any], stable_version: str,
          candidate_version: str | None = None, scale_to_zero: bool = False) -> list[dict[str, Any]]:
    """The Knative Service for `name`.

    `template` is the pod template (render's `pod_template(spec)`) of the newest revision: the
    candidate's when `candidate_track` is set, else the stable one's. `stable_version` and
    `candidate_version` name the revisions. `port` is unused: Knative always serves on port 80.
    """
    t = Traffic(name, namespace, stable_weight, candidate_weight, candidate_track, mirror_percent,
                mirror_track, host, gateway, labels, port, state, annotations)
    if t.mirror_percent is not None:
        raise SpecError("Knative Serving cannot mirror requests, so the knative router takes no mirror; use "
                        "the gateway, istio or nginx router for shadow traffic.")
    if t.host is not None or t.gateway is not None:
        raise SpecError("the knative router takes its host names from the cluster's Knative domain "
                        "configuration, so host and gateway cannot be set (map a custom host with a Knative "
                        "DomainMapping).")
    if not isinstance(scale_to_zero, bool):
        raise SpecError(f"scale_to_zero must be true or false, got {scale_to_zero!r}.")
    if not isinstance(template, Mapping) or not isinstance(template.get("spec"), Mapping):
        raise SpecError("template must be a pod template with metadata and spec (render's pod_template).")
    stable_rev = revision_name(t.name, stable_version)
    traffic = [{"revisionName": stable_rev, "percent": t.stable_weight, "tag": "stable"}]
    newest = stable_rev
    if t.candidate_track is not None:
        if candidate_version is None:
            raise SpecError(f"candidate_version is required with candidate track {t.candidate_track!r}: it "
                            f"names the candidate's revision.")
        newest = revision_name(t.name, candidate_version)
        if newest == stable_rev:
            raise SpecError(f"stable and candidate versions {stable_version!r} and {candidate_version!r} "
                            f"both name revision {newest!r}: give the candidate a different version.")
        traffic.append({"revisionName": newest, "percent": t.candidate_weight, "tag": t.candidate_track})
    elif candidate_version is not None:
        raise SpecError("candidate_version is set but there is no candidate track: give candidate_track.")
    meta = template.get("metadata") or {}
    template_meta: dict[str, Any] = {"name": newest}
    if meta.get("labels"):
        template_meta["labels"] = dict(meta["labels"])
    template_meta["annotations"] = {**(meta.get("annotations") or {}),
                                    MIN_SCALE: "0" if scale_to_zero else "1"}
    return [{
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": t.metadata(t.name, ROUTER),
        "spec": {"template": {"metadata": template_meta, "spec": knative_pod_spec(template["spec"])},
                 "traffic": traffic},
    }]


# -- driven by rollout_knative: revisions that carry their own spec --------------------------------------

MAX_SCALE = "autoscaling.knative.dev/max-scale"
TARGET = "autoscaling.knative.dev/target"
# On each revision template: the DeploySpec and Scale it runs, so any revision can be rolled back to
# from the cluster alone (a Revision keeps its template's annotations).
SPEC = L.KNATIVE_SPEC
SCALE = L.KNATIVE_SCALE
STABLE_REVISION = L.STABLE_REVISION
CANDIDATE_REVISION = L.CANDIDATE_REVISION


@dataclass(frozen=True)
class Scale:
    """How Knative's autoscaler sizes a revision: `min` pods kept (0 lets it scale to zero after the idle
    window), at most `max` (None: no limit), `target` concurrent requests per pod (None: Knative's 100)."""

    min: int = 1
    max: int | None = None
    target: int | None = None

    def __post_init__(self) -> None:
        for what, value, low in (("min-scale", self.min, 0), ("max-scale", self.max, 1),
                                 ("concurrency target", self.target, 1)):
            if value is None and what != "min-scale":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SpecError(f"{what} must be a whole number of at least {low}, got {value!r}.")
        if self.max is not None and self.min > self.max:
            raise SpecError(f"min-scale {self.min} is more than max-scale {self.max}: min must be at most "
                            f"max.")

    def annotations(self) -> dict[str, str]:
        out = {MIN_SCALE: str(self.min)}
        if self.max is not None:
            out[MAX_SCALE] = str(self.max)
        if self.target is not None:
            out[TARGET] = str(self.target)
        return out

    def to_dict(self) -> dict[str, int]:
        return {k: v for k, v in (("min", self.min), ("max", self.max), ("target", self.target))
                if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scale:
        return cls(**{k: data[k] for k in ("min", "max", "target") if k in data})

    def __str__(self) -> str:
        parts = [f"min-scale {self.min}" + (" (scales to zero when idle)" if self.min == 0 else "")]
        parts.append(f"max-scale {self.max}" if self.max is not None else "no max-scale")
        if self.target is not None:
            parts.append(f"target {self.target} concurrent requests per pod")
        return ", ".join(parts)


def revision_template(spec_dict: Mapping[str, Any], pod_template: Mapping[str, Any], scale: Scale,
                      *, name: str, version: str) -> dict[str, Any]:
    """The Knative template of one revision: named `<name>-<version slug>-<hash>`, where the hash covers
    the pod spec and the scale, so a new image or spec is a new revision and the same spec is the same
    revision (which is what lets a rollback name an existing revision again).

    `spec_dict` is the DeploySpec's dict (kept in an annotation), `pod_template` render's pod template.
    Track labels are left out: a revision changes role (canary, then stable) without changing.
    """
    pod_spec = _probe_defaults(knative_pod_spec(pod_template["spec"]))
    meta = pod_template.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != L.SPEC_HASH}
    annotations.update(scale.annotations())
    annotations[SPEC] = json.dumps(dict(spec_dict), sort_keys=True, separators=(",", ":"))
    annotations[SCALE] = json.dumps(scale.to_dict(), sort_keys=True, separators=(",", ":"))
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (L.TRACK, L.LIVE)}
    # Everything under the name goes into the hash: Knative refuses any template change, metadata
    # included, that keeps the revision's name.
    body = {"spec": pod_spec, "labels": labels, "annotations": annotations}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:5]
    revision = revision_name(name, f"{version}-{digest}")
    return {"metadata": {"name": revision, "labels": labels, "annotations": annotations}, "spec": pod_spec}


# Kubernetes' probe defaults. Knative's webhook fills in timeoutSeconds and successThreshold when a
# Service is created but not on update, so a template re-applied without them reads as a change under
# the same revision name, which the webhook refuses: send them ourselves.
_PROBE_DEFAULTS = {"timeoutSeconds": 1, "successThreshold": 1}


def _probe_defaults(pod_spec: dict[str, Any]) -> dict[str, Any]:
    for container in pod_spec.get("containers", []):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if isinstance(container.get(probe), dict):
                container[probe] = {**_PROBE_DEFAULTS, **container[probe]}
    return pod_spec


def service(name: str, namespace: str, *, template: Mapping[str, Any], traffic: list[dict[str, Any]],
            labels: Mapping[str, str], state: Mapping[str, str],
            resource_version: str | None = None) -> dict[str, Any]:
    """The Knative Service: the newest revision's template and the traffic block, which names revisions.

    `traffic` entries are (revisionName, percent, tag); the percents must add up to 100. With
    `resource_version` the write is refused (409) if the Service changed since it was read.
    """
    total = sum(t["percent"] for t in traffic)
    if total != 100:
        raise SpecError(f"the traffic percents add up to {total}, not 100.")
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels),
                            "annotations": {L.ROUTER: ROUTER, **state}}
    if resource_version:
        meta["resourceVersion"] = resource_version
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": meta,
            "spec": {"template": copy.deepcopy(dict(template)), "traffic": [dict(t) for t in traffic]}}
