"""End to end in a real JupyterLab 4 in headless Chromium: a canary at 10% on the Gateway API router,
`%canary` shows the CanarySlider, the keyboard moves its handle, the HTTPRoute follows, and Roll back
leaves the stable model alone with all the traffic. The cluster is always read through the API, never
through the widget."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

import jupyter_mldeploy as mld
from jupyter_mldeploy import labels as L
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.kube.resources import collection_path
from jupyter_mldeploy.spec import DeploySpec

pytestmark = [pytest.mark.sandbox, pytest.mark.ui]

NAME = "uicanary"
START, PAGES = 10, 4
TARGET = START + 5 * PAGES  # noUiSlider's PageUp moves 5 steps (ipywidgets keeps its default); step is 1

T = TypeVar("T")
STABLE_RGB, CANARY_RGB = (0x15, 0x65, 0xC0), (0xEF, 0x6C, 0x00)  # split.STABLE_COLOUR, CANARY_COLOUR


def spec(version: str, **kw: str) -> DeploySpec:
    return DeploySpec.from_dict({"name": NAME, "image": f"ghcr.io/acme/{NAME}:{version}", **kw})


def route_weights(kube: Kube, namespace: str) -> list[tuple[str, int]]:
    """The HTTPRoute's backendRefs as (Service, weight); Gateway API's default weight is 1."""
    path = f"{collection_path('gateway.networking.k8s.io/v1', 'HTTPRoute', namespace)}/{NAME}"
    refs = kube.request("GET", path)[1]["spec"]["rules"][0]["backendRefs"]
    return [(b["name"], b.get("weight", 1)) for b in refs]


def listed(kube: Kube, namespace: str, group_version: str, kind: str, selector: str) -> list[dict]:
    return kube.request("GET", collection_path(group_version, kind, namespace),
                        query={"labelSelector": selector})[1].get("items", [])


def until(what: str, probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 60) -> T:
    """Poll `probe` until `ok` holds; fail with the last value seen once `timeout` s have gone by."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {timeout:g} s")
        time.sleep(0.25)


def test_canary_slider_moves_the_http_route_and_rolls_back(notebook, screenshot, cluster, namespace):
    kube = Kube(str(cluster.kubeconfig), cluster.context)
    mld.deploy(spec("1.0", gateway="infra/public", expose="gateway", host=f"{NAME}.example"),
               namespace=namespace, kube=kube, timeout=120)
    ro.start(spec("2.0"), strategy="canary", weight=START, router="gateway", namespace=namespace, kube=kube,
             timeout=120)
    canary = f"{collection_path('apps/v1', 'Deployment', namespace)}/{NAME}-canary"
    until("ready canary pods", lambda: kube.request("GET", canary)[1].get("status", {}).get("readyReplicas"),
          lambda ready: (ready or 0) >= 1)
    assert route_weights(kube, namespace) == [(NAME, 100 - START), (f"{NAME}-canary", START)]

    where = f" --namespace {namespace}" + (f" --context {cluster.context}" if cluster.context else "")
    notebook.run(["%load_ext jupyter_mldeploy", f"%canary {NAME}{where}"])
    page = notebook.page
    widget = page.locator(".mldeploy-canary")
    notebook.wait_for(widget, "the CanarySlider")
    widget.locator(".mldeploy-split", has_text=f"stable {100 - START}% / canary {START}%").wait_for()
    # enabled once the widget has seen the ready canary pod (noUiSlider ignores keys while disabled)
    widget.locator(".noUi-target:not([disabled])").wait_for()
    readout = widget.locator(".widget-readout")
    assert readout.inner_text() == str(START)

    handle = widget.locator(".noUi-handle")
    handle.focus()
    for _ in range(PAGES):
        handle.press("PageUp")
    assert readout.inner_text() == str(TARGET)  # the browser's value; the cluster is checked next
    until("the HTTPRoute's weights", lambda: route_weights(kube, namespace),
          lambda w: w == [(NAME, 100 - TARGET), (f"{NAME}-canary", TARGET)])
    # the widget shows what it read back from the route object, and no error
    widget.locator(".mldeploy-split", has_text=f"stable {100 - TARGET}% / canary {TARGET}%").wait_for()
    assert widget.locator('span[style*="#c62828"]').count() == 0, widget.inner_text()
    # the picture of the split: a bar whose two segments are the shares, and each track's version and pods
    bar = widget.locator(".mldeploy-split-bar")
    bar.wait_for()
    widths = [widget.locator(f".mldeploy-split-{t}").bounding_box()["width"] for t in ("stable", "canary")]
    total = bar.bounding_box()["width"]
    assert abs(widths[0] / total - (100 - TARGET) / 100) < 0.02
    assert abs(widths[1] / total - TARGET / 100) < 0.02
    legend = widget.locator(".mldeploy-split-legend").inner_text()
    assert f"stable 1.0 {100 - TARGET}%, 1/1 ready" in legend and f"canary 2.0 {TARGET}%, 1/1 ready" in legend
    colours = screenshot(widget, "canary-slider.png")
    for rgb in (STABLE_RGB, CANARY_RGB):
        assert any(c == rgb for _, c in colours), f"no {rgb} in the picture of the split"

    widget.locator("button", has_text="Roll back").click()
    # the sentence %rollback prints (outcomes.rolled_back)
    back = f"Rolled back the canary rollout of {NAME}: all traffic is on the stable model"
    widget.get_by_text(back).wait_for(timeout=60_000)
    until("the HTTPRoute's weights", lambda: route_weights(kube, namespace), lambda w: w == [(NAME, 100)])
    until("Deployments", lambda: sorted(d["metadata"]["name"] for d in listed(
        kube, namespace, "apps/v1", "Deployment", L.selector_for(NAME))), lambda names: names == [NAME])
    until("canary pods", lambda: [p["metadata"]["name"] for p in listed(
        kube, namespace, "v1", "Pod", f"{L.APP_INSTANCE}={NAME},{L.TRACK}=canary")], lambda pods: pods == [])
    stable = kube.request("GET", f"{collection_path('apps/v1', 'Deployment', namespace)}/{NAME}")[1]
    assert stable["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/acme/{NAME}:1.0"
    assert ro.read(NAME, namespace=namespace, kube=kube) is None  # the route says: no rollout any more
    # the widget says so too, and has nothing left to move
    widget.locator(".mldeploy-split", has_text="stable 100% / canary 0%").wait_for()
    widget.locator(".widget-readout", has_text=re.compile(r"^0$")).wait_for()
    assert widget.locator(".noUi-target[disabled]").count() == 1
    screenshot(widget, "canary-slider-rolled-back.png")
