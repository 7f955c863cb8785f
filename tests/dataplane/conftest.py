"""The real data plane beside the sandbox: brought up once per session, on the sandbox only.

Select these tests with `-m dataplane`; they need root (a bridge, cgroups, containers) and the data
plane's binaries (built and cached on first use, see jupyter_mldeploy/sandbox/dataplane_build.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from jupyter_mldeploy.sandbox import dataplane, node, node_host
from jupyter_mldeploy.sandbox.errors import SandboxError


@dataclass(frozen=True)
class RealPlane:
    box: object
    info: dict

    @property
    def layout(self) -> node.Layout:
        return dataplane.layout(self.box)

    @property
    def gateway_port(self) -> int:
        return int(self.info["gateway_url"].rsplit(":", 1)[1])


@pytest.fixture(scope="session")
def real(cluster):
    if not cluster.is_sandbox:
        pytest.skip("the real node and Gateway are the sandbox's own data plane")
    try:
        node_host.check_host()
    except SandboxError as e:
        pytest.skip(str(e))
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    box = Sandbox()
    was_up = dataplane.status(box)["up"]
    try:
        info = dataplane.up(box, progress=lambda _m: None, with_gateway=False)
    except dataplane.DataPlaneBusy as e:  # another sandbox on this machine runs the one data plane
        pytest.skip(str(e))
    yield RealPlane(box, info)
    # The session's sandbox fixture stops everything it started; a data plane started here on a
    # sandbox someone else started is stopped here.
    if not was_up and not os.environ.get("MLDEPLOY_KEEP_SANDBOX"):
        dataplane.down(box, progress=lambda _m: None)


@pytest.fixture
def core(cluster):
    from kubernetes import client

    return client.CoreV1Api(cluster.api_client())


@pytest.fixture(scope="session")
def real_gateway(real):
    """The real node plus Envoy Gateway serving the sandbox's Gateway on 127.0.0.1."""
    try:
        info = dataplane.up(real.box, progress=lambda _m: None, with_gateway=True)
    except dataplane.DataPlaneBusy as e:  # another sandbox started its Gateway meanwhile
        pytest.skip(str(e))
    return RealPlane(real.box, info)
