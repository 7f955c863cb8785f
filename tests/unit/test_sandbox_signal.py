"""The sandbox signals a PID only while it is still the process it started (one function, `_signal`,
used by `down` and `restart` alike)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess

import pytest

from jupyter_mldeploy.sandbox import control_plane as cp


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
        monkeypatch.setattr(cp.os, "pidfd_open", refuse)
    return request.param


def test_a_pid_with_another_start_time_is_never_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": str(int(cp._start_time(sleeper.pid)) - 1)}
    assert cp._signal(recorded, signal.SIGKILL) is False
    assert sleeper.poll() is None  # still running


def test_the_process_it_started_is_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": cp._start_time(sleeper.pid)}
    assert cp._signal(recorded, signal.SIGTERM) is True
    assert sleeper.wait(timeout=10) == -signal.SIGTERM
    assert cp._signal(recorded, signal.SIGTERM) is False  # gone (reaped): nothing to signal


def test_a_zombie_is_not_signalled(sleeper, pidfd):
    recorded = {"pid": sleeper.pid, "start": cp._start_time(sleeper.pid)}
    os.kill(sleeper.pid, signal.SIGKILL)
    os.waitid(os.P_PID, sleeper.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert cp._start_time(sleeper.pid) is None and cp._signal(recorded, signal.SIGTERM) is False
