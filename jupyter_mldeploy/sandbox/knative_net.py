"""The network Knative's components run in: a network namespace each, on a bridge of their own or
the real node's (knative.py's docstring says why), with /etc/netns files that keep every lookup local.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxError
from .knative_build import COMPONENTS, NAMESPACE
from .node import FIRST_POD_HOST
from .node_host import ip as _ip


@dataclass(frozen=True)
class Net:
    """The components' bridge and namespaces of one sandbox (named after its port).

    With the real node up they sit on its pod bridge, at addresses below the pods' range (which starts
    at .10): the activator and the autoscaler then reach revision pods on the same link, and nothing
    is forwarded between interfaces. Without it, on a private bridge of their own."""

    port: int  # the API server's port, also the relay's inside every namespace
    node_bridge: str | None = None  # the real node's bridge, when they share it
    node_subnet: str | None = None  # its first three octets, e.g. "10.250.161"

    @property
    def bridge(self) -> str:
        return self.node_bridge or f"mlkn{self.port}"

    @property
    def subnet(self) -> str:
        return self.node_subnet or f"10.251.{self.port % 256}"

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.1"

    def ip(self, component: str) -> str:
        host = COMPONENTS.index(component) + 2
        assert host < FIRST_POD_HOST  # below the pods' range on a shared bridge
        return f"{self.subnet}.{host}"

    def netns(self, component: str) -> str:
        return f"mlkn{self.port}-{component}"

    def veth(self, component: str) -> str:
        return f"mlkn{self.port}{component[0] if component != 'activator' else 'v'}"


def _etc_dir(net: Net, component: str) -> Path:
    return Path("/etc/netns") / net.netns(component)


def net_up(net: Net) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise SandboxError("Knative's components run in network namespaces of their own (they listen on "
                           "fixed ports of every interface, and need an address the API server accepts in "
                           "Endpoints), which needs root and iproute2's `ip`; run `sandbox up --knative` as "
                           "root, or leave Knative out.")
    if net.node_bridge is None and net.host_ip in _ip("-4", "-o", "addr").stdout and not _ip(
            "link", "show", net.bridge, check=False).returncode == 0:
        raise SandboxError(f"{net.host_ip} is already on an interface of this machine; choose another "
                           f"MLDEPLOY_SANDBOX_PORT.")
    net_down(net)  # whatever a crashed run left
    if net.node_bridge is None:  # the node's bridge is the data plane's: it has its address already
        _ip("link", "add", net.bridge, "type", "bridge")
        _ip("addr", "add", f"{net.host_ip}/24", "dev", net.bridge)
        _ip("link", "set", net.bridge, "up")
    hosts = ["127.0.0.1 localhost"] + [
        f"{net.ip(c)} {svc}.{NAMESPACE}.svc.cluster.local {svc}.{NAMESPACE}.svc {svc}.{NAMESPACE}"
        for c, svc in (("autoscaler", "autoscaler"), ("activator", "activator-service"),
                       ("webhook", "webhook"), ("controller", "controller"))]
    for c in COMPONENTS:
        ns, veth = net.netns(c), net.veth(c)
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
        _ip("link", "set", f"{veth}p", "netns", ns)
        _ip("link", "set", veth, "master", net.bridge, "up")
        _ip("-n", ns, "link", "set", f"{veth}p", "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{net.ip(c)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        etc = _etc_dir(net, c)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text("\n".join(hosts) + "\n")
        # Nothing answers on the namespace's own loopback: every lookup fails at once, locally.
        (etc / "resolv.conf").write_text(f"nameserver 127.0.0.1\nsearch {NAMESPACE}.svc.cluster.local "
                                         f"svc.cluster.local cluster.local\noptions timeout:1 attempts:1\n")


def net_down(net: Net) -> None:
    for c in COMPONENTS:
        _ip("netns", "del", net.netns(c), check=False)  # takes its end of the veth pair with it
        _ip("link", "del", net.veth(c), check=False)
        shutil.rmtree(_etc_dir(net, c), ignore_errors=True)
    if net.node_bridge is None:
        _ip("link", "del", net.bridge, check=False)


def net_of(state: dict) -> Net:
    """The Net a saved Knative state was started on."""
    return Net(int(state["port"]), state.get("node_bridge"), state.get("node_subnet"))
