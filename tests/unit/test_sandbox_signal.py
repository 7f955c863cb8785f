"""The sandbox signals a PID only while it is still the process it started (one function,
`processes.send_signal`, used by `down` and `restart` alike, and by the data plane and Knative)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess

import pytest

from jupyter_mldeploy.sandbox import processes


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture(params=["pidfd", "no-pidfd"])
def pidfd(request, monkeypatch):
    if request.param == "no-pidfd":  # a kernel or seccomp filter without pidfd_open
        def refuse(_pid):
            raise OSError(errno.ENOSYS, "Function not implemented")
        monkeypatch.setattr(processes.os, "pidfd_open", refuse)
    return request.param


def test_a_pid_with_another_start_time_is_never_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": str(int(processes.start_time(sleeper.pid)) - 1)}
    assert processes.send_signal(recorded, signal.SIGKILL) is False
    assert sleeper.poll() is None  # still running


def test_the_process_it_started_is_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": processes.start_time(sleeper.pid)}
    assert processes.send_signal(recorded, signal.SIGTERM) is True
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert processes.send_signal(recorded, signal.SIGTERM) is False  # gone (reaped): nothing to signal


def test_a_zombie_is_not_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": processes.start_time(sleeper.pid)}
    os.kill(sleeper.pid, signal.SIGKILL)
    os.waitid(os.P_PID, sleeper.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert processes.start_time(sleeper.pid) is None
    assert processes.send_signal(recorded, signal.SIGTERM) is False
