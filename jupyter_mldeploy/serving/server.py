"""A small reference model server speaking the Open Inference Protocol (KServe v2), standard library only.

It serves one model: a Python callable (rows -> predictions) or a scikit-learn-style object with
`.predict` (and `.predict_proba`, exposed as a second output `probabilities`). Every answered or failed
request is written as one JSON line, so primary and shadow answers can be joined later by request id
(see `jupyter_mldeploy.shadow.live`).

Rows and tensors: the first dimension of every input tensor is the batch. One input of shape [N, F]
gives N rows of F values; one input of shape [N] gives N scalar rows; several inputs (one per column,
each of shape [N] or [N, ...]) give N rows as dicts keyed by input name, which a `.predict` model
receives as a pandas DataFrame when pandas is installed.

No third-party import: the image needs only Python and this package. NumPy values coming back from a
model are converted with `.tolist()` / `.item()` when present.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pickle
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

__all__ = [
    "ModelAdapter", "PredictionLog", "RunningServer", "ServingError", "decode_inputs", "decode_tensor",
    "echo", "encode_tensor", "load_model", "make_server", "serve",
]

SERVER_NAME = "jupyter-mldeploy-serving"
SERVER_VERSION = "0.1.0"
# Refuse bodies larger than this (413): a reference server, not a bulk loader.
MAX_BODY = 64 * 1024 * 1024
DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                       "FP16", "FP32", "FP64", "BYTES"})


class ServingError(Exception):
    """A request the server answers with an OIP error body: `status` 400, 404 or 500."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------------------------------
# Tensors <-> rows


def _plain(value: Any) -> Any:
    """NumPy/pandas values to plain JSON-able Python (lists, numbers, strings, None)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series/Index
        return _plain(value.tolist())
    if hasattr(value, "item") and not isinstance(value, Mapping):
        return _plain(value.item())
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return value


def _flatten(value: Any) -> tuple[list, list[int]]:
    """A nested, rectangular list -> (flat row-major data, shape). Ragged input raises ValueError."""
    if not isinstance(value, list):
        return [value], []
    if not value:
        return [], [0]
    parts = [_flatten(v) for v in value]
    inner = parts[0][1]
    if any(p[1] != inner for p in parts):
        raise ValueError("ragged nested list: every element must have the same shape")
    return [x for p in parts for x in p[0]], [len(value), *inner]


def _reshape(flat: list, shape: Sequence[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _datatype(leaves: list) -> str:
    if all(isinstance(x, bool) for x in leaves):
        return "BOOL"
    if all(isinstance(x, int) and not isinstance(x, bool) for x in leaves):
        return "INT64"
    if all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in leaves):
        return "FP64"
    return "BYTES"


def encode_tensor(name: str, values: Sequence[Any]) -> dict:
    """Per-row values -> an OIP tensor `{name, shape, datatype, data}` (data flat, row-major)."""
    values = _plain(list(values))
    try:
        flat, shape = _flatten(values)
    except ValueError:
        # Ragged rows (e.g. variable-length lists) travel as one JSON string per row.
        flat, shape = [json.dumps(v) for v in values], [len(values)]
    datatype = _datatype(flat) if flat else "FP64"
    if datatype == "BYTES":
        flat = [x if isinstance(x, str) else json.dumps(x) for x in flat]
    return {"name": name, "shape": shape, "datatype": datatype, "data": flat}


def decode_tensor(tensor: Mapping[str, Any]) -> list:
    """An OIP tensor -> its rows (the first dimension is the batch). Raises ServingError(400)."""
    name = tensor.get("name", "?")
    shape = tensor.get("shape")
    datatype = tensor.get("datatype")
    if "data" not in tensor:
        raise ServingError(f"Tensor {name!r} has no data (binary tensor data is not supported).")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ServingError(f"Tensor {name!r} needs a shape: a list of non-negative integers.")
    if datatype not in DATATYPES:
        raise ServingError(f"Tensor {name!r} has datatype {datatype!r}; expected one of "
                           f"{', '.join(sorted(DATATYPES))}.")
    try:
        flat, _ = _flatten(_plain(tensor["data"]))  # OIP allows flat or nested data
    except ValueError as e:
        raise ServingError(f"Tensor {name!r}: {e}.") from None
    if len(flat) != math.prod(shape):
        raise ServingError(f"Tensor {name!r} has {len(flat)} values but its shape {shape} needs "
                           f"{math.prod(shape)}.")
    try:
        flat = [_coerce(x, datatype) for x in flat]
    except (TypeError, ValueError):
        raise ServingError(f"Tensor {name!r} has values that are not {datatype}.") from None
    if not shape:
        return [flat[0]]
    return _reshape(flat, shape)


def _coerce(value: Any, datatype: str) -> Any:
    """A JSON value as the declared datatype: the model sees 1.0 for FP64 even if the client sent 1."""
    if value is None:
        return None
    if datatype.startswith("FP"):
        if isinstance(value, (bool, str)):
            raise TypeError(value)
        return float(value)
    if datatype.startswith(("INT", "UINT")):
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        if isinstance(value, str):
            raise TypeError(value)
        return int(value)
    if datatype == "BOOL":
        if not isinstance(value, (bool, int)):
            raise TypeError(value)
        return bool(value)
    return value if isinstance(value, str) else json.dumps(value)


def decode_inputs(inputs: Any) -> list:
    """OIP `inputs` -> rows: one tensor gives its rows; several give one dict per row keyed by name."""
    if not isinstance(inputs, list) or not inputs:
        raise ServingError("The request needs `inputs`: a non-empty list of tensors.")
    if not all(isinstance(t, Mapping) for t in inputs):
        raise ServingError("Every entry of `inputs` must be a tensor object {name, shape, datatype, data}.")
    if len(inputs) == 1:
        return decode_tensor(inputs[0])
    columns = {str(t.get("name")): decode_tensor(t) for t in inputs}
    if len(columns) != len(inputs):
        raise ServingError("Input tensor names must be unique.")
    sizes = {len(c) for c in columns.values()}
    if len(sizes) != 1:
        raise ServingError(f"Every input tensor needs the same first (batch) dimension; got "
                           f"{ {n: len(c) for n, c in columns.items()} }.")
    return [{n: c[i] for n, c in columns.items()} for i in range(sizes.pop())]


# ---------------------------------------------------------------------------------------------------
# Models


def load_model(model: Any) -> Any:
    """A model from what the command line or a notebook gives.

    - an object with `.predict`, or a callable (rows -> predictions): used as is;
    - a path to a pickle (`.pkl`, `.pickle`, `.joblib`; joblib is used when installed): unpickled.
      Unpickling runs code from the file: load only files you trust;
    - `"module:attr"` (attr may be dotted): imported.
    """
    if not isinstance(model, (str, os.PathLike)):
        if hasattr(model, "predict") or callable(model):
            return model
        raise ServingError(f"Cannot serve {type(model).__name__}: expected a callable or an object "
                           f"with .predict.", 500)
    text = os.fspath(model)
    path = Path(text)
    if path.suffix in {".pkl", ".pickle", ".joblib"} or path.is_file():
        if not path.is_file():
            raise ServingError(f"No model file at {path}.", 500)
        if path.suffix == ".joblib":
            try:
                import joblib

                return load_model(joblib.load(path))
            except ImportError:
                pass
        with path.open("rb") as f:
            return load_model(pickle.load(f))
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        raise ServingError(f"Model {text!r} is neither a pickle file nor MODULE:CALLABLE.", 500)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return load_model(obj)


class ModelAdapter:
    """One served model: rows in, named per-row outputs out (`predictions`, maybe `probabilities`)."""

    def __init__(self, model: Any, *, name: str, version: str) -> None:
        self.model = load_model(model)
        self.name = name
        self.version = str(version)
        self.kind = "predict" if hasattr(self.model, "predict") else "callable"
        self._lock = threading.Lock()
        self._outputs_meta: dict[str, dict] = {}

    @property
    def platform(self) -> str:
        if self.kind == "callable":
            return "python"
        root = type(self.model).__module__.split(".")[0]
        return "sklearn" if root == "sklearn" else f"python-predict:{root}"

    def predict(self, rows: list) -> dict[str, list]:
        if self.kind == "callable":
            result = self.model(rows)
            if isinstance(result, Mapping):
                outputs = {str(k): _rows_of(v, k) for k, v in result.items()}
            else:
                outputs = {"predictions": _rows_of(result, "predictions")}
        else:
            x = _design_matrix(rows)
            outputs = {"predictions": _rows_of(self.model.predict(x), "predictions")}
            if hasattr(self.model, "predict_proba"):
                outputs["probabilities"] = _rows_of(self.model.predict_proba(x), "probabilities")
        for key, values in outputs.items():
            if len(values) != len(rows):
                raise ServingError(f"The model returned {len(values)} {key} for {len(rows)} rows.", 500)
        return outputs

    def remember(self, tensors: list[dict]) -> None:
        """Learn output datatypes/shapes from an answer, for the metadata endpoint."""
        with self._lock:
            for t in tensors:
                self._outputs_meta[t["name"]] = {"name": t["name"], "datatype": t["datatype"],
                                                 "shape": [-1, *t["shape"][1:]]}

    def metadata(self) -> dict:
        n_features = getattr(self.model, "n_features_in_", None)
        inputs = [{"name": "input-0", "datatype": "FP64",
                   "shape": [-1, int(n_features) if isinstance(n_features, int) else -1]}]
        with self._lock:
            outputs = list(self._outputs_meta.values())
        if not outputs:
            outputs = [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]
            if hasattr(self.model, "predict_proba"):
                outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, -1]})
        return {"name": self.name, "versions": [self.version], "platform": self.platform,
                "inputs": inputs, "outputs": outputs}


def echo(rows: list) -> list:
    """A model that answers each row with itself: the image's default, for smoke tests of a deployment."""
    return rows


def _rows_of(value: Any, what: Any) -> list:
    value = _plain(value)
    if not isinstance(value, list):
        raise ServingError(f"The model returned one {type(value).__name__} for {what}; expected one value "
                           f"per row.", 500)
    return value


def _design_matrix(rows: list) -> Any:
    """What a scikit-learn-style `.predict` expects: 2-D rows, a DataFrame for named columns."""
    if rows and all(isinstance(r, Mapping) for r in rows):
        try:
            import pandas as pd

            return pd.DataFrame(rows)
        except ImportError:
            return rows
    if rows and not any(isinstance(r, list) for r in rows):
        return [[r] for r in rows]
    return rows


# ---------------------------------------------------------------------------------------------------
# Prediction log


class PredictionLog:
    """Writes one JSON line per prediction to a path, a text stream, or a callable (given the line).

    `None` writes nothing. Lines are written whole under a lock and flushed, so a reader (or a log
    shipper) never sees half a line.
    """

    def __init__(self, target: str | os.PathLike | IO[str] | Callable[[str], Any] | None) -> None:
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        self._stream: Any = None  # flushed after every line
        self._newline = True  # streams get "line\n"; a callable gets the line alone
        self._write: Callable[[str], Any] | None
        if target is None:
            self._write = None
        elif isinstance(target, (str, os.PathLike)):
            self._owned = self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - see close()
            self._write = self._owned.write
        elif hasattr(target, "write"):
            self._write = target.write
            self._stream = target if hasattr(target, "flush") else None
        elif callable(target):
            self._write = target
            self._newline = False
        else:
            raise TypeError(f"log must be a path, a text stream, a callable or None, not {type(target)}")

    def write(self, record: Mapping[str, Any]) -> None:
        if self._write is None:
            return
        line = json.dumps(record, separators=(",", ":"), default=str)
        with self._lock:
            if self._write is None:  # closed meanwhile
                return
            self._write(line + "\n" if self._newline else line)
            if self._stream is not None:
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = self._stream = self._write = None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------------
# HTTP

_MODEL_PATH = re.compile(r"^/v2/models/(?P<m>[^/]+)(?:/versions/(?P<v>[^/]+))?(?P<op>/ready|/infer)?/?$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a replay of many rows reuses connections
    server_version = f"{SERVER_NAME}/{SERVER_VERSION}"
    disable_nagle_algorithm = True  # headers and body go out as two writes; do not wait for an ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """No access log: predictions are logged as JSON lines, and stderr stays for real problems."""

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
        request_id = self.headers.get("x-request-id") or None
        try:
            body = self._body()
            status, payload = self._route(method, urlsplit(self.path).path, body, started, request_id)
        except ServingError as e:
            status, payload = e.status, {"error": str(e)}
        except Exception as e:  # a bug here must still answer, not drop the connection
            status, payload = 500, {"error": f"Internal server error: {type(e).__name__}: {e}"}
        self._send(status, payload, request_id)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                self.close_connection = True
                raise ServingError("Chunked request bodies are not supported; send Content-Length.")
            return b""
        try:
            n = int(length)
        except ValueError:
            self.close_connection = True
            raise ServingError("Bad Content-Length header.") from None
        if n > MAX_BODY:
            self.close_connection = True
            raise ServingError(f"The request body is {n} bytes; the limit is {MAX_BODY}.", 413)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, payload: Any, request_id: str | None) -> None:
        data = json.dumps(payload, separators=(",", ":"), default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        rid = payload.get("id") if isinstance(payload, dict) and "id" in payload else request_id
        if rid:
            self.send_header("x-request-id", str(rid))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, body: bytes) -> Any:
        if not body:
            raise ServingError("The request needs a JSON body.")
        try:
            return json.loads(body)
        except ValueError as e:
            raise ServingError(f"The request body is not valid JSON: {e}.") from None

    # -- routes

    def _route(self, method: str, path: str, body: bytes, started: float,
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

    def _infer(self, body: bytes, started: float, request_id: str | None) -> tuple[int, Any]:
        model = self.server.model
        request = self._json(body)
        if not isinstance(request, Mapping):
            raise ServingError("The request body must be a JSON object with `inputs`.")
        oip_id = request.get("id")
        rid = request_id or (str(oip_id) if oip_id not in (None, "") else uuid.uuid4().hex)
        rows = decode_inputs(request.get("inputs"))
        wanted = request.get("outputs")
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

    def _predict(self, body: bytes, started: float, request_id: str | None) -> tuple[int, Any]:
        request = self._json(body)
        if not isinstance(request, Mapping) or not isinstance(request.get("instances"), list):
            raise ServingError('The request body must be {"instances": [row, ...]}.')
        rid = request_id or uuid.uuid4().hex
        rows = _plain(request["instances"])
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], model: ModelAdapter, log: PredictionLog) -> None:
        self.model = model
        self.log = log
        super().__init__(address, _Handler)


def make_server(model: Any, *, name: str, version: str = "1", port: int = 0, host: str = "127.0.0.1",
                log: Any = None) -> _Server:
    """A bound, not yet running server (call `.serve_forever()`); `log` as in `PredictionLog`."""
    adapter = ModelAdapter(model, name=name, version=version)
    return _Server((host, port), adapter, log if isinstance(log, PredictionLog) else PredictionLog(log))


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
          log: str | os.PathLike | IO[str] | Callable[[str], Any] | None = None) -> RunningServer:
    """Serve `model` in a background thread; returns a `RunningServer` (`.url`, `.stop()`, `with`).

    `model`: a callable (rows -> predictions, or -> {output name: per-row values}), an object with
    `.predict` (and optionally `.predict_proba`), a pickle path, or "module:callable". `port=0` picks a
    free port. `log`: where prediction lines go (a path, a text stream, a callable given each line,
    or None for no log).
    """
    return RunningServer(make_server(model, name=name, version=version, port=port, host=host, log=log))


def banner(server: _Server) -> str:
    host, port = server.server_address[:2]
    return (f"{SERVER_NAME}: model {server.model.name} version {server.model.version} "
            f"listening on http://{host}:{port}")


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
