"""A test host in a network namespace: a non-loopback address the API server will proxy to.

The sandbox's simulated pods have loopback IPs; Kubernetes refuses those as endpoints, and the API
server's service proxy refuses to dial them. A namespace joined to the host by a veth pair gives a
real address on this machine only:

    host side  10.251.<x>.1/30  (veth mlt<id>h)
    namespace  10.251.<x>.2/30  (veth mlt<id>n, plus lo)

    with NetnsHost() as host:
        proc = host.popen([sys.executable, "-m", ...])   # runs inside the namespace
        ... http://{host.address}:PORT ...

Leaving the block (also on error) kills every process started with `popen`, deletes the namespace and
the veth pair. Needs root and iproute2: `NetnsHost.unavailable()` says why not, for a skip.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

PREFIX = "mldeploy-t"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=15)


class NetnsHost:
    """One network namespace with one address, reachable from this host only."""

    def __init__(self) -> None:
        token = secrets.token_hex(3)
        self.name = f"{PREFIX}{token}"
        self.host_if = f"mlt{token}h"  # interface names: at most 15 characters
        self.ns_if = f"mlt{token}n"
        self.subnet = self._free_subnet()
        self.host_address = f"10.251.{self.subnet}.1"
        self.address = f"10.251.{self.subnet}.2"
        self._procs: list[subprocess.Popen] = []

    @staticmethod
    def unavailable() -> str | None:
        """Why a namespace cannot be made here (for pytest.skip), or None."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        if shutil.which("ip") is None:
            return "iproute2 (`ip`) is not installed"
        try:
            _ip("netns", "list")
        except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as e:
            return f"`ip netns` does not work here: {getattr(e, 'stderr', '') or e}"
        return None

    @staticmethod
    def _free_subnet() -> int:
        used = _ip("-4", "-o", "addr", "show").stdout
        for _ in range(50):
            x = secrets.randbelow(250) + 1
            if f"10.251.{x}." not in used:
                return x
        raise RuntimeError("no free 10.251.x.0/30 subnet for a test namespace")

    def __enter__(self) -> NetnsHost:
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            self.exec(["ip", "addr", "add", f"{self.address}/30", "dev", self.ns_if])
            self.exec(["ip", "link", "set", self.ns_if, "up"])
            self.exec(["ip", "link", "set", "lo", "up"])
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exec(self, args: Sequence[str]) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.name, *args], check=True, capture_output=True,
                              text=True, timeout=15)

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start a process inside the namespace (`ip netns exec` execs it: the pid is the process's)."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *args], **kwargs)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self._procs.clear()
        # Anything else still in the namespace was started inside it by our processes: stop it by pid.
        pids = _ip("netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), 9)
        _ip("netns", "delete", self.name, check=False)  # takes the namespace's end of the veth with it
        _ip("link", "delete", self.host_if, check=False)  # already gone with its peer, normally

    def exists(self) -> bool:
        return self.name in _ip("netns", "list", check=False).stdout
