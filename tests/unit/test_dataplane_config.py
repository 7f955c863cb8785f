"""The real data plane's configuration, as rendered (pure functions; no root, no process)."""

from __future__ import annotations

import ipaddress
import json
import tarfile
from pathlib import Path

from jupyter_mldeploy.sandbox import dataplane_build, gateway, images, node
from jupyter_mldeploy.spec import DeploySpec


def _layout(port: int = 17400) -> node.Layout:
    return node.Layout(Path("/tmp/sb-x"), port)


def test_each_sandbox_has_its_own_bridge_subnet_cgroup_and_ports():
    a, b = _layout(17400), _layout(16443)
    assert a.bridge != b.bridge and len(a.bridge) <= 15
    assert not a.subnet.overlaps(b.subnet)
    assert a.cgroup_name != b.cgroup_name
    assert ipaddress.ip_address(a.node_ip) in a.subnet and not ipaddress.ip_address(a.node_ip).is_loopback
    ports = {a.kubelet_port, a.kubelet_healthz_port, a.registry_port, gateway.listener_port(17400),
             gateway.admin_port(17400)}
    assert len(ports) == 5 and all(17406 <= p <= 17429 for p in ports)  # past the control plane's six


def test_kubelet_runs_on_this_hosts_cgroup_v1_and_registers_tainted():
    cfg = node.kubelet_config(_layout())
    assert cfg["failCgroupV1"] is False and cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["cgroupRoot"] == "/mldeploy-17400"
    assert cfg["registerWithTaints"] == [node.TAINT]
    assert cfg["address"] == _layout().node_ip and cfg["healthzBindAddress"] == "127.0.0.1"
    assert cfg["readOnlyPort"] == 0
    assert cfg["makeIPTablesUtilChains"] is False  # the machine's iptables are not the kubelet's to change
    assert all(str(Path(cfg[k])).startswith("/tmp/sb-x/") for k in ("podLogsDir", "resolvConf"))
    assert "clusterDNS" not in cfg
    cmd = node.kubelet_command(_layout(), Path("/k"), Path("/c"))
    assert f"--node-labels={node.NODE_LABEL_KEY}={node.NODE_LABEL_VALUE}" in cmd
    assert any(a.startswith("--cert-dir=/tmp/sb-x/") for a in cmd)


def test_cni_bridge_neither_forwards_nor_masquerades_nor_routes():
    conf = node.cni_config(_layout())
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["bridge"] == "mld17400"
    assert bridge["isGateway"] is False and bridge["ipMasq"] is False
    assert bridge["ipam"]["routes"] == []
    assert bridge["ipam"]["dataDir"].startswith("/tmp/sb-x/")
    json.dumps(conf)


def test_containerd_stays_in_our_folder_and_pulls_from_our_registry(monkeypatch):
    monkeypatch.setattr(node, "cni_bin_dir", lambda: "/usr/lib/cni")
    text = node.containerd_config(_layout(), images.PAUSE_REF)
    assert "restrict_oom_score_adj = true" in text and "SystemdCgroup = false" in text
    assert "netns_mounts_under_state_dir = true" in text
    assert f'sandbox = "{images.PAUSE_REF}"' in text
    for key in ("root", "state", "address", "socket_dir", "path", "config_path", "conf_dir", "Root"):
        for line in text.splitlines():
            if line.strip().startswith(f"{key} = \"/"):
                if key == "socket_dir":  # containerd allows it 42 characters: a folder of ours in /run
                    value = line.split('"')[1]
                    assert value == "/run/mldeploy-17400/s" and len(value) <= 42, line
                else:
                    assert "/tmp/sb-x/" in line, line
    assert node.hosts_toml(_layout()).startswith('server = "http://127.0.0.1:17412"')


def test_placement_makes_a_valid_spec_that_selects_and_tolerates_the_real_node():
    spec = DeploySpec(name="m", image=images.serving_ref(), **node.placement())
    assert dict(spec.node_selector) == {node.NODE_LABEL_KEY: node.NODE_LABEL_VALUE}
    assert spec.tolerations[0].key == node.TAINT["key"] and spec.tolerations[0].effect == "NoSchedule"


def test_gateway_listens_on_loopback_and_names_its_envoy_version():
    docs = {d["kind"]: d for d in gateway.objects(17400)}
    gw = docs["Gateway"]["spec"]
    assert gw["addresses"] == [{"type": "IPAddress", "value": "127.0.0.1"}]
    assert gw["listeners"][0]["port"] == 17420
    assert docs["EnvoyProxy"]["spec"]["provider"]["host"]["envoyVersion"] == dataplane_build.ENVOY.version
    assert docs["GatewayClass"]["spec"]["parametersRef"]["name"] == docs["EnvoyProxy"]["metadata"]["name"]
    cfg = gateway.eg_config(Path("/tmp/h"), 17400)
    assert "host: 127.0.0.1" in cfg and "disable: true" in cfg and "type: Host" in cfg


def test_every_loopback_patch_names_a_file_and_the_address_it_writes():
    for rel, before, after in dataplane_build.EG_PATCHES:
        assert rel.endswith(".go") and before != after and "127.0.0.1" in after
    assert all(v.endswith("=0") for v in dataplane_build.EG_VARS)


def test_app_layer_holds_the_package_and_is_reproducible(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "cache_dir", lambda: tmp_path)
    first = images.app_layer()
    with tarfile.open(first) as tar:
        names = tar.getnames()
    assert "app/jupyter_mldeploy/serving/server.py" in names
    assert not any("__pycache__" in n or n.endswith(".ipynb") for n in names)
    first.unlink()
    assert images.app_layer().read_bytes() == images.app_layer().read_bytes()


def test_crane_list_flags_quote_commas_and_quotes():
    assert images._csv("sh", "-c", 'exec x "$A"') == 'sh,-c,"exec x ""$A"""'


def test_the_gateway_route_names_its_split_for_envoy_gateway_and_it_moves_with_the_weights():
    """Envoy applies a weight-only change of a cluster's locality weights late or never; the split in
    the annotation Envoy Gateway copies into the cluster makes each weight change a new cluster."""
    from jupyter_mldeploy.render.routers import gateway as gw_router

    def split(stable: int, candidate: int, track: str | None = "canary") -> str:
        (route,) = gw_router.route("m", "ns", stable_weight=stable, candidate_weight=candidate,
                                   candidate_track=track, gateway="gw/sb", labels={"a": "b"})
        weights = [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]]
        value = route["metadata"]["annotations"][gw_router.ENVOY_GATEWAY_SPLIT]
        assert value == "/".join(map(str, weights))
        return value

    assert split(90, 10) == "90/10" and split(70, 30) == "70/30" and split(100, 0) == "100/0"
    assert split(100, 0, track=None) == "100"
    assert gw_router.ENVOY_GATEWAY_SPLIT.startswith("gateway.envoyproxy.io/")


def test_the_data_plane_touches_no_folder_that_up_did_not_mark(tmp_path):
    """A project folder that happens to hold a `node/` and a `dataplane.json` is not a sandbox: `down`
    and `up` refuse it in one sentence and leave every file in it."""
    import pytest

    from jupyter_mldeploy.sandbox import dataplane
    from jupyter_mldeploy.sandbox.control_plane import Sandbox
    from jupyter_mldeploy.sandbox.errors import SandboxError

    folder = tmp_path / "project"
    (folder / "node" / "kubelet").mkdir(parents=True)
    state = folder / "dataplane.json"
    state.write_text(json.dumps({"port_base": 17400, "processes": {}, "made": {"bridge": "mld17400"}}))
    box = Sandbox(folder)
    assert dataplane.status(box) == {"up": False, "processes": {}, "gateway": False}
    for act in (lambda: dataplane.down(box, progress=lambda _m: None),
                lambda: dataplane.up(box, progress=lambda _m: None)):
        with pytest.raises(SandboxError, match="not a sandbox folder") as refused:
            act()
        assert "\n" not in str(refused.value)
    assert (folder / "node" / "kubelet").is_dir() and json.loads(state.read_text())["port_base"] == 17400


def test_a_data_plane_process_is_traced_to_its_sandbox_by_the_paths_it_runs_with():
    """One data plane per machine: the holder is found from its processes' command lines (kubelet's
    --root-dir, containerd's --config, envoy-gateway's --config-path)."""
    from jupyter_mldeploy.sandbox import dataplane

    assert dataplane._sandbox_of(Path("/srv/sb-a/node/kubelet")) == "/srv/sb-a"
    assert dataplane._sandbox_of(Path("/srv/sb-a/node/containerd/config.toml")) == "/srv/sb-a"
    assert dataplane._sandbox_of(Path("/srv/sb-a/gateway/envoy-gateway.yaml")) == "/srv/sb-a"
    assert dataplane._sandbox_of(Path("/srv/elsewhere/config.toml")) is None


def test_sandbox_build_makes_the_data_planes_parts_as_root_and_says_why_not_otherwise(monkeypatch, capsys):
    """`make test` runs `sandbox build` before the suite: as root (CI) it builds every missing part of
    the data plane (ensure_parts builds only what is missing) and its image layers; without root, whose
    dataplane tests skip, it builds none and says so."""
    import os as _os

    from jupyter_mldeploy import __main__ as cli
    from jupyter_mldeploy.sandbox import build, crds

    calls: list[str] = []
    monkeypatch.setattr(build, "ensure_binaries", lambda *a, **k: calls.append("control plane") or Path("/b"))
    monkeypatch.setattr(crds, "crd_file", lambda: Path("/c/crds.yaml"))
    monkeypatch.setattr(dataplane_build, "ensure_parts", lambda *a, **k: calls.append("parts"))
    monkeypatch.setattr(images, "build_layers", lambda *a, **k: calls.append("layers") or [Path("/i/l.tar")])
    for euid, expected in ((0, ["control plane", "parts", "layers"]), (1000, ["control plane"])):
        calls.clear()
        monkeypatch.setattr(_os, "geteuid", lambda e=euid: e)
        assert cli.main(["sandbox", "build"]) == 0
        assert calls == expected, (euid, calls)
    assert "Data plane parts not built: the real node runs only as root" in capsys.readouterr().out
    calls.clear()
    monkeypatch.setattr(_os, "geteuid", lambda: 0)
    assert cli.main(["sandbox", "build", "--no-data-plane"]) == 0 and calls == ["control plane"]
    # What "missing" means: a part whose binaries are not all in the cache is built.
    monkeypatch.setattr(build, "cache_root", lambda: Path("/nonexistent-cache"))
    assert dataplane_build.missing_parts() == list(dataplane_build.PARTS)
