"""Knative's networking layer in the sandbox, the pure parts: Traefik's and kube-proxy's configuration,
and where Knative's components sit beside the real node. No cluster, no process."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from jupyter_mldeploy.sandbox import knative as kn
from jupyter_mldeploy.sandbox import knative_ingress as ingress
from jupyter_mldeploy.sandbox import node
from jupyter_mldeploy.sandbox.knative_manifests import _configure


def layout() -> node.Layout:
    return node.Layout(Path("/tmp/sb"), 16443)


def test_traefik_listens_on_loopback_only_and_asks_nothing_of_the_internet():
    cfg = ingress.traefik_config(16443, "knative-serving")
    addresses = [e["address"] for e in cfg["entryPoints"].values()]
    assert addresses == [f"127.0.0.1:{ingress.ingress_port(16443)}"]
    assert cfg["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert not {"api", "ping", "metrics", "tracing"} & set(cfg)  # none of Traefik's other listeners
    knative = cfg["providers"]["knative"]
    # Public and cluster-local routes on the one loopback entry point; a load balancer named, so
    # Knative's Route can be Ready.
    assert knative["publicEntrypoints"] == knative["privateEntrypoints"] == ["web"]
    assert knative["publicService"]["namespace"] == "knative-serving" and cfg["experimental"]["knative"]


def test_kube_proxy_binds_loopback_and_leaves_the_machines_settings_alone():
    lay = layout()
    cfg = ingress.kube_proxy_config(lay, "/k.conf")
    for key in ("healthzBindAddress", "metricsBindAddress"):
        assert cfg[key].startswith("127.0.0.1:")
    assert cfg["bindAddress"] == "127.0.0.1"
    # NodePorts on the node's bridge address only: localhost NodePorts would turn on route_localnet.
    assert cfg["nodePortAddresses"] == [f"{lay.node_ip}/32"]
    assert cfg["conntrack"]["maxPerCore"] == 0 and cfg["conntrack"]["min"] == 0
    assert cfg["conntrack"]["tcpEstablishedTimeout"] == cfg["conntrack"]["tcpCloseWaitTimeout"] == "0s"
    assert cfg["clusterCIDR"] == str(lay.subnet) and cfg["hostnameOverride"] == node.NODE_NAME
    assert cfg["mode"] == "iptables" and not cfg["iptables"]["masqueradeAll"]


def test_the_ingress_ports_sit_above_the_data_planes_and_below_a_second_sandbox():
    base = 16443
    used = {base + i for i in range(6)} | {base + 10, base + 11, base + 12, base + 13, base + 20}
    ours = {ingress.ingress_port(base), base + 22, base + 23}
    assert not ours & used and max(ours) < base + 30  # test_sandbox's second sandbox starts at +30


def test_beside_the_real_node_components_take_addresses_below_the_pods_range():
    lay = layout()
    net = kn.Net(16443, lay.bridge, str(lay.subnet.network_address)[:-2])
    ips = [ipaddress.ip_address(net.ip(c)) for c in kn.COMPONENTS]
    assert net.bridge == lay.bridge and net.host_ip == lay.node_ip
    assert all(ip in lay.subnet for ip in ips)
    first_pod = lay.subnet.network_address + node.FIRST_POD_HOST
    assert all(lay.subnet.network_address + 1 < ip < first_pod for ip in ips) and len(set(ips)) == 4


def test_without_the_node_the_components_keep_their_own_bridge():
    net = kn.Net(16443)
    assert net.bridge == "mlkn16443" and net.node_bridge is None and net.subnet.startswith("10.251.")


def test_the_networking_config_only_goes_in_beside_the_node():
    cm = {"metadata": {"name": "config-network"}, "data": {}}
    assert "ingress-class" not in _configure(cm)["data"]
    assert _configure(cm, networking=True)["data"]["ingress-class"] == ingress.INGRESS_CLASS
    deployment = {"metadata": {"name": "config-deployment"}, "data": {}}
    assert _configure(deployment, networking=True)["data"]["queue-sidecar-image"] == ingress.queue_image()
    assert _configure(deployment)["data"]["queue-sidecar-image"] == kn.QUEUE_IMAGE
    assert ingress.queue_image().startswith("sandbox.local/")  # pulled from the node's own registry
    assert "sandbox.local" in kn.SKIP_TAG_RESOLVING  # so its tags are used as written, never looked up
