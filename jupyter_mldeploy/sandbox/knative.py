"""Knative Serving's own components in the sandbox (opt-in: `sandbox up --knative`, or
MLDEPLOY_SANDBOX_KNATIVE=1): controller, webhook, autoscaler and activator from the published
`knative.dev/serving` module, run against the sandbox's API server with their `config/core` objects.

Built with `go install knative.dev/serving/cmd/...@vX` (the module has no replace directives) and
cached beside the control plane's binaries, keyed by version; the YAML is read at start from the
module zips in the Go module cache (serving, and the knative.dev/networking and knative.dev/caching
versions serving's go.mod requires), never copied into this repository. Those live in
knative_build.py, the objects made from the YAML in knative_manifests.py, the network in
knative_net.py; this module starts, waits on and stops the components.

Why each component runs in a network namespace of its own, on a private bridge (as pods do):
- they listen on fixed ports of every interface (":8080", ":8008", ":9090"; the autoscaler's stats
  port is a constant), which would collide with each other and with the machine's other programs, and
  the sandbox never listens beyond loopback;
- the autoscaler announces its bucket leadership by writing an EndpointSlice with POD_IP, and the API
  server refuses loopback addresses there: with POD_IP=127.0.0.1 the write fails and the process
  exits (`statforwarder/leases.go` calls Fatalf). Knative's SKS reads the activator's Endpoints, and
  the API server reaches the webhook through its Service's endpoints: all need a real address;
- a namespace with no default route keeps every dial local: image tag resolution, metric scrapes of
  the simulated pods (whose loopback addresses are the namespace's own), DNS (a resolv.conf pointing
  at the namespace's loopback). Nothing can leave the machine.
A relay (`nsrelay.py`) gives each namespace the API server at the same 127.0.0.1 address, so every
component uses the sandbox's own kubeconfig. The namespaces need root (CAP_NET_ADMIN).

What stays missing without a networking layer (KIngress): the Route's and Service's Ready stays
Unknown (IngressNotConfigured), so no request reaches a revision through Knative; Revisions turn Ready
and `route.status.traffic` is computed by the real controller all the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ..diagnosis.leases import lease_holders
from . import knative_ingress as ingress
from . import processes
from .errors import SandboxError
from .folder import open_private_append, private_dir

# The names this module always offered, now in the modules that hold them (importers use them here).
from .knative_build import COMMANDS as COMMANDS
from .knative_build import COMPONENTS, NAMESPACE, VERSION, bin_dir, ensure_binaries, module_dirs
from .knative_build import MODULE as MODULE
from .knative_build import log_path as log_path
from .knative_build import missing_binaries as missing_binaries
from .knative_manifests import PROGRESS_DEADLINE as PROGRESS_DEADLINE
from .knative_manifests import QUEUE_IMAGE as QUEUE_IMAGE
from .knative_manifests import SKIP_TAG_RESOLVING as SKIP_TAG_RESOLVING
from .knative_manifests import system_manifests
from .knative_net import Net, net_down, net_of, net_up

ENV_FLAG = "MLDEPLOY_SANDBOX_KNATIVE"
WEBHOOK_CONFIGURATIONS = (("ValidatingWebhookConfiguration", "config.webhook.serving.knative.dev"),
                          ("MutatingWebhookConfiguration", "webhook.serving.knative.dev"),
                          ("ValidatingWebhookConfiguration", "validation.webhook.serving.knative.dev"))


def wanted() -> bool:
    return os.environ.get(ENV_FLAG, "").lower() in ("1", "true", "yes", "on")


# -- processes ----------------------------------------------------------------------------------------


class Knative:
    """Knative Serving's components beside one sandbox; state in `<sandbox dir>/knative.json`."""

    def __init__(self, sandbox) -> None:
        self.box = sandbox
        self.state_file = sandbox.dir / "knative.json"
        self.log_dir = sandbox.log_dir

    def state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, state: dict) -> None:
        # Recorded in the folder's marker (so `down` removes it), 0600 from its first byte.
        self.box.folder.write(self.state_file.name, json.dumps(state, indent=2))

    def status(self) -> dict:
        state = self.state()
        if state is None:
            return {"up": False, "processes": {}}
        procs = {n: {**p, "alive": processes.alive(p)} for n, p in state["processes"].items()}
        return {"up": all(p["alive"] for p in procs.values()), "processes": procs,
                "version": state.get("version")}

    def up(self, progress=print) -> dict:
        current = self.status()
        if current["up"]:
            progress("Knative Serving is already running in the sandbox; reusing it.")
            return current
        if self.state() is not None:
            self.down(progress=lambda _m: None)
        t0 = time.monotonic()
        binaries = ensure_binaries(progress)
        box_state = self.box._state()
        if box_state is None:
            raise SandboxError("The sandbox is not up: start it first (sandbox up --knative).")
        with open(f"/proc/{box_state['processes']['kube-apiserver']['pid']}/cmdline", "rb") as f:
            if b"--enable-aggregator-routing=true" not in f.read():
                raise SandboxError("This sandbox's API server was started without "
                                   "--enable-aggregator-routing, so it would dial the Knative webhook's "
                                   "ClusterIP, which nothing serves: run `sandbox down`, then "
                                   "`sandbox up --knative`.")
        lay, no_ingress = self._networking()
        port = int(box_state["ports"]["apiserver"])
        net = Net(port) if lay is None else Net(port, lay.bridge, str(lay.subnet.network_address)[:-2])
        networking = no_ingress is None
        crds, objects, webhooks = system_manifests(module_dirs(), net, networking)
        kube_bin = self.box_binaries()
        progress(f"Starting Knative Serving {VERSION} (controller, webhook, autoscaler, activator"
                 f"{'; Traefik and kube-proxy as its networking layer' if networking else ''})...")
        net_up(net)
        state = {"version": VERSION, "port": net.port, "processes": {}, "node_bridge": net.node_bridge,
                 "node_subnet": net.node_subnet, "networking": networking, "no_ingress": no_ingress}
        self._save(state)
        try:
            # Left by an earlier run, they would send the writes below to a webhook not yet started.
            self._drop_webhooks(kube_bin, webhooks)
            self._apply(kube_bin, crds, "crds")
            self._kubectl(kube_bin, "wait", "--for=condition=Established", "--timeout=60s",
                          *(f"crd/{d['metadata']['name']}" for d in crds))
            self._apply(kube_bin, objects, "objects")
            # Leases of an earlier run's processes would make these wait out their 60 s lease.
            self._kubectl(kube_bin, "delete", "leases", "--all", "-n", NAMESPACE, "--ignore-not-found")
            relay = [sys.executable, "-m", "jupyter_mldeploy.sandbox.nsrelay", str(net.port),
                     *(net.netns(c) for c in COMPONENTS)]
            # This very package, wherever it was imported from (the relay runs in the sandbox folder).
            here = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
            self._start("knative-relay", relay, state, env={"PYTHONPATH": path})
            time.sleep(0.5)
            kubeconfig = str(self.box.pki_dir / "components.kubeconfig")
            for c in COMPONENTS:
                env = {"SYSTEM_NAMESPACE": NAMESPACE, "POD_NAME": f"{c}-sandbox", "POD_IP": net.ip(c),
                       "CONFIG_LOGGING_NAME": "config-logging",
                       "CONFIG_OBSERVABILITY_NAME": "config-observability", "KUBECONFIG": kubeconfig,
                       "METRICS_DOMAIN": "knative.dev/internal/serving"}
                if c == "webhook":
                    env.update(WEBHOOK_NAME="webhook", WEBHOOK_PORT="8443")
                cmd = ["ip", "netns", "exec", net.netns(c), str(binaries / c), f"--kubeconfig={kubeconfig}"]
                self._start(f"knative-{c}", cmd, state, env=env)
            # The webhook configurations last: with failurePolicy Fail they refuse every Knative write
            # until the webhook serves, and the webhook fills in their caBundle itself.
            self._apply(kube_bin, webhooks, "webhooks")
            self._wait_webhook(kube_bin, state)
            self._wait_leaders(box_state, state)
            if networking:
                self._start_networking(lay, state, kubeconfig)
        except BaseException:
            progress(f"Knative did not come up; stopping what started. Logs stay in {self.log_dir}.")
            self.down(progress=lambda _m: None)
            raise
        took = f"Knative Serving up in {time.monotonic() - t0:.1f} s"
        if networking:
            progress(f"{took}; routes answer at http://127.0.0.1:{ingress.ingress_port(lay.port_base)} "
                     f"(Host: the route's host), revisions run on the real node.")
        else:
            progress(f"{took} (no networking layer: {no_ingress}; Routes stay IngressNotConfigured).")
        return self.status()

    def _networking(self):
        """(the real node's layout or None, why there is no networking layer or None)."""
        from . import dataplane

        if not dataplane.status(self.box)["up"]:
            return None, "the real node is not up (sandbox up without --no-data-plane)"
        lay = dataplane.layout(self.box)
        missing = ingress.missing()
        if missing:
            return lay, f"{', '.join(missing)} not built (sandbox build --knative, as root)"
        foreign = ingress.foreign_kube_proxy()
        if foreign:
            return lay, foreign
        return lay, None

    def _start_networking(self, lay, state: dict, kubeconfig: str) -> None:
        with open_private_append(self.log_dir / "knative-images.log") as raw, io.TextIOWrapper(raw) as log:
            ingress.publish_queue(bin_dir() / "queue", lay.registry_port, log)
        traefik_file, proxy_file = ingress.write_configs(self.box.folder, lay, kubeconfig, NAMESPACE)
        state["firewall_before"] = ingress.firewall_chains()  # kube-proxy adds one; down removes only that
        self._save(state)
        ingress.route_services(lay)
        for name, cmd in ingress.commands(traefik_file, proxy_file).items():
            self._start(name, cmd, state, env={"KUBECONFIG": kubeconfig})
        deadline = time.monotonic() + 60
        while not ingress.serving(lay):
            self._refuse_exited(state)
            if time.monotonic() > deadline:
                raise SandboxError("Traefik or kube-proxy did not answer on 127.0.0.1 within 60 s.\n"
                                   f"{self._tail('knative-traefik')}\n{self._tail('knative-kube-proxy')}")
            time.sleep(0.2)

    def box_binaries(self) -> Path:
        from . import build

        return build.bin_dir()

    def _kubectl(self, kube_bin: Path, *args: str) -> str:
        # The sandbox's own kubectl call: its private cache in the state folder, removed after use.
        return self.box._kubectl(kube_bin, *args)

    def _apply(self, kube_bin: Path, docs: list[dict], what: str) -> None:
        path = self.box.folder.write(f"knative-{what}.yaml", yaml.safe_dump_all(docs, sort_keys=False))
        self._kubectl(kube_bin, "apply", "--server-side", "--force-conflicts",
                      "--field-manager=mldeploy-sandbox", "-f", str(path))

    def _drop_webhooks(self, kube_bin: Path, webhooks: list[dict]) -> None:
        for w in webhooks:
            self._kubectl(kube_bin, "delete", "--ignore-not-found", "--wait=false",
                          f"{w['kind'].lower()}/{w['metadata']['name']}")

    def _start(self, name: str, cmd: list[str], state: dict, env: dict[str, str]) -> None:
        proc = processes.launch(cmd, self.log_dir / f"{name}.log", self.box.dir, env=env, umask=0o077)
        # `ip netns exec` execs the component in place, so this PID is the component's own.
        deadline = time.monotonic() + 2
        start = processes.start_time(proc.pid)
        while start is None and time.monotonic() < deadline:
            time.sleep(0.02)
            start = processes.start_time(proc.pid)
        state["processes"][name] = {"pid": proc.pid, "start": start, "cmd": cmd[0]}
        self._save(state)

    def _wait_webhook(self, kube_bin: Path, state: dict, timeout: float = 120) -> None:
        """Until the API server gets an answer from the webhook (a server-side dry run of a Service)."""
        probe = self.box.folder.write("knative-probe.yaml", yaml.safe_dump({
            "apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "probe", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": [{"image": "dev.local/probe:1"}]}}}}))
        cache = private_dir(self.box.dir / "kubectl-cache")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._refuse_exited(state)
            proc = subprocess.run([str(kube_bin / "kubectl"), "--kubeconfig", str(self.box.kubeconfig),
                                   "--cache-dir", str(cache), "create", "--dry-run=server", "-o", "name",
                                   "-f", str(probe)], capture_output=True, text=True, timeout=60, umask=0o077)
            if proc.returncode == 0:
                shutil.rmtree(cache, ignore_errors=True)
                return
            last = proc.stderr.strip()
            time.sleep(1)
        shutil.rmtree(cache, ignore_errors=True)
        raise SandboxError(f"The Knative webhook did not answer the API server within {timeout:.0f} s: "
                           f"{last}\n{self._tail('knative-webhook')}")

    def _wait_leaders(self, box_state: dict, state: dict, timeout: float = 180) -> None:
        """Until the controller and the autoscaler hold their leases: before that, a Knative Service
        would wait for nobody, and `%deploy --router knative` rightly refuses to write one. The leases
        of earlier runs were deleted above, so any holder is one of these processes."""
        deadline = time.monotonic() + timeout
        held: dict[str, bool] = {}
        while time.monotonic() < deadline:
            self._refuse_exited(state)
            leases = self.box._get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases", box_state)
            held = lease_holders(leases.get("items", []) if isinstance(leases, dict) else [], None)
            if held["controller"] and held["autoscaler"]:
                return
            time.sleep(0.5)
        waiting = " and ".join(c for c in ("controller", "autoscaler") if not held.get(c))
        raise SandboxError(f"Knative's {waiting} took no lease within {timeout:.0f} s, so nothing would "
                           f"reconcile a Knative Service.\n{self._tail('knative-' + waiting.split()[0])}")

    def _refuse_exited(self, state: dict) -> None:
        name = processes.exited(state["processes"])
        if name:
            raise SandboxError(f"{name} exited while Knative was starting.\n{self._tail(name)}")

    def _tail(self, name: str, lines: int = 12) -> str:
        return processes.log_tail(self.log_dir / f"{name}.log", lines, header=False)

    def down(self, progress=print) -> bool:
        state = self.state()
        if state is None:
            return False
        with contextlib.suppress(SandboxError, OSError, subprocess.SubprocessError):
            # Without the webhook serving, its configurations would refuse every Knative write.
            self._drop_webhooks(self.box_binaries(), [
                {"kind": k, "metadata": {"name": n}} for k, n in WEBHOOK_CONFIGURATIONS])
            # The components' Endpoints name addresses that go with their namespaces.
            self._kubectl(self.box_binaries(), "delete", "--ignore-not-found", "-n", NAMESPACE,
                          "endpoints/webhook", "endpoints/autoscaler", "endpoints/activator-service")
        # pidfd + start time: a recycled PID is never signalled
        procs = [(n, p) for n, p in state["processes"].items() if processes.alive(p)]
        processes.stop(procs)
        net_down(net_of(state))
        if state.get("networking"):
            ingress.cleanup(state.get("node_bridge"), state.get("firewall_before"))
        self.state_file.unlink(missing_ok=True)
        progress(f"Knative Serving stopped ({len(procs)} processes).")
        return True


def status_line(sandbox) -> str | None:
    """One line for `sandbox status`, or None when Knative was never started in this sandbox."""
    kn = Knative(sandbox).status()
    if not kn["processes"]:
        return None
    dead = [n for n, p in kn["processes"].items() if not p["alive"]]
    state = "running" if not dead else f"EXITED: {', '.join(dead)}"
    saved = Knative(sandbox).state() or {}
    if saved.get("networking"):
        from . import dataplane

        port = ingress.ingress_port(dataplane.layout(sandbox).port_base)
        layer = f"routes at http://127.0.0.1:{port} (Traefik's KIngress, kube-proxy)"
    else:
        layer = f"no networking layer ({saved.get('no_ingress') or 'started before this version'})"
    return f"  Knative Serving {kn['version']}: {state}; {layer}"
