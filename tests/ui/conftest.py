"""A real JupyterLab 4 server (loopback only, random token and port) and headless Chromium via Playwright.

The server runs with the sandbox's KUBECONFIG, in its own session so it and its kernels are stopped
by the id we started, whatever the test did. Tests skip with the reason when Chromium or Playwright
is missing. `notebook` writes, opens and runs a notebook there; `screenshot` saves a picture to
test-artifacts/ and fails when it is blank.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

CHROMIUM = os.environ.get("MLDEPLOY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_configure(config):
    config.addinivalue_line("markers", "ui: drives a real JupyterLab in headless Chromium")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def open_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


@pytest.fixture
def lab(cluster, tmp_path):
    """`jupyter lab` on 127.0.0.1 with the sandbox's KUBECONFIG; stopped (with its kernels) afterwards."""
    # `python -m jupyter lab` with this interpreter: `make test` does not put the venv's bin/ on PATH.
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("JupyterLab is not installed (pip install jupyterlab)")
    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir()
    home.mkdir()
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig),
           # keep the user's Jupyter settings and workspaces out of it; extensions still load from sys.prefix
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
    # no "official Jupyter news?" toast over the notebook
    notification = home / "settings" / "@jupyterlab" / "apputils-extension"
    notification = notification / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = tmp_path / "jupyter-lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}",
           "--ServerApp.port_retries=0", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
           "jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:  # containers and CI runners
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
            try:
                with urllib.request.urlopen(f"{server.url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within 90 s:\n{server.log_tail()}")
            time.sleep(0.3)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM lets the server shut its kernels down; the session's group is killed if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created (start_new_session): kernels included
    proc.wait(10)


@pytest.fixture
def browser_page():
    """A headless Chromium page (Debian's chromium, driven by the Playwright Python package)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set MLDEPLOY_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install "
                                                                  "playwright; its driver is bundled)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


@dataclass
class Notebook:
    """A notebook in the test's JupyterLab, driven through the browser page."""

    page: Any  # playwright.sync_api.Page (imported only when Playwright is there)
    lab: Lab

    def run(self, cells: list[str], name: str = "ui.ipynb") -> None:
        """Write `cells` as a notebook, open it once its kernel is idle, and run every cell in order."""
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, self.lab.root / name)
        self.page.goto(self.lab.open_url(name))
        # the kernel is connected and idle (the toolbar's indicator is idle before a kernel exists, too)
        self.page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
        self.page.locator(".jp-Notebook .jp-Cell").first.click()
        for _ in range(len(cells)):
            self.page.keyboard.press("Shift+Enter")

    def wait_for(self, locator: Any, what: str, timeout: float = 90_000) -> None:
        """Wait for `locator`; on failure keep a picture, say what the cells printed and the server logged."""
        try:
            locator.wait_for(timeout=timeout)
        except Exception:
            ARTIFACTS.mkdir(exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"))
            outputs = self.page.locator(".jp-OutputArea-output").all_inner_texts()
            pytest.fail(f"{what} did not render; outputs: {outputs}\nserver log:\n{self.lab.log_tail()}")


@pytest.fixture
def notebook(browser_page, lab) -> Notebook:
    return Notebook(browser_page, lab)


@pytest.fixture
def screenshot() -> Callable[[Any, str], list[tuple[int, tuple[int, int, int]]]]:
    """`screenshot(locator, "name.png")`: save it to test-artifacts/, fail if it is blank, return its
    (count, rgb) colours for colour-cue checks."""
    image_lib = pytest.importorskip("PIL.Image", reason="Pillow checks the screenshot (pip install pillow)")

    def take(locator: Any, name: str) -> list[tuple[int, tuple[int, int, int]]]:
        time.sleep(0.5)  # let the last paint settle before the picture
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / name
        locator.screenshot(path=str(shot))
        with image_lib.open(shot) as img:
            rgb = img.convert("RGB")
            colours = rgb.getcolors(maxcolors=1 << 20) or []
            assert rgb.width > 300 and rgb.height > 80, f"{name} is only {rgb.width}x{rgb.height}"
            assert len(colours) > 20, f"{name} looks blank ({len(colours)} colours)"
        return colours

    return take
