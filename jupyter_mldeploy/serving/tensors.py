"""The server's constants and error, and Open Inference Protocol tensors <-> rows (to_plain,
encode_tensor, decode_tensor, decode_inputs). Standard library only."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .httpd import Limits

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


def to_plain(value: Any) -> Any:
    """NumPy/pandas values to plain JSON-able Python (lists, numbers, strings, None)."""
    if isinstance(value, _SCALARS):
        return value
    if type(value) is list and all(type(x) in _SCALARS for x in value):
        return value  # already plain: no copy
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "tolist"):  # numpy arrays and scalars, pandas Series/Index
        return to_plain(value.tolist())
    if hasattr(value, "item") and not isinstance(value, Mapping):
        return to_plain(value.item())
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or hasattr(value, "__iter__"):
        return [to_plain(v) for v in value]
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
    values = to_plain(values if type(values) is list else list(values))
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
        data = to_plain(data)
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
