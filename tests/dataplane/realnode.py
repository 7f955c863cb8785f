"""Helpers for the tests on the sandbox's real node: specs that land there, requests, counting.

Every request goes to 127.0.0.1 (the Gateway) or to a pod address on the sandbox's own bridge, is
bounded in count, and has a timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterable

from jupyter_mldeploy.sandbox import gateway, images, node
from jupyter_mldeploy.spec import DeploySpec

INFER = "/v2/models/model/infer"


def real_spec(name: str, namespace: str, *, model_version: str = "1", gateway_host: bool = False,
              **kw) -> DeploySpec:
    """A model server on the real node; `model_version` shows in every answer."""
    fields = {**node.placement(), "image": images.serving_ref(), "namespace": namespace,
              "env": {"MODEL_VERSION": model_version, **kw.pop("env", {})}}
    if gateway_host:
        fields |= {"expose": "gateway", "gateway": gateway.gateway_ref(), "host": host_for(name, namespace)}
    return DeploySpec(name=name, **{**fields, **kw})


def host_for(name: str, namespace: str) -> str:
    return f"{name}.{namespace}.sandbox.test"


def body(request_id: str | None = None) -> str:
    doc = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
    if request_id:
        doc["id"] = request_id
    return json.dumps(doc)


class Client:
    """One keep-alive connection to 127.0.0.1 or to a pod on our bridge."""

    def __init__(self, host: str, port: int, allowed: ipaddress.IPv4Network | None = None) -> None:
        addr = ipaddress.ip_address(host)
        assert addr.is_loopback or (allowed is not None and addr in allowed), f"{host} is not ours"
        self.host, self.port = host, port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, data: str | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
                self.conn.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def versions_through(client: Client, host: str, n: int) -> Counter[str]:
    """Send n inference requests for `host`; count the answering model versions (and failures)."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        status, raw = client.request("POST", INFER, body(), {"Host": host})
        seen[json.loads(raw)["model_version"] if status == 200 else f"HTTP {status}"] += 1
    return seen


def within_3_sigma(count: int, n: int, p: float) -> bool:
    """The Gateway API conformance suite's check for weights: |count - np| <= 3 sqrt(np(1-p))."""
    return abs(count - n * p) <= 3 * math.sqrt(n * p * (1 - p))


def band(n: int, p: float) -> str:
    return f"{n * p:.0f} ± {3 * math.sqrt(n * p * (1 - p)):.0f}"


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def settle_split(client: Client, host: str, expect: set[str], timeout: float = 30) -> None:
    """Wait until Envoy has the route at all: every answering version is one we expect."""
    def ok() -> bool:
        seen = versions_through(client, host, 20)
        return set(seen) <= expect and not any(k.startswith("HTTP") for k in seen)
    wait_until(ok, timeout, f"the Gateway to route {host} to {sorted(expect)}", interval=0.5)


def request_ids(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


def prediction_ids(log_text: str) -> set[str]:
    """The request ids of a model server's prediction log (probes are not predictions)."""
    ids = set()
    for line in log_text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "request_id" in rec:
                ids.add(rec["request_id"])
    return ids


def pods(core, namespace: str, selector: str) -> list:
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def all_logs(core, namespace: str, selector: str) -> str:
    return "\n".join(core.read_namespaced_pod_log(p.metadata.name, namespace)
                     for p in pods(core, namespace, selector))


def ids_in(texts: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for t in texts:
        out |= prediction_ids(t)
    return out
