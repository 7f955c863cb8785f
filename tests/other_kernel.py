"""Another kernel, as a real second process with its own connection and caches: the two-kernel tests of
the trust promises (plain Deployments and Knative) run their deploy in it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What every such kernel does first: its arguments, its own client and, when asked, writes held back
# while it holds the model's lease, until the test creates the `hold` file (60 s at most). The deploy
# itself follows, and prints one JSON line.
_PRELUDE = textwrap.dedent("""
    import json, os, sys, time
    from jupyter_mldeploy.errors import MLDeployError
    from jupyter_mldeploy.kube import apply as kapply
    from jupyter_mldeploy.kube.client import Kube
    kubeconfig, context, ns, image, hold = sys.argv[1:6]
    kube = Kube(kubeconfig, context)
    if hold:
        slow = kapply.apply_all
        def held(*a, **kw):
            print("WRITING", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(hold) and time.monotonic() < deadline:
                time.sleep(0.05)
            return slow(*a, **kw)
        kapply.apply_all = held
""")


def start(cluster, body: str, ns: str, image: str, hold: str = "") -> subprocess.Popen:
    """Run `body` (dedented; it sees `kube`, `ns`, `image`, `json`, `MLDeployError`) after the prelude,
    in a fresh interpreter with this checkout first on its path; its stdout is a pipe."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    script = _PRELUDE + textwrap.dedent(body)
    return subprocess.Popen([sys.executable, "-c", script, str(cluster.kubeconfig), cluster.context or "", ns,
                             image, hold], stdout=subprocess.PIPE, text=True, env=env)
