"""The sandbox's one real node: kubelet, containerd and runc on this host, pods on a bridge of ours.

Everything the node makes is named after the sandbox's port so two sandboxes never share it: the
bridge `mld<port>`, the subnet 10.250.<n>.0/24, the cgroup `/mldeploy-<port>` in every hierarchy,
and a folder under the sandbox's state folder for containerd's root and state, kubelet's root,
pod logs, CNI config and the pods' network namespaces. `leftovers()` lists what of those is still
there; `down` (see dataplane.py) removes all of it and a test checks each kind is gone.

Network rule: pods get addresses on our bridge only. The bridge holds the subnet's first address, so
host processes (the API server, kubelet's probes, Envoy) reach pod IPs directly; there is no default
route in the pods, no masquerade, and IP forwarding stays off, so nothing leaves this machine.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import dataplane_build as parts
from .errors import SandboxError
from .folder import write_private

NODE_NAME = "sandbox-real-1"
# Only pods that ask land on the real node: they select this label and tolerate this taint.
NODE_LABEL_KEY = "mldeploy.io/sandbox-node"
NODE_LABEL_VALUE = "real"
TAINT = {"key": NODE_LABEL_KEY, "value": NODE_LABEL_VALUE, "effect": "NoSchedule"}
CNI_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
# Folders kubelet and containerd's CNI library make at fixed paths whatever their flags say
# (device-plugins, the container log links, the CNI result cache). `down` removes those we made.
HOST_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/var/lib/cni")
# The pause image every pod sandbox starts from; pinned in containerd, served by our registry.
PAUSE_IMAGE_REPO = "pause"


# Pods get the subnet's addresses from .10 up; .2 to .9 are left for the sandbox's own processes
# that must sit on the pods' link (Knative's components, see knative.Net).
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
        return self.port_base + 10

    @property
    def kubelet_healthz_port(self) -> int:
        return self.port_base + 11

    @property
    def registry_port(self) -> int:
        return self.port_base + 12

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


# -- the host: bridge, cgroups, files -----------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SandboxError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def cgroup_mounts() -> list[Path]:
    """Every cgroup hierarchy mounted on this host (v1 controllers, name=systemd, the v2 tree)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        if right.split()[0] in ("cgroup", "cgroup2"):
            found.append(Path(left.split()[4]))
    return found


def _cgroup_tasks(cg: Path) -> int:
    """How many processes are in a cgroup and its children."""
    n = 0
    for procs in cg.rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            n += len(procs.read_text().split())
    return n


def _prepare_cgroups(layout: Layout, made: dict, record) -> None:
    for mount in cgroup_mounts():
        ours = mount / layout.cgroup_name
        if ours.exists() and _cgroup_tasks(ours):
            raise SandboxError(f"The cgroup {ours} already holds processes, so it is not this sandbox's to "
                               f"use; stop them or choose another MLDEPLOY_SANDBOX_PORT.")
        # Named after this sandbox's port and empty (a crashed `down` left it): ours to use and remove.
        made.setdefault("cgroups", []).append(str(ours))
        record()
        ours.mkdir(exist_ok=True)
        # A new v1 cpuset starts with no CPUs and no memory nodes, and no task can join it.
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (ours / knob).exists() and not (ours / knob).read_text().strip():
                (ours / knob).write_text((mount / knob).read_text())


def check_host() -> None:
    """Refuse early, in one sentence, on a host that cannot run the node."""
    if os.geteuid() != 0:
        raise SandboxError("The real node runs containers and makes a network bridge, so it needs root; "
                           "run as root, or start the sandbox with --no-data-plane.")
    if not Path("/sys/fs/cgroup/memory").is_dir() and not Path("/sys/fs/cgroup/cgroup.controllers").exists():
        raise SandboxError("No cgroup hierarchy with the memory controller was found under /sys/fs/cgroup.")
    cni_bin_dir()


def missing_host_paths() -> list[str]:
    return [p for p in HOST_PATHS if not os.path.lexists(p)]


def prepare_host(layout: Layout, pause_image: str, made: dict, record) -> None:
    """Write the node's configuration into its folder and make the cgroups and the bridge; each thing
    made outside the folder is put in `made` and `record()`ed before it is made, for `down`."""
    check_host()
    for sub in ("containerd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "netns"):
        (layout.dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    (layout.dir / "resolv.conf").write_text("# the sandbox's pods have no DNS\n")
    (layout.containerd_dir / "config.toml").write_text(containerd_config(layout, pause_image))
    (layout.cni_conf_dir / "10-mldeploy.conflist").write_text(json.dumps(cni_config(layout), indent=2))
    host_dir = layout.certs_d / layout.registry_host
    host_dir.mkdir(parents=True, exist_ok=True)
    (host_dir / "hosts.toml").write_text(hosts_toml(layout))
    (layout.dir / "kubelet.json").write_text(json.dumps(kubelet_config(layout), indent=2))
    _prepare_cgroups(layout, made, record)
    _raise_inotify_limit(made, record)
    # The bridge exists before kubelet starts, so --node-ip names an address on an interface.
    clash = _address_clash(layout)
    if clash:
        raise SandboxError(f"The subnet {layout.subnet} of this sandbox is already on interface {clash}; "
                           f"choose another MLDEPLOY_SANDBOX_PORT.")
    if _ip("link", "show", layout.bridge, check=False).returncode == 0 and _bridge_ports(layout):
        raise SandboxError(f"The bridge {layout.bridge} already exists with interfaces on it, so it is "
                           f"not this sandbox's to use; remove it (ip link delete {layout.bridge}) or "
                           f"choose another MLDEPLOY_SANDBOX_PORT.")
    made["run_dir"] = str(layout.run_dir)  # named after this port: ours, recorded before it is made
    record()
    (layout.run_dir / "s").mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.run_dir.chmod(0o700)
    made["bridge"] = layout.bridge  # named after this port and empty (or absent): ours to remove
    record()
    if _ip("link", "show", layout.bridge, check=False).returncode != 0:
        _ip("link", "add", "name", layout.bridge, "type", "bridge")
    _ip("addr", "replace", f"{layout.node_ip}/{layout.subnet.prefixlen}", "dev", layout.bridge)
    _ip("link", "set", layout.bridge, "up")


def _address_clash(layout: Layout) -> str | None:
    out = _ip("-o", "-4", "addr", "show").stdout
    for line in out.splitlines():
        fields = line.split()
        iface, cidr = fields[1], fields[3]
        if iface != layout.bridge and ipaddress.IPv4Interface(cidr).network.overlaps(layout.subnet):
            return iface
    return None


INOTIFY_KNOB = Path("/proc/sys/fs/inotify/max_user_instances")


def _raise_inotify_limit(made: dict, record) -> None:
    # kubelet, containerd and the controllers each hold inotify instances; 128 runs out. The old
    # value is recorded first, and `down` puts it back.
    try:
        old = int(INOTIFY_KNOB.read_text())
        if old < 1024:
            made["inotify_max_user_instances"] = old
            record()
            INOTIFY_KNOB.write_text("1024")
    except OSError:
        pass


# -- what is left, and removing it ---------------------------------------------------------------


def _our_mounts(layout: Layout) -> list[str]:
    root = str(layout.sandbox_dir.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == root or point.startswith(root + "/"):
            found.append(point)
    return found


def _our_cgroups(layout: Layout) -> list[str]:
    return [str(m / layout.cgroup_name) for m in cgroup_mounts() if (m / layout.cgroup_name).exists()]


def _bridge_ports(layout: Layout) -> list[str]:
    out = _ip("-o", "link", "show", "master", layout.bridge, check=False).stdout
    return [re.split(r"[:@]", line.split(": ", 1)[1])[0] for line in out.splitlines() if ": " in line]


def _our_processes(layout: Layout) -> list[tuple[int, str]]:
    """Processes started from our binaries that belong to this sandbox (shims included: their
    command line names our containerd's socket or folder)."""
    bins = {str(p.dir) for p in (parts.CONTAINERD, parts.RUNC, parts.KUBELET)}
    root = str(layout.sandbox_dir)
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(exe.startswith(b + "/") for b in bins) and root in cmdline:
            found.append((int(proc.name), cmdline.strip()))
    return found


def leftovers(layout: Layout, made_host_paths: list[str] | tuple[str, ...] = ()) -> dict[str, list[str]]:
    """What of this sandbox's node is still on the host; all empty after `down`."""
    bridge = [layout.bridge] if _ip("link", "show", layout.bridge, check=False).returncode == 0 else []
    netns_dir = layout.containerd_dir / "state"
    return {
        "processes": [f"{pid} {cmd}" for pid, cmd in _our_processes(layout)],
        "mounts": _our_mounts(layout),
        "network namespaces": [m for m in _our_mounts(layout) if "/netns/" in m]
        + ([str(p) for p in netns_dir.rglob("netns/*")] if netns_dir.exists() else []),
        "bridge": bridge,
        "veth": [p for p in _bridge_ports(layout)] if bridge else [],
        "cgroups": _our_cgroups(layout),
        "host folders": [p for p in (*made_host_paths, str(layout.run_dir)) if os.path.lexists(p)],
    }


def kill_processes(layout: Layout) -> None:
    import signal
    import time

    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = _our_processes(layout)
        for pid, _ in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while _our_processes(layout) and time.monotonic() < deadline:
            time.sleep(0.1)


def remove_host_state(layout: Layout, made_host_paths: list[str] | tuple[str, ...] = (),
                      made: dict | None = None) -> None:
    """Unmount, delete the bridge and its ports, remove our cgroups and the fixed-path folders we
    made, put the inotify limit back: after the processes are gone. Only what `made` records."""
    import shutil

    made = made or {}
    for path in made_host_paths:
        if path in HOST_PATHS:
            shutil.rmtree(path, ignore_errors=True)
    for point in sorted(_our_mounts(layout), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    if made.get("run_dir") == str(layout.run_dir):
        shutil.rmtree(layout.run_dir, ignore_errors=True)
    if made.get("bridge") == layout.bridge:
        for port in _bridge_ports(layout):  # the pods' veths: their netns went with the pods
            _ip("link", "delete", port, check=False)
        _ip("link", "delete", layout.bridge, check=False)
    for cg in made.get("cgroups", []):
        if Path(cg).name != layout.cgroup_name:
            continue
        # Deepest first: a cgroup with children cannot be removed.
        for d in sorted((p for p in Path(cg).rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                        reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        with contextlib.suppress(OSError):
            Path(cg).rmdir()
    old = made.get("inotify_max_user_instances")
    if isinstance(old, int):
        with contextlib.suppress(OSError):
            INOTIFY_KNOB.write_text(str(old))
