"""The data plane's promises about this host: it listens on loopback only (and kubelet on the bridge
address of its own, which routes nowhere), `status` shows it, and `down` leaves nothing behind."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path

import pytest

from jupyter_mldeploy import deploy
from jupyter_mldeploy.sandbox import (
    dataplane,
    gateway,
    images,
    ingress_nginx,
    node,
    node_host,
    ports,
    processes,
)
from jupyter_mldeploy.sandbox.processes import start_time

from .realnode import real_spec

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]


def _descendants(pids: set[int]) -> set[int]:
    """The given processes and all their children (Envoy under Envoy Gateway, for example)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo += children.get(pid, [])
    return out


def _sandbox_pids(box) -> set[int]:
    info = box.status()
    pids = {p["pid"] for p in info["processes"].values()}
    pids |= {p["pid"] for p in info["data_plane"]["processes"].values()}
    lay = dataplane.layout(box)
    pids |= {pid for pid, _ in node_host._our_processes(lay)}  # containerd's shims run on their own
    return _descendants(pids)


def _listening(pids: set[int]) -> list[tuple[str, str, int]]:
    """(protocol, local address, pid) of every listening TCP socket and bound UDP socket of `pids`."""
    found = []
    for proto, flag in (("tcp", "-ltnpH"), ("udp", "-lunpH")):
        out = subprocess.run(["ss", flag], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            fields = line.split()
            local = fields[3]
            for pid in re.findall(r"pid=(\d+)", line):
                if int(pid) in pids:
                    found.append((proto, local, int(pid)))
    return found


def test_every_socket_of_the_sandbox_is_on_loopback_or_its_own_bridge(real_gateway):
    box = real_gateway.box
    lay = real_gateway.layout
    sockets = _listening(_sandbox_pids(box))
    assert sockets, "no listening socket found for the sandbox's processes"
    # The Gateway listener is among them, and Envoy holds it.
    assert any(local == f"127.0.0.1:{real_gateway.gateway_port}" for _, local, _ in sockets), sockets
    elsewhere = []
    for proto, local, pid in sockets:
        host = local.rsplit(":", 1)[0].strip("[]").split("%")[0]
        addr = ipaddress.ip_address(host) if host != "*" else ipaddress.ip_address("0.0.0.0")
        on_bridge = str(addr) == lay.node_ip
        if not (addr.is_loopback or on_bridge):
            elsewhere.append((proto, local, pid, Path(f"/proc/{pid}/comm").read_text().strip()))
    assert not elsewhere, f"sockets listening beyond loopback and the sandbox's bridge: {elsewhere}"


def test_pods_and_bridge_route_nowhere_beyond_the_sandbox_subnet(real, kube, namespace, core):
    from kubernetes.stream import stream

    lay = real.layout
    routes = subprocess.run(["ip", "-4", "route", "show", "dev", lay.bridge], capture_output=True, text=True,
                            check=True).stdout
    # The host side: only the bridge's own subnet goes there, and while Knative's networking layer runs
    # beside the node, the service range (ClusterIPs that kube-proxy turns into pod addresses).
    from jupyter_mldeploy.sandbox import knative, knative_ingress

    expected = {str(lay.subnet)}
    if (knative.Knative(real.box).state() or {}).get("networking"):
        expected.add(knative_ingress.SERVICE_RANGE)
    assert {r.split()[0] for r in routes.strip().splitlines()} == expected, routes
    conf = node.cni_config(lay)["plugins"][0]
    assert conf["isGateway"] is False and conf["ipMasq"] is False and conf["ipam"]["routes"] == []
    # The pod side, read inside a real pod: one route, its subnet on eth0; no default route.
    handle = deploy(real_spec("routes", namespace, image=images.TESTBOX_REF, readiness=None, liveness=None,
                              command=("sleep", "3600")), kube=kube, timeout=120)
    pod = handle.status().pods[0].name
    table = stream(core.connect_get_namespaced_pod_exec, pod, namespace, command=["cat", "/proc/net/route"],
                   stderr=True, stdin=False, stdout=True, tty=False)
    rows = [line.split() for line in table.strip().splitlines()[1:]]
    destinations = {(r[0], ipaddress.IPv4Address(bytes.fromhex(r[1])[::-1])) for r in rows}
    assert destinations == {("eth0", lay.subnet.network_address)}, table


def test_status_shows_the_data_plane(real):
    info = real.box.status()
    dp = info["data_plane"]
    assert dp["up"] and dp["node"] == node.NODE_NAME and dp["node_ip"] == real.layout.node_ip
    assert set(dp["processes"]) >= {"registry", "containerd", "kubelet"}
    assert all(p["alive"] for p in dp["processes"].values())
    # Traefik built: the nginx Ingresses are served, and status says where (it is one of the processes).
    assert ("ingress-nginx" in dp["processes"]) is ingress_nginx.built()
    assert dp.get("ingress_nginx_url") == (f"http://127.0.0.1:{real.layout.port_base + 24}"
                                           if ingress_nginx.built() else None)


def test_down_leaves_no_process_mount_netns_bridge_veth_or_cgroup(real, kube, namespace):
    box, lay = real.box, real.layout
    had_gateway = dataplane.status(box)["gateway"]
    deploy(real_spec("leftover", namespace), kube=kube, timeout=180)
    before = node_host.leftovers(lay)
    # A running pod holds a network namespace, a veth on the bridge, mounts and cgroups.
    for kind in ("processes", "mounts", "network namespaces", "bridge", "veth", "cgroups"):
        assert before[kind], f"expected {kind} while a pod runs: {before}"
    pids = _sandbox_pids(box) - {p["pid"] for p in box.status()["processes"].values()}
    recorded = dataplane._load(box)
    made = recorded.get("made_host_paths", [])
    made_certs = recorded.get("made_certs_mount")
    inotify = recorded.get("made", {}).get("inotify_max_user_instances")
    assert lay.run_dir.is_dir() and recorded["made"]["run_dir"] == str(lay.run_dir)
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    try:
        left = dataplane.down(box, progress=lambda _m: None)
        assert not any(left.values()), left
        assert node_host.leftovers(lay, made_host_paths=made) == {k: [] for k in left}
        assert not [p for p in pids if start_time(p) is not None], "processes of the data plane still run"
        assert dataplane.status(box) == {"up": False, "processes": {}, "gateway": False}
        # No file of it either: its entries in the state folder, the shims' folder in /run, /certs.
        for entry in (dataplane.STATE, lay.dir.name, "gateway"):
            assert not (box.dir / entry).exists(), entry
        assert not lay.run_dir.exists()
        assert not (made_certs and gateway.CERTS_MOUNT.exists())
        if inotify is not None:
            assert int(node_host.INOTIFY_KNOB.read_text()) == inotify
    finally:
        dataplane.up(box, progress=lambda _m: None, with_gateway=had_gateway)
    # Bringing the node up (bridge, CNI) leaves the host's IP forwarding as it was.
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forwarding


def _free_base(start: int) -> int | None:
    """A base port with every port of the sandbox's table (control plane, node, Gateway, Knative's
    networking, the nginx router) free, or None."""
    for base in range(start, start + 600, 100):
        if all(processes.port_free(ports.port(base, name)) for name in ports.OFFSETS):
            return base
    return None


def test_a_second_sandbox_is_refused_the_data_plane_in_one_sentence_naming_the_first(real, tmp_path,
                                                                                     monkeypatch):
    """Envoy Gateway's ports are constants and kubelet writes to fixed host folders: one data plane per
    machine. A second sandbox's `up` is refused before it makes anything, naming the sandbox to stop."""
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    base = _free_base(real.layout.port_base + 200)
    if base is None:
        pytest.skip("no free ports for a second sandbox")
    monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", str(base))
    second = Sandbox(tmp_path / "second")
    second.up(progress=lambda _m: None)
    try:
        with pytest.raises(dataplane.DataPlaneBusy) as refused:
            dataplane.up(second, progress=lambda _m: None, with_gateway=True)
        message = str(refused.value)
        assert str(real.box.dir.resolve()) in message and "\n" not in message, message
        assert "sandbox down" in message and "--no-data-plane" in message
        # Nothing was made for the refused one; the first one's data plane still runs.
        lay2 = dataplane.layout(second)
        assert dataplane._load(second) is None and not lay2.dir.exists() and not lay2.run_dir.exists()
        assert not any(node_host.leftovers(lay2).values()), node_host.leftovers(lay2)
        assert dataplane.status(real.box)["up"]
    finally:
        second.down(progress=lambda _m: None)
    assert not (tmp_path / "second").exists()
