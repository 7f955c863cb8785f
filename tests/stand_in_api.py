"""A stand-in HTTP server on 127.0.0.1 behind a real `Kube` client, for the unit tests of code that only
reads pod logs (the integration tests talk to the sandbox's real API server instead)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from jupyter_mldeploy.kube.client import Kube


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler], folder: Path) -> Iterator[Kube]:
    """A client whose kubeconfig (written in `folder`) points at `handler` served on a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    kubeconfig = folder / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}]}))
    try:
        yield Kube(str(kubeconfig))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
