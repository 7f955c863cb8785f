"""The HTTP side: the OIP v2 routes, the bounded server, make_server, RunningServer, serve and banner.
Standard library only."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any
from urllib.parse import urlsplit

from .httpd import BoundedHandler, BoundedServer, HTTPError, Limits
from .log import PredictionLog, _now_iso
from .model import ModelAdapter
from .tensors import SERVER_NAME, SERVER_VERSION, ServingError, _stderr, decode_inputs, encode_tensor

_MODEL_PATH = re.compile(r"^/v2/models/(?P<m>[^/]+)(?:/versions/(?P<v>[^/]+))?(?P<op>/ready|/infer)?/?$")


# A request id is echoed (in the x-request-id header, the answer and the prediction log) only when it
# looks like one: letters, digits and a few marks, at most 128 characters. Anything else (a CR/LF that
# would split the response header, a megabyte of text) is replaced by a generated id.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@~-]{0,127}")


def safe_id(value: Any) -> str | None:
    """`value` if it is a request id that may be echoed, else None."""
    return value if isinstance(value, str) and _SAFE_ID.fullmatch(value) else None


class _Handler(BoundedHandler):
    server_version = f"{SERVER_NAME}/{SERVER_VERSION}"
    server: _Server

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # -- plumbing

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        given = self.headers.get("x-request-id")
        request_id = safe_id(given)
        close = False
        try:
            body = self.read_body()
            status, payload = self._route(method, urlsplit(self.path).path, body, started, request_id)
        except HTTPError as e:
            status, payload, close = e.status, {"error": str(e)}, e.close
        except ServingError as e:
            status, payload = e.status, {"error": str(e)}
        except (ConnectionError, TimeoutError):
            raise
        except Exception as e:  # a bug here must still answer, not drop the connection
            status, payload = 500, {"error": f"Internal server error: {type(e).__name__}: {e}"}
        rid = payload.get("id") if isinstance(payload, dict) and "id" in payload else request_id
        self._answer(status, payload, headers={"x-request-id": rid} if rid else None, close=close)

    def _json(self, body: bytearray) -> Any:
        if not body:
            raise ServingError("The request needs a JSON body.")
        try:
            return json.loads(body)
        except ValueError as e:
            raise ServingError(f"The request body is not valid JSON: {e}.") from None
        except RecursionError:
            raise ServingError("The request body is nested too deeply to be a request.") from None

    # -- routes

    def _route(self, method: str, path: str, body: bytearray, started: float,
               request_id: str | None) -> tuple[int, Any]:
        model = self.server.model
        if path in ("/v2/health/live", "/v2/health/ready", "/healthz", "/v2"):
            _allow(method, "GET")
            if path == "/v2/health/live":
                return 200, {"live": True}
            if path == "/v2/health/ready":
                return 200, {"ready": True}
            if path == "/healthz":
                return 200, {"status": "ok", "model": model.name, "version": model.version}
            return 200, {"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []}
        if path == "/predict":
            _allow(method, "POST")
            return self._predict(body, started, request_id)
        m = _MODEL_PATH.match(path)
        if not m:
            raise ServingError(f"No route for {method} {path}.", 404)
        if m["m"] != model.name:
            raise ServingError(f"Model {m['m']!r} is not served here (this server serves "
                               f"{model.name!r}).", 404)
        if m["v"] is not None and m["v"] != model.version:
            raise ServingError(f"Model {model.name!r} has no version {m['v']!r} here "
                               f"(served: {model.version!r}).", 404)
        if m["op"] == "/ready":
            _allow(method, "GET")
            return 200, {"name": model.name, "ready": True}
        if m["op"] == "/infer":
            _allow(method, "POST")
            return self._infer(body, started, request_id)
        _allow(method, "GET")
        return 200, model.metadata()

    def _infer(self, body: bytearray, started: float, request_id: str | None) -> tuple[int, Any]:
        model = self.server.model
        request = self._json(body)
        body.clear()  # the parsed request replaces the bytes: hold one, not both
        if not isinstance(request, Mapping):
            raise ServingError("The request body must be a JSON object with `inputs`.")
        oip_id = request.get("id")
        rid = request_id or safe_id(oip_id if isinstance(oip_id, str) else None) or uuid.uuid4().hex
        rows = decode_inputs(request.get("inputs"), _owned=True)
        wanted = request.get("outputs")
        del request
        outputs = self._run(rows, rid, started)
        if wanted:
            names = [o.get("name") for o in wanted if isinstance(o, Mapping)]
            missing = [n for n in names if n not in outputs]
            if missing:
                raise ServingError(f"Unknown output(s) {missing}; this model has {list(outputs)}.")
            outputs = {n: outputs[n] for n in names}
        tensors = [encode_tensor(k, v) for k, v in outputs.items()]
        model.remember(tensors)
        return 200, {"model_name": model.name, "model_version": model.version, "id": rid,
                     "outputs": tensors}

    def _predict(self, body: bytearray, started: float, request_id: str | None) -> tuple[int, Any]:
        request = self._json(body)
        body.clear()
        if not isinstance(request, Mapping) or not isinstance(request.get("instances"), list):
            raise ServingError('The request body must be {"instances": [row, ...]}.')
        rid = request_id or uuid.uuid4().hex
        rows = request["instances"]  # parsed JSON: already plain
        del request
        if not rows:
            raise ServingError("`instances` is empty.")
        outputs = self._run(rows, rid, started)
        return 200, {"predictions": outputs["predictions"] if "predictions" in outputs
                     else next(iter(outputs.values()))}

    def _run(self, rows: list, rid: str, started: float) -> dict[str, list]:
        model = self.server.model
        record: dict[str, Any] = {"ts": _now_iso(), "request_id": rid, "model": model.name,
                                  "version": model.version, "inputs": rows}
        try:
            outputs = model.predict(rows)
        except ServingError as e:
            record.update(outputs=None, error=str(e))
            raise
        except Exception as e:
            message = f"The model failed on this request: {type(e).__name__}: {e}"
            record.update(outputs=None, error=message)
            raise ServingError(message, 500) from None
        else:
            record["outputs"] = outputs
            return outputs
        finally:
            record["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            self.server.log.write(record)


def _allow(method: str, expected: str) -> None:
    if method != expected:
        raise ServingError(f"Use {expected} here, not {method}.", 405)


class _Server(BoundedServer):
    def __init__(self, address: tuple[str, int], model: ModelAdapter, log: PredictionLog, *,
                 limits: Limits | None = None, errors: Callable[[str], Any] | None = None) -> None:
        self.model = model
        self.log = log
        super().__init__(address, _Handler, limits=limits, errors=errors, name=SERVER_NAME)


def make_server(model: Any, *, name: str, version: str = "1", port: int = 0, host: str = "127.0.0.1",
                log: Any = None, limits: Limits | None = None,
                errors: Callable[[str], Any] | None = _stderr) -> _Server:
    """A bound, not yet running server (call `.serve_forever()`); `log` as in `PredictionLog`.

    `limits`: workers, timeouts and body sizes (see `httpd.Limits`); `errors`: where the one-line
    client-error notes go (stderr by default; None: nowhere).
    """
    adapter = ModelAdapter(model, name=name, version=version)
    return _Server((host, port), adapter, log if isinstance(log, PredictionLog) else PredictionLog(log),
                   limits=limits or Limits(), errors=errors)


class RunningServer:
    """A reference server running in a background thread; a context manager that stops it on exit."""

    def __init__(self, server: _Server) -> None:
        self._server = server
        self.host, self.port = server.server_address[:2]
        self.name = server.model.name
        self.version = server.model.version
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"mldeploy-serving-{self.port}", daemon=True)
        self._thread.start()
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}"

    @property
    def infer_url(self) -> str:
        return f"{self.url}/v2/models/{self.name}/infer"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server.log.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<RunningServer {self.name} v{self.version} at {self.url} ({state})>"


def serve(model: Any, *, name: str, version: str = "1", port: int = 0, host: str = "127.0.0.1",
          log: str | os.PathLike | IO[str] | Callable[[str], Any] | None = None,
          limits: Limits | None = None,
          errors: Callable[[str], Any] | None = _stderr) -> RunningServer:
    """Serve `model` in a background thread; returns a `RunningServer` (`.url`, `.stop()`, `with`).

    `model`: a callable (rows -> predictions, or -> {output name: per-row values}), an object with
    `.predict` (and optionally `.predict_proba`), a pickle path, or "module:callable". `port=0` picks a
    free port. `log`: where prediction lines go (a path, a text stream, a callable given each line,
    or None for no log).
    """
    return RunningServer(make_server(model, name=name, version=version, port=port, host=host, log=log,
                                     limits=limits, errors=errors))


def banner(server: _Server) -> str:
    host, port = server.server_address[:2]
    return (f"{SERVER_NAME}: model {server.model.name} version {server.model.version} "
            f"listening on http://{host}:{port}")
