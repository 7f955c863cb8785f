"""The notebook path on the real node: `%%deploy` with the node's selector and toleration in the cell,
a canary started with `%deploy --strategy canary`, and `%canary` moving the split Envoy really
applies (what the canary slider writes too)."""

from __future__ import annotations

import pytest

from jupyter_mldeploy.sandbox import gateway, images, node
from tests.integration.conftest import ip  # noqa: F401  (the shell fixture)

from .realnode import (
    Client,
    envoy_admin_url,
    host_for,
    settle_split,
    versions_through,
    wait_for_envoy,
    within_3_sigma,
)

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]

# The README's recipe, as a user writes it: block style (braces in a cell are notebook variables).
CELL = f"""%%deploy {{name}} --image {images.serving_ref()} --expose gateway \
--gateway {gateway.gateway_ref()} --host {{host}}
node_selector:
  {node.NODE_LABEL_KEY}: {node.NODE_LABEL_VALUE}
tolerations:
- key: {node.TAINT['key']}
  operator: Equal
  value: {node.TAINT['value']}
  effect: {node.TAINT['effect']}
env:
  MODEL_VERSION: "1"
"""


def test_deploy_cell_canary_magic_and_measured_split(ip, real_gateway, namespace, core):  # noqa: F811
    name, host = "nb", host_for("nb", namespace)
    ip.user_ns.update(name=name, host=host)
    result = ip.run_cell(CELL)
    assert result.success, result.error_in_exec
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={name}").items
    assert [p.spec.node_name for p in pods] == [node.NODE_NAME]

    client = Client("127.0.0.1", real_gateway.gateway_port)
    try:
        settle_split(client, host, {"1"})
        result = ip.run_cell(CELL.replace("--host {host}", "--host {host} --strategy canary --weight 20")
                             .replace('MODEL_VERSION: "1"', 'MODEL_VERSION: "2"'))
        assert result.success, result.error_in_exec
        n = 500
        for weight in (20, 60):
            if weight != 20:
                assert ip.run_line_magic("canary", f"{name} {weight}") is not None
            wait_for_envoy(envoy_admin_url(real_gateway.box), namespace, name,
                           lambda r, w=weight: (r["weights"].get(0), r["weights"].get(1)) == (100 - w, w),
                           f"{weight}%")
            seen = versions_through(client, host, n)
            print(f"%canary {weight}: {dict(seen)}")
            assert set(seen) == {"1", "2"} and within_3_sigma(seen["2"], n, weight / 100), seen
    finally:
        client.close()
