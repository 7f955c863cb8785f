"""The two ways a replay reaches a model: explicit base URLs (urllib3), or the API server's service proxy
through the Kube client; each side answers a readiness check with one sentence, and `preflight` turns
the two checks into one refusal before any row is sent."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..errors import ClusterError, MLDeployError
from .wire import Protocol, RowError

if TYPE_CHECKING:
    from ..kube.client import Kube

# The Services' port, as rendered by render.workload (SERVICE_PORT); the shadow Service is <name>-shadow.
SERVICE_PORT = 80
PROXY_CATCH_UP = 3.0  # seconds a just-created Service may stay invisible to the service proxy


class Side:
    role: str  # "primary" or "shadow"
    label: str  # the Service name or the base URL, for messages
    where: str  # for the report

    def infer(self, body: dict, request_id: str) -> dict:
        raise NotImplementedError

    def check(self) -> str | None:
        """None when the model is ready; else one sentence saying what is wrong."""
        raise NotImplementedError


class UrlSide(Side):
    def __init__(self, role: str, base_url: str, proto: Protocol, pool: Any, timeout: float) -> None:
        self.role, self.proto, self.pool, self.timeout = role, proto, pool, timeout
        self.base = base_url.rstrip("/")
        self.label = self.where = self.base
        self.infer_url = self.base + proto.infer_path

    def _request(self, method: str, url: str, body: bytes | None, headers: dict) -> tuple[int, Any]:
        import urllib3

        try:
            resp = self.pool.request(method, url, body=body, headers=headers, retries=False,
                                     timeout=urllib3.Timeout(total=self.timeout))
        except urllib3.exceptions.TimeoutError:
            raise RowError(f"no answer within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as e:
            reason = getattr(e, "reason", None) or e
            raise RowError(f"could not connect: {_short(reason)}") from None
        try:
            payload = json.loads(resp.data) if resp.data else {}
        except ValueError:
            payload = {"error": resp.data[:200].decode(errors="replace")}
        return resp.status, payload

    def infer(self, body: dict, request_id: str) -> dict:
        data = json.dumps(body, separators=(",", ":")).encode()
        status, payload = self._request("POST", self.infer_url, data, {
            "Content-Type": "application/json", "x-request-id": request_id})
        if status != 200:
            detail = payload.get("error") if isinstance(payload, Mapping) else None
            raise RowError(f"HTTP {status}" + (f": {detail}" if detail else ""))
        return payload

    def check(self) -> str | None:
        url = self.base + self.proto.ready_path
        try:
            status, payload = self._request("GET", url, None, {})
        except RowError as e:
            return f"Nothing answered at {self.base} for the {self.role} model ({e})."
        if status == 404:
            return self.proto.not_found(self.role, f"at {self.base}")
        if status != 200 or (isinstance(payload, Mapping) and payload.get("ready") is False):
            return f"The {self.role} model at {self.base} is not ready (GET {url} answered {status})."
        return None


def _no_endpoints(e: ClusterError) -> bool:
    text = str(e)
    return (e.status == 503 and "no endpoints available" in text) or (
        e.status == 404 and 'endpoints "' in text and "not found" in text)


def _service_not_found(e: ClusterError) -> bool:
    text = str(e)
    return e.status == 404 and 'services "' in text and "not found" in text


class ProxySide(Side):
    def __init__(self, role: str, kube: Kube, namespace: str, service: str, proto: Protocol,
                 timeout: float) -> None:
        self.role, self.kube, self.namespace, self.service, self.proto = role, kube, namespace, service, proto
        self.timeout = timeout
        self.label = service
        self.base = f"/api/v1/namespaces/{namespace}/services/{service}:{SERVICE_PORT}/proxy"
        self.where = f"Service {namespace}/{service} (through the API server's service proxy)"

    def infer(self, body: dict, request_id: str) -> dict:
        # The request id travels both as the x-request-id header and as the OIP `id`.
        try:
            _, payload = self.kube.request("POST", self.base + self.proto.infer_path, body=body,
                                           timeout=self.timeout, what=f"{self.role} model {self.service}",
                                           headers={"x-request-id": request_id})
        except ClusterError as e:
            if _no_endpoints(e):
                raise RowError(f"no ready pod behind Service {self.service}") from None
            if e.status is None:
                text = str(e)
                raise RowError(f"no answer within {self.timeout:g} s" if "timed out" in text else text
                                ) from None
            detail = str(e).split(": ", 2)[-1] if "error trying to reach" in str(e) else ""
            raise RowError(f"HTTP {e.status} through the service proxy" + (f": {detail}" if detail else "")
                            ) from None
        return payload

    def check(self) -> str | None:
        path = self.base + self.proto.ready_path
        deadline = time.monotonic() + PROXY_CATCH_UP
        while True:
            try:
                self.kube.request("GET", path, timeout=self.timeout, what=f"{self.role} model {self.service}")
                return None
            except ClusterError as e:
                if not (_service_not_found(e) and self._service_exists() and time.monotonic() < deadline):
                    return self._problem(e)
            # The proxy resolves Services through the API server's cache, which can trail a Service
            # created a moment ago; the Service itself exists, so ask again, briefly.
            time.sleep(0.1)

    def _service_exists(self) -> bool:
        try:
            self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}/services/{self.service}",
                              timeout=self.timeout, what=f"Service {self.service}")
        except ClusterError as e:
            if e.status == 404:
                return False
            raise
        return True

    def _problem(self, e: ClusterError) -> str:
        text = str(e)
        if _no_endpoints(e):
            return "no-endpoints"
        if _service_not_found(e):
            return (f"There is no Service {self.service} in namespace {self.namespace}, so there is no "
                    f"{self.role} model to ask.")
        if e.status == 404:
            return self.proto.not_found(self.role, f"behind Service {self.service}")
        if e.status in (502, 503) and "error trying to reach" in text:
            return (f"The API server could not reach the {self.role} model behind Service "
                    f"{self.service}: {text.split(': ', 2)[-1]}")
        raise e


def _short(e: Any) -> str:
    text = str(e)
    for key in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if key in text:
            return key
    return text[:160]


def preflight(sides: Sequence[Side], name: str) -> None:
    with ThreadPoolExecutor(max_workers=len(sides)) as pool:
        problems = list(pool.map(lambda s: s.check(), sides))
    no_pod = [s for s, p in zip(sides, problems, strict=True) if p == "no-endpoints"]
    if len(no_pod) == 2:
        raise MLDeployError(
            f"Neither the primary model {sides[0].label} nor the shadow model {sides[1].label} "
            f"has a ready pod behind its Service, so nothing answered; check their pods with "
            f"%rollout {name}.")
    messages = []
    for side, problem in zip(sides, problems, strict=True):
        if problem == "no-endpoints":
            messages.append(f"The {side.role} model {side.label} has no ready pod behind its Service, "
                            f"so nothing answered; check its pods with %rollout {name}.")
        elif problem:
            messages.append(problem)
    if messages:
        raise MLDeployError(" ".join(messages))
