"""Start, show and stop the sandbox's real data plane beside its control plane.

`up` (after the control plane is up): build or reuse the parts, start the image registry and
publish the images, make the bridge and cgroups, start containerd and kubelet and wait for the
real node to be Ready, then start Envoy Gateway and wait for the sandbox's Gateway to be served on
127.0.0.1. `down` undoes all of it and checks with node_host.leftovers() that nothing is left. Its
state is `dataplane.json` in the sandbox's folder; processes are stopped by their recorded PID.

Everything made inside the state folder is recorded in its marker first (`folder.own/mkdir/write`:
`dataplane.json`, `node/`, `gateway/`), so the control plane's `down` removes it and nothing else;
what is made outside it (the bridge, the cgroups, /certs, kubelet's fixed folders, the inotify
limit) is recorded in `dataplane.json` as made, and `down` undoes exactly that.

One data plane per machine: Envoy Gateway's xDS, Wasm and webhook ports are constants, and kubelet
writes to fixed host folders. A second sandbox's `up` is refused (DataPlaneBusy) with the folder of
the sandbox whose data plane holds them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import build, gateway, images, ingress_nginx, node, node_host, processes
from . import dataplane_build as parts
from .control_plane import Sandbox
from .errors import SandboxError
from .folder import open_private_append, write_private
from .probes import http_status

Progress = Callable[[str], None]
COMPONENTS = ("registry", "containerd", "kubelet", "envoy-gateway")
STATE = "dataplane.json"


class DataPlaneBusy(SandboxError):
    """Another sandbox's data plane runs on this machine (its fixed ports and host folders are taken)."""


def _state_file(box: Sandbox) -> Path:
    return box.dir / STATE


def _load(box: Sandbox) -> dict | None:
    if not box.folder.is_marked():  # only a folder `up` marked holds a state we act on
        return None
    try:
        return json.loads(_state_file(box).read_text())
    except (OSError, ValueError):
        return None


def _save(box: Sandbox, state: dict) -> None:
    box.folder.write(STATE, json.dumps(state, indent=2))


def layout(box: Sandbox, cp_state: dict | None = None) -> node.Layout:
    cp_state = cp_state or box._state() or {}
    base = (cp_state.get("ports") or {}).get("apiserver")
    if base is None:
        from .command_lines import Ports

        base = Ports.from_env().apiserver
    return node.Layout(box.dir, int(base))


def _home(box: Sandbox) -> Path:
    return box.dir / "gateway"


def _kubectl(box: Sandbox, *args: str, stdin: str | None = None, check: bool = True) -> str:
    # The control plane's own kubectl and cache entry, removed after the call (never ~/.kube/cache).
    return box._kubectl(build.bin_dir(), *args, stdin=stdin, check=check,
                        during="while starting the data plane")


def _apply(box: Sandbox, docs: list[dict] | str) -> None:
    text = docs if isinstance(docs, str) else "\n---\n".join(json.dumps(d) for d in docs)
    _kubectl(box, "apply", "--server-side", "--force-conflicts", "--field-manager=mldeploy-dataplane",
             "-f", "-", stdin=text)


class _Run:
    """One `up`: starts processes, records them, waits on them, explains failures with log tails."""

    def __init__(self, box: Sandbox, state: dict, progress: Progress) -> None:
        self.box, self.state, self.progress = box, state, progress

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> None:
        proc = processes.launch(cmd, self.box.log_dir / f"{name}.log", self.box.dir, env=env or {})
        self.state["processes"][name] = {"pid": proc.pid, "start": processes.start_time(proc.pid),
                                         "cmd": cmd[0]}
        _save(self.box, self.state)

    def wait(self, what: str, check: Callable[[], bool], timeout: float, component: str) -> None:
        processes.wait_for(what, check, timeout, self.state["processes"], self.box._log_tail, component,
                           interval=0.2, timeout_lines=20)


def up(box: Sandbox, progress: Progress = print, *, with_gateway: bool = True) -> dict:
    """Bring the data plane up beside a running control plane; a running data plane is reused.
    Holds the sandbox's lock (one `up`/`down` at a time); `Sandbox.up(data_plane=True)` calls
    `_up` under the lock it already holds."""
    with box._locked():
        return _up(box, progress, with_gateway=with_gateway)


def _up(box: Sandbox, progress: Progress = print, *, with_gateway: bool = True) -> dict:
    box.folder.check()  # an unmarked or foreign folder is refused before anything is done
    cp = box._state()
    if cp is None or not box.status()["up"]:
        raise SandboxError("The data plane runs beside the sandbox's control plane, which is not up: "
                           "run `jupyter-mldeploy sandbox up` first.")
    current = status(box)
    if current["up"] and (current["gateway"] or not with_gateway):
        return current
    if current["up"] and with_gateway:  # a node without its Gateway: add the Gateway
        _refuse_if_held(box, layout(box, cp), with_gateway=True)
        parts.ensure_parts((parts.ENVOY_GATEWAY, parts.ENVOY), progress=progress)
        state = _load(box)
        state["gateway"] = True
        run = _Run(box, state, progress)
        try:
            _start_gateway(run, layout(box, cp))
        except BaseException:
            progress(f"The Gateway did not come up; stopping the data plane. Logs stay in {box.log_dir}.")
            _down(box, progress=lambda _m: None)
            raise
        return status(box)
    if _load(box) is not None:
        progress("Found a data plane that is not complete; stopping what is left of it first.")
        _down(box, progress=lambda _m: None)

    t0 = time.monotonic()
    node_host.check_host()
    lay = layout(box, cp)
    _refuse_if_held(box, lay, with_gateway)
    wanted = tuple(p for p in parts.PARTS if with_gateway or p not in (parts.ENVOY_GATEWAY, parts.ENVOY))
    parts.ensure_parts(wanted, progress=progress)
    ports = {"registry": lay.registry_port, "kubelet": lay.kubelet_port,
             "kubelet healthz": lay.kubelet_healthz_port}
    with_nginx = ingress_nginx.built()
    if with_nginx:
        ports["ingress-nginx (Traefik)"] = ingress_nginx.port(lay.port_base)
    if with_gateway:
        ports |= {"gateway listener": gateway.listener_port(lay.port_base),
                  "envoy-gateway admin": gateway.admin_port(lay.port_base), **_fixed_ports()}
    busy = [f"{n} ({p})" for n, p in ports.items() if not processes.port_free(p)]
    if busy:
        raise SandboxError(f"Port(s) {', '.join(busy)} on 127.0.0.1 are in use by another program; stop "
                           f"it, choose another MLDEPLOY_SANDBOX_PORT, or start with --no-data-plane.")
    # Recorded before anything is made, so `down` finds it whatever step fails.
    state = {"port_base": lay.port_base, "processes": {}, "gateway": with_gateway, "made_certs_mount": False,
             "images": [], "made": {}, "ingress_nginx": with_nginx}
    _save(box, state)
    run = _Run(box, state, progress)
    try:
        _start_node(run, lay)
        if with_nginx:
            _start_ingress_nginx(run, lay)
        if with_gateway:
            _start_gateway(run, lay)
    except BaseException:
        progress(f"The data plane did not come up; stopping what started. Logs stay in {box.log_dir}.")
        _down(box, progress=lambda _m: None)
        raise
    progress(f"Data plane up in {time.monotonic() - t0:.1f} s: node {node.NODE_NAME} at {lay.node_ip}"
             + (f", Gateway {gateway.gateway_ref()} on 127.0.0.1:{gateway.listener_port(lay.port_base)}"
                if with_gateway else "")
             + (f", nginx Ingresses on 127.0.0.1:{ingress_nginx.port(lay.port_base)}" if with_nginx else ""))
    return status(box)


def _fixed_ports() -> dict[str, int]:
    return {"envoy-gateway xDS": gateway.XDS_PORT, "envoy-gateway Wasm": gateway.WASM_PORT,
            "envoy-gateway webhook": gateway.WEBHOOK_PORT, "Envoy readiness": gateway.READY_PORT}


def holders(box: Sandbox) -> list[str]:
    """The state folders of other sandboxes whose data plane runs on this machine, known by its
    processes (our kubelet, containerd or Envoy Gateway binaries, whose command lines name their
    sandbox's folder), never by a file that could be stale."""
    ours = str(box.dir.resolve())
    bins = {str(parts.KUBELET.path("kubelet")): "--root-dir=",
            str(parts.CONTAINERD.path("containerd")): "--config",
            str(parts.ENVOY_GATEWAY.path("envoy-gateway")): "--config-path"}
    found: set[str] = set()
    for _pid, exe, cmdline in processes.running():
        argv = cmdline.split("\0")
        flag = bins.get(exe)
        if flag is None:
            continue
        for i, arg in enumerate(argv):
            value = arg[len(flag):] if arg.startswith(flag) and flag.endswith("=") else (
                argv[i + 1] if arg == flag and i + 1 < len(argv) else None)
            if value:
                # <sandbox>/node/kubelet, <sandbox>/node/containerd/config.toml, <sandbox>/gateway/...
                folder = _sandbox_of(Path(value).resolve())
                if folder and folder != ours:
                    found.add(folder)
    return sorted(found)


def _sandbox_of(path: Path) -> str | None:
    for parent in path.parents:
        if parent.name in ("node", "gateway"):
            return str(parent.parent)
    return None


def _refuse_if_held(box: Sandbox, lay: node.Layout, with_gateway: bool) -> None:
    """One data plane per machine: refuse, naming the sandbox that has it (DataPlaneBusy)."""
    other = holders(box)
    if other:
        fixed = ", ".join(str(p) for p in _fixed_ports().values())
        raise DataPlaneBusy(
            f"The sandbox in {other[0]} runs this machine's real data plane (Envoy Gateway's fixed ports "
            f"{fixed} and kubelet's host folders allow one): stop "
            f"it with `MLDEPLOY_SANDBOX_DIR={other[0]} jupyter-mldeploy sandbox down`, or start this sandbox "
            f"with --no-data-plane.")


def _start_node(run: _Run, lay: node.Layout) -> None:
    box, progress = run.box, run.progress
    progress("Starting the image registry on 127.0.0.1 and publishing the images...")
    box.folder.mkdir(lay.dir.name)
    disk = lay.dir / "registry"
    disk.mkdir(mode=0o700, exist_ok=True)
    run.start("registry", images.registry_command(lay.registry_port, disk))
    run.wait("the registry", lambda: http_status(f"http://127.0.0.1:{lay.registry_port}/v2/") == 200, 30,
             "registry")
    with io.TextIOWrapper(open_private_append(box.log_dir / "images.log")) as log:
        run.state["images"] = images.publish(lay.registry_port, log, progress)
    _save(box, run.state)

    progress(f"Starting the real node {node.NODE_NAME} (containerd, kubelet) on bridge {lay.bridge}...")
    run.state["made_host_paths"] = node_host.missing_host_paths()
    _save(box, run.state)
    node_host.prepare_host(lay, images.PAUSE_REF, made=run.state["made"],
                           record=lambda: _save(box, run.state))
    run.start("containerd", node.containerd_command(lay), env=node.containerd_env())
    ctr = [str(parts.CONTAINERD.path("ctr")), "--address", str(lay.containerd_socket)]

    def containerd_ready() -> bool:
        return lay.containerd_socket.exists() and subprocess.run(
            [*ctr, "version"], capture_output=True, timeout=10).returncode == 0

    run.wait("containerd", containerd_ready, 60, "containerd")
    kc = node.node_kubeconfig(box.pki_dir, lay.dir / "pki", run.box._state()["server"])
    run.start("kubelet", node.kubelet_command(lay, kc, lay.dir / "kubelet.json"))
    cp = box._state()

    def node_ready() -> bool:
        obj = box._get(f"/api/v1/nodes/{node.NODE_NAME}", cp) or {}
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in obj.get("status", {}).get("conditions", []) if isinstance(obj, dict))

    run.wait(f"node {node.NODE_NAME} to be Ready", node_ready, 120, "kubelet")


def _start_ingress_nginx(run: _Run, lay: node.Layout) -> None:
    """Traefik's ingress-nginx provider, serving the nginx router's Ingresses (sandbox/ingress_nginx.py)."""
    config_file = lay.dir / "ingress-nginx.yaml"
    write_private(config_file, ingress_nginx.config_text(lay.port_base))
    run.start(ingress_nginx.PROCESS, ingress_nginx.command(config_file),
              env={"KUBECONFIG": str(run.box.pki_dir / "components.kubeconfig")})
    port = ingress_nginx.port(lay.port_base)
    # Traefik answers 404 for a host no Ingress names: its entry point is served.
    run.wait("Traefik's ingress-nginx entry point on 127.0.0.1",
             lambda: http_status(f"http://127.0.0.1:{port}/") == 404, 60, ingress_nginx.PROCESS)


def _start_gateway(run: _Run, lay: node.Layout) -> None:
    box, progress, home = run.box, run.progress, _home(run.box)
    progress("Starting Envoy Gateway (Envoy on 127.0.0.1 only)...")
    box.folder.mkdir(home.name)
    write_private(home / "envoy-gateway.yaml", gateway.eg_config(home, lay.port_base))
    gateway.place_envoy(home)
    proc = subprocess.run(gateway.certgen_command(home), capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SandboxError(f"envoy-gateway certgen failed: {(proc.stdout + proc.stderr).strip()[-800:]}")
    _apply(box, gateway.crds_text())
    _kubectl(box, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
    docs = gateway.objects(lay.port_base)
    _apply(box, [d for d in docs if d["kind"] == "Namespace"])
    _apply(box, gateway.secrets(home))
    if not gateway.CERTS_MOUNT.exists():
        run.state["made_certs_mount"] = True  # recorded first: a crash right after still removes it
        _save(box, run.state)
        gateway.CERTS_MOUNT.mkdir(mode=0o700)
    run.start("envoy-gateway", gateway.server_command(home), env={"KUBECONFIG": str(box.pki_dir /
                                                                                    "components.kubeconfig")})
    _apply(box, [d for d in docs if d["kind"] != "Namespace"])
    port = gateway.listener_port(lay.port_base)
    # Envoy answers 404 for a host no route names: the listener is served.
    run.wait("the Gateway's listener on 127.0.0.1", lambda: http_status(f"http://127.0.0.1:{port}/") == 404,
             120, "envoy-gateway")


# -- status and down -------------------------------------------------------------------------------


def status(box: Sandbox) -> dict:
    state = _load(box)
    if state is None:
        return {"up": False, "processes": {}, "gateway": False}
    procs = {n: {**p, "alive": processes.alive(p)} for n, p in state["processes"].items()}
    expected = [c for c in COMPONENTS if state.get("gateway") or c != "envoy-gateway"]
    expected += [ingress_nginx.PROCESS] if state.get("ingress_nginx") else []
    up = set(procs) >= set(expected) and all(p["alive"] for p in procs.values())
    lay = node.Layout(box.dir, state["port_base"])
    info = {"up": up, "processes": procs, "gateway": bool(state.get("gateway")) and up,
            "node": node.NODE_NAME, "node_ip": lay.node_ip, "bridge": lay.bridge, "subnet": str(lay.subnet),
            "registry": f"127.0.0.1:{lay.registry_port} (images as {images.REGISTRY}/...)",
            "images": state.get("images", []), "placement": node.placement()}
    if state.get("ingress_nginx"):
        info["ingress_nginx_url"] = f"http://127.0.0.1:{ingress_nginx.port(lay.port_base)}"
    if state.get("gateway"):
        url = f"http://127.0.0.1:{gateway.listener_port(lay.port_base)}"
        info["gateway_ref"] = gateway.gateway_ref()
        info["gateway_url"] = url
        # Served means Envoy answers on the listener (404: no route for that host), see PROGRAMMED_NOTE.
        info["gateway_serving"] = up and http_status(f"{url}/", timeout=1) == 404
        info["gateway_note"] = gateway.PROGRAMMED_NOTE
    return info


def down(box: Sandbox, progress: Progress = print) -> dict[str, list[str]]:
    """Stop the data plane (under the sandbox's lock) and remove what it made; returns what is left."""
    with box._locked():
        return _down(box, progress)


def _down(box: Sandbox, progress: Progress = print) -> dict[str, list[str]]:
    """Stop everything the data plane started and remove what it made; returns what is left (empty).
    Nothing is done for a folder without a recorded data plane (its state is written before anything
    is made), and a folder `up` did not mark is refused by its check."""
    box.folder.check()
    state = _load(box)
    if state is None:
        return {}
    from .knative import Knative

    knative = Knative(box)
    if (knative.state() or {}).get("node_bridge"):  # its components sit on the bridge removed below
        knative.down(progress)
    lay = node.Layout(box.dir, state["port_base"])
    procs = state.get("processes", {})
    alive = {n: p for n, p in procs.items() if processes.alive(p)}
    # Envoy Gateway stops its Envoy on SIGTERM; kubelet before containerd, so it restarts nothing.
    for name in (ingress_nginx.PROCESS, "envoy-gateway", "kubelet"):
        if name in alive:
            processes.stop([(name, alive[name])])
    _kill_envoys(box)
    _stop_containers(lay)
    for name in ("containerd", "registry"):
        if name in alive:
            processes.stop([(name, alive[name])])
    # Anything else it recorded (a component a later version added) is stopped too, never left running.
    processes.stop([(n, p) for n, p in alive.items()
           if n not in (ingress_nginx.PROCESS, "envoy-gateway", "kubelet", "containerd", "registry")])
    node_host.kill_processes(lay)  # shims, and anything of ours that outlived its parent
    made_paths = state.get("made_host_paths", [])
    node_host.remove_host_state(lay, made_paths, state.get("made", {}))
    if state.get("made_certs_mount"):
        with contextlib.suppress(OSError):
            gateway.CERTS_MOUNT.rmdir()
    if box._state() is not None and box.status()["up"]:
        _kubectl(box, "delete", "node", node.NODE_NAME, "--ignore-not-found", "--wait=false", check=False)
    # Never walk into a mount: it stays, and is reported.
    if not node_host.leftovers(lay, made_paths)["mounts"]:
        for d in (lay.dir, _home(box)):
            shutil.rmtree(d, ignore_errors=True)
        _state_file(box).unlink(missing_ok=True)
    left = node_host.leftovers(lay, made_paths)
    if any(left.values()):
        progress(f"The data plane left behind: {left}")
    else:
        progress("Data plane down: stopped " + (", ".join(alive) or "nothing (all had exited)") + ".")
    return left


def _kill_envoys(box: Sandbox) -> None:
    """An Envoy whose Envoy Gateway died without stopping it (its command line names our folder)."""
    import signal

    home = str(_home(box))
    envoy = str(parts.ENVOY.path("envoy"))
    for pid, exe, cmdline in processes.running():
        if exe == envoy and home in cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stop_containers(lay: node.Layout) -> None:
    """Kill every task containerd runs for the node and delete it, so the shims exit."""
    if not lay.containerd_socket.exists():
        return
    ctr = [str(parts.CONTAINERD.path("ctr")), "--address", str(lay.containerd_socket), "-n", "k8s.io"]

    def ids(*what: str) -> list[str]:
        proc = subprocess.run([*ctr, *what, "ls", "-q"], capture_output=True, text=True, timeout=20)
        return proc.stdout.split() if proc.returncode == 0 else []

    for t in ids("tasks"):
        # --force kills a task that still runs, then deletes it (and its shim exits).
        subprocess.run([*ctr, "tasks", "delete", "--force", t], capture_output=True, timeout=20)
    for c in ids("containers"):
        subprocess.run([*ctr, "containers", "delete", c], capture_output=True, timeout=20)
