"""Give network namespaces the sandbox's API server at their own 127.0.0.1:PORT.

`python -m jupyter_mldeploy.sandbox.nsrelay PORT NETNS...`: for each named namespace (under
/var/run/netns), a listening socket is made inside it on 127.0.0.1:PORT; each connection accepted
there is joined to 127.0.0.1:PORT of the namespace this process started in. A socket keeps the
namespace it was made in, so one process serves every namespace, and only loopback listens. TLS goes
through untouched: the components check the API server's own certificate for 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in(netns: str, port: int, home: int) -> socket.socket:
    """A listening socket on 127.0.0.1:port inside `netns`; the calling thread returns to `home`."""
    fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(fd)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(64)
        finally:
            _setns(home)
    finally:
        os.close(fd)
    return s


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def _serve(listener: socket.socket, port: int) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def main(argv: list[str]) -> int:
    port, names = int(argv[0]), argv[1:]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    listeners = [listen_in(n, port, home) for n in names]
    threads = [threading.Thread(target=_serve, args=(s, port), daemon=True) for s in listeners]
    for t in threads:
        t.start()
    print(f"relaying 127.0.0.1:{port} into {', '.join(names)}", flush=True)
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
