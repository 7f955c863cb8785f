"""The sandbox behaves like a cluster: real API server, controllers and scheduler over kwok nodes."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from k8s_helpers import wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.sandbox


def _core(cluster, context=None) -> client.CoreV1Api:
    return client.CoreV1Api(cluster.api_client(context))


def _pod(name: str, *, labels=None, gpu: int = 0, tolerate_gpu: bool = False, privileged=False,
         node_selector=None) -> dict:
    resources = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    if gpu:
        resources["limits"] = {"nvidia.com/gpu": str(gpu)}
    container = {"name": "model", "image": "registry.example/model:1", "resources": resources}
    if privileged:
        container["securityContext"] = {"privileged": True}
    spec = {"containers": [container], "automountServiceAccountToken": False}
    if tolerate_gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if node_selector:
        spec["nodeSelector"] = node_selector
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec}


def test_three_nodes_ready_with_gpu_pool(cluster):
    if not cluster.is_sandbox:
        pytest.skip("node layout is the sandbox's")
    nodes = {n.metadata.name: n for n in _core(cluster).list_node().items}
    assert set(nodes) >= {"sandbox-cpu-1", "sandbox-cpu-2", "sandbox-gpu-1"}
    for node in nodes.values():
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
    gpu = nodes["sandbox-gpu-1"]
    assert gpu.status.allocatable["nvidia.com/gpu"] == "4"
    assert gpu.metadata.labels["nvidia.com/gpu.product"]
    assert [(t.key, t.value, t.effect) for t in gpu.spec.taints] == [
        ("nvidia.com/gpu", "present", "NoSchedule")]
    assert nodes["sandbox-cpu-1"].status.allocatable["cpu"] == "8"


def test_deployment_becomes_available_with_three_ready_pods(cluster, namespace):
    apps = client.AppsV1Api(cluster.api_client())
    labels = {"app": "web"}
    apps.create_namespaced_deployment(namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": _pod("x")["spec"]}},
    })

    def available():
        d = apps.read_namespaced_deployment_status("web", namespace)
        conds = {c.type: c.status for c in (d.status.conditions or [])}
        return d.status.ready_replicas == 3 and conds.get("Available") == "True" and d

    wait_until(available, timeout=60)
    pods = _core(cluster).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert all(c.ready for p in pods for c in p.status.container_statuses)
    # The scheduler placed them, and never on the tainted GPU node.
    assert all(p.spec.node_name and p.spec.node_name != "sandbox-gpu-1" for p in pods)


def test_pod_asking_for_eight_gpus_stays_pending_with_failed_scheduling(cluster, namespace):
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("greedy", gpu=8, tolerate_gpu=True))

    def failed_scheduling():
        evs = core.list_namespaced_event(namespace, field_selector="involvedObject.name=greedy").items
        return [e for e in evs if e.reason == "FailedScheduling"]

    events = wait_until(failed_scheduling)
    assert "nvidia.com/gpu" in events[0].message
    pod = core.read_namespaced_pod("greedy", namespace)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    cond = [c for c in pod.status.conditions if c.type == "PodScheduled"][0]
    assert cond.status == "False" and cond.reason == "Unschedulable"


def test_gpu_pod_with_toleration_lands_on_gpu_node(cluster, namespace):
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("trainer", gpu=2, tolerate_gpu=True))
    pod = wait_until(lambda: (p := core.read_namespaced_pod("trainer", namespace)).status.phase == "Running"
                    and p)
    assert pod.spec.node_name == "sandbox-gpu-1"


def test_pod_without_gpu_toleration_never_lands_on_gpu_node(cluster, namespace):
    core = _core(cluster)
    # Pinned to the GPU pool by its label but without the toleration: the taint keeps it off.
    core.create_namespaced_pod(namespace, _pod(
        "pinned", node_selector={"nvidia.com/gpu.present": "true"}))
    events = wait_until(lambda: [e for e in core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=pinned").items if e.reason == "FailedScheduling"])
    # Kubernetes 1.36 no longer names the taint in this message ("had untolerated taint(s)").
    assert "untolerated taint" in events[0].message
    assert not core.read_namespaced_pod("pinned", namespace).spec.node_name
    # And many free-floating pods spread over the CPU nodes only.
    for i in range(8):
        core.create_namespaced_pod(namespace, {**_pod(f"free-{i}"), "metadata": {
            "name": f"free-{i}", "labels": {"group": "free"}}})
    pods = wait_until(lambda: (items := core.list_namespaced_pod(namespace, label_selector="group=free")
                              .items) and all(p.spec.node_name for p in items) and items)
    assert {p.spec.node_name for p in pods} <= {"sandbox-cpu-1", "sandbox-cpu-2"}


def test_httproute_with_negative_weight_is_refused(cluster, namespace):
    custom = client.CustomObjectsApi(cluster.api_client())
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "split"},
        "spec": {"rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": -5}]}]},
    }
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes",
                                               route)
    assert err.value.status == 422
    assert "weight" in err.value.body
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 90
    created = custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace,
                                                     "httproutes", route)
    assert created["spec"]["rules"][0]["backendRefs"][0]["weight"] == 90


def test_istio_and_knative_kinds_are_served(cluster, namespace):
    custom = client.CustomObjectsApi(cluster.api_client())
    vs = custom.create_namespaced_custom_object("networking.istio.io", "v1", namespace, "virtualservices", {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "m"},
        "spec": {"hosts": ["m"], "http": [{"route": [
            {"destination": {"host": "m", "subset": "stable"}, "weight": 90},
            {"destination": {"host": "m", "subset": "canary"}, "weight": 10}]}]},
    })
    assert vs["spec"]["http"][0]["route"][1]["weight"] == 10
    ksvc = custom.create_namespaced_custom_object("serving.knative.dev", "v1", namespace, "services", {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service", "metadata": {"name": "m"},
        "spec": {"template": {"spec": {"containers": [{"image": "registry.example/model:1"}]}},
                 "traffic": [{"latestRevision": True, "percent": 100}]},
    })
    assert ksvc["spec"]["traffic"][0]["percent"] == 100


def test_limited_identity_is_confined_to_its_namespace(cluster):
    if not cluster.limited_context:
        pytest.skip("the limited identity exists only in the sandbox")
    limited = client.AppsV1Api(cluster.api_client(cluster.limited_context))
    assert limited.list_namespaced_deployment("ml-team").items is not None
    with pytest.raises(ApiException) as err:
        limited.list_namespaced_deployment("default")
    assert err.value.status == 403
    assert "sandbox-limited" in err.value.body
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(cluster.api_client(cluster.limited_context)).list_node()
    assert err.value.status == 403


def test_privileged_pod_is_refused_in_restricted_namespace(cluster):
    if not cluster.restricted_namespace:
        pytest.skip("the restricted namespace exists only in the sandbox")
    with pytest.raises(ApiException) as err:
        _core(cluster).create_namespaced_pod(cluster.restricted_namespace, _pod("root", privileged=True))
    assert err.value.status == 403
    assert "violates PodSecurity" in err.value.body and "restricted" in err.value.body


def _container_state(core, name, namespace):
    pod = core.read_namespaced_pod(name, namespace)
    statuses = pod.status.container_statuses or []
    return pod, (statuses[0] if statuses else None)


def test_image_pull_failure_switch(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("nopull", labels={"sandbox.mldeploy.io/fail": "image-pull"}))
    seen = wait_until(lambda: (s := _container_state(core, "nopull", namespace)[1]) and s.state.waiting
                     and s.state.waiting.reason == "ImagePullBackOff" and s)
    assert "registry.example/model:1" in seen.state.waiting.message
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=nopull").items
    assert {"Failed", "BackOff"} <= {e.reason for e in events}


def test_crash_loop_failure_switch_restarts_grow(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("crashy", labels={"sandbox.mldeploy.io/fail": "crash-loop"}))
    first = wait_until(lambda: (s := _container_state(core, "crashy", namespace)[1]) and s.state.waiting
                      and s.state.waiting.reason == "CrashLoopBackOff" and s)
    assert first.last_state.terminated.exit_code == 1
    later = wait_until(lambda: (s := _container_state(core, "crashy", namespace)[1])
                      and s.restart_count >= first.restart_count + 1 and s)
    assert later.restart_count > first.restart_count >= 1


def test_never_ready_failure_switch(cluster, namespace):
    if not cluster.is_sandbox:
        pytest.skip("failure switches are the sandbox's kwok stages")
    core = _core(cluster)
    core.create_namespaced_pod(namespace, _pod("sulky", labels={"sandbox.mldeploy.io/fail": "never-ready"}))
    pod, status = wait_until(lambda: (r := _container_state(core, "sulky", namespace))[0].status.phase
                            == "Running" and r)
    time.sleep(4)  # longer than a healthy pod needs to turn Ready
    pod, status = _container_state(core, "sulky", namespace)
    assert pod.status.phase == "Running" and status.ready is False
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=sulky").items
    assert any(e.reason == "Unhealthy" and "Readiness probe failed" in e.message for e in events)


def test_up_when_up_reuses_it(cluster):
    if not cluster.is_sandbox:
        pytest.skip("sandbox only")
    from jupyter_mldeploy.sandbox.control_plane import Sandbox

    said = []
    before = Sandbox().status()
    after = Sandbox().up(progress=said.append)
    assert "already up" in said[0]
    assert {n: p["pid"] for n, p in after["processes"].items()} == {
        n: p["pid"] for n, p in before["processes"].items()}


def test_port_in_use_is_one_clear_sentence(tmp_path, monkeypatch):
    from jupyter_mldeploy.sandbox.control_plane import Sandbox
    from jupyter_mldeploy.sandbox.errors import SandboxError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setenv("MLDEPLOY_SANDBOX_PORT", str(port))
        with pytest.raises(SandboxError) as err:
            Sandbox(tmp_path / "box").up(progress=lambda _m: None)
    assert f"apiserver ({port})" in str(err.value)
    assert "in use" in str(err.value) and "MLDEPLOY_SANDBOX_PORT" in str(err.value)
    # Refused before anything started: no state was written.
    assert not (tmp_path / "box" / "state.json").exists()


# -- a second sandbox, brought up under umask 0: its files are private by their own modes ----------


def _second_port() -> int:
    # Above this run's sandbox (its base + 0..5) and its real data plane (base + 10..20, up when
    # tests/dataplane ran first), so runs with different MLDEPLOY_SANDBOX_PORTs never collide either.
    return int(os.environ.get("MLDEPLOY_SANDBOX_PORT", "16443")) + 30


@pytest.fixture(scope="module")
def second(cluster, tmp_path_factory):
    """A second sandbox (the suite's shared one keeps running), started in a folder that holds the
    remains of a dead one (a state whose process is gone, a stale log) and a file of the user's."""
    if not cluster.is_sandbox:
        pytest.skip("sandbox only")
    from jupyter_mldeploy.sandbox.control_plane import Sandbox
    from jupyter_mldeploy.sandbox.folder import StateFolder

    folder = tmp_path_factory.mktemp("second") / "box"
    dead = StateFolder(folder)
    dead.claim()
    (dead.mkdir("logs") / "etcd.log").write_text("from the dead sandbox\n")
    dead.write("state.json", json.dumps({"server": "https://127.0.0.1:1", "admin_token": "x", "ports": {},
                                         "versions": {}, "processes": {
                                             "etcd": {"pid": 2 ** 22 + 1, "start": "1", "cmd": "etcd"}}}))
    (folder / "notes.txt").write_text("the user's own notes\n")
    box = Sandbox(folder)
    old_umask = os.umask(0)
    mp = pytest.MonkeyPatch()
    mp.setenv("MLDEPLOY_SANDBOX_PORT", str(_second_port()))
    try:
        said: list[str] = []
        info = box.up(progress=said.append)
    finally:
        os.umask(old_umask)
    assert any("not answering" in m for m in said)  # the dead state was cleaned up first
    yield box, info
    mp.undo()
    if box.status()["processes"]:
        box.down(progress=lambda _m: None)


def _walk(folder: Path):
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            yield Path(root) / name


def test_up_writes_nothing_another_user_can_read(second):
    box, _info = second
    assert stat.S_IMODE(box.dir.stat().st_mode) == 0o700
    state = json.loads(box.state_file.read_text())
    tokens = [state["admin_token"]] + [line.split(",")[0] for line in
                                       (box.pki_dir / "tokens.csv").read_text().splitlines()]
    seen = {"dirs": 0, "files": 0}
    for path in _walk(box.dir):
        st = path.lstat()
        assert not stat.S_ISLNK(st.st_mode), path
        if path.name == "notes.txt":
            continue  # the user's file, left as it was
        kind = "dirs" if stat.S_ISDIR(st.st_mode) else "files"
        seen[kind] += 1
        want = 0o700 if kind == "dirs" else 0o600
        # etcd's own files may be 0600 or less; nothing may be open to group or others.
        assert stat.S_IMODE(st.st_mode) & 0o077 == 0, f"{path} is {stat.filemode(st.st_mode)}"
        if kind == "dirs" or path.parent == box.dir or path.parent in (box.pki_dir, box.log_dir):
            assert stat.S_IMODE(st.st_mode) == want, f"{path} is {stat.filemode(st.st_mode)}"
        if kind == "files" and path.stat().st_size < 1 << 20:
            data = path.read_bytes()
            if b"PRIVATE KEY" in data or any(t.encode() in data for t in tokens):
                assert stat.S_IMODE(st.st_mode) == 0o600, path
    assert seen["dirs"] >= 5 and seen["files"] >= 15  # pki, logs, etcd, pod-logs, ...
    # The dead sandbox's stale log went; the user's file stayed.
    assert "from the dead sandbox" not in (box.log_dir / "etcd.log").read_text()
    assert (box.dir / "notes.txt").read_text() == "the user's own notes\n"
    lock = box.dir.parent / f".{box.dir.name}.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    # Command lines are world-readable (/proc/PID/cmdline): they name files, never a token.
    for proc in state["processes"].values():
        cmdline = Path(f"/proc/{proc['pid']}/cmdline").read_bytes()
        assert cmdline and not any(t.encode() in cmdline for t in tokens), proc["cmd"]


def test_etcd_refuses_a_client_without_its_certificate(second):
    box, info = second
    port = json.loads(box.state_file.read_text())["ports"]["etcd"]
    url = f"https://127.0.0.1:{port}/v3/kv/range"
    body = json.dumps({"key": "L3JlZ2lzdHJ5Lw==", "range_end": "L3JlZ2lzdHJ5MA=="}).encode()  # /registry/

    def post(ctx):
        req = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return json.loads(resp.read())

    def etcd_client(cert: tuple[Path, Path] | None = None, tls12: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(box.pki_dir / "etcd-ca.crt"))
        if cert:
            ctx.load_cert_chain(*map(str, cert))
        if tls12:  # the client certificate is checked inside the handshake: a deterministic refusal
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    refused = (ssl.SSLError, urllib.error.URLError, ConnectionError)
    with pytest.raises(refused) as err:
        post(etcd_client(tls12=True))
    assert "handshake failure" in str(err.value).lower()
    with pytest.raises(refused):  # TLS 1.3: the alert ("certificate required") or a closed connection
        post(etcd_client())
    # Plain HTTP gets nothing either.
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).read()
    # A client certificate from the cluster's CA (which signs Kubernetes identities) is not etcd's.
    from jupyter_mldeploy.sandbox import pki

    other = Path(tempfile.mkdtemp(dir=box.dir.parent))
    ca_key = serialization.load_pem_private_key((box.pki_dir / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((box.pki_dir / "ca.crt").read_bytes())
    now = datetime.datetime.now(datetime.timezone.utc)
    pki._leaf(other, "intruder", "kube-apiserver-etcd-client", ca_key, ca, now,
              now + datetime.timedelta(hours=1), [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
    intruder = (other / "intruder.crt", other / "intruder.key")
    with pytest.raises(refused) as err:
        post(etcd_client(intruder, tls12=True))
    assert "bad certificate" in str(err.value).lower() or "unknown ca" in str(err.value).lower()
    with pytest.raises(refused):
        post(etcd_client(intruder))
    # The API server's own client certificate is let in, and sees the cluster's keys.
    assert post(box.etcd_tls())["count"] != "0"
    # And the API server, which talks to etcd with that certificate, answers.
    assert box.status()["up"] is True


def _listening(pid: int) -> list[str]:
    """The addresses a process listens on for TCP, read from /proc (no ss needed)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                addr, port = fields[1].split(":")
                raw = bytes.fromhex(addr)
                if width == 8:
                    host = socket.inet_ntop(socket.AF_INET, raw[::-1])
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # host-order words
                    host = socket.inet_ntop(socket.AF_INET6, words)
                found.append(f"{host}:{int(port, 16)}")
    return found


def test_every_component_listens_on_loopback_only(second):
    box, info = second
    listening = {name: _listening(p["pid"]) for name, p in info["processes"].items()}
    assert all(listening.values()), listening  # each serves something (etcd, API, healthz, kubelet API)
    loopback = ("127.0.0.1:", "::1:", "::ffff:127.0.0.1:")
    assert all(a.startswith(loopback) for addrs in listening.values() for a in addrs), listening


def test_restart_never_signals_a_pid_that_is_no_longer_its_process(second):
    from jupyter_mldeploy.sandbox.processes import alive, send_signal

    box, _info = second
    state = json.loads(box.state_file.read_text())
    scheduler = state["processes"]["kube-scheduler"]
    assert send_signal(scheduler, signal.SIGKILL) is True  # stop the real one: its PID is now free
    wait_until(lambda: not alive(scheduler), timeout=20)
    # Another process of this user now holds the PID the state records (as after PID reuse).
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        state["processes"]["kube-scheduler"] = {**scheduler, "pid": bystander.pid}
        box._save(state)
        said = []
        box.restart("kube-scheduler", progress=said.append)
        assert said == ["Restarted kube-scheduler."]
        assert bystander.poll() is None  # never signalled: its start time is not the scheduler's
        new = json.loads(box.state_file.read_text())["processes"]["kube-scheduler"]
        assert new["pid"] != bystander.pid and alive(new)
        assert send_signal({"pid": bystander.pid, "start": scheduler["start"]}, signal.SIGTERM) is False
        assert bystander.poll() is None
        wait_until(lambda: box.status()["up"], timeout=60)
    finally:
        bystander.kill()
        bystander.wait()


def test_down_removes_only_what_up_made(second):
    from jupyter_mldeploy.sandbox.processes import alive

    box, _info = second
    procs = json.loads(box.state_file.read_text())["processes"]
    assert set(procs) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    assert all(alive(p) for p in procs.values())
    said = []
    assert box.down(progress=said.append) is True
    assert not any(alive(p) for p in procs.values())
    # The user's file and the folder holding it stay; everything `up` made (marker included) is gone.
    assert os.listdir(box.dir) == ["notes.txt"]
    assert said[-1].endswith(f"removed what it made in {box.dir}, and left what it did not make: notes.txt.")
    assert box.status()["up"] is False


# -- folders that are not a sandbox ------------------------------------------------------------------


def _cli(*args: str, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLDEPLOY_SANDBOX_DIR": str(folder), "MLDEPLOY_SANDBOX_PORT": str(_second_port())}
    return subprocess.run([sys.executable, "-m", "jupyter_mldeploy", "sandbox", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_down_and_up_refuse_a_folder_that_is_not_a_sandbox(tmp_path):
    project = tmp_path / "myproject"
    (project / "logs").mkdir(parents=True)  # a name the sandbox also uses: still not its own
    (project / "train.py").write_text("print('precious')\n")
    (project / "state.json").write_text("{}")
    before = sorted(str(p.relative_to(project)) for p in _walk(project))
    for action in ("down", "up"):
        proc = _cli(action, folder=project)
        assert proc.returncode == 1, proc
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr
        assert lines[0] == (
            f"jupyter-mldeploy: {project} is not a sandbox folder (it has no .mldeploy-sandbox marker, "
            f"which `sandbox up` writes into the folders it makes), so nothing in it was stopped or "
            f"deleted; choose another MLDEPLOY_SANDBOX_DIR, or an empty folder.")
    assert sorted(str(p.relative_to(project)) for p in _walk(project)) == before
    assert (project / "train.py").read_text() == "print('precious')\n"
    assert stat.S_IMODE(project.stat().st_mode) == 0o755  # not even its mode was changed


def test_down_of_the_home_folder_is_refused(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("export PS1='$ '\n")
    proc = _cli("down", folder=home)
    assert proc.returncode == 1 and "is not a sandbox folder" in proc.stderr
    assert (home / ".bashrc").exists()
