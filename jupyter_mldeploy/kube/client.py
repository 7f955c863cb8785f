"""The one connection to the API server: configuration from the official client, raw JSON on the wire.

The `kubernetes` package is used for what it does best (kubeconfig, contexts, exec/OIDC token
refresh, TLS, proxies) and imported only when a connection is first made, so `%load_ext` stays
cheap. Requests and responses stay raw JSON: model deserialization costs more than the round trip.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

from ..errors import ClusterError, MLDeployError, SpecError

# One deploy writes up to a dozen objects at once, and watches hold connections open.
POOL_SIZE = 64
DEFAULT_TIMEOUT = 30.0
MAX_RETRY_WAIT = 10.0  # seconds spent honouring 429 Retry-After before giving up


_SEGMENT = re.compile(r"[A-Za-z0-9._:~-]+")
_NAMESPACE = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")


def check_path(path: str) -> str:
    """Refuse, before anything is sent, a path that could address something other than it names.

    Every request passes here, so no caller (a widget, a papermill parameter, a name with `#`, `?`,
    `/` or `..` in it) can reach another namespace, the cluster scope or a different resource: each
    segment is plain, none is `.` or `..`, and the one after `namespaces` is a namespace name.
    """
    parts = path.split("/")
    if parts[0] != "" or len(parts) < 2 or parts[1] not in ("api", "apis", "version", "readyz", "livez"):
        raise SpecError(f"refusing to send a request to {path!r}: not a Kubernetes API path.")
    for i, seg in enumerate(parts[1:], 1):
        if not _SEGMENT.fullmatch(seg) or seg in (".", ".."):
            raise SpecError(f"refusing to send a request to {path!r}: the part {seg!r} is not a plain name "
                            f"(a namespace or object name with '/', '#', '?', spaces or '..' in it?).")
        if parts[i - 1] == "namespaces" and (len(seg) > 63 or not _NAMESPACE.fullmatch(seg)):
            raise SpecError(f"namespace {seg!r} is not a valid name: use lower-case letters, digits and '-', "
                            f"starting and ending with a letter or digit, at most 63 characters.")
    return path


class Kube:
    """A connection to one cluster (kubeconfig + context, or in-cluster), safe to share across threads."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import client, config
        from kubernetes.client import rest
        from kubernetes.config.config_exception import ConfigException

        cfg = client.Configuration()
        # The client reads $KUBECONFIG once, when it is imported: read it now, so a kernel's later
        # `%env KUBECONFIG=...` is the file used (and the one connect() keys its cache by).
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg,
                                    persist_config=False)
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = next((c for c in contexts if c["name"] == context), active) if context else active
            self.context = chosen["name"]
            self.namespace = chosen["context"].get("namespace") or "default"
        except (ConfigException, FileNotFoundError, TypeError) as e:
            if kubeconfig or context:
                which = f"the kube context {context}" if context else "a kube context"
                raise MLDeployError(f"Could not load {which} from {kubeconfig or 'the default kubeconfig'}: "
                                    f"{e}") from None
            try:
                config.load_incluster_config(client_configuration=cfg)
            except ConfigException:
                raise MLDeployError(
                    "No Kubernetes cluster is configured: set KUBECONFIG, pass kubeconfig=/context=, "
                    "or start the local sandbox with `jupyter-mldeploy sandbox up`."
                ) from None
            self.context = "in-cluster"
            try:
                with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                    self.namespace = f.read().strip()
            except OSError:
                self.namespace = "default"
        cfg.connection_pool_maxsize = POOL_SIZE
        self.server = cfg.host
        self._cfg = cfg
        self._pool = rest.RESTClientObject(cfg).pool_manager
        self._user = None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "jupyter-mldeploy"}
        if content_type:
            headers["Content-Type"] = content_type
        # auth_settings() runs the token refresh hook (exec plugins, OIDC) when one is configured.
        for setting in self._cfg.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return self.server + path + (f"?{urlencode(q, doseq=True)}" if q else "")

    def _send(self, method: str, path: str, query: Mapping[str, Any] | None, data: bytes | None,
              headers: dict[str, str], timeout: float | None, what: str | None):
        import urllib3

        check_path(path)
        try:
            return self._pool.request(method, self.url(path, query), body=data, headers=headers,
                                      timeout=urllib3.Timeout(total=timeout) if timeout else None,
                                      preload_content=True, retries=False)
        except urllib3.exceptions.HTTPError as e:
            raise ClusterError(f"Could not reach the Kubernetes API server at {self.server}: "
                               f"{_short(e)}", obj=what) from None

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None,
                content_type: str = "application/json", timeout: float | None = DEFAULT_TIMEOUT,
                what: str | None = None, headers: Mapping[str, str] | None = None,
                reply_headers: dict[str, str] | None = None) -> tuple[int, dict]:
        """Send one request; return (status, JSON body). Non-2xx raises ClusterError.

        `reply_headers`, when given, is filled with the response's headers (the server's Date is the
        only clock jupyter-mldeploy trusts for "how long ago").
        """
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        sent = {**self._headers(content_type if data is not None else None), **(headers or {})}
        resp = self._send(method, path, query, data, sent, timeout, what)
        # 429: the server refused before doing anything (priority and fairness, or storage still
        # initializing after a restart), so any request may be sent again after Retry-After.
        waited = 0.0
        while resp.status == 429 and waited < MAX_RETRY_WAIT:
            pause = min(float(resp.headers.get("Retry-After") or 1), MAX_RETRY_WAIT - waited)
            time.sleep(pause)
            waited += pause
            resp = self._send(method, path, query, data, sent, timeout, what)
        payload = _json(resp.data)
        if reply_headers is not None:
            reply_headers.update(resp.headers)
        if resp.status >= 300:
            raise error_from_status(resp.status, payload, what=what, method=method)
        return resp.status, payload

    def get_or_none(self, path: str) -> dict | None:
        """GET one object; None when it does not exist (404), any other refusal raised."""
        try:
            return self.request("GET", path)[1]
        except ClusterError as e:
            if e.status == 404:
                return None
            raise

    def text(self, path: str, *, query: Mapping[str, Any] | None = None,
             timeout: float | None = DEFAULT_TIMEOUT, what: str | None = None) -> str:
        """GET a plain-text endpoint (pod logs), whole: nothing is cut."""
        headers = {**self._headers(), "Accept": "text/plain, */*"}
        resp = self._send("GET", path, query, None, headers, timeout, what)
        if resp.status >= 300:
            raise error_from_status(resp.status, _json(resp.data), what=what, method="GET")
        return resp.data.decode("utf-8", errors="replace")

    def stream(self, path: str, query: Mapping[str, Any], *, read_timeout: float | None = None,
               holder: list | None = None) -> Iterator[dict]:
        """A watch: yields each event as a dict until the server ends the stream.

        The open response is put in `holder` while it streams, so another thread can shut it down.
        """
        import urllib3

        check_path(path)
        resp = self._pool.request("GET", self.url(path, query), headers=self._headers(),
                                  preload_content=False, retries=False,
                                  timeout=urllib3.Timeout(connect=10, read=read_timeout))
        if holder is not None:
            holder.append(resp)
        try:
            if resp.status >= 300:
                raise error_from_status(resp.status, _json(resp.read()), method="WATCH")
            buf = b""
            for chunk in resp.stream(64 * 1024, decode_content=True):
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            if holder is not None and resp in holder:
                holder.remove(resp)
            resp.release_conn()

    @property
    def user(self) -> str:
        """Who the API server thinks we are (SelfSubjectReview), for messages; looked up once."""
        if self._user is None:
            try:
                _, review = self.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                         body={"apiVersion": "authentication.k8s.io/v1",
                                               "kind": "SelfSubjectReview"})
                self._user = review.get("status", {}).get("userInfo", {}).get("username", "?")
            except ClusterError:
                self._user = "?"
        return self._user


def _json(data: bytes) -> dict:
    """A JSON body, or a non-JSON one (a proxied model's error page) kept whole as the message."""
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {"message": data.decode(errors="replace").strip()}


def _short(e: Exception) -> str:
    text = str(e)
    m = re.search(r"(Connection refused|timed out|Name or service not known|certificate verify failed)", text)
    return m.group(1) if m else text[:200]


_FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\w+) resource "(?P<resource>[^"]+)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<ns>[^"]+)")?'
)


def error_from_status(status: int, payload: dict, *, what: str | None = None,
                      method: str = "") -> ClusterError:
    """One sentence from a Status object, keeping the server's own words."""
    message = payload.get("message") or f"HTTP {status}"
    reason = payload.get("reason")
    subject = what or ""
    if status == 403 and (m := _FORBIDDEN.search(message)):
        group = f" (API group {m['group']})" if m["group"] else ""
        where = f" in namespace {m['ns']}" if m["ns"] else " at cluster scope"
        text = (f"Kubernetes refused: user {m['user']} may not {m['verb']} {m['resource']}{group}{where}. "
                f"Ask your cluster admin for that permission, or use a namespace you can deploy to.")
    elif status == 409 and reason == "Conflict" and "conflict" in message.lower():
        text = (f"{subject or 'An object'} is also managed by someone else and the fields conflict; "
                f"nothing was forced. The API server says: {message}")
    elif status == 404 and "namespaces" in message and "not found" in message:
        text = f"The namespace does not exist: {message}"
    else:
        text = f"{subject + ': ' if subject else ''}the API server said {status} {reason or ''}: {message}"
    return ClusterError(text, obj=what, status=status, reason=reason)


_lock = threading.Lock()
_shared: dict[tuple[str | None, str | None], Kube] = {}



def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """The shared connection for a (kubeconfig, context) pair: one pool per cluster per process."""
    key = (kubeconfig or os.environ.get("KUBECONFIG"), context)
    with _lock:
        if key not in _shared:
            _shared[key] = Kube(kubeconfig, context)
        return _shared[key]


def forget_connections() -> None:
    """Drop the shared connections, so the next `connect()` reads the kubeconfig again (after the
    environment changed: a test, or a kernel that switched clusters)."""
    with _lock:
        _shared.clear()
