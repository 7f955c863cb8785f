"""Build the sandbox's binaries from published Go modules and cache them outside the work tree.

`go install k8s.io/kubernetes/cmd/...@vX` cannot work: that module replaces its staging modules
with ./staging paths, and a dependency's replaces are ignored. So each build happens in a small
wrapper module that requires the release and replaces every staging module by its published
v0.Y.Z twin (the list is read from that exact release's go.mod). etcd gets a wrapper of its own
so the two dependency graphs never bump each other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import versions
from .errors import SandboxError

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


def cache_root() -> Path:
    """Where built binaries live, shared by every clone on this machine."""
    base = os.environ.get("MLDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jupyter-mldeploy"
    )
    return Path(base)


def bin_dir() -> Path:
    key = f"k8s-{versions.KUBERNETES}_etcd-{versions.ETCD}_kwok-{versions.KWOK}"
    return cache_root() / "bin" / key


def binary(name: str) -> Path:
    return bin_dir() / name


ALL_BINARIES = (*KUBE_COMMANDS, "etcd", "kwok")


def missing_binaries() -> list[str]:
    return [name for name in ALL_BINARIES if not binary(name).is_file()]


def go_toolchain() -> str:
    """The `go` on PATH; one sentence saying how to get one when there is none."""
    go = shutil.which("go")
    if go is None:
        raise SandboxError(
            "The sandbox is built from Go modules, and no Go toolchain was found on PATH: "
            "install Go 1.26 or newer (https://go.dev/doc/install) and run the command again."
        )
    return go


def run_logged(cmd: list[str], cwd: Path, log, env: dict[str, str] | None = None) -> str:
    """Run a build step with its output appended to `log`; a failure names the log and its tail."""
    print(f"$ {' '.join(cmd)}", file=log, flush=True)
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log.write(proc.stdout)
    log.flush()
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise SandboxError(
            f"Building the sandbox failed at `{' '.join(cmd[:3])}` (exit {proc.returncode}); "
            f"the full log is in {log.name}.\n{tail}"
        )
    return proc.stdout


def staging_modules(go: str, k8s_version: str, log) -> list[str]:
    """The staging modules of one Kubernetes release, read from its own go.mod."""
    out = run_logged([go, "mod", "download", "-json", f"k8s.io/kubernetes@v{k8s_version}"], Path.cwd(), log)
    gomod = Path(json.loads(out[out.index("{") :])["GoMod"]).read_text()
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", gomod, re.M)))


def _kube_wrapper(go: str, work: Path, log) -> None:
    v = versions.KUBERNETES
    minor = v.split(".", 1)[1]  # 1.36.1 -> staging modules at v0.36.1
    replaces = "\n".join(f"\t{m} => {m} v0.{minor}" for m in staging_modules(go, v, log))
    tools = "\n".join(f"\tk8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS)
    (work / "go.mod").write_text(
        f"module mldeploy.local/kubebuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes v{v}\n\n"
        f"replace (\n{replaces}\n)\n\ntool (\n{tools}\n)\n"
    )


def kube_ldflags(version: str) -> str:
    """The -ldflags that stamp a Kubernetes binary with its version, as its own release build does."""
    keys = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    flags = ["-s", "-w"]
    for key in keys:
        flags += [f"-X {key}.gitVersion=v{version}", f"-X {key}.gitMajor=1"]
        flags += [f"-X {key}.gitMinor={version.split('.')[1]}", f"-X {key}.gitTreeState=clean"]
    return " ".join(flags)


def build_kubernetes(log) -> None:
    go = go_toolchain()
    work = cache_root() / "work" / f"kubernetes-{versions.KUBERNETES}"
    work.mkdir(parents=True, exist_ok=True)
    _kube_wrapper(go, work, log)
    run_logged([go, "mod", "tidy"], work, log)
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    pkgs = [f"k8s.io/kubernetes/cmd/{c}" for c in KUBE_COMMANDS]
    run_logged(
        [go, "build", "-trimpath", "-ldflags", kube_ldflags(versions.KUBERNETES), "-o", str(out) + "/",
         *pkgs],
        work,
        log,
        env={"CGO_ENABLED": "0"},
    )


def build_etcd(log) -> None:
    go = go_toolchain()
    v = versions.ETCD
    work = cache_root() / "work" / f"etcd-{v}"
    work.mkdir(parents=True, exist_ok=True)
    # etcd's server module replaces its sibling modules with relative paths; pin them all.
    siblings = ["api/v3", "client/pkg/v3", "client/v3", "pkg/v3", "server/v3"]
    replaces = "\n".join(f"\tgo.etcd.io/etcd/{m} => go.etcd.io/etcd/{m} v{v}" for m in siblings)
    (work / "go.mod").write_text(
        f"module mldeploy.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 v{v}\n\n"
        f"replace (\n{replaces}\n)\n\ntool go.etcd.io/etcd/server/v3\n"
    )
    run_logged([go, "mod", "tidy"], work, log)
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    run_logged(
        [go, "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"],
        work,
        log,
        env={"CGO_ENABLED": "0"},
    )


def build_kwok(log) -> None:
    go = go_toolchain()
    out = bin_dir()
    out.mkdir(parents=True, exist_ok=True)
    run_logged(
        [go, "install", "-trimpath", "-ldflags", "-s -w", f"sigs.k8s.io/kwok/cmd/kwok@v{versions.KWOK}"],
        Path.cwd(),
        log,
        env={"GOBIN": str(out), "CGO_ENABLED": "0"},
    )


def ensure_binaries(progress=print) -> Path:
    """Build whatever is missing; a warm cache returns at once."""
    missing = missing_binaries()
    if not missing:
        return bin_dir()
    logs = cache_root() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"build-{bin_dir().name}.log"
    with open(log_path, "a") as log:
        if "etcd" in missing:
            progress(f"Building etcd {versions.ETCD} from Go modules (about 2 minutes)...")
            build_etcd(log)
        if "kwok" in missing:
            progress(f"Building kwok {versions.KWOK} (about 2 minutes)...")
            build_kwok(log)
        if any(c in missing for c in KUBE_COMMANDS):
            progress(
                f"Building Kubernetes {versions.KUBERNETES} (kube-apiserver, controller-manager, "
                f"scheduler, kubectl): 15 to 30 minutes on a cold cache, once per machine. "
                f"Log: {log_path}"
            )
            build_kubernetes(log)
    still = missing_binaries()
    if still:
        raise SandboxError(f"The build finished but {', '.join(still)} is missing; see {log_path}.")
    return bin_dir()


if __name__ == "__main__":  # python -m jupyter_mldeploy.sandbox.build
    try:
        print(ensure_binaries())
    except SandboxError as e:
        sys.exit(str(e))
