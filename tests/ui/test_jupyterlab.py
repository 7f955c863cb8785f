"""End to end in a real JupyterLab 4 in headless Chromium: run the panel's cell, fill the image fields,
Deploy, watch the pods turn Ready in the live status view, Undeploy, and check the cluster is clean."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jupyter_mldeploy import api
from jupyter_mldeploy import labels as L
from jupyter_mldeploy.kube import inventory
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.kube.resources import collection_path

pytestmark = [pytest.mark.sandbox, pytest.mark.ui]

REPO = Path(__file__).resolve().parents[2]
READY_GREEN = (0x2E, 0x7D, 0x32)  # the ready rows' colour cue


def _panel_magic() -> bool:
    """Is `%deploy NAME --panel` there (the magics are another module's; the panel is opened either way)?"""
    args = REPO / "jupyter_mldeploy" / "magics" / "args.py"
    return args.exists() and '"--panel"' in args.read_text()


def cells(namespace: str, context: str | None) -> list[str]:
    if _panel_magic():
        where = f" --namespace {namespace}" + (f" --context {context}" if context else "")
        return ["%load_ext jupyter_mldeploy", f"%deploy uitest --panel{where}"]
    return ["from jupyter_mldeploy.kube.client import connect\n"
            "from jupyter_mldeploy.widgets import DeployPanel\n"
            f"p = DeployPanel('uitest', namespace={namespace!r}, kube=connect(None, {context!r}))\n"
            "p"]


def leftovers(kube: Kube, namespace: str) -> list[str]:
    """Every object of the model still on the cluster, by our labels (pods by the instance label)."""
    served = inventory.served_groups(kube)
    found = []
    for group_version, kind in [*api.OUR_KINDS, ("v1", "Pod")]:
        if group_version not in served:
            continue
        selector = (f"{L.APP_INSTANCE}=uitest" if kind == "Pod" else L.selector_for("uitest"))
        _, body = kube.request("GET", collection_path(group_version, kind, namespace),
                               query={"labelSelector": selector})
        found += [f"{kind}/{o['metadata']['name']}" for o in body.get("items", [])]
    return found


def test_deploy_panel_deploys_shows_ready_pods_and_undeploys(notebook, screenshot, cluster, namespace):
    page = notebook.page
    notebook.run(cells(namespace, cluster.context))
    panel = page.locator(".mldeploy-deploy-panel")
    notebook.wait_for(panel, "the panel")

    deploy = panel.locator("button.mldeploy-deploy")
    assert deploy.is_disabled()  # no image yet: nothing can be sent
    image = panel.locator(".mldeploy-image-builder")
    image.locator('input[placeholder^="ghcr.io"]').fill("ghcr.io")
    image.locator('input[placeholder="acme/churn"]').fill("acme/uitest")
    image.locator('input[placeholder="1.4"]').fill("bad tag")
    page.get_by_text("Image tag 'bad tag' is invalid").wait_for()
    assert deploy.is_disabled()
    image.locator('input[placeholder="1.4"]').fill("1.0")
    image.get_by_text("ghcr.io/acme/uitest:1.0").wait_for()
    for label, value in (("CPU (cores)", "0.1"), ("Memory (GiB)", "0.25"), ("Replicas", "3")):
        labelled = page.locator("label", has_text=label)
        field = panel.locator(".widget-inline-hbox", has=labelled).locator("input")
        field.fill(value)
        field.press("Tab")  # number fields sync on change
    panel.get_by_text("for 3 replicas").wait_for()
    panel.get_by_text("Estimated cost per replica: $0.004/hour").wait_for()  # example prices
    assert deploy.is_enabled()

    deploy.click()
    view = panel.locator(".mldeploy-status-view")
    view.get_by_text("3/3 ready").first.wait_for(timeout=120_000)
    view.get_by_text("rollout complete").wait_for(timeout=60_000)
    assert view.locator("tr.mldeploy-ready").count() == 3
    colours = screenshot(view, "status-view.png")
    assert any(c == READY_GREEN for _, c in colours), "no ready-green colour cue in the screenshot"
    screenshot(panel, "deploy-panel.png")  # the whole form, for people to look at

    panel.locator("button.mldeploy-undeploy").click()
    panel.get_by_text("Undeployed uitest").wait_for()
    view.get_by_text("was deleted; no longer watching").wait_for(timeout=60_000)

    kube = Kube(str(cluster.kubeconfig), cluster.context)
    deadline = time.monotonic() + 60
    while (left := leftovers(kube, namespace)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == []
