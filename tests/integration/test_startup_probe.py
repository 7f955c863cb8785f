"""A model that loads for a while, behind a startup probe, against the sandbox.

The sandbox's kwok stages make a slow loader out of a pod annotated sandbox.mldeploy.io/startup-delay:
its container runs at once but its startup probe has not passed (status `started: false`) for that
long. The progress lines must say it is loading and how far into the window it is, and the rollout
completes once it has loaded; the API server keeps the startupProbe as rendered.
"""

from __future__ import annotations

import pytest

from jupyter_mldeploy.kube.client import Kube

pytestmark = pytest.mark.sandbox

IMAGE = "ghcr.io/acme/llm:1.0"


def test_a_slow_loader_shows_loading_then_becomes_ready(ip, kube: Kube, namespace, capsys):
    cell = ("image: " + IMAGE + "\ncpu: 100m\nmemory: 128Mi\n"
            "annotations:\n  sandbox.mldeploy.io/startup-delay: 6s\n")
    result = ip.run_cell(f"%%deploy llm --startup /v2/health/ready --startup-timeout 15m\n{cell}")
    assert result.success, result.error_in_exec
    out = capsys.readouterr().out.splitlines()
    progress = [line for line in out if line.startswith("llm  [")]
    loading = [line for line in progress if "loading (startup probe, " in line]
    assert loading, progress
    assert loading[0].endswith("0/1 ready  loading (startup probe, 0 of 15 min)")
    assert progress[-1] == "llm  [##########] 1/1 ready  rolled out"
    assert "llm: 1/1 ready, rollout complete" in out

    _, dep = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/llm")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    probe = container["startupProbe"]
    assert probe["httpGet"]["path"] == "/v2/health/ready"
    assert probe["periodSeconds"] * probe["failureThreshold"] == 900
    assert container["readinessProbe"] and container["livenessProbe"]  # kept; they wait for it


def test_the_handle_status_says_loading_while_the_probe_waits(ip, kube: Kube, namespace):
    cell = ("image: " + IMAGE + "\nannotations:\n  sandbox.mldeploy.io/startup-delay: 60s\n")
    result = ip.run_cell(f"%%deploy llm --startup /v2/health/ready --startup-timeout 2m --no-wait\n{cell}")
    assert result.success, result.error_in_exec
    import time

    from jupyter_mldeploy import api
    from jupyter_mldeploy.status import format_progress_line

    deadline = time.monotonic() + 30
    while True:  # the pod is created, scheduled and started by the sandbox within a few seconds
        status = api.get("llm", namespace=namespace, kube=kube).last_status
        if any(p.loading for p in status.pods) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    row = next(p for p in status.pods if p.loading)
    assert row.loading[1] == 120 and row.activity == "loading" and not row.ready
    line = format_progress_line(status)
    assert "loading (startup probe, " in line and line.endswith(" of 2 min)")
