"""The sandbox's one real node: kubelet, containerd and runc on this host, pods on a bridge of ours.

Everything the node makes is named after the sandbox's port so two sandboxes never share it: the
bridge `mld<port>`, the subnet 10.250.<n>.0/24, the cgroup `/mldeploy-<port>` in every hierarchy,
and a folder under the sandbox's state folder for containerd's root and state, kubelet's root,
pod logs, CNI config and the pods' network namespaces. This module holds the layout and the pure
configuration (files, command lines, the node's identity); node_host.py makes the bridge and cgroups
on the host, and its `leftovers()` lists what of those is still there; `down` (see dataplane.py)
removes all of it and a test checks each kind is gone.

Network rule: pods get addresses on our bridge only. The bridge holds the subnet's first address, so
host processes (the API server, kubelet's probes, Envoy) reach pod IPs directly; there is no default
route in the pods, no masquerade, and IP forwarding stays off, so nothing leaves this machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import dataplane_build as parts
from .errors import SandboxError
from .folder import write_private
from .ports import port

NODE_NAME = "sandbox-real-1"
# Only pods that ask land on the real node: they select this label and tolerate this taint.
NODE_LABEL_KEY = "mldeploy.io/sandbox-node"
NODE_LABEL_VALUE = "real"
TAINT = {"key": NODE_LABEL_KEY, "value": NODE_LABEL_VALUE, "effect": "NoSchedule"}
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
# The pause image every pod sandbox starts from; pinned in containerd, served by our registry.
PAUSE_IMAGE_REPO = "pause"


# Pods get the subnet's addresses from .10 up; .2 to .9 are left for the sandbox's own processes
# that must sit on the pods' link (Knative's components, see knative_net.Net).
FIRST_POD_HOST = 10


def placement() -> dict:
    """The `node_selector` and `tolerations` a DeploySpec needs to run on the real node."""
    return {"node_selector": {NODE_LABEL_KEY: NODE_LABEL_VALUE},
            "tolerations": [{"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"],
                             "effect": TAINT["effect"]}]}


@dataclass(frozen=True)
class Layout:
    """Where the node's files, ports, bridge, subnet and cgroups are, for one sandbox."""

    sandbox_dir: Path
    port_base: int  # the sandbox's MLDEPLOY_SANDBOX_PORT

    @property
    def dir(self) -> Path:
        return self.sandbox_dir / "node"

    @property
    def kubelet_port(self) -> int:
        return port(self.port_base, "kubelet")

    @property
    def kubelet_healthz_port(self) -> int:
        return port(self.port_base, "kubelet_healthz")

    @property
    def registry_port(self) -> int:
        return port(self.port_base, "registry")

    @property
    def bridge(self) -> str:
        return f"mld{self.port_base}"  # at most 15 characters: an interface name's limit

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(f"10.250.{(self.port_base // 10) % 256}.0/24")

    @property
    def node_ip(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def cgroup_name(self) -> str:
        return f"mldeploy-{self.port_base}"

    @property
    def containerd_dir(self) -> Path:
        return self.dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def run_dir(self) -> Path:
        # containerd refuses a shim socket folder longer than 42 characters, which no folder under a
        # home's cache fits: the shims' sockets go in a short folder of ours under /run instead.
        return Path("/run") / f"mldeploy-{self.port_base}"

    @property
    def kubelet_dir(self) -> Path:
        return self.dir / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.dir / "cni" / "net.d"

    @property
    def certs_d(self) -> Path:
        return self.dir / "certs.d"

    @property
    def registry_host(self) -> str:
        # The name images carry; containerd's hosts.toml sends it to our registry on 127.0.0.1,
        # so nothing asks a resolver and image references do not depend on the port.
        return "sandbox.local"


def cni_bin_dir() -> str:
    for d in CNI_BIN_DIRS:
        if all(Path(d, p).is_file() for p in ("bridge", "host-local", "loopback")):
            return d
    raise SandboxError("The real node needs the CNI plugins bridge, host-local and loopback: install "
                       "them (Debian: apt-get install containernetworking-plugins) and retry.")


# -- configuration, pure ------------------------------------------------------------------------


def cni_config(layout: Layout) -> dict:
    net = layout.subnet
    return {
        "cniVersion": "1.0.0",
        "name": f"mldeploy-{layout.port_base}",
        "plugins": [{
            # isGateway would turn on the host's IP forwarding (the plugin does so for a gateway):
            # the bridge's address is ours, set before kubelet starts (prepare_host), and the pods
            # get no route beyond the subnet, so nothing is forwarded and nothing needs to be.
            "type": "bridge", "bridge": layout.bridge, "isGateway": False, "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local", "dataDir": str(layout.dir / "cni" / "ipam"),
                # No routes: a pod reaches its bridge's subnet and nothing else.
                "ranges": [[{"subnet": str(net), "gateway": layout.node_ip,
                             "rangeStart": str(net.network_address + FIRST_POD_HOST),
                             "rangeEnd": str(net.broadcast_address - 1)}]],
                "routes": [],
            },
        }, {"type": "loopback"}],
    }


def containerd_config(layout: Layout, pause_image: str) -> str:
    d = layout.containerd_dir
    runc = parts.RUNC.path("runc")
    return f"""version = 3
root = "{d / 'root'}"
state = "{d / 'state'}"
# Plugins that would write outside our folder or that this node does not use.
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.blockfile", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{d / 'containerd.sock.ttrpc'}"
[debug]
  address = ""
[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = "{d / 'opt'}"
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "{layout.run_dir / 's'}"
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins.'io.containerd.transfer.v1.local']
  config_path = "{layout.certs_d}"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{pause_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{layout.certs_d}"
[plugins.'io.containerd.cri.v1.runtime']
  # This VM's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj below its own.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_cdi = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{cni_bin_dir()}"]
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
        Root = "{d / 'runc'}"
"""


def hosts_toml(layout: Layout) -> str:
    """containerd's registry host config: `sandbox.local` is our plain-HTTP registry on loopback."""
    return (f'server = "http://127.0.0.1:{layout.registry_port}"\n\n'
            f'[host."http://127.0.0.1:{layout.registry_port}"]\n  capabilities = ["pull", "resolve"]\n')


def kubelet_config(layout: Layout) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # Bound to the bridge address: the API server reaches it there for logs and exec.
        "address": layout.node_ip,
        "port": layout.kubelet_port,
        "readOnlyPort": 0,
        # kubelet leaves the machine's iptables alone: its hint and canary chains and KUBE-FIREWALL
        # (a guard for route_localnet, which nothing here turns on) would outlive `sandbox down`.
        "makeIPTablesUtilChains": False,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.kubelet_healthz_port,
        # Sandbox only: the API server connects without a client certificate.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        # The host is cgroup v1 (a hybrid layout, no systemd): 1.35+ refuses v1 unless told.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{layout.cgroup_name}",
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "failSwapOn": False,
        "podLogsDir": str(layout.dir / "pod-logs"),
        "resolvConf": str(layout.dir / "resolv.conf"),
        "registerNode": True,
        "registerWithTaints": [TAINT],
        "maxPods": 40,
        "serializeImagePulls": False,
        # Imported images must stay: the registry is ours, and the disk is shared.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "mergeDefaultEvictionSettings": False,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "protectKernelDefaults": False,
        "localStorageCapacityIsolation": True,
        "enableDebuggingHandlers": True,
        "enableProfilingHandler": False,
        "enableSystemLogHandler": False,
        "logging": {"verbosity": 1},
    }


def kubelet_command(layout: Layout, kubeconfig: Path, config: Path) -> list[str]:
    return [str(parts.KUBELET.path("kubelet")), f"--config={config}", f"--kubeconfig={kubeconfig}",
            f"--root-dir={layout.kubelet_dir}", f"--cert-dir={layout.kubelet_dir / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={layout.node_ip}", f"--node-labels={NODE_LABEL_KEY}={NODE_LABEL_VALUE}"]


def containerd_command(layout: Layout) -> list[str]:
    return [str(parts.CONTAINERD.path("containerd")), "--config", str(layout.containerd_dir / "config.toml")]


def containerd_env() -> dict[str, str]:
    # containerd finds its shim on PATH; our shim first, then what the host has.
    return {"PATH": f"{parts.CONTAINERD.dir}:{parts.RUNC.dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


# -- the node's identity ------------------------------------------------------------------------


def node_kubeconfig(pki_dir: Path, out: Path, server: str) -> Path:
    """A client certificate for system:node:<name> signed by the sandbox's CA (the Node authorizer
    limits kubelet to its own node and pods), and a kubeconfig that uses it."""
    ca_cert = x509.load_pem_x509_certificate((pki_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((pki_dir / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{NODE_NAME}")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(out / "kubelet.crt", cert.public_bytes(serialization.Encoding.PEM))
    key_path = write_private(out / "kubelet.key", key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    kc = write_private(out / "kubelet.kubeconfig",
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: sandbox\n  cluster:\n    server: {server}\n"
        f"    certificate-authority: {pki_dir / 'ca.crt'}\n"
        f"users:\n- name: kubelet\n  user:\n    client-certificate: {out / 'kubelet.crt'}\n"
        f"    client-key: {key_path}\n"
        "contexts:\n- name: kubelet\n  context:\n    cluster: sandbox\n    user: kubelet\n"
        "current-context: kubelet\n")
    return kc
