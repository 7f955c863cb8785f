"""The real node's host side: the bridge, the cgroups, the inotify limit and kubelet's fixed folders,
made by `prepare_host` (each recorded before it is made), listed by `leftovers` and removed by
`remove_host_state`. Kept apart from node.py's pure configuration because this is what needs root.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import subprocess
from pathlib import Path

from . import dataplane_build as parts
from .errors import SandboxError
from .node import Layout, cni_bin_dir, cni_config, containerd_config, hosts_toml, kubelet_config
from .processes import running

# Folders kubelet and containerd's CNI library make at fixed paths whatever their flags say
# (device-plugins, the container log links, the CNI result cache). `down` removes those we made.
HOST_PATHS = ("/var/lib/kubelet", "/var/log/containers", "/var/lib/cni")


# -- the host: bridge, cgroups, files -----------------------------------------------------------


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """iproute2's `ip` (the node's bridge, Knative's namespaces); with `check`, a failure is one error."""
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
    if ip("link", "show", layout.bridge, check=False).returncode == 0 and _bridge_ports(layout):
        raise SandboxError(f"The bridge {layout.bridge} already exists with interfaces on it, so it is "
                           f"not this sandbox's to use; remove it (ip link delete {layout.bridge}) or "
                           f"choose another MLDEPLOY_SANDBOX_PORT.")
    made["run_dir"] = str(layout.run_dir)  # named after this port: ours, recorded before it is made
    record()
    (layout.run_dir / "s").mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.run_dir.chmod(0o700)
    made["bridge"] = layout.bridge  # named after this port and empty (or absent): ours to remove
    record()
    if ip("link", "show", layout.bridge, check=False).returncode != 0:
        ip("link", "add", "name", layout.bridge, "type", "bridge")
    ip("addr", "replace", f"{layout.node_ip}/{layout.subnet.prefixlen}", "dev", layout.bridge)
    ip("link", "set", layout.bridge, "up")


def _address_clash(layout: Layout) -> str | None:
    out = ip("-o", "-4", "addr", "show").stdout
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
    out = ip("-o", "link", "show", "master", layout.bridge, check=False).stdout
    return [re.split(r"[:@]", line.split(": ", 1)[1])[0] for line in out.splitlines() if ": " in line]


def _our_processes(layout: Layout) -> list[tuple[int, str]]:
    """Processes started from our binaries that belong to this sandbox (shims included: their
    command line names our containerd's socket or folder)."""
    bins = {str(p.dir) for p in (parts.CONTAINERD, parts.RUNC, parts.KUBELET)}
    root = str(layout.sandbox_dir)
    found = []
    for pid, exe, cmdline in running():
        cmdline = cmdline.replace("\0", " ")
        if any(exe.startswith(b + "/") for b in bins) and root in cmdline:
            found.append((pid, cmdline.strip()))
    return found


def leftovers(layout: Layout, made_host_paths: list[str] | tuple[str, ...] = ()) -> dict[str, list[str]]:
    """What of this sandbox's node is still on the host; all empty after `down`."""
    bridge = [layout.bridge] if ip("link", "show", layout.bridge, check=False).returncode == 0 else []
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
            ip("link", "delete", port, check=False)
        ip("link", "delete", layout.bridge, check=False)
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
