"""The sandbox's processes, started and stopped one way: the control plane, the data plane and Knative
record each component as {"pid", "start", "cmd"} and use these helpers, so a recycled PID is never
signalled, and one wait loop and one log reader explain a component that exited.

A PID is acted on only while its start time (in /proc/<pid>/stat) is the recorded one; `send_signal`
also pins the PID with a pidfd first, so nor is one recycled between that check and the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import SandboxError
from .folder import open_private_append


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished; it only waits to be reaped
        return None
    return fields[19]


def alive(proc: dict) -> bool:
    """Whether the recorded process still runs (and is still that process, not a recycled PID)."""
    return start_time(proc["pid"]) == proc["start"]


def exited(processes: dict[str, dict]) -> str | None:
    """The name of the first recorded process that is no longer running, or None."""
    return next((name for name, proc in processes.items() if not alive(proc)), None)


def running() -> Iterator[tuple[int, str, str]]:
    """(pid, executable, command line with a NUL after each argument) of every process this user
    may read: how the data plane finds what outlived its records. One that exits meanwhile is skipped."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.readlink(proc / "exe")
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        yield int(proc.name), exe, cmdline


def send_signal(proc: dict, sig: int) -> bool:
    """Send `sig` to a process we started, and only while it is still that process: the PID is pinned
    with a pidfd first, then checked against the recorded start time, so neither a recycled PID nor
    one recycled between the check and the signal is ever signalled. False when it is gone."""
    try:
        fd = os.pidfd_open(proc["pid"])
    except ProcessLookupError:
        return False
    except OSError:  # no pidfd (a kernel before 5.3, or a seccomp filter): check, then signal
        if not alive(proc):
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc["pid"], sig)
        return True
    try:
        if not alive(proc):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def stop(procs: list[tuple[str, dict]]) -> None:
    """SIGTERM, up to 10 s to exit, then SIGKILL: each only while the PID is still the recorded one."""
    for _name, proc in procs:
        send_signal(proc, signal.SIGTERM)
    _wait_gone(procs, 10)
    for _name, proc in procs:
        send_signal(proc, signal.SIGKILL)
    # SIGKILL is delivered, not done: a large process takes a moment to exit on a busy machine,
    # and `down` promises that nothing it started is left running.
    _wait_gone(procs, 10)


def _wait_gone(procs: list[tuple[str, dict]], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        for _name, proc in procs:
            _reap(proc["pid"])
        if not any(alive(p) for _, p in procs) or time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (it is when started in-process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def launch(cmd: list[str], log: Path, cwd: Path, *, env: dict[str, str] | None = None,
           umask: int = -1) -> subprocess.Popen:
    """Start a component in a session of its own (it outlives this command and a Ctrl-C in the
    terminal), its output appended to its private log; `env` is added to this process's own."""
    with open_private_append(log) as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=cwd,
                                env=None if env is None else {**os.environ, **env}, umask=umask)


def wait_for(what: str, check: Callable[[], bool], timeout: float, processes: dict[str, dict],
             tail: Callable[..., str], component: str | None = None, *, interval: float = 0.1,
             timeout_lines: int = 12) -> None:
    """Poll `check` until it holds; refuse at once (with its log's tail) when a recorded process
    exits meanwhile, and after `timeout` with `component`'s last `timeout_lines`, when one is named.
    `tail(name, lines)` reads a component's log (the sandbox's `_log_tail`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        name = exited(processes)
        if name:
            raise SandboxError(f"{name} exited while waiting for {what}.\n{tail(name)}")
        time.sleep(interval)
    raise SandboxError(
        f"Timed out after {timeout:.0f} s waiting for {what}."
        + (f"\n{tail(component, timeout_lines)}" if component else "")
    )


def log_tail(path: Path, lines: int = 12, *, header: bool = True) -> str:
    """The end of a component's log for an error message. With `header` it says how much of which
    file it shows ("(no log at …)" when there is none); without, the bare lines ("" when none)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {path})" if header else ""
    if not header:
        return "\n".join(text[-lines:])
    return f"Last {min(lines, len(text))} of {len(text)} lines of {path}:\n" + "\n".join(text[-lines:])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on (or holds) `port` at `host`, so a component can bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True
