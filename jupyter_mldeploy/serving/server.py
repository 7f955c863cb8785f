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
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .httpd import BoundedHandler, BoundedServer, HTTPError, Limits

__all__ = [
    "ModelAdapter", "PredictionLog", "RunningServer", "ServingError", "decode_inputs", "decode_tensor",
    "echo", "encode_tensor", "load_model", "make_server", "serve",
]

SERVER_NAME = "jupyter-mldeploy-serving"
SERVER_VERSION = "0.1.0"
# Refuse bodies larger than this (413): a reference server, not a bulk loader (see httpd.Limits).
MAX_BODY = Limits.max_body
DATATYPES = frozenset({"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
                       "FP16", "FP32", "FP64", "BYTES"})


class ServingError(Exception):
    """A request the server answers with an OIP error body: `status` 400, 404 or 500."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Tensors <-> rows


_SCALARS = (str, bool, int, float, type(None))


def _plain(value: Any) -> Any:
    """NumPy/pandas values to plain JSON-able Python (lists, numbers, strings, None)."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is list and all(type(x) in _SCALARS for x in value):
        return value  # already plain: no copy
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
    """A nested, rectangular list -> (flat row-major data, shape). Ragged input raises ValueError.

    Level by level, so memory is one pointer per value per level (no per-value tuples) and no
    recursion: a flat list is returned as it is.
    """
    if not isinstance(value, list):
        return [value], []
    shape: list[int] = [len(value)]
    level = value
    while level:
        nested = [isinstance(x, list) for x in level]
        if not any(nested):
            break
        if not all(nested):
            raise ValueError("ragged nested list: every element must have the same shape")
        width = len(level[0])
        if any(len(x) != width for x in level):
            raise ValueError("ragged nested list: every element must have the same shape")
        shape.append(width)
        if len(shape) > 32:
            raise ValueError("nested more than 32 levels deep")
        level = [y for x in level for y in x]
    return level, shape


def _reshape(flat: list, shape: Sequence[int]) -> Any:
    """Flat row-major values -> nested lists of `shape`; a 1-D shape gives `flat` itself (no copy)."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    if len(shape) == 2:
        return [flat[i * step:(i + 1) * step] for i in range(shape[0])]
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
    values = _plain(values if type(values) is list else list(values))
    try:
        flat, shape = _flatten(values)
    except ValueError:
        # Ragged rows (e.g. variable-length lists) travel as one JSON string per row.
        flat, shape = [json.dumps(v) for v in values], [len(values)]
    datatype = _datatype(flat) if flat else "FP64"
    if datatype == "BYTES":
        flat = [x if isinstance(x, str) else json.dumps(x) for x in flat]
    return {"name": name, "shape": shape, "datatype": datatype, "data": flat}


def decode_tensor(tensor: Mapping[str, Any], *, _owned: bool = False) -> list:
    """An OIP tensor -> its rows (the first dimension is the batch). Raises ServingError(400).

    `_owned`: the tensor came from this request's JSON, so its data list may be converted in place
    (the server's path: one list per level instead of a copy per step).
    """
    name = tensor.get("name", "?")
    shape = tensor.get("shape")
    datatype = tensor.get("datatype")
    if "data" not in tensor:
        raise ServingError(f"Tensor {_short(name)!r} has no data (binary tensor data is not supported).")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ServingError(f"Tensor {_short(name)!r} needs a shape: a list of non-negative integers.")
    if datatype not in DATATYPES:
        raise ServingError(f"Tensor {_short(name)!r} has datatype {_short(datatype)!r}; expected one of "
                           f"{', '.join(sorted(DATATYPES))}.")
    data = tensor["data"]
    if not _owned or not isinstance(data, list):
        data = _plain(data)
    coerce = _COERCE[datatype]
    if _owned and len(shape) == 2 and _is_table(data, shape):
        # Already rows of the declared shape (nested JSON): convert in place, no flat copy.
        try:
            for row in data:
                for i, x in enumerate(row):
                    row[i] = coerce(x)
        except (TypeError, ValueError):
            raise ServingError(f"Tensor {_short(name)!r} has values that are not {datatype}.") from None
        return data
    try:
        flat, _ = _flatten(data)  # OIP allows flat or nested data
    except ValueError as e:
        raise ServingError(f"Tensor {_short(name)!r}: {e}.") from None
    if flat is data and not _owned:
        flat = list(flat)
    if len(flat) != math.prod(shape):
        raise ServingError(f"Tensor {_short(name)!r} has {len(flat)} values but its shape {shape} needs "
                           f"{math.prod(shape)}.")
    try:
        for i, x in enumerate(flat):  # in place: flat is ours (a copy, or the request's own list)
            flat[i] = coerce(x)
    except (TypeError, ValueError):
        raise ServingError(f"Tensor {_short(name)!r} has values that are not {datatype}.") from None
    if not shape:
        return [flat[0]]
    return _reshape(flat, shape)


def _is_table(data: list, shape: list[int]) -> bool:
    """data is shape[0] lists of shape[1] values, none of them a list."""
    n, width = shape
    return (len(data) == n and all(type(r) is list and len(r) == width for r in data)
            and not any(isinstance(x, list) for r in data for x in r))


def _short(value: Any, limit: int = 60) -> Any:
    """A client-given name as quoted in an error: cut, so an answer never echoes a huge value."""
    return value[:limit] + "..." if isinstance(value, str) and len(value) > limit else value


# Floats for small whole numbers, shared: a body of `1,0,1,...` costs one pointer per value, not one
# new float object each.
_SMALL_FLOATS = {i: float(i) for i in range(-256, 1025)}


def _to_float(value: Any) -> Any:
    if value is None:
        return None
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        small = _SMALL_FLOATS.get(value)
        return small if small is not None else float(value)
    if isinstance(value, (bool, str)):
        raise TypeError(value)
    return float(value)


def _to_int(value: Any) -> Any:
    if value is None or type(value) is int:
        return value
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    if isinstance(value, str):
        raise TypeError(value)
    return int(value)


def _to_bool(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, (bool, int)):
        raise TypeError(value)
    return bool(value)


def _to_bytes(value: Any) -> Any:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


_COERCE: dict[str, Callable[[Any], Any]] = {
    **{t: _to_float for t in DATATYPES if t.startswith("FP")},
    **{t: _to_int for t in DATATYPES if t.startswith(("INT", "UINT"))},
    "BOOL": _to_bool, "BYTES": _to_bytes,
}


def _coerce(value: Any, datatype: str) -> Any:
    """A JSON value as the declared datatype: the model sees 1.0 for FP64 even if the client sent 1."""
    return _COERCE[datatype](value)


def decode_inputs(inputs: Any, *, _owned: bool = False) -> list:
    """OIP `inputs` -> rows: one tensor gives its rows; several give one dict per row keyed by name."""
    if not isinstance(inputs, list) or not inputs:
        raise ServingError("The request needs `inputs`: a non-empty list of tensors.")
    if not all(isinstance(t, Mapping) for t in inputs):
        raise ServingError("Every entry of `inputs` must be a tensor object {name, shape, datatype, data}.")
    if len(inputs) == 1:
        return decode_tensor(inputs[0], _owned=_owned)
    columns = {str(t.get("name")): decode_tensor(t, _owned=_owned) for t in inputs}
    if len(columns) != len(inputs):
        raise ServingError("Input tensor names must be unique.")
    sizes = {len(c) for c in columns.values()}
    if len(sizes) != 1:
        raise ServingError(f"Every input tensor needs the same first (batch) dimension; got "
                           f"{ {n: len(c) for n, c in columns.items()} }.")
    return [{n: c[i] for n, c in columns.items()} for i in range(sizes.pop())]


# ---------------------------------------------------------------------------------------------------
# Models


PICKLE_SUFFIXES = (".pkl", ".pickle")
JOBLIB_SUFFIXES = (".joblib",)


def load_model(model: Any) -> Any:
    """A model from what the command line or a notebook gives; the form is declared, never guessed.

    - an object with `.predict`, or a callable (rows -> predictions): used as is;
    - a path ending in `.pkl` or `.pickle`: unpickled; `.joblib`: loaded with joblib (which must be
      installed). Unpickling runs code from the file: load only files you trust. Any other file is
      refused, even if it exists: a file is never unpickled because it happens to be there;
    - `"module:attr"` (attr may be dotted): imported.
    """
    if not isinstance(model, (str, os.PathLike)):
        if hasattr(model, "predict") or callable(model):
            return model
        raise ServingError(f"Cannot serve {type(model).__name__}: expected a callable or an object "
                           f"with .predict.", 500)
    text = os.fspath(model)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES + JOBLIB_SUFFIXES:
        if not path.is_file():
            raise ServingError(f"No model file at {path}.", 500)
        if suffix in JOBLIB_SUFFIXES:
            try:
                import joblib
            except ImportError:
                raise ServingError(f"{path} is a joblib file and joblib is not installed; install it "
                                   f"or save the model as a .pkl.", 500) from None
            return load_model(joblib.load(path))
        with path.open("rb") as f:
            return load_model(pickle.load(f))  # noqa: S301 - the documented, declared pickle form
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr or path.is_file():
        raise ServingError(f"Model {text!r} is neither a pickle file ({', '.join(PICKLE_SUFFIXES)}), a "
                           f"joblib file (.joblib) nor MODULE:CALLABLE.", 500)
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ServingError(f"Module {module_name} has no attribute {attr!r}.", 500) from None
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
        except Exception as e:  # noqa: BLE001 - a bug here must still answer, not drop the connection
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
