"""The quickstart and canary notebooks on the sandbox's real node: real pods from the local registry,
Ready because their readiness probes pass. Parameters pick the node (`node_selector` and
`toleration`), as a user's would pick a node pool; they run under papermill and under nbval, and a watch
beside them records where every pod ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from jupyter_mldeploy.sandbox import images, node

pytestmark = [pytest.mark.sandbox, pytest.mark.dataplane]

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
PLACEMENT = {"node_selector": f"{node.NODE_LABEL_KEY}={node.NODE_LABEL_VALUE}",
             "toleration": f"{node.TAINT['key']}={node.TAINT['value']}:{node.TAINT['effect']}"}
PARAMETERS = {
    "01-quickstart.ipynb": {"image": images.serving_ref(), "image_v2": images.serving_ref(second=True)},
    "02-canary.ipynb": {"image_stable": images.serving_ref(),
                        "image_canary": images.serving_ref(second=True)},
}


class PodWatch:
    """Polls the namespace's pods beside a notebook run: where each ran, and whether it was Ready."""

    def __init__(self, kube, namespace: str) -> None:
        self.kube, self.namespace = kube, namespace
        self.seen: dict[str, tuple[str | None, bool]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            pods = self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}/pods")[1]["items"]
            for p in pods:
                ready = any(c["type"] == "Ready" and c["status"] == "True"
                            for c in p.get("status", {}).get("conditions", []))
                name = p["metadata"]["name"]
                before = self.seen.get(name, (None, False))
                self.seen[name] = (p["spec"].get("nodeName") or before[0], ready or before[1])

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def assert_all_real(self, at_least: int) -> None:
        assert len(self.seen) >= at_least, self.seen
        assert {n for n, _ in self.seen.values()} == {node.NODE_NAME}, self.seen  # no simulated node
        assert sum(ready for _, ready in self.seen.values()) >= at_least, self.seen  # probes really passed


@pytest.fixture
def kernel_env(cluster, namespace, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setenv("MLDEPLOY_NAMESPACE", namespace)
    monkeypatch.setenv("MLDEPLOY_CONTEXT", cluster.context)
    monkeypatch.delenv("MLDEPLOY_TIMEOUT", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return dict(os.environ)


def _errors(nb) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.output_type == "error"]


def test_the_quickstart_runs_on_the_real_node_under_papermill(real, kube, namespace, kernel_env, tmp_path):
    import papermill

    out = tmp_path / "quickstart.ipynb"
    with PodWatch(kube, namespace) as watch:
        papermill.execute_notebook(str(NOTEBOOKS / "01-quickstart.ipynb"), str(out), kernel_name="python3",
                                   progress_bar=False, cwd=str(tmp_path),
                                   parameters={"namespace": namespace, "interactive": "no",
                                               **PLACEMENT, **PARAMETERS["01-quickstart.ipynb"]})
    nb = nbformat.read(out, 4)
    assert not _errors(nb)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert f"Deploying iris ({images.serving_ref()})" in text and "2/2 ready" in text
    watch.assert_all_real(at_least=4)  # two pods of each version: the update and the rollback rolled


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_the_notebook_passes_nbval_on_the_real_node(real, kube, namespace, kernel_env, tmp_path, name):
    # nbval runs the notebook as it is: its parameters cell, given the real node's values, is that.
    nb = nbformat.read(NOTEBOOKS / name, 4)
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {**PLACEMENT, **PARAMETERS[name]}
    params.source += "\n" + "\n".join(f"{k} = {v!r}" for k, v in values.items())
    path = tmp_path / name
    nbformat.write(nb, path)
    # The saved outputs name the notebook's own image versions (2.0); the real node's images are the
    # model server's two tags. The cell itself still asserts the image that runs.
    sanitize = tmp_path / "sanitize.cfg"
    sanitize.write_text((NOTEBOOKS / "sanitize.cfg").read_text()
                        + "\n[model versions]\nregex: now runs version \\S+;\nreplace: now runs version V;\n")
    with PodWatch(kube, namespace) as watch:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "--sanitize-with", str(sanitize), str(path),
             "-p", "no:cacheprovider", "-q"],
            cwd=tmp_path, env=kernel_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    assert f"{n_code} passed" in done.stdout
    watch.assert_all_real(at_least=3 if name == "02-canary.ipynb" else 4)  # canary: 2 stable + 1 canary
