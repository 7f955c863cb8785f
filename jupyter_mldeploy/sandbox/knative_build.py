"""Knative Serving's binaries and the module its YAML comes from: built once per machine with
`go install knative.dev/serving/cmd/...@vX` and cached beside the control plane's binaries, keyed by
version; the YAML is read at start from the module zips in the Go module cache (serving, and the
knative.dev/networking and knative.dev/caching versions serving's go.mod requires).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from . import versions
from .build import cache_root, go_toolchain, run_logged
from .errors import SandboxError

VERSION = versions.KNATIVE_SERVING
MODULE = "knative.dev/serving"
COMMANDS = ("controller", "webhook", "autoscaler", "activator", "queue")
COMPONENTS = ("controller", "webhook", "autoscaler", "activator")  # what runs; queue goes in pods
NAMESPACE = "knative-serving"


# -- build ------------------------------------------------------------------------------------------


def bin_dir() -> Path:
    return cache_root() / "bin" / f"knative-serving-{VERSION}"


def missing_binaries() -> list[str]:
    return [c for c in COMMANDS if not (bin_dir() / c).is_file()]


def log_path() -> Path:
    return cache_root() / "logs" / f"build-knative-serving-{VERSION}.log"


def ensure_binaries(progress=print) -> Path:
    """Build whatever is missing (344 s measured on 2 cores from an empty module cache: about 6
    minutes, once per machine); a warm cache returns at once. The build log ends with its duration."""
    missing = missing_binaries()
    if not missing:
        return bin_dir()
    go = go_toolchain()
    path = log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    progress(f"Building Knative Serving {VERSION} ({', '.join(missing)}): about 6 minutes on 2 cores with "
             f"a cold cache, once per machine. Log: {path}")
    bin_dir().mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(path, "a") as log:
        print(f"start {time.strftime('%Y-%m-%d %H:%M:%S %Z')}", file=log, flush=True)
        run_logged([go, "install", "-trimpath", "-ldflags", "-s -w",
                    *(f"{MODULE}/cmd/{c}@v{VERSION}" for c in missing)],
                   cache_root(), log, env={"GOBIN": str(bin_dir()), "CGO_ENABLED": "0"})
        print(f"built {', '.join(missing)} in {time.monotonic() - t0:.0f} s", file=log, flush=True)
    still = missing_binaries()
    if still:
        raise SandboxError(f"The Knative build finished but {', '.join(still)} is missing; see {path}.")
    return bin_dir()


# -- the YAML, from the module zips ---------------------------------------------------------------


def _download(go: str, module: str, version: str) -> dict:
    proc = subprocess.run([go, "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SandboxError(f"Could not download {module}@{version} for Knative's YAML: "
                           f"{proc.stderr.strip() or proc.stdout.strip()}")
    return json.loads(proc.stdout)


def module_dirs() -> dict[str, Path]:
    """serving, networking and caching, at the versions serving's go.mod requires."""
    go = go_toolchain()
    serving = _download(go, MODULE, f"v{VERSION}")
    gomod = Path(serving["GoMod"]).read_text()
    dirs = {"serving": Path(serving["Dir"])}
    for dep in ("networking", "caching"):
        m = re.search(rf"^\s*knative\.dev/{dep}\s+(\S+)", gomod, re.M)
        if m is None:
            raise SandboxError(f"knative.dev/serving v{VERSION}'s go.mod does not require knative.dev/{dep}.")
        dirs[dep] = Path(_download(go, f"knative.dev/{dep}", m[1])["Dir"])
    return dirs
