"""The notebooks in notebooks/ run for real against the test cluster: under nbval (as `make test` would
run them on their own) and under papermill with parameters (as a nightly pipeline would), and the
cluster is checked afterwards. Also: a failing deploy fails a papermill run, and the demo command.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from jupyter_mldeploy.errors import ClusterError
from jupyter_mldeploy.kube.client import Kube

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
QUICKSTART = NOTEBOOKS / "01-quickstart.ipynb"
# The rollout notebooks, with the magics each one must show.
ROLLOUTS = {
    "02-canary.ipynb": ("--strategy canary --weight 10", "%canary fraud 30", "%canary fraud\n",
                        "%steps fraud", "%promote fraud", "%mldeploy", "%undeploy fraud"),
    "03-shadow.ipynb": ("--strategy shadow --mirror", "%shadow fraud --data X", "report.plot()",
                        "%promote fraud", "%rollback fraud", "%undeploy fraud"),
    "04-scheduled-pipeline.ipynb": ("--strategy shadow --mirror", "%shadow fraud --data X", "%promote fraud",
                                    "%rollback fraud", "json.dumps(result)"),
}


@pytest.fixture(scope="module", autouse=True)
def python3_kernel():
    """nbval and papermill start the `python3` kernel: install its spec only if it is missing."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user", "--name", "python3"],
                       check=True, capture_output=True, timeout=120)
    assert "python3" in KernelSpecManager().find_kernel_specs()


@pytest.fixture
def notebook_env(cluster, namespace, monkeypatch):
    """The environment a notebook kernel inherits: the test cluster, and this test's namespace."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setenv("MLDEPLOY_NAMESPACE", namespace)
    if cluster.context:
        monkeypatch.setenv("MLDEPLOY_CONTEXT", cluster.context)
    else:
        monkeypatch.delenv("MLDEPLOY_CONTEXT", raising=False)
    monkeypatch.delenv("MLDEPLOY_TIMEOUT", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)  # headless, whatever runs the suite
    return dict(os.environ)


def ours(kube: Kube, namespace: str) -> list[str]:
    """Every object jupyter-mldeploy manages in the namespace (the model and its release records)."""
    selector = {"labelSelector": "app.kubernetes.io/managed-by=jupyter-mldeploy"}
    names = []
    for path in (f"/apis/apps/v1/namespaces/{namespace}/deployments",
                 f"/api/v1/namespaces/{namespace}/services", f"/api/v1/namespaces/{namespace}/configmaps"):
        names += [i["metadata"]["name"] for i in kube.request("GET", path, query=selector)[1]["items"]]
    return names


def outputs(cell) -> str:
    text = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            text.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            text.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            text.append(f"{out.ename}: {out.evalue}")
    return "".join(text)


def cell_with(nb, source: str):
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.strip() == source)


def test_quickstart_has_a_parameters_cell_and_explains_each_step():
    nb = nbformat.read(QUICKSTART, 4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("namespace", "image", "interactive"):
        assert f"\n{name} = " in "\n" + params[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 9 and nb.metadata.kernelspec.name == "python3"
    sources = "\n".join(c.source for c in code)
    for step in ("%load_ext jupyter_mldeploy", "%deploy iris", "%rollout iris", "%rollback iris",
                 "%undeploy iris", "%mldeploy"):
        assert step in sources


def test_quickstart_passes_nbval(notebook_env, kube, namespace):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--sanitize-with", str(NOTEBOOKS / "sanitize.cfg"),
         str(QUICKSTART), "-p", "no:cacheprovider", "-q"],
        cwd=REPO, env=notebook_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    n_code = sum(c.cell_type == "code" for c in nbformat.read(QUICKSTART, 4).cells)
    assert f"{n_code} passed" in done.stdout
    assert ours(kube, namespace) == []  # the last cell removed the model and its records


def test_quickstart_under_papermill_with_parameters(notebook_env, kube, namespace, tmp_path):
    import papermill

    out = tmp_path / "quickstart-output.ipynb"
    papermill.execute_notebook(str(QUICKSTART), str(out), kernel_name="python3", progress_bar=False,
                               parameters={"namespace": namespace, "interactive": "no",
                                           "image": "ghcr.io/acme/iris:2.0",
                                           "image_v2": "ghcr.io/acme/iris:2.1"},
                               cwd=str(NOTEBOOKS))
    nb = nbformat.read(out, 4)
    injected = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert f'namespace = "{namespace}"' in injected.source
    first = outputs(cell_with(nb, "d = %deploy iris --image {image} --replicas 2 --cpu 100m --memory 128Mi "
                                  "--create-namespace --node-selector {node_selector} "
                                  "--toleration {toleration}"))
    assert f"Deploying iris (ghcr.io/acme/iris:2.0) to namespace {namespace}" in first
    assert "iris  [##########] 2/2 ready  rolled out" in first
    assert "iris: 2/2 ready, rollout complete" in first
    rollout = [outputs(c) for c in nb.cells if c.cell_type == "code" and c.source.strip() == "%rollout iris"]
    assert "Revisions (oldest first, * = live):" in rollout[1]
    assert "ghcr.io/acme/iris:2.0" in rollout[1] and "ghcr.io/acme/iris:2.1" in rollout[1]
    history = next(c for c in nb.cells if c.source.startswith("live = [r for r in d.history()"))
    assert "ghcr.io/acme/iris:2.0" in outputs(history)  # the notebook's own check after the rollback
    assert outputs(cell_with(nb, "%undeploy iris")).startswith(f"Removed iris from namespace {namespace}: ")
    assert ours(kube, namespace) == []
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_a_failing_deploy_fails_the_papermill_run(notebook_env, kube, namespace, tmp_path):
    import papermill

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("image = 'ghcr.io/acme/iris:9.9'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("%load_ext jupyter_mldeploy"),
        nbformat.v4.new_code_cell("%deploy iris --image {image} --label sandbox.mldeploy.io/fail=image-pull"),
        nbformat.v4.new_code_cell("print('never reached')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "fail.ipynb", tmp_path / "fail-output.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(papermill.PapermillExecutionError) as e:
        papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False)
    assert e.value.ename == "MLDeployFailed"
    assert e.value.evalue.startswith("The rollout of iris failed: The image ghcr.io/acme/iris:9.9 could not")
    assert e.value.traceback == [f"MLDeployFailed: {e.value.evalue}"]  # one line, not a stack
    executed = nbformat.read(out, 4)
    deploy_cell = next(c for c in executed.cells if c.source.startswith("%deploy"))
    text = outputs(deploy_cell)
    assert "FAILED: The image ghcr.io/acme/iris:9.9 could not be pulled" in text  # the table stays
    assert "never reached" not in json.dumps(executed.cells[-1].get("outputs", []))


def test_demo_command_runs_the_quickstart(cluster, notebook_env, kube, namespace, tmp_path, capsys):
    if not cluster.is_sandbox:
        pytest.skip("the demo brings up and uses the local sandbox")
    from jupyter_mldeploy.magics.demo import run_demo

    out = tmp_path / "demo.ipynb"
    assert run_demo(out, parameters={"namespace": namespace}) == 0
    printed = capsys.readouterr().out
    assert f"The quickstart ran. The executed notebook is {out}" in printed
    # the story, told as each step finished, in order
    told = [line.strip() for line in printed.splitlines() if line.startswith("  ")]
    assert [t.split(":")[0].split(" (")[0] for t in told] == [
        "Deployed iris", "Deployed a second version of iris", "Rolled iris back to the previous revision",
        f"Removed iris from namespace {namespace}"], told
    assert told[0].startswith(f"Deployed iris (ghcr.io/acme/iris:1.0) to namespace {namespace}: 2/2 ready ")
    assert told[1].startswith("Deployed a second version of iris (ghcr.io/acme/iris:1.1): 2/2 ready in ")
    nb = nbformat.read(out, 4)
    assert "rolled out" in "".join(outputs(c) for c in nb.cells if c.cell_type == "code")
    assert ours(kube, namespace) == []


def test_demo_reports_a_missing_notebook(monkeypatch, capsys):
    from jupyter_mldeploy.magics import demo

    monkeypatch.setattr(demo, "find_quickstart", lambda: None)
    assert demo.run_demo() == 1
    assert "was not found" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(ROLLOUTS))
def test_rollout_notebooks_have_parameters_and_explain_each_step(name):
    nb = nbformat.read(NOTEBOOKS / name, 4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and nb.metadata.kernelspec.name == "python3"
    for var in ("namespace", "interactive"):
        assert f"\n{var} = " in "\n" + params[0].source
    sources = "\n".join(c.source for c in nb.cells if c.cell_type == "code") + "\n"
    for step in ROLLOUTS[name]:
        assert step in sources, step
    markdown = [c for c in nb.cells if c.cell_type == "markdown"]
    assert len(markdown) >= 6
    if name != "02-canary.ipynb":  # the shadow notebooks say why the answers come from this machine
        assert "simulate" in "".join(c.source for c in markdown)


@pytest.mark.parametrize("name", sorted(ROLLOUTS))
def test_rollout_notebooks_pass_nbval(notebook_env, kube, namespace, name):
    path = NOTEBOOKS / name
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--sanitize-with", str(NOTEBOOKS / "sanitize.cfg"),
         str(path), "-p", "no:cacheprovider", "-q"],
        cwd=REPO, env=notebook_env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    nb = nbformat.read(path, 4)
    n_code = sum(c.cell_type == "code" for c in nb.cells)
    assert f"{n_code} passed" in done.stdout
    if name == "04-scheduled-pipeline.ipynb":  # a pipeline leaves the model serving: the candidate, promoted
        deps = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments")[1]["items"]
        assert [(d["metadata"]["name"], d["spec"]["template"]["spec"]["containers"][0]["image"])
                for d in deps] == [("fraud", "ghcr.io/acme/fraud:2.0")]
    else:
        assert ours(kube, namespace) == []  # the last cell removed the model, its route and records


NOTEBOOK_NAMES = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
# What a notebook may not reach for: the private connection and settings rooms, or a helper module
# beside the notebook (which only resolves when the kernel happens to start in notebooks/).
PRIVATE = re.compile(r"jupyter_mldeploy\.(kube|config|sandbox)\b|\bkube=|^\s*(import|from) models\b", re.M)


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebooks_use_only_magics_and_the_public_api(name):
    nb = nbformat.read(NOTEBOOKS / name, 4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert PRIVATE.search(code) is None, PRIVATE.search(code)
    assert "--create-namespace" in code  # the notebook makes its namespace through the magic
    assert not (NOTEBOOKS / "models.py").exists()


@pytest.fixture
def fresh_namespace(kube):
    """A namespace name that does not exist yet (the notebook's --create-namespace makes it)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(ClusterError):  # never created: the test has failed already, with its reason
        kube.request("DELETE", f"/api/v1/namespaces/{name}", query={"propagationPolicy": "Background"})


@pytest.mark.parametrize("where", ["/", "repo"])
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_each_notebook_runs_under_papermill_from_any_directory(cluster, kube, fresh_namespace, monkeypatch,
                                                               tmp_path, name, where):
    """`papermill NOTEBOOK OUT` as a scheduler starts it: from / or the repository root, not notebooks/;
    the kernel starts there too. The namespace does not exist beforehand."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    if cluster.context:
        monkeypatch.setenv("MLDEPLOY_CONTEXT", cluster.context)
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_TIMEOUT", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / f"out-{name}"
    done = subprocess.run(
        [sys.executable, "-m", "papermill", str(NOTEBOOKS / name), str(out), "--kernel", "python3",
         "--no-progress-bar", "-p", "namespace", fresh_namespace, "-p", "interactive", "no"],
        cwd="/" if where == "/" else REPO, env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    nb = nbformat.read(out, 4)
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    kube.request("GET", f"/api/v1/namespaces/{fresh_namespace}")  # made by the notebook's --create-namespace
    if name == "04-scheduled-pipeline.ipynb":  # a pipeline leaves the promoted candidate serving
        deps = kube.request("GET", f"/apis/apps/v1/namespaces/{fresh_namespace}/deployments")[1]["items"]
        assert [d["metadata"]["name"] for d in deps] == ["fraud"]
    else:
        assert ours(kube, fresh_namespace) == []


def test_the_notebook_kernel_runs_the_suites_python(tmp_path):
    """`make` installs into .venv and registers its kernel there: papermill must not start another
    interpreter (the system's, without this package or with another version of it)."""
    import papermill

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import sys, jupyter_mldeploy\nprint(sys.prefix)\nprint(jupyter_mldeploy.__file__)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "which.ipynb", tmp_path / "which-out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd="/")
    prefix, package = outputs(nbformat.read(out, 4).cells[0]).split()
    import jupyter_mldeploy

    assert prefix == sys.prefix and package == jupyter_mldeploy.__file__
