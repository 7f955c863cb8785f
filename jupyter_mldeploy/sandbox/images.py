"""Real container images for the real node, made without Docker and served from 127.0.0.1.

A registry (`crane registry serve`) runs on loopback; containerd reaches it under the name
`sandbox.local` (its hosts.toml, see node.py), so an image pull is a real pull and a missing tag is a
real ErrImagePull. Three images are assembled with crane from plain tar layers:

- `sandbox.local/pause:3.10`: the pod sandbox image, a static C program that waits for a signal;
- `sandbox.local/mldeploy/serving:<version>`: the reference model server, honouring the contract of
  jupyter_mldeploy/serving/Dockerfile (port 8080, user 10001, /app on PYTHONPATH, MODEL/MODEL_NAME/
  MODEL_VERSION/PORT, prediction lines on stdout) on a Debian root filesystem made by mmdebstrap
  from Debian's packages with python3;
- `sandbox.local/mldeploy/testbox:1.0`: static busybox, for crash loops and OOM kills.

Layers are built once and cached under ~/.cache/jupyter-mldeploy/images, keyed by what they hold;
each `up` pushes them into the sandbox's fresh registry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from . import build
from . import dataplane_build as parts
from .errors import SandboxError

REGISTRY = "sandbox.local"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ROOTFS_PACKAGES = ("python3-minimal", "python3", "python-is-python3")
SERVING_UID = 10001
PAUSE_REF = f"{REGISTRY}/pause:3.10"
TESTBOX_REF = f"{REGISTRY}/mldeploy/testbox:1.0"


def serving_ref(second: bool = False) -> str:
    """The model server's image; `second`: the same image under a second tag, so that an upgrade and a
    rollback on the real node (the notebooks') have two versions to move between."""
    from ..serving.server import SERVER_VERSION

    return f"{REGISTRY}/mldeploy/serving:{SERVER_VERSION}{'-2' if second else ''}"


def cache_dir() -> Path:
    return build.cache_root() / "images"


ROOTFS_LOG = build.cache_root() / "logs" / f"build-rootfs-{DEBIAN_SUITE}.log"


# A pause process: PID 1 of every pod sandbox. It must exit on SIGTERM/SIGINT (PID 1 has no
# default handlers) and reap the zombies of a shared PID namespace.
PAUSE_C = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
    struct sigaction s = {0}, c = {0};
    s.sa_handler = stop; c.sa_handler = reap; c.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGINT, &s, NULL); sigaction(SIGTERM, &s, NULL); sigaction(SIGCHLD, &c, NULL);
    for (;;) pause();
}
"""


def _run(cmd: list[str], log, what: str, timeout: float = 900) -> str:
    print(f"$ {' '.join(cmd)}", file=log, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log.write(proc.stdout + proc.stderr)
    log.flush()
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise SandboxError(f"{what} failed (exit {proc.returncode}); log: {log.name}\n{tail}")
    return proc.stdout


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644,
             link: str | None = None, directory: bool = False) -> None:
    """Add one entry owned by root with mtime 0, so the same content gives the same layer digest."""
    info = tarfile.TarInfo(name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if directory:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
    elif link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, link, 0o777
        tar.addfile(info)
    else:
        info.size, info.mode = len(data or b""), mode
        tar.addfile(info, io.BytesIO(data or b""))


# -- layers -------------------------------------------------------------------------------------


def rootfs_layer(log, progress: Callable[[str], None]) -> Path:
    """A Debian root filesystem with python3, from Debian's packages (mmdebstrap), cached."""
    key = hashlib.sha256(" ".join((DEBIAN_SUITE, *ROOTFS_PACKAGES, str(SERVING_UID), "v1")).encode())
    out = cache_dir() / f"rootfs-{DEBIAN_SUITE}-python3-{key.hexdigest()[:12]}.tar"
    if out.is_file():
        return out
    if shutil.which("mmdebstrap") is None:
        raise SandboxError("The model server's image is a Debian root filesystem made by mmdebstrap: "
                           "install it (apt-get install mmdebstrap) and retry.")
    progress(f"Making the model server's root filesystem from Debian {DEBIAN_SUITE} packages "
             f"(mmdebstrap, about a minute, once)...")
    tmp = out.with_suffix(".tmp.tar")
    user = f"serving:x:{SERVING_UID}:{SERVING_UID}::/nonexistent:/usr/sbin/nologin"
    excludes = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("man", "doc", "locale", "info")]
    start = time.monotonic()
    _run(["mmdebstrap", "--variant=essential", f"--include={','.join(ROOTFS_PACKAGES)}", *excludes,
          f"--customize-hook=echo '{user}' >> \"$1/etc/passwd\"; echo 'serving:x:{SERVING_UID}:' >> "
          f"\"$1/etc/group\"; rm -rf \"$1/var/cache/apt\" \"$1\"/var/lib/apt/lists/*",
          DEBIAN_SUITE, str(tmp), DEBIAN_MIRROR], log, "mmdebstrap")
    tmp.rename(out)
    took = f"# rootfs took {time.monotonic() - start:.0f} s"
    print(took, file=log, flush=True)
    ROOTFS_LOG.parent.mkdir(parents=True, exist_ok=True)
    with open(ROOTFS_LOG, "a") as kept:  # outlives the sandbox's own logs, for the bench
        print(took, file=kept)
    return out


def _package_files() -> list[tuple[str, bytes]]:
    """The package's Python files, as the Dockerfile copies them (no tests, notebooks or data)."""
    root = Path(str(resources.files("jupyter_mldeploy")))
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    return [(f"app/jupyter_mldeploy/{p.relative_to(root).as_posix()}", p.read_bytes()) for p in files]


def app_layer() -> Path:
    files = _package_files()
    digest = hashlib.sha256(b"".join(n.encode() + b"\0" + d for n, d in files)).hexdigest()[:12]
    out = cache_dir() / f"app-{digest}.tar"
    if not out.is_file():
        tmp = out.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            dirs = sorted({str(Path(n).parent) for n, _ in files} | {"app"})
            for folder in sorted({p for d in dirs for p in _parents(d)}):
                _tar_add(tar, folder, directory=True)
            for name, data in files:
                _tar_add(tar, name, data)
        tmp.rename(out)
    return out


def _parents(d: str) -> list[str]:
    parts_ = Path(d).parts
    return ["/".join(parts_[: i + 1]) for i in range(len(parts_))]


def pause_layer(log) -> Path:
    out = cache_dir() / f"pause-{hashlib.sha256(PAUSE_C.encode()).hexdigest()[:12]}.tar"
    if out.is_file():
        return out
    if shutil.which("gcc") is None:
        raise SandboxError("The pause image is a small static C program: install gcc and the C library's "
                           "static files (Debian: apt-get install gcc libc6-dev) and retry.")
    work = cache_dir() / "pause-build"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pause.c").write_text(PAUSE_C)
    _run(["gcc", "-static", "-Os", "-s", "-o", str(work / "pause"), str(work / "pause.c")], log,
         "gcc (pause)")
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        _tar_add(tar, "pause", (work / "pause").read_bytes(), mode=0o755)
    tmp.rename(out)
    return out


BUSYBOX_APPLETS = ("sh", "echo", "cat", "sleep", "head", "tail", "tr", "dd", "ls", "env", "true",
                   "false", "yes", "httpd", "wget", "seq", "date", "printf")


def testbox_layer() -> Path:
    src = Path("/bin/busybox")
    if not src.is_file() or b"GLIBC" in src.read_bytes()[:4096 * 64]:
        raise SandboxError("The crash/OOM test image needs a static busybox at /bin/busybox "
                           "(Debian: apt-get install busybox-static) and retry.")
    data = src.read_bytes()
    out = cache_dir() / f"testbox-{hashlib.sha256(data).hexdigest()[:12]}.tar"
    if not out.is_file():
        tmp = out.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as tar:
            for d in ("bin", "tmp"):
                _tar_add(tar, d, directory=True)
            _tar_add(tar, "bin/busybox", data, mode=0o755)
            for applet in BUSYBOX_APPLETS:
                _tar_add(tar, f"bin/{applet}", link="busybox")
        tmp.rename(out)
    return out


# -- the registry and publishing ----------------------------------------------------------------


def registry_command(port: int, disk: Path) -> list[str]:
    return [str(parts.CRANE.path("crane")), "registry", "serve", "--address", f"127.0.0.1:{port}",
            "--disk", str(disk)]


@dataclass(frozen=True)
class Image:
    ref: str  # as pods name it: sandbox.local/...
    layers: tuple[Path, ...]
    config: tuple[str, ...]  # crane mutate flags


def build_layers(progress: Callable[[str], None] = print) -> list[Path]:
    """Make (or find cached) every layer the images need: `sandbox build` does it ahead of `up`."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.log", "a") as log:
        return [layer for image in images(log, progress) for layer in image.layers]


def images(log, progress: Callable[[str], None]) -> list[Image]:
    serving_env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": "/app",
                   "MODEL": "jupyter_mldeploy.serving.server:echo", "MODEL_NAME": "model",
                   "MODEL_VERSION": "1", "PORT": "8080", "DRAIN": "3"}
    # --drain: as the Dockerfile's command; a pod being removed keeps answering while the Gateway
    # learns it is going (promote, abort and scale-down drop no request).
    serving_cmd = ('exec python -m jupyter_mldeploy.serving --model "$MODEL" --name "$MODEL_NAME" '
                   '--version "$MODEL_VERSION" --host 0.0.0.0 --port "$PORT" --drain "$DRAIN"')
    return [
        Image(PAUSE_REF, (pause_layer(log),), ("--entrypoint", "/pause")),
        Image(TESTBOX_REF, (testbox_layer(),), ("--entrypoint", "/bin/sh", "--workdir", "/tmp")),
        Image(serving_ref(), (rootfs_layer(log, progress), app_layer()),
              ("--cmd", _csv("sh", "-c", serving_cmd), "--workdir", "/app", "--user", str(SERVING_UID),
               "--exposed-ports", "8080/tcp",
               *[f for k, v in serving_env.items() for f in ("--env", f"{k}={v}")])),
    ]


def _csv(*fields: str) -> str:
    """crane's list flags are one CSV field each: quote what holds quotes or commas."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(fields)
    return buf.getvalue()


def publish(registry_port: int, log, progress: Callable[[str], None]) -> list[str]:
    """Push every image into the sandbox's registry; returns the references pods can use."""
    crane = str(parts.CRANE.path("crane"))
    local = f"127.0.0.1:{registry_port}"
    done = []
    for image in images(log, progress):
        target = image.ref.replace(REGISTRY, local, 1)
        layer_flags = [f for layer in image.layers for f in ("-f", str(layer))]
        _run([crane, "append", "--insecure", "--oci-empty-base", *layer_flags, "-t", target], log,
             f"crane append ({image.ref})")
        _run([crane, "mutate", "--insecure", target, "--set-platform", "linux/amd64", *image.config,
              "-t", target], log, f"crane mutate ({image.ref})")
        done.append(image.ref)
        if image.ref == serving_ref():
            _run([crane, "tag", "--insecure", target, serving_ref(second=True).rsplit(":", 1)[1]], log,
                 "crane tag (the model server's second tag)")
            done.append(serving_ref(second=True))
    return done
