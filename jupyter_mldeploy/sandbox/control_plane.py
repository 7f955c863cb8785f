"""Start, inspect and stop the sandbox: etcd, kube-apiserver, controller-manager, scheduler and kwok.
Their flags are in command_lines.py, process supervision in processes.py, probes in probes.py.

Every process binds 127.0.0.1 only, is started by us with its PID recorded, and is signalled by that
PID alone (pinned with a pidfd and checked against the process's start time, so a recycled PID is
never signalled: see processes.py). The state folder is private and marked as ours (folder.py); etcd
accepts only the API server's client certificate.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from . import build, command_lines, crds, pki, pod_logs, probes, processes
from .command_lines import Ports
from .errors import SandboxError
from .folder import StateFolder, private_dir, write_private

Progress = Callable[[str], None]

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODES = ("sandbox-cpu-1", "sandbox-cpu-2", "sandbox-gpu-1")
ADMIN_CONTEXT = "mldeploy-sandbox"
LIMITED_CONTEXT = "mldeploy-sandbox-limited"
LIMITED_NAMESPACE = "ml-team"
RESTRICTED_NAMESPACE = "ml-restricted"


def state_dir() -> Path:
    return Path(os.environ.get("MLDEPLOY_SANDBOX_DIR") or build.cache_root() / "sandbox")


class Sandbox:
    """The local control plane whose state lives in one folder."""

    def __init__(self, folder: Path | None = None) -> None:
        self.dir = folder or state_dir()
        self.folder = StateFolder(self.dir)
        self.pki_dir = self.dir / "pki"
        self.log_dir = self.dir / "logs"
        self.state_file = self.dir / "state.json"
        self.kubeconfig = self.dir / "kubeconfig"

    # -- reading the state -------------------------------------------------------------------

    def _state(self) -> dict | None:
        # Only a folder `up` marked holds a state we act on (signal its PIDs, read its token).
        if not self.folder.is_marked():
            return None
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _save(self, state: dict) -> None:
        write_private(self.state_file, json.dumps(state, indent=2))  # holds the admin token: 0600

    def status(self) -> dict:
        """What runs, where, and whether the API server answers (and the real data plane's state)."""
        state = self._state()
        if state is None:
            return {"up": False, "dir": str(self.dir), "processes": {}}
        procs = {name: {**p, "alive": processes.alive(p)} for name, p in state["processes"].items()}
        ready = all(p["alive"] for p in procs.values()) and len(procs) == len(COMPONENTS)
        if ready:
            ready = self._get("/readyz", state) is not None
        from . import dataplane

        return {"up": ready, "dir": str(self.dir), "server": state["server"],
                "kubeconfig": str(self.kubeconfig), "processes": procs, "versions": state["versions"],
                "data_plane": dataplane.status(self)}

    # -- talking to the API server while bootstrapping (no kubernetes client needed) -----------

    def _get(self, path: str, state: dict, timeout: float = 2.0):
        ctx = ssl.create_default_context(cafile=str(self.pki_dir / "ca.crt"))
        req = urllib.request.Request(state["server"] + path,
                                     headers={"Authorization": f"Bearer {state['admin_token']}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                body = resp.read()
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return None
        return json.loads(body) if body.startswith(b"{") else body.decode()

    def _wait(self, what: str, check: Callable[[], bool], timeout: float, state: dict,
              component: str | None = None) -> None:
        processes.wait_for(what, check, timeout, state["processes"], self._log_tail, component)

    def _log_tail(self, name: str, lines: int = 12) -> str:
        return processes.log_tail(self.log_dir / f"{name}.log", lines)

    # -- up ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        """One `up`, `down` or `restart` at a time across processes (tests, notebooks, the CLI)."""
        lock_path = self.dir.parent / f".{self.dir.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # Beside the folder, maybe in a shared /tmp: never through a link, never truncated, 0600.
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise SandboxError(f"Could not open the sandbox's lock file {lock_path} ({e.strerror}; a link "
                               f"is never followed): remove it if it is not yours.") from None
        with os.fdopen(fd, "rb+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def up(self, progress: Progress = print, *, data_plane: bool = False,
           knative: bool | None = None) -> dict:
        """Start (or reuse) the control plane; with `data_plane`, also the real node, registry and
        Gateway (dataplane.py); with knative (default: MLDEPLOY_SANDBOX_KNATIVE), Knative Serving's
        components (knative.py). The test suite's simulated tests need only the control plane."""
        from . import knative as kn

        with self._locked():
            info = self._up(progress)
            if data_plane:
                from . import dataplane

                dataplane._up(self, progress)  # under this lock already
                info = self.status()
            if knative if knative is not None else kn.wanted():
                kn.Knative(self).up(progress)
            return info

    def _up(self, progress: Progress) -> dict:
        self.folder.check()  # an unmarked or foreign folder is refused before anything is done
        current = self.status()
        state = self._state()
        if not current["up"] and state is not None and all(p["alive"] for p in current["processes"].values()):
            # Every process runs: the API server may be restarting. Give it time before judging.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not current["up"]:
                time.sleep(0.25)
                current = self.status()
        if current["up"]:
            progress(f"The sandbox is already up at {current['server']}; reusing it.")
            return current
        if state is not None:
            progress("Found a sandbox that is not answering; stopping what is left of it first.")
            from .knative import Knative

            Knative(self).down(progress=lambda _m: None)  # its record goes with the folder's entries
            self._stop_processes(state)
        self._down_data_plane(progress)  # before the folder is cleared: it unmounts what is inside

        t0 = time.monotonic()
        binaries = build.ensure_binaries(progress)
        crd_file = crds.crd_file()
        ports = Ports.from_env()
        busy = [f"{name} ({port})" for name, port in vars(ports).items() if not processes.port_free(port)]
        if busy:
            raise SandboxError(
                f"Port(s) {', '.join(busy)} on 127.0.0.1 are in use by another program; stop it, or "
                f"choose other ports with MLDEPLOY_SANDBOX_PORT=<base port> (six ports from there)."
            )

        # The folder is claimed (made 0700, marker first), then cleared of whatever a dead or failed
        # `up` left, ours only; every entry is recorded in the marker before it is made.
        self.folder.claim()
        self.folder.remove(keep_marker=True)
        self.folder.mkdir("logs")
        self.folder.mkdir("pki")
        self.folder.own("etcd")  # etcd makes its data folder itself, 0700
        self.folder.own("kubectl-cache")  # not the user's ~/.kube/cache; see _kubectl
        self.folder.own("state.json")
        tokens = pki.make_pki(self.pki_dir)
        server = f"https://127.0.0.1:{ports.apiserver}"
        ca = self.pki_dir / "ca.crt"
        self.folder.write("kubeconfig", pki.kubeconfig(server, ca, [
            (ADMIN_CONTEXT, tokens.admin, "default"),
            (LIMITED_CONTEXT, tokens.limited, LIMITED_NAMESPACE),
        ]))
        components_kc = write_private(self.pki_dir / "components.kubeconfig", pki.kubeconfig(
            server, ca, [("components", tokens.components, "default")]))
        kwok_config = self.folder.write("kwok.yaml", command_lines.kwok_config(
            pod_logs.write_defaults(self.folder.mkdir("pod-logs"))))

        state = {
            "server": server,
            "admin_token": tokens.admin,
            "ports": vars(ports),
            "versions": {"kubernetes": build.versions.KUBERNETES, "etcd": build.versions.ETCD,
                         "kwok": build.versions.KWOK},
            "processes": {},
        }
        commands = command_lines.commands(binaries, self.dir, ports, components_kc, kwok_config)
        try:
            progress("Starting etcd and kube-apiserver...")
            self._start("etcd", commands["etcd"], state)
            self._wait("etcd", lambda: probes.etcd_healthy(self.pki_dir, ports.etcd), 30, state, "etcd")
            self._start("kube-apiserver", commands["kube-apiserver"], state)
            self._wait("kube-apiserver /readyz", lambda: self._get("/readyz", state) == "ok", 90, state,
                       "kube-apiserver")
            for name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                self._start(name, commands[name], state)
            progress("Creating nodes, namespaces, identities, the traffic layers' CRDs and IngressClass...")
            self._kubectl(binaries, "apply", "--server-side", "--field-manager=mldeploy-sandbox",
                          "-f", str(crd_file), "-f", command_lines.data_path("kwok-logs-crd.yaml"),
                          "-f", command_lines.data_path("cluster.yaml"))
            self._wait_ready(state, ports)
        except BaseException:
            progress(f"The sandbox did not come up; stopping what started. Logs stay in {self.log_dir}.")
            self._stop_processes(state)
            self.state_file.unlink(missing_ok=True)
            raise
        progress(f"Sandbox up in {time.monotonic() - t0:.1f} s. Kubeconfig: {self.kubeconfig}")
        return self.status()

    def _start(self, name: str, cmd: list[str], state: dict) -> None:
        # umask 077: whatever a component writes (etcd's data, kwok's files) is private too.
        proc = processes.launch(cmd, self.log_dir / f"{name}.log", self.dir, umask=0o077)
        # The whole command line is kept, so a restart never reads it from a PID that may be recycled.
        state["processes"][name] = {"pid": proc.pid, "start": processes.start_time(proc.pid),
                                    "cmd": cmd[0], "argv": cmd}
        self._save(state)

    def _kubectl(self, binaries: Path, *args: str, stdin: str | None = None, check: bool = True,
                 during: str = "during bootstrap") -> str:
        """The sandbox's kubectl (the data plane and Knative use it too); its stdout. With `check`, a
        failure is one SandboxError that says what it happened `during`."""
        # Its own cache, removed after the call: kubectl chmods its cache files 0660 whatever the umask.
        cache = private_dir(self.dir / "kubectl-cache")
        try:
            proc = subprocess.run([str(binaries / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                                   "--cache-dir", str(cache), *args],
                                  input=stdin, capture_output=True, text=True, timeout=120, umask=0o077)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        if check and proc.returncode != 0:
            raise SandboxError(f"kubectl {args[0]} failed {during}: {proc.stderr.strip()}")
        return proc.stdout

    def _wait_ready(self, state: dict, ports: Ports) -> None:
        def nodes_ready() -> bool:
            nodes = self._get("/api/v1/nodes", state) or {}
            ready = {
                n["metadata"]["name"]
                for n in nodes.get("items", [])
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            }
            return ready >= set(NODES)

        def crds_established() -> bool:
            items = (self._get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", state) or {})
            items = items.get("items", [])
            return bool(items) and all(
                any(c["type"] == "Established" and c["status"] == "True"
                    for c in crd.get("status", {}).get("conditions", []))
                for crd in items
            )

        def service_accounts() -> bool:
            return all(self._get(f"/api/v1/namespaces/{ns}/serviceaccounts/default", state)
                       for ns in ("default", LIMITED_NAMESPACE, RESTRICTED_NAMESPACE))

        self._wait("the scheduler", lambda: probes.https_ok(f"https://127.0.0.1:{ports.scheduler}/healthz"),
                   60, state, "kube-scheduler")
        self._wait("the controller-manager",
                   lambda: probes.https_ok(f"https://127.0.0.1:{ports.controller_manager}/healthz"), 60,
                   state, "kube-controller-manager")
        self._wait("kwok to mark the nodes Ready", nodes_ready, 60, state, "kwok")
        self._wait("the CRDs to be established", crds_established, 60, state, "kube-apiserver")
        self._wait("the default service accounts", service_accounts, 60, state, "kube-controller-manager")

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now, as the API server does every 5 minutes; returns the
        revision. With an API server restart after it, old resourceVersions answer 410 Gone."""
        state = self._state()
        if state is None:
            raise SandboxError("The sandbox is not up.")
        port = state["ports"]["etcd"]

        def post(path: str, body: dict) -> dict:
            return json.loads(probes.etcd_request(self.pki_dir, port, f"/v3/kv/{path}", body))

        revision = int(post("range", {"key": "YQ=="})["header"]["revision"])  # any key: for the header
        post("compaction", {"revision": revision, "physical": True})
        return revision

    def etcd_tls(self) -> ssl.SSLContext:
        """A TLS context that trusts etcd's CA and presents the one client certificate etcd accepts
        (the API server's): for the sandbox's own maintenance, such as `compact_etcd`."""
        return probes.etcd_tls(self.pki_dir)

    def restart(self, component: str, progress: Progress = print) -> None:
        """Stop and start one component with the same flags (tests use it for API server restarts)."""
        with self._locked():
            self._restart(component, progress)

    def _restart(self, component: str, progress: Progress) -> None:
        state = self._state()
        if state is None or component not in state["processes"]:
            raise SandboxError(f"The sandbox is not up, or has no component {component}.")
        proc = state["processes"][component]
        # The same check as `down`'s (processes.send_signal): a process that is gone, or whose PID
        # now belongs to another process, is not signalled; the component is then only started again.
        processes.stop([(component, proc)])
        self._start(component, proc["argv"], state)
        if component == "kube-apiserver":
            self._wait("kube-apiserver /readyz", lambda: self._get("/readyz", state) == "ok", 90, state,
                       component)
        progress(f"Restarted {component}.")

    # -- down ----------------------------------------------------------------------------------

    def down(self, progress: Progress = print) -> bool:
        """Stop the processes we recorded and remove the state. Returns False when nothing was up."""
        with self._locked():
            return self._down(progress)

    def _down(self, progress: Progress) -> bool:
        # Refuses (one sentence, nothing stopped or deleted) a folder `up` did not mark as a sandbox.
        if not self.folder.check():
            progress("The sandbox is not up; nothing to stop.")
            return False
        # First: it drains the real node through the API server, and it unmounts what lies inside the
        # folder, so that removing the folder's entries never walks into a mount.
        self._down_data_plane(progress)
        state = self._state()
        from .knative import Knative

        Knative(self).down(progress)  # before the API server goes: its components watch it
        stopped = self._stop_processes(state) if state is not None else []
        left = self.folder.remove()
        removed = (f"removed {self.dir}" if not left else
                   f"removed what it made in {self.dir}, and left what it did not make: {', '.join(left)}")
        if state is None:
            progress(f"The sandbox was not running; {removed}.")
            return False
        progress(f"Sandbox down: stopped {', '.join(stopped) or 'nothing (all had exited)'}; {removed}.")
        return True

    def _down_data_plane(self, progress: Progress) -> None:
        from . import dataplane

        left = dataplane._down(self, progress)
        if left.get("mounts"):
            raise SandboxError(f"The data plane's mounts {', '.join(left['mounts'])} could not be unmounted, "
                               f"so nothing in {self.dir} was removed; unmount them and run down again.")

    def _stop_processes(self, state: dict) -> list[str]:
        # In stages, reverse start order: the workers, then the API server, etcd last. Stopped all at
        # once, the API server's graceful shutdown waits on an etcd that is already gone, until the
        # SIGKILL 10 s later; in stages the whole `down` takes about a second.
        procs = [(n, p) for n, p in reversed(list(state["processes"].items())) if processes.alive(p)]
        stages = [[(n, p) for n, p in procs if n not in ("kube-apiserver", "etcd")],
                  [(n, p) for n, p in procs if n == "kube-apiserver"],
                  [(n, p) for n, p in procs if n == "etcd"]]
        for stage in stages:
            processes.stop(stage)
        return [n for n, _ in procs]


def kubeconfig_path() -> Path:
    return Sandbox().kubeconfig
