"""The picture of a canary split against the sandbox: headless `%canary NAME` prints it as text, and the
CanarySlider on a running event loop keeps it live from the namespace's real watches (the canary
scaled up by someone else shows up without a refresh)."""

from __future__ import annotations

import asyncio
import time

import comm
import pytest
from widget_comm import RecordingComm

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.split import TrackPods

pytestmark = pytest.mark.sandbox

V1, V2 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0"


@pytest.fixture
def canary_at_30(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1} --replicas 2 --cpu 50m --memory 64Mi")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 30 --router istio")
    return ro.read("fraud", namespace=namespace, kube=kube)


def test_headless_canary_prints_the_split_as_a_text_bar(ip, canary_at_30, capsys):
    capsys.readouterr()
    r = ip.run_line_magic("canary", "fraud")
    assert r.weight == 30
    assert capsys.readouterr().out.splitlines() == [
        "fraud: stable 70% / canary 30% via istio",
        f"  [{'#' * 28}{'+' * 12}]",
        "  # stable 1.0          70%  2/2 ready",
        "  + canary 2.0          30%  1/1 ready",
    ]


def test_the_slider_picture_follows_the_canary_pods_live(canary_at_30, kube: Kube, namespace, monkeypatch):
    monkeypatch.setattr(comm, "create_comm", lambda *a, **kw: RecordingComm(*a, **kw))
    from jupyter_mldeploy.widgets.canary import CanarySlider

    async def on_a_loop() -> tuple[dict, str]:
        slider = CanarySlider("fraud", namespace=namespace, kube=kube)
        try:
            assert slider.live and slider._watches is not None
            assert slider.pods["canary"] == TrackPods(1, 1) and "<code>2.0</code> 30%, 1/1 ready" in \
                slider.split.value
            # someone scales the canary to 3: the picture follows from the watch, no refresh asked
            kube.request("PATCH", f"/apis/apps/v1/namespaces/{namespace}/deployments/fraud-canary/scale",
                         body={"spec": {"replicas": 3}}, content_type="application/merge-patch+json")
            deadline = time.monotonic() + 60
            while slider.pods.get("canary") != TrackPods(3, 3) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            return dict(slider.pods), slider.split.value
        finally:
            slider.close()

    pods, shown = asyncio.run(on_a_loop())
    assert pods["canary"] == TrackPods(3, 3), pods
    assert "<code>2.0</code> 30%, 3/3 ready" in shown and "<code>1.0</code> 70%, 2/2 ready" in shown
