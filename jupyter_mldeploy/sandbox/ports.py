"""Every port a sandbox listens on, as one table of offsets from its base port (MLDEPLOY_SANDBOX_PORT,
the API server's own): the control plane, the real node, Envoy Gateway, Knative's networking layer
and the nginx router each took a few numbers above the base, and one table keeps them from meeting.
"""

from __future__ import annotations

import os

from .errors import SandboxError

DEFAULT_BASE = 16443
# Offsets below 30: test_sandbox's second sandbox runs at base + 30 beside the first.
OFFSETS = {
    # the control plane (control_plane.py, command_lines.py)
    "apiserver": 0, "etcd": 1, "etcd_peer": 2, "controller_manager": 3, "scheduler": 4, "kwok": 5,
    # the real node and its registry (node.Layout)
    "kubelet": 10, "kubelet_healthz": 11, "registry": 12,
    # Envoy Gateway (gateway.py)
    "gateway_admin": 13, "gateway_listener": 20,
    # Knative's networking layer: Traefik and kube-proxy (knative_ingress.py)
    "knative_ingress": 21, "kube_proxy_healthz": 22, "kube_proxy_metrics": 23,
    # Traefik's ingress-nginx provider (ingress_nginx.py)
    "ingress_nginx": 24,
}


def port(base: int, name: str) -> int:
    """The port of component `name` in the sandbox whose base port is `base`."""
    return base + OFFSETS[name]


def base_from_env() -> int:
    """MLDEPLOY_SANDBOX_PORT, checked: one sentence when it is not a port with room above it."""
    raw = os.environ.get("MLDEPLOY_SANDBOX_PORT", str(DEFAULT_BASE))
    if not raw.isdigit() or not 1024 < int(raw) < 65530:
        raise SandboxError(f"MLDEPLOY_SANDBOX_PORT={raw!r} is not a port between 1025 and 65529.")
    return int(raw)
