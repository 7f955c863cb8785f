"""Container logs for the sandbox's simulated pods, served by kwok and read through the API server.

kwok v0.8.0 chooses a pod's log file by the pod's namespace and name only (its Logs and ClusterLogs
resources have no label selector), so the sandbox gives:

- every pod's previous-container log (`?previous=true`, what the crash-loop diagnosis reads) a
  Python traceback; in the sandbox only pods labelled `sandbox.mldeploy.io/fail: crash-loop` restart;
- every pod's current log the empty file, unless a kwok `Logs` object named after the pod, in its
  namespace, names another file (`logs_object`); kwok reads it on every request, so lines written
  later (`write_log`) show up at once.

kwok reads the files as the kubelet reads container logs: one CRI log line per line
("<RFC 3339 time> <stdout|stderr> F <text>"); the time is what `sinceSeconds` and `sinceTime` filter on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from .folder import private_dir, write_private

LOGS_API = "kwok.x-k8s.io/v1alpha1"

# What a model server that cannot find its model prints before exiting with code 1.
CRASH_LOG = (
    ("stdout", "sandbox: simulated crash (pod label sandbox.mldeploy.io/fail=crash-loop)"),
    ("stdout", "INFO serving: loading model from /models/model.joblib"),
    ("stderr", "Traceback (most recent call last):"),
    ("stderr", '  File "/app/serve.py", line 42, in <module>'),
    ("stderr", "    model = joblib.load(MODEL_PATH)"),
    ("stderr", '  File "/usr/local/lib/python3.12/site-packages/joblib/numpy_pickle.py", line 650, in load'),
    ("stderr", '    with open(filename, "rb") as f:'),
    ("stderr", "FileNotFoundError: [Errno 2] No such file or directory: '/models/model.joblib'"),
)


def cri_lines(lines: Iterable[str], when: datetime | None = None, stream: str = "stdout") -> str:
    """Lines in the CRI log format kwok (like the kubelet) reads, all stamped `when` (default: now)."""
    stamp = (when or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{stamp} {stream} F {line}\n" for line in lines)


def write_log(path: str | os.PathLike, lines: Iterable[str], when: datetime | None = None,
              stream: str = "stdout") -> Path:
    """Append lines to a pod log file (made with its folders when missing); returns its absolute path."""
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a") as f:
        f.write(cri_lines(lines, when, stream))
    return target


def logs_object(namespace: str, pod: str, path: str | os.PathLike, container: str | None = None) -> dict:
    """The kwok Logs object that makes `path` (absolute, on this machine) the pod's log."""
    entry: dict = {"logsFile": str(Path(path).absolute())}
    if container:
        entry["containers"] = [container]
    return {"apiVersion": LOGS_API, "kind": "Logs", "metadata": {"name": pod, "namespace": namespace},
            "spec": {"logs": [entry]}}


def write_defaults(folder: Path) -> str:
    """Write the default log files and return kwok's ClusterLogs document that serves them."""
    private_dir(folder)
    empty = write_private(folder / "empty.log", "")
    crash = write_private(folder / "crash-loop.log",
                          "".join(cri_lines([line], stream=stream) for stream, line in CRASH_LOG))
    # Paths as JSON strings: valid YAML whatever characters the state folder's path holds.
    return (f"apiVersion: {LOGS_API}\nkind: ClusterLogs\nmetadata:\n  name: sandbox-defaults\nspec:\n"
            f"  logs:\n  - logsFile: {json.dumps(str(empty.absolute()))}\n"
            f"    previousLogsFile: {json.dumps(str(crash.absolute()))}\n")
