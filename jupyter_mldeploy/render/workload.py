"""One track of one model as manifests: Deployment, Service, HPA, PodDisruptionBudget and exposure.

Pure and deterministic: the same spec gives byte-identical manifests (no timestamps, no random names),
so applying it again changes nothing and restarts nothing.

Selectors, decided here and relied on by the routers:

- The Deployment selects `{instance, track}`. A selector is immutable once created, so it never holds
  the version; tracks never overlap, so the stable and canary Deployments never fight over pods.
- Each Service selects `{instance, track}` by default. With a traffic router (Gateway API, Istio,
  Knative, ingress-nginx) the weights point at `<name>` and `<name>-canary`, and each Service must
  reach only its own track, or the canary would get its weight plus a share of the stable's.
- With `replica_split=True` (no router) the stable Service `<name>` selects `{instance, live=true}`:
  the stable and canary pods together, so traffic divides by ready-replica ratio, while shadow and
  preview pods (`mldeploy.io/live=false`) never receive callers' requests.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import yaml

from .. import labels as L
from ..errors import SpecError
from ..labels import track_name
from ..spec import CLUSTER_ISSUER, ISSUER, REDACTED, DeploySpec, validate_namespace

HTTP_PORT_NAME = "http"
SERVICE_PORT = 80
CONTAINER_NAME = "model"
MODEL_VOLUME = "model"
LIVE_TRACKS = ("stable", "canary")  # tracks whose answers go back to callers


def object_name(spec: DeploySpec) -> str:
    """The name of every object rendered for this spec's track."""
    return track_name(spec.name, spec.track)


def resolve_namespace(spec: DeploySpec, namespace: str | None = None) -> str:
    """The spec's own namespace, else the given one (usually the kube context's); one is required."""
    if spec.namespace is not None:
        return spec.namespace
    if namespace is None:
        raise SpecError(f"model {spec.name!r} has no namespace: set namespace in the spec or pass the "
                        f"namespace to render (for example the kube context's default).")
    return validate_namespace(namespace)


def labels_for(spec: DeploySpec) -> dict[str, str]:
    """Labels on every object and pod of this track: the recommended set, ours, then the user's."""
    return {
        L.APP_NAME: spec.name,
        L.APP_INSTANCE: spec.name,
        L.APP_VERSION: spec.effective_version,
        L.APP_COMPONENT: L.COMPONENT_PREDICTOR,
        L.APP_MANAGED_BY: L.MANAGED_BY,
        L.TRACK: spec.track,
        L.LIVE: "true" if spec.track in LIVE_TRACKS else "false",
        **spec.labels,
    }


def selector_labels(spec: DeploySpec) -> dict[str, str]:
    """The Deployment's (immutable) selector: one model, one track; never the version."""
    return {L.APP_INSTANCE: spec.name, L.TRACK: spec.track}


def live_selector(spec: DeploySpec) -> dict[str, str]:
    """Every pod of the model that answers callers (stable and canary), for the router-less split."""
    return {L.APP_INSTANCE: spec.name, L.LIVE: "true"}


def spec_hash(template: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the canonical JSON of a pod template (without its hash)."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _metadata(spec: DeploySpec, namespace: str,
              annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": object_name(spec), "namespace": namespace, "labels": labels_for(spec)}
    merged = {**spec.annotations, **(annotations or {})}
    if merged:
        meta["annotations"] = merged
    return meta


def _probe(probe: Any) -> dict[str, Any]:
    return {
        "httpGet": {"path": probe.path, "port": probe.port if probe.port is not None else HTTP_PORT_NAME},
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "failureThreshold": probe.failure_threshold,
    }


def startup_probe(spec: DeploySpec) -> dict[str, Any]:
    """The startupProbe: failureThreshold * periodSeconds (after the initial delay) covers the window.

    Until it succeeds the kubelet runs neither the readiness nor the liveness probe, so a model that
    loads for minutes is not restarted half-way; after the window it is restarted like a hung one.
    """
    probe, window = spec.startup, spec.startup_window
    assert probe is not None and window is not None
    body = _probe(probe)
    body["failureThreshold"] = max(1, math.ceil((window - probe.initial_delay) / probe.period))
    return body


def _container(spec: DeploySpec) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": str(spec.image),
        # A pinned tag or digest never changes, so the node's copy is good; ':latest' must be re-pulled.
        "imagePullPolicy": "Always" if spec.image.is_floating else "IfNotPresent",
    }
    if spec.command is not None:
        c["command"] = list(spec.command)
    if spec.args:
        c["args"] = list(spec.args)
    c["ports"] = [{"name": HTTP_PORT_NAME, "containerPort": spec.port, "protocol": "TCP"}]
    env = [{"name": k, "value": v} for k, v in spec.env.items()]  # in the order given
    for k, ref in spec.env_from_secret.items():
        # Referenced, never copied: the kubelet reads the Secret; no manifest or record holds the value.
        secret, _, key = ref.partition(":")
        env.append({"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    if env:
        c["env"] = env
    resources = {k: v for k, v in (("requests", spec.resources.requests()),
                                   ("limits", spec.resources.limits())) if v}
    if resources:
        c["resources"] = resources
    if spec.readiness is not None:
        c["readinessProbe"] = _probe(spec.readiness)
    if spec.liveness is not None:
        c["livenessProbe"] = _probe(spec.liveness)
    if spec.startup is not None:
        c["startupProbe"] = startup_probe(spec)
    if spec.model_pvc is not None:
        c["volumeMounts"] = [{"name": MODEL_VOLUME, "mountPath": spec.model_path, "readOnly": True}]
    security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        # Model servers and their libraries write temp files and caches (torch, numba, tokenizers), so a
        # read-only root would break common images; the restricted standard does not require it either.
        "readOnlyRootFilesystem": False,
    }
    if spec.pod_security == "restricted":
        security["runAsNonRoot"] = True
    c["securityContext"] = security
    return c


def gpu_toleration_for(gpu_resource: str) -> dict[str, str]:
    """The toleration every pod asking for GPUs gets: GPU nodes are commonly tainted with their resource."""
    return {"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"}


def _pod_spec(spec: DeploySpec) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [_container(spec)]}
    if spec.service_account is not None:
        pod["serviceAccountName"] = spec.service_account
    # A model server has no business calling the Kubernetes API; no token means nothing to steal.
    pod["automountServiceAccountToken"] = False
    # Service links inject <SERVICE>_PORT variables for every Service in the namespace; a Service named
    # like a server's config prefix (e.g. "mlserver") would then reconfigure the model server.
    pod["enableServiceLinks"] = False
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if spec.pod_security == "restricted":
        pod_security["runAsNonRoot"] = True
    pod["securityContext"] = pod_security
    node_selector = dict(spec.node_selector)
    gpu_label = spec.resources.gpu_node_label
    if gpu_label is not None:
        node_selector[gpu_label[0]] = gpu_label[1]
    if node_selector:
        pod["nodeSelector"] = node_selector
    tolerations = [t.to_manifest() for t in spec.tolerations]
    if spec.resources.gpu:
        # GPU node pools are commonly tainted with the resource name (GKE, AKS, the GPU operator docs).
        gpu_toleration = gpu_toleration_for(spec.resources.gpu_resource)
        if gpu_toleration not in tolerations:
            tolerations.append(gpu_toleration)
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in spec.image_pull_secrets]
    if spec.model_pvc is not None:
        pod["volumes"] = [{"name": MODEL_VOLUME,
                           "persistentVolumeClaim": {"claimName": spec.model_pvc, "readOnly": True}}]
    pod["terminationGracePeriodSeconds"] = 30
    return pod


def pod_template(spec: DeploySpec) -> dict[str, Any]:
    """The pod template, annotated with the hash of itself (computed without the hash)."""
    template: dict[str, Any] = {"metadata": {"labels": labels_for(spec)}, "spec": _pod_spec(spec)}
    if spec.annotations:
        template["metadata"]["annotations"] = dict(spec.annotations)
    digest = spec_hash(template)
    template["metadata"]["annotations"] = {**spec.annotations, L.SPEC_HASH: digest}
    return template


def deployment(spec: DeploySpec, namespace: str, *, state: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Deployment. `state` holds rollout-state annotations for its metadata (see `render`)."""
    template = pod_template(spec)
    annotations = {L.SPEC_HASH: template["metadata"]["annotations"][L.SPEC_HASH], **(state or {})}
    body: dict[str, Any] = {}
    # With autoscaling the HPA owns the replica count; sending one here would reset it on every apply.
    # (Server-side apply: once the HPA has written replicas it owns the field, and our omitting it
    # leaves the HPA's value in place.)
    if spec.autoscale is None:
        body["replicas"] = spec.replicas if spec.replicas is not None else 1
    body["revisionHistoryLimit"] = 10
    body["progressDeadlineSeconds"] = 600
    body["selector"] = {"matchLabels": selector_labels(spec)}
    if spec.strategy == "recreate":
        body["strategy"] = {"type": "Recreate"}
    else:
        body["strategy"] = {"type": "RollingUpdate",
                            "rollingUpdate": {"maxSurge": spec.surge, "maxUnavailable": spec.unavailable}}
    body["template"] = template
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _metadata(spec, namespace, annotations), "spec": body}


def service(spec: DeploySpec, namespace: str, *, replica_split: bool = False) -> dict[str, Any]:
    """The Service on port 80 (ClusterIP unless `service_type` says NodePort, as GKE's Ingress needs, or
    LoadBalancer); see the module docstring for its selector."""
    selector = live_selector(spec) if replica_split and spec.track == "stable" else selector_labels(spec)
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": _metadata(spec, namespace),
        "spec": {
            "type": spec.service_type,
            "selector": selector,
            "ports": [{"name": HTTP_PORT_NAME, "port": SERVICE_PORT, "targetPort": HTTP_PORT_NAME,
                       "protocol": "TCP", "appProtocol": "http"}],
        },
    }


def autoscaler(spec: DeploySpec, namespace: str) -> dict[str, Any] | None:
    """The autoscaling/v2 HorizontalPodAutoscaler on CPU utilization, when the spec autoscales."""
    if spec.autoscale is None:
        return None
    target = {"type": "Utilization", "averageUtilization": spec.autoscale.cpu_percent}
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec, namespace),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": object_name(spec)},
            "minReplicas": spec.autoscale.min,
            "maxReplicas": spec.autoscale.max,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
        },
    }


def disruption_budget(spec: DeploySpec, namespace: str) -> dict[str, Any] | None:
    """A PodDisruptionBudget when the track keeps more than one pod.

    maxUnavailable 1 rather than minAvailable 1: it keeps all but one pod serving during a node drain
    at any replica count (minAvailable 1 would let a drain take 9 of 10 pods at once), and it follows
    the HPA's count without re-rendering. AlwaysAllow lets a drain evict pods that are not ready (a
    crash-looping model would otherwise block node maintenance forever). With one pod a budget could
    only block drains, so none is rendered.
    """
    if spec.autoscale is not None:
        least = spec.autoscale.min
    else:
        least = spec.replicas if spec.replicas is not None else 1
    if least <= 1:
        return None
    return {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _metadata(spec, namespace),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(spec)},
                 "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    }


def exposure(spec: DeploySpec, namespace: str) -> dict[str, Any] | None:
    """An HTTPRoute or Ingress to the stable Service, when `expose` is set.

    Rendered for the stable track only: the route belongs to the model, and canary/shadow traffic
    arrives through it as weights and mirrors that the routers write. Preview and other tracks are
    reached through their own Service (for example via the API server's service proxy).
    """
    if spec.expose is None or spec.track != "stable":
        return None
    if spec.expose == "gateway":
        assert spec.gateway is not None  # DeploySpec requires it with expose='gateway'
        gw_namespace, _, gw_name = spec.gateway.rpartition("/")
        parent: dict[str, Any] = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name}
        if gw_namespace:
            parent["namespace"] = gw_namespace
        route: dict[str, Any] = {"parentRefs": [parent]}
        if spec.host is not None:
            route["hostnames"] = [spec.host]
        route["rules"] = [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [{"name": object_name(spec), "port": SERVICE_PORT}],
        }]
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": _metadata(spec, namespace), "spec": route}
    rule: dict[str, Any] = {}
    if spec.host is not None:
        rule["host"] = spec.host
    rule["http"] = {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": object_name(spec), "port": {"name": HTTP_PORT_NAME}}},
    }]}
    body: dict[str, Any] = {}
    secret = spec.ingress_tls_secret
    if secret is not None:  # DeploySpec requires a host with TLS
        body["tls"] = [{"hosts": [spec.host], "secretName": secret}]
    # Only when asked: without it the cluster's default IngressClass serves the Ingress, as kubectl and
    # Helm charts leave it. Sent on every apply, so a redeploy keeps the class (server-side apply would
    # remove a field this manager stops sending).
    if spec.ingress_class is not None:
        body["ingressClassName"] = spec.ingress_class
    body["rules"] = [rule]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": _metadata(spec, namespace, ingress_annotations(spec)), "spec": body}


def ingress_annotations(spec: DeploySpec) -> dict[str, str]:
    """The annotations of the model's Ingress alone (GKE's static IP or pre-shared certificate, ...),
    with cert-manager's issuer annotation when `cert_issuer` is set (its ingress-shim then writes the
    certificate into the tls Secret)."""
    out = dict(spec.ingress_annotations)
    if spec.cert_issuer is not None:
        kind, _, name = spec.cert_issuer.rpartition("/")
        out[ISSUER if kind else CLUSTER_ISSUER] = name
    return out


def render(spec: DeploySpec, namespace: str | None = None, *, replica_split: bool = False,
           state: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Manifests for one track, ready for server-side apply, in apply order.

    Deployment, Service, HorizontalPodAutoscaler (if autoscaling), PodDisruptionBudget (if more than
    one pod), HTTPRoute or Ingress (if exposed, stable track only).

    `namespace`: used when the spec has none (the spec's own wins). `replica_split`: no traffic router,
    so the stable Service selects every live pod (see the module docstring). `state`: rollout-state
    annotations (`mldeploy.io/weight`, ...) for the Deployment's metadata, outside the pod template so
    changing them restarts nothing; pass them on every apply, because server-side apply removes the
    fields a manager stops sending.
    """
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"render needs a DeploySpec, got a {type(spec).__name__}.")
    ns = resolve_namespace(spec, namespace)
    for key, value in (state or {}).items():
        if not (isinstance(key, str) and key.startswith(L.PREFIX) and isinstance(value, str)):
            raise SpecError(f"rollout state {key!r} is not valid: keys must start with {L.PREFIX} and values "
                            f"must be strings.")
    manifests = [deployment(spec, ns, state=state), service(spec, ns, replica_split=replica_split)]
    for optional in (autoscaler(spec, ns), disruption_budget(spec, ns), exposure(spec, ns)):
        if optional is not None:
            manifests.append(optional)
    return manifests


def redact(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of `manifests` with every literal env value replaced by REDACTED (Secret references kept)."""
    return [_redacted(m) for m in manifests]


CHANGED = "<redacted, changed>"


def redact_pair(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both objects redacted for a diff; a value that differs reads CHANGED on the new side, so the
    diff still shows that it changed, never what it was or became."""
    old = {(c.get("name"), e.get("name")): e.get("value") for c in _containers(before)
           for e in c.get("env") or [] if isinstance(e, dict)}
    return _redacted(before), _redacted(after, old)


def _containers(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict):
        found = [obj] if "image" in obj else []
        return found + [c for v in obj.values() for c in _containers(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in _containers(v)]
    return []


def _redacted(node: Any, old: Mapping[tuple[Any, Any], Any] | None = None) -> Any:
    if isinstance(node, dict):
        out = {k: _redacted(v, old) for k, v in node.items()}
        env = out.get("env")
        if isinstance(env, list) and "image" in node:  # a container's env
            def hide(e: dict[str, Any]) -> dict[str, Any]:
                key = (node.get("name"), e.get("name"))
                changed = old is not None and key in old and old[key] != e["value"]
                return {**e, "value": CHANGED if changed else REDACTED}
            out["env"] = [hide(e) if isinstance(e, dict) and "value" in e else e for e in env]
        return out
    if isinstance(node, list):
        return [_redacted(v, old) for v in node]
    return node


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Multi-document YAML in the rendered key order, for dry runs and `kubectl apply -f`."""
    return yaml.safe_dump_all(manifests, sort_keys=False, explicit_start=True, default_flow_style=False,
                              width=4096, allow_unicode=True)
