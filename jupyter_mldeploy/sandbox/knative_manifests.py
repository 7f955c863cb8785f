"""Knative Serving's objects for the sandbox, pure but for reading the module's files: its CRDs,
its ConfigMaps with the sandbox's changes, the components' Services and Endpoints, the webhooks.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import knative_ingress as ingress
from .knative_build import NAMESPACE, VERSION
from .knative_net import Net

QUEUE_IMAGE = f"mldeploy.local/knative-serving/queue:v{VERSION}"
# Images from these registries are used by their tag, as written: no registry is asked for a digest.
# Any other registry is asked, and in the sandbox that fails at once (no route out of the namespace),
# which is how a Revision whose image cannot be resolved looks.
SKIP_TAG_RESOLVING = ("kind.local", "ko.local", "dev.local", "mldeploy.local", "sandbox.local", "ghcr.io",
                      "docker.io",
                      "index.docker.io", "quay.io", "registry.k8s.io", "gcr.io", "example.com",
                      "localhost", "localhost:5000", "127.0.0.1:5000")
# A revision that never becomes ready fails after this long (Knative's default is 600 s).
PROGRESS_DEADLINE = "90s"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def system_manifests(dirs: dict[str, Path], net: Net, networking: bool = False,
                     ) -> tuple[list[dict], list[dict], list[dict]]:
    """(CRDs, objects, webhook configurations) for Knative in the sandbox; with `networking`, for
    revisions on the real node behind Traefik's KIngress. Pure but for reading files."""
    core = dirs["serving"] / "config" / "core"
    crds = [d for p in sorted((core / "300-resources").glob("*.yaml")) for d in _docs(p)]
    for name in ("certificate", "domain-claim", "ingress", "serverlessservice"):
        crds += _docs(dirs["networking"] / "config" / f"{name}.yaml")
    crds += _docs(dirs["caching"] / "config" / "image.yaml")
    crds = [d for d in crds if d.get("kind") == "CustomResourceDefinition"]

    objects = _docs(core / "100-namespace.yaml")
    configmaps = [d for p in sorted((core / "configmaps").glob("*.yaml")) for d in _docs(p)]
    configmaps += _docs(dirs["networking"] / "config" / "config-network.yaml")
    objects += [_configure(cm, networking) for cm in configmaps if cm.get("kind") == "ConfigMap"]
    objects += _docs(core / "300-knativecertificate.yaml")
    for image in _docs(core / "999-cache.yaml"):
        image["spec"]["image"] = QUEUE_IMAGE
        objects.append(image)
    webhooks = []
    for p in sorted((core / "webhooks").glob("*.yaml")):
        for d in _docs(p):
            (objects if d["kind"] == "Secret" else webhooks).append(d)
    # The components' Services without selectors (no pod backs them), and Endpoints at their namespaces.
    for component, service in (("webhook", "webhook"), ("autoscaler", "autoscaler"),
                               ("activator", "activator-service")):
        for d in _docs(core / "deployments" / f"{component}.yaml"):
            if d["kind"] == "Service" and d["metadata"]["name"] == service:
                d["spec"].pop("selector", None)
                objects.append(d)
                objects.append(_endpoints(d, net.ip(component)))
    return crds, objects, webhooks


def _endpoints(service: dict, ip: str) -> dict:
    ports = [{"name": p["name"], "port": int(p.get("targetPort", p["port"])), "protocol": "TCP"}
             for p in service["spec"]["ports"] if isinstance(p.get("targetPort", p["port"]), int)]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": service["metadata"]["name"], "namespace": NAMESPACE,
                         "labels": dict(service["metadata"].get("labels", {}))},
            "subsets": [{"addresses": [{"ip": ip}], "ports": ports}]}


# What the sandbox changes in Knative's ConfigMaps (the rest stays at Knative's defaults).
_CONFIG = {
    "config-deployment": {
        "queue-sidecar-image": QUEUE_IMAGE,
        "registries-skipping-tag-resolving": ",".join(SKIP_TAG_RESOLVING),
        "digest-resolution-timeout": "5s",
        "progress-deadline": PROGRESS_DEADLINE,
        # Simulated nodes have room, but the default 400Mi per revision pod adds up in tests.
        "queue-sidecar-memory-request": "50Mi",
        "queue-sidecar-cpu-request": "10m",
    },
    # The pod specs jupyter-mldeploy renders use these (GPU pools: node selector and tolerations).
    "config-features": {
        "kubernetes.podspec-nodeselector": "enabled",
        "kubernetes.podspec-tolerations": "enabled",
        "kubernetes.podspec-affinity": "enabled",
        "kubernetes.podspec-persistent-volume-claim": "enabled",
        "kubernetes.podspec-persistent-volume-write": "enabled",
    },
    "config-observability": {"metrics-protocol": "none", "tracing-protocol": "none"},
    "config-leader-election": {"buckets": "1", "lease-duration": "15s", "renew-deadline": "10s",
                               "retry-period": "2s"},
    "config-logging": {"loglevel.controller": "info", "loglevel.autoscaler": "info"},
}


# Beside the real node: its pods pull the queue-proxy from the node's registry, Traefik takes every
# KIngress, and an idle revision's window and grace period are 6 s instead of Knative's 60 s and 30 s,
# so trying scale to zero (zero pods about 40 s after the last request, measured) and a cold start takes
# well under a minute. The activator stays in every request's
# path (target-burst-capacity -1): before scaling to zero the autoscaler otherwise checks that it is
# there through cluster DNS and a ClusterIP, which the components' namespaces do not have.
_NETWORKING_CONFIG = {
    "config-deployment": {"queue-sidecar-image": ingress.queue_image()},
    "config-network": {"ingress-class": ingress.INGRESS_CLASS},
    "config-autoscaler": {"stable-window": "6s", "scale-to-zero-grace-period": "6s",
                          "target-burst-capacity": "-1"},
}


def _configure(cm: dict, networking: bool = False) -> dict:
    name = cm["metadata"]["name"]
    extra = {**_CONFIG.get(name, {}), **(_NETWORKING_CONFIG.get(name, {}) if networking else {})}
    if extra:
        cm = {**cm, "data": {**(cm.get("data") or {}), **extra}}
    return cm
