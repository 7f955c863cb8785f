"""Knative's components beside the sandbox keep the sandbox's rules: every file they add to the state
folder is recorded in its marker (so `down` removes exactly those) and private from the first byte, and
nothing of theirs listens in this machine's own network namespace (each runs in a namespace of its own,
with no route off the machine)."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from jupyter_mldeploy.sandbox import knative as kn

pytestmark = [pytest.mark.sandbox, pytest.mark.knative]


def test_every_file_knative_adds_is_recorded_and_private(knative):
    box = knative
    record = json.loads((box.dir / ".mldeploy-sandbox").read_text())
    for name in ("knative.json", "knative-crds.yaml", "knative-objects.yaml", "knative-webhooks.yaml",
                 "knative-probe.yaml"):
        assert name in record["entries"], name
        assert stat.S_IMODE(os.lstat(box.dir / name).st_mode) == 0o600, name
    logs = sorted(box.log_dir.glob("knative-*.log"))
    assert {p.name for p in logs} >= {f"knative-{c}.log" for c in (*kn.COMPONENTS, "relay")}
    assert all(stat.S_IMODE(os.lstat(p).st_mode) == 0o600 for p in logs)
    unrecorded = {e.name for e in os.scandir(box.dir)} - set(record["entries"]) - {".mldeploy-sandbox"}
    assert unrecorded == set()


def test_no_knative_component_listens_in_this_machines_namespace(knative, networking):
    state = kn.Knative(knative).state()
    layer = {"knative-traefik", "knative-kube-proxy"}  # the networking layer: host processes, loopback only
    pids = {str(p["pid"]) for n, p in state["processes"].items() if n not in layer}
    try:
        out = subprocess.run(["ss", "-ltnpuH"], capture_output=True, text=True, timeout=10).stdout
    except FileNotFoundError:
        pytest.skip("iproute2's ss is not installed")
    listening = [line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert listening == []  # the relay's sockets and the components' ports are inside their namespaces
    assert (set(state["processes"]) >= layer) is networking
    if networking:
        from jupyter_mldeploy.sandbox import dataplane, knative_ingress

        base = dataplane.layout(knative).port_base
        layer_pids = {str(state["processes"][n]["pid"]) for n in layer}
        sockets = {line.split()[4] for line in out.splitlines()
                   if any(f"pid={p}," in line for p in layer_pids)}
        assert sockets == {f"127.0.0.1:{knative_ingress.ingress_port(base)}", f"127.0.0.1:{base + 22}",
                           f"127.0.0.1:{base + 23}"}
    for c in kn.COMPONENTS:
        inside = subprocess.run(["ip", "netns", "exec", kn.net_of(state).netns(c), "ss", "-ltnH"],
                                capture_output=True, text=True, timeout=10).stdout
        assert f"127.0.0.1:{state['port']}" in inside  # the API server, relayed at the same address
