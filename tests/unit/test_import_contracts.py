"""The house's arrows as import-linter contracts (pyproject.toml [tool.importlinter]), run here so CI
fails when pure code (spec, render, split, status, diagnosis, views) imports kube/, a face (a widget,
a magic) imports kube/ other than through the API, or the core imports a face, even by a chain. The one
listed exception carries its reason there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs import-linter on the package found first on sys.path of a fresh interpreter, from `cwd`.
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))")


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT], cwd=folder, capture_output=True, text=True,
                          env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"}, timeout=120)


def test_the_package_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout, result.stdout


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The package and its contracts, copied where a test may break them."""
    shutil.copytree(ROOT / "jupyter_mldeploy", tmp_path / "jupyter_mldeploy",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _add_line(path: Path, line: str) -> None:
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest)


@pytest.mark.parametrize("module, line, contract", [
    ("spec/quantity.py", "from ..kube import client as _client", "Pure code"),
    ("diagnosis/pods.py", "from ..kube.watch import Watch as _Watch", "Pure code"),
    ("split.py", "from . import api as _api", "Pure code"),  # indirectly: api imports kube
    ("views/status.py", "from ..kube import client as _client", "Pure code"),
    ("widgets/panel.py", "from ..kube import inventory as _inventory", "Faces"),
    ("magics/args/_deploy.py", "from ...kube.client import Kube as _Kube", "Faces"),
    # what rollout_knative/revisions.py once did for its tables (they live in views/ now)
    ("rollout_knative/revisions.py", "from ..magics.display import Overview as _O", "The core"),
    ("kube/owner.py", "from ..widgets import loop as _loop", "The core"),
    ("config.py", "from .widgets import panel as _panel", "The core"),
])
def test_a_forbidden_import_breaks_its_contract(copy, module, line, contract):
    _add_line(copy / "jupyter_mldeploy" / module, line)
    result = lint(copy)
    assert result.returncode != 0, result.stdout
    assert "Contracts: 2 kept, 1 broken." in result.stdout, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert broken.lstrip("-\n ").startswith(contract), broken


@pytest.mark.parametrize("module, dotted", [
    ("widgets/canary.py", "widgets.canary"),  # the faces' exceptions are gone: these two are held too
    ("magics/deploy.py", "magics.deploy"),
    ("widgets/status_view.py", "widgets.status_view"),
])
def test_no_face_has_an_exception(copy, module, dotted):
    _add_line(copy / "jupyter_mldeploy" / module, "from ..kube import client as _c")
    result = lint(copy)
    assert result.returncode != 0 and f"{dotted} -> jupyter_mldeploy.kube.client" in result.stdout
