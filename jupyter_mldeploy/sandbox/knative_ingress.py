"""Knative's networking layer in the sandbox, beside the real node: Traefik's Knative provider makes
every KIngress real, and kube-proxy turns the ClusterIPs it dials into addresses on the node's bridge.

Why these two: Traefik's experimental Knative provider is the only KIngress implementation without
Envoy that the module proxy serves (docs: shared/notes/real-data-plane.md), and it sends requests to a
revision's Service by its ClusterIP, which only kube-proxy's rules resolve. Both run as host processes
of the sandbox and stop with Knative:

- Traefik listens on 127.0.0.1 only (one entry point, public and cluster-local routes alike), asks
  nothing of the internet (no version check, no usage report), and has no API, dashboard or ping;
- kube-proxy (iptables mode) answers health and metrics on 127.0.0.1, leaves conntrack's limits as
  they are, offers NodePorts on the node's bridge address only (so it never turns on route_localnet),
  and masquerades what the host sends into the pod subnet, so pods answer on their own link. Its
  rules are removed with `kube-proxy --cleanup` when Knative stops. The service range is routed to
  the node's bridge for as long as it runs: a ClusterIP without a rule goes nowhere, never out.

Knative's components sit on the node's bridge too (knative.Net), so the activator and the autoscaler
reach revision pods on the same link: nothing is forwarded between interfaces.
"""

from __future__ import annotations

import contextlib
import subprocess
import tarfile
from pathlib import Path

import yaml

from . import dataplane_build as parts
from . import images, node, ports
from .node_host import ip as _ip

INGRESS_CLASS = "traefik.ingress.networking.knative.dev"
SERVICE_RANGE = "10.96.0.0/16"  # the API server's --service-cluster-ip-range
ENTRY_POINT = "web"


def ingress_port(port_base: int) -> int:
    """Where Traefik serves Knative's routes, on 127.0.0.1."""
    return ports.port(port_base, "knative_ingress")


def missing() -> list[str]:
    """The binaries the networking layer needs that are not built (empty: it can run)."""
    out = [f"traefik ({parts.TRAEFIK.dir})" for _ in parts.TRAEFIK.missing()]
    out += [f"kube-proxy ({parts.KUBELET.dir})" for b in parts.KUBELET.missing() if b == "kube-proxy"]
    return out


def queue_image() -> str:
    return f"{images.REGISTRY}/knative/queue:v{_version()}"


def _version() -> str:
    from . import versions

    return versions.KNATIVE_SERVING


def publish_queue(queue_binary: Path, registry_port: int, log) -> str:
    """The queue-proxy sidecar as an image in the node's registry: one static binary, its entrypoint."""
    layer = images.cache_dir() / f"knative-queue-{_version()}.tar"
    if not layer.is_file():
        tmp = layer.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            images._tar_add(tar, "tmp", directory=True)
            images._tar_add(tar, "queue", queue_binary.read_bytes(), mode=0o755)
        tmp.rename(layer)
    crane = str(parts.CRANE.path("crane"))
    ref = queue_image()
    target = ref.replace(images.REGISTRY, f"127.0.0.1:{registry_port}", 1)
    images._run([crane, "append", "--insecure", "--oci-empty-base", "-f", str(layer), "-t", target], log,
                "crane append (queue)")
    images._run([crane, "mutate", "--insecure", target, "--set-platform", "linux/amd64", "--entrypoint",
                 "/queue", "--user", "65532", "-t", target], log, "crane mutate (queue)")
    return ref


def traefik_config(port_base: int, system_namespace: str) -> dict:
    """Traefik's static configuration. Pure."""
    # The Service names only make the KIngress's load-balancer status (Knative's Route needs one);
    # nothing dials them.
    lb = {"name": "knative-ingress", "namespace": system_namespace}
    return {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": {ENTRY_POINT: {"address": f"127.0.0.1:{ingress_port(port_base)}"}},
        "experimental": {"knative": True},
        "providers": {"knative": {"publicEntrypoints": [ENTRY_POINT], "privateEntrypoints": [ENTRY_POINT],
                                  "publicService": lb, "privateService": lb, "throttleDuration": "0s"}},
        "log": {"level": "INFO"},
    }


def kube_proxy_config(lay: node.Layout, kubeconfig: str) -> dict:
    """kube-proxy's configuration file. Pure."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": kubeconfig},
        "mode": "iptables",
        "hostnameOverride": node.NODE_NAME,
        "clusterCIDR": str(lay.subnet),
        "detectLocalMode": "ClusterCIDR",
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports.port(lay.port_base, 'kube_proxy_healthz')}",
        "metricsBindAddress": f"127.0.0.1:{ports.port(lay.port_base, 'kube_proxy_metrics')}",
        "nodePortAddresses": [f"{lay.node_ip}/32"],
        # 0: leave the machine's conntrack table size and timeouts as they are.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "1s"},
    }


def write_configs(folder, lay: node.Layout, kubeconfig: str, system_namespace: str) -> tuple[Path, Path]:
    traefik = folder.write("knative-traefik.yaml", yaml.safe_dump(traefik_config(lay.port_base,
                                                                                 system_namespace)))
    proxy = folder.write("knative-kube-proxy.yaml", yaml.safe_dump(kube_proxy_config(lay, kubeconfig)))
    return traefik, proxy


def commands(traefik_file: Path, proxy_file: Path) -> dict[str, list[str]]:
    return {"knative-kube-proxy": [str(parts.KUBELET.path("kube-proxy")), f"--config={proxy_file}"],
            "knative-traefik": [str(parts.TRAEFIK.path("traefik")), f"--configFile={traefik_file}"]}


def route_services(lay: node.Layout) -> None:
    """The service range goes to the node's bridge (with the bridge's address as the source)."""
    _ip("route", "replace", SERVICE_RANGE, "dev", lay.bridge, "src", lay.node_ip)


# kube-proxy also writes kubelet's KUBE-FIREWALL chain (its anti-martian rule, jumped to from INPUT and
# OUTPUT) and, by design, leaves it in `--cleanup`: removed here unless it was there before we started.
FIREWALL_CHAIN = "KUBE-FIREWALL"
IPTABLES = ("iptables", "ip6tables")


def firewall_chains() -> list[str]:
    """The iptables tools (iptables, ip6tables) whose filter table holds KUBE-FIREWALL now."""
    return [tool for tool in IPTABLES if subprocess.run(
        [tool, "-t", "filter", "-n", "-L", FIREWALL_CHAIN], capture_output=True).returncode == 0]


def cleanup(lay_bridge: str | None, firewall_before: list[str] | None = None) -> None:
    """Remove kube-proxy's rules, the KUBE-FIREWALL chain it added (not one that was there before it,
    listed in `firewall_before`) and the service route; safe to call when none is there."""
    binary = parts.KUBELET.path("kube-proxy")
    if binary.is_file():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run([str(binary), "--cleanup", "--proxy-mode=iptables"], capture_output=True,
                           timeout=60)
    if firewall_before is not None:
        for tool in set(firewall_chains()) - set(firewall_before):
            for hook in ("INPUT", "OUTPUT"):
                subprocess.run([tool, "-t", "filter", "-D", hook, "-j", FIREWALL_CHAIN], capture_output=True)
            subprocess.run([tool, "-t", "filter", "-F", FIREWALL_CHAIN], capture_output=True)
            subprocess.run([tool, "-t", "filter", "-X", FIREWALL_CHAIN], capture_output=True)
    if lay_bridge:
        _ip("route", "del", SERVICE_RANGE, "dev", lay_bridge, check=False)


def foreign_kube_proxy() -> str | None:
    """Why kube-proxy must not run here, or None. Its rules are the machine's (one set of KUBE-*
    chains per network namespace): beside another kube-proxy, or rules it left, ours would rewrite
    and then remove them. Ours removes its own when Knative stops."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "kube-proxy":
                    return f"a kube-proxy already runs on this machine (PID {proc.name})"
    if kube_services_present():
        return ("this machine's iptables hold kube-proxy's chains (KUBE-SERVICES) from something else "
                "(run `kube-proxy --cleanup` if a crashed sandbox left them)")
    return None


def kube_services_present() -> bool:
    """kube-proxy's KUBE-SERVICES chain is in the machine's nat table (written by its first sync)."""
    return subprocess.run(["iptables", "-t", "nat", "-n", "-L", "KUBE-SERVICES"],
                          capture_output=True).returncode == 0


def serving(lay: node.Layout) -> bool:
    """Traefik answers on its entry point, kube-proxy reports healthy and its rules are written."""
    from .probes import http_status as status

    return (status(f"http://127.0.0.1:{ingress_port(lay.port_base)}/") == 404
            and status(f"http://127.0.0.1:{ports.port(lay.port_base, 'kube_proxy_healthz')}/healthz") == 200
            and kube_services_present())  # its healthz can answer before the first sync wrote any rule
