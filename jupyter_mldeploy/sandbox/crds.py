"""The traffic layers' CustomResourceDefinitions, taken from each project's own published module.

The Go module proxy serves these repositories as data, so `go mod download` fetches the exact
definitions the projects publish; no controller acts on them in the sandbox, but the API server
validates every object against them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from . import versions
from .build import bin_dir, go_toolchain
from .errors import SandboxError

# (module, version, files inside the module, API groups to keep)
SOURCES = (
    ("sigs.k8s.io/gateway-api", versions.GATEWAY_API, "config/crd/standard/*.yaml",
     {"gateway.networking.k8s.io"}),
    ("istio.io/api", versions.ISTIO_API, "kubernetes/customresourcedefinitions.gen.yaml",
     {"networking.istio.io"}),
    ("knative.dev/serving", versions.KNATIVE_SERVING, "config/core/300-resources/*.yaml",
     {"serving.knative.dev"}),
)


def _module_dir(go: str, module: str, version: str) -> Path:
    proc = subprocess.run([go, "mod", "download", "-json", f"{module}@v{version}"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SandboxError(f"Could not download {module}@v{version} for its CRDs: {proc.stderr.strip()}")
    return Path(json.loads(proc.stdout)["Dir"])


def crd_file() -> Path:
    """One multi-document YAML of every CRD the sandbox installs, cached beside the binaries."""
    key = f"gw{versions.GATEWAY_API}-istio{versions.ISTIO_API}-kn{versions.KNATIVE_SERVING}"
    target = bin_dir() / f"crds-{key}.yaml"
    if target.is_file():
        return target
    go = go_toolchain()
    docs = []
    for module, version, pattern, groups in SOURCES:
        root = _module_dir(go, module, version)
        for path in sorted(root.glob(pattern)):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] in groups:
                    docs.append(doc)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    tmp.rename(target)
    return target
