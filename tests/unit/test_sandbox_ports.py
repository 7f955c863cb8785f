"""Every port a sandbox listens on comes from one table of offsets (sandbox/ports.py): no two
components share one, and all stay below the second sandbox test_sandbox starts at base + 30."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_mldeploy.sandbox import gateway, ingress_nginx, knative_ingress, node, ports
from jupyter_mldeploy.sandbox.command_lines import Ports
from jupyter_mldeploy.sandbox.errors import SandboxError

BASE = 17400


def _every_port(monkeypatch) -> dict[str, int]:
    monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", str(BASE))
    lay = node.Layout(Path("/tmp/sb"), BASE)
    proxy = knative_ingress.kube_proxy_config(lay, "/tmp/kc")
    return {**vars(Ports.from_env()),
            "kubelet": lay.kubelet_port, "kubelet_healthz": lay.kubelet_healthz_port,
            "registry": lay.registry_port,
            "gateway_admin": gateway.admin_port(BASE), "gateway_listener": gateway.listener_port(BASE),
            "knative_ingress": knative_ingress.ingress_port(BASE),
            "kube_proxy_healthz": int(proxy["healthzBindAddress"].rsplit(":", 1)[1]),
            "kube_proxy_metrics": int(proxy["metricsBindAddress"].rsplit(":", 1)[1]),
            "ingress_nginx": ingress_nginx.port(BASE)}


def test_each_component_listens_where_the_table_says(monkeypatch):
    assert _every_port(monkeypatch) == {name: BASE + off for name, off in ports.OFFSETS.items()}


def test_no_two_components_share_a_port_and_all_leave_room_for_a_second_sandbox(monkeypatch):
    used = list(_every_port(monkeypatch).values())
    assert len(set(used)) == len(used) == len(ports.OFFSETS)
    assert min(used) == BASE and max(used) < BASE + 30


@pytest.mark.parametrize("raw", ["abc", "80", "65530"])
def test_a_base_port_without_room_is_refused_in_one_sentence(monkeypatch, raw):
    monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", raw)
    with pytest.raises(SandboxError, match=r"^MLDEPLOY_SANDBOX_PORT=.* is not a port between 1025 and 65529"):
        ports.base_from_env()


def test_without_the_variable_the_base_is_the_default(monkeypatch):
    monkeypatch.delenv("MLDEPLOY_SANDBOX_PORT", raising=False)
    assert ports.base_from_env() == ports.DEFAULT_BASE == 16443
