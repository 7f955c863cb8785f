"""The HTTP probes the sandbox waits on, all on loopback: a component's /healthz, a listener's
status code, etcd's /health (and etcd's client, which `compact_etcd` uses too), in one place
rather than one copy per module that starts something.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path


def http_status(url: str, timeout: float = 1.0, headers: dict | None = None) -> int | None:
    """The status code a plain-HTTP listener answers with (404 included), or None when none answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, ValueError):
        return None


def https_ok(url: str) -> bool:
    """Whether a component's /healthz answers 200."""
    # The components serve /healthz with a self-signed certificate made at start; the port is ours
    # on loopback, so the certificate is not checked here.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def etcd_tls(pki_dir: Path) -> ssl.SSLContext:
    """A TLS context that trusts etcd's CA and presents the one client certificate etcd accepts
    (the API server's): for the sandbox's own maintenance, such as `Sandbox.compact_etcd`."""
    ctx = ssl.create_default_context(cafile=str(pki_dir / "etcd-ca.crt"))
    ctx.load_cert_chain(str(pki_dir / "apiserver-etcd-client.crt"),
                        str(pki_dir / "apiserver-etcd-client.key"))
    return ctx


def etcd_request(pki_dir: Path, port: int, path: str, body: dict | None = None,
                 timeout: float = 10) -> bytes:
    """GET `path` of etcd's gRPC gateway, or POST `body` to it, with the client certificate."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", data=data,
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, context=etcd_tls(pki_dir), timeout=timeout) as resp:
        return resp.read()


def etcd_healthy(pki_dir: Path, port: int) -> bool:
    try:
        return json.loads(etcd_request(pki_dir, port, "/health", timeout=1)).get("health") == "true"
    except (urllib.error.URLError, OSError, ssl.SSLError, ValueError):
        return False
