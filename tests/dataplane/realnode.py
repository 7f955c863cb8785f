"""Helpers for the tests on the sandbox's real node: specs that land there, requests, counting.

Every request goes to 127.0.0.1 (the Gateway) or to a pod address on the sandbox's own bridge, is
bounded in count, and has a timeout.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import math
import os
import subprocess
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from k8s_helpers import wait_until

from jupyter_mldeploy.sandbox import dataplane, gateway, images, node
from jupyter_mldeploy.sandbox import dataplane_build as parts
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


def settle_split(client: Client, host: str, expect: set[str], timeout: float = 30) -> None:
    """Wait until Envoy has the route at all: every answering version is one we expect."""
    def ok() -> bool:
        seen = versions_through(client, host, 20)
        return set(seen) <= expect and not any(k.startswith("HTTP") for k in seen)
    wait_until(ok, timeout, f"the Gateway to route {host} to {sorted(expect)}", interval=0.5)


def settle_share(client: Client, host: str, weight: int, timeout: float = 60) -> None:
    """Wait until Traefik splits `host` at `weight`: its weighted round robin is smooth, so 20 requests
    show the canary's ("2") share within one request once the new split is in place."""
    def near() -> bool:
        seen = versions_through(client, host, 20)
        return set(seen) <= {"1", "2"} and abs(seen["2"] - 20 * weight / 100) <= 1
    wait_until(near, timeout, f"Traefik to split {host} at {weight}%", interval=0.5)


def measure_canary(client: Client, host: str, move: Callable[[int], object],
                   weights: Sequence[int] = (30, 70), n: int = 400) -> dict[str, dict]:
    """A canary ("2") that started at weights[0] beside the stable ("1"): for each weight, `move(weight)`
    (after the first), wait until the split is in place, send n requests and judge the canary's count
    within a 3-sigma binomial band. Returns the counts per weight."""
    results: dict[str, dict] = {}
    for weight in weights:
        if results:
            move(weight)
        settle_share(client, host, weight)
        seen = versions_through(client, host, n)
        results[f"{weight}%"] = dict(seen)
        assert set(seen) == {"1", "2"}, seen  # every request answered, by one of the two tracks
        assert within_3_sigma(seen["2"], n, weight / 100), \
            f"the canary answered {seen['2']} of {n} at {weight}%: outside {band(n, weight / 100)}"
    return results


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


# -- Envoy's own view: its admin server says which weights and mirrors it really applies ----------


def _parent(pid: int) -> int:
    text = Path(f"/proc/{pid}/stat").read_text()
    return int(text[text.rindex(")") + 2:].split()[1])


def envoy_admin_url(box) -> str:
    """Envoy's admin server (a random loopback port in Host mode), found among the sockets of the Envoy
    that our Envoy Gateway runs."""
    eg = dataplane.status(box)["processes"]["envoy-gateway"]["pid"]
    envoy = str(parts.ENVOY.path("envoy"))
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if '"envoy"' not in line or not line.split()[3].startswith("127.0.0.1:"):
            continue
        pid = int(line.split("pid=")[1].split(",")[0])
        try:
            if os.readlink(f"/proc/{pid}/exe") != envoy or _parent(pid) != eg:
                continue
            url = f"http://127.0.0.1:{line.split()[3].rsplit(':', 1)[1]}"
            with urllib.request.urlopen(f"{url}/ready", timeout=3) as resp:
                if resp.read().strip() == b"LIVE":
                    return url
        except OSError:
            continue
    raise AssertionError("Envoy's admin server was not found")


def _dump(admin: str, query: str) -> list[dict]:
    with urllib.request.urlopen(f"{admin}/config_dump?{query}", timeout=5) as resp:
        return json.load(resp).get("configs", [])


def _percent(fraction: dict | None) -> float:
    """An Envoy FractionalPercent as a percent (no fraction: everything)."""
    if not fraction:
        return 100.0
    scales = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}
    scale = scales[fraction.get("denominator", "HUNDRED")]
    return 100.0 * int(fraction.get("numerator", 0)) / scale


def _backend_index(name: str) -> int | None:
    # Envoy Gateway names a backendRef's cluster (or locality) <route>/rule/<r>/backend/<i>.
    head, sep, tail = name.rpartition("/backend/")
    return int(tail) if sep and tail.isdigit() else None


def envoy_route(admin: str, namespace: str, name: str) -> dict:
    """What Envoy applies for the HTTPRoute `name`: {"weights": {backend index: weight}, "ready":
    {backend index: endpoints}, "mirrors": [percents], "split": "weighted_clusters" or "localities"}.

    Envoy Gateway makes a rule's backendRefs localities of one cluster, weighted in EDS; with per-
    backendRef clusters (filters on backendRefs, zone-aware policies) the weights are the route's
    weighted_clusters instead. Both are read, so a test says which one it saw; `cluster_split` is the
    gateway router's split annotation in the cluster's metadata (see sandbox/gateway.py)."""
    prefix = f"httproute/{namespace}/{name}/"
    mirrors, found, weights, split = [], False, {}, "localities"
    for cfg in _dump(admin, "resource=dynamic_route_configs"):
        for vh in cfg.get("route_config", {}).get("virtual_hosts", []):
            for route in vh.get("routes", []):
                if route.get("name", "").startswith(prefix):
                    found = True
                    action = route.get("route", {})
                    mirrors = [_percent(m.get("runtime_fraction", {}).get("default_value"))
                               for m in action.get("request_mirror_policies", [])]
                    for c in action.get("weighted_clusters", {}).get("clusters", []):
                        split = "weighted_clusters"
                        i = _backend_index(c.get("name", ""))
                        if i is not None:
                            weights[i] = int(c.get("weight", 0))
    ready: dict[int, int] = {}
    for cfg in _dump(admin, "include_eds&resource=dynamic_endpoint_configs"):
        cla = cfg.get("endpoint_config", {})
        cluster = cla.get("cluster_name", "")
        if not cluster.startswith(prefix + "rule/0"):
            continue
        for loc in cla.get("endpoints", []):
            i = _backend_index(cluster)
            if i is None:  # one cluster for the rule: a locality per backendRef
                i = _backend_index(loc.get("locality", {}).get("region", ""))
                if i is None:
                    continue
                if split == "localities":
                    weights[i] = int(loc.get("load_balancing_weight", 1))
            ready[i] = ready.get(i, 0) + len(loc.get("lb_endpoints", []))
    return ({"weights": weights, "ready": ready, "mirrors": mirrors, "split": split,
             "cluster_split": _cluster_split(admin, prefix + "rule/0")} if found else {})


def _cluster_split(admin: str, cluster: str) -> str | None:
    """The gateway router's split annotation as Envoy holds it in the cluster's own metadata."""
    def find(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "mldeploy-split" and isinstance(v, str):
                    return v
                if (hit := find(v)) is not None:
                    return hit
        elif isinstance(node, list):
            for v in node:
                if (hit := find(v)) is not None:
                    return hit
        return None
    for cfg in _dump(admin, "resource=dynamic_active_clusters"):
        if cfg.get("cluster", {}).get("name") == cluster:
            return find(cfg["cluster"].get("metadata", {}))
    return None


def wait_for_envoy(admin: str, namespace: str, name: str, check, what: str, timeout: float = 60) -> dict:
    def applied():
        route = envoy_route(admin, namespace, name)
        return route if route and check(route) else None
    return wait_until(applied, timeout, f"Envoy to apply {what}")
