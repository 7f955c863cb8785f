"""The nginx router's Ingresses served for real in the sandbox, by Traefik's ingress-nginx provider.

ingress-nginx itself is retired upstream and is not built here (it is nginx with Lua, not a Go module).
Traefik's `kubernetesIngressNGINX` provider reads Ingresses of the "nginx" IngressClass (controller
k8s.io/ingress-nginx) with ingress-nginx's annotations, and among them exactly the two the nginx router
splits a canary with: `canary: "true"` and `canary-weight` (out of `canary-weight-total`). It does not
carry `mirror-target`, so a shadow on the nginx router is still only checked as objects the API server
accepted.

It runs beside the real node when the Traefik binary is built (`sandbox build --knative` builds it),
as one more host process of the data plane: it listens on 127.0.0.1 only, asks nothing of the internet
(no version check, no usage report), has no API or dashboard, sends requests to the pods' own addresses
on the node's bridge (endpoint slices, no kube-proxy), and writes no status onto the Ingresses.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import dataplane_build as parts
from . import ports

INGRESS_CLASS = "nginx"  # sandbox/data/cluster.yaml makes it, controller k8s.io/ingress-nginx
ENTRY_POINT = "web"
PROCESS = "ingress-nginx"


def port(port_base: int) -> int:
    """Where the nginx router's Ingresses are served, on 127.0.0.1."""
    return ports.port(port_base, "ingress_nginx")


def built() -> bool:
    return not parts.TRAEFIK.missing()


def config(port_base: int) -> dict:
    """Traefik's static configuration for this one provider. Pure."""
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {ENTRY_POINT: {"address": f"127.0.0.1:{port(port_base)}"}},
        "providers": {"kubernetesIngressNGINX": {"ingressClass": INGRESS_CLASS, "httpEntryPoint": ENTRY_POINT,
                                                 "throttleDuration": "0s"}},
        "log": {"level": "INFO", "noColor": True},
    }


def config_text(port_base: int) -> str:
    return yaml.safe_dump(config(port_base))


def command(config_file: Path) -> list[str]:
    return [str(parts.TRAEFIK.path("traefik")), f"--configFile={config_file}"]
