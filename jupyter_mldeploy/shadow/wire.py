"""The wire format of a replay: rows in (lists, arrays, DataFrames), request bodies out, answers read back,
for the Open Inference Protocol v2 or the older {"instances"} /predict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..serving.server import ServingError, decode_tensor, encode_tensor, to_plain


class RowError(Exception):
    """One side failed one row; the message goes into the report. Internal: never raised out of
    `shadow` (so it is not one of errors.py's family)."""


def as_rows(data: Any) -> list:
    if data is None:
        raise SpecError("compare() needs data: a list of rows, a NumPy array or a pandas DataFrame.")
    if hasattr(data, "columns") and hasattr(data, "itertuples"):  # pandas DataFrame
        cols = [str(c) for c in data.columns]
        rows = [dict(zip(cols, to_plain(list(values)), strict=True))
                for values in data.itertuples(index=False, name=None)]
    elif hasattr(data, "tolist"):  # NumPy array, pandas Series
        rows = to_plain(data.tolist())
        if not isinstance(rows, list):
            raise SpecError("data is a single value; give rows (a list, a 1-D or 2-D array, or a DataFrame).")
    elif isinstance(data, (str, bytes, Mapping)):
        raise SpecError(f"data must be rows (a list, an array or a DataFrame), not a {type(data).__name__}.")
    else:
        rows = [to_plain(r) for r in data]
    if not rows:
        raise SpecError("data has no rows: there is nothing to compare.")
    return rows


def _request_body(row: Any, request_id: str) -> dict:
    if isinstance(row, Mapping):
        inputs = [encode_tensor(str(k), [v]) for k, v in row.items()]
    else:
        inputs = [encode_tensor("input-0", [row])]
    return {"id": request_id, "inputs": inputs}


def _answer(response: Any, output: str | None) -> Any:
    outputs = response.get("outputs") if isinstance(response, Mapping) else None
    if not isinstance(outputs, list) or not outputs:
        raise RowError("the answer has no outputs")
    if output is None:
        tensor = outputs[0]
    else:
        tensor = next((o for o in outputs if isinstance(o, Mapping) and o.get("name") == output), None)
        if tensor is None:
            names = [o.get("name") for o in outputs if isinstance(o, Mapping)]
            raise RowError(f"the answer has no output named {output!r} (it has {names})")
    try:
        values = decode_tensor(tensor)
    except ServingError as e:
        raise RowError(f"unreadable answer: {e}") from None
    if len(values) != 1:
        raise RowError(f"the answer has {len(values)} values for one row")
    return values[0]


@dataclass(frozen=True)
class Protocol:
    """What to send and where: Open Inference Protocol v2, or the older {"instances"} /predict."""

    kind: str  # "v2" or "predict"
    model: str
    output: str | None

    @property
    def infer_path(self) -> str:
        return f"/v2/models/{self.model}/infer" if self.kind == "v2" else "/predict"

    @property
    def ready_path(self) -> str:
        return f"/v2/models/{self.model}/ready" if self.kind == "v2" else "/healthz"

    def body(self, row: Any, request_id: str) -> dict:
        return _request_body(row, request_id) if self.kind == "v2" else {"instances": [row]}

    def answer(self, response: Any) -> Any:
        if self.kind == "v2":
            return _answer(response, self.output)
        predictions = response.get("predictions") if isinstance(response, Mapping) else None
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise RowError('the answer is not {"predictions": [one value]}')
        return predictions[0]

    def not_found(self, role: str, where: str) -> str:
        if self.kind == "v2":
            return (f"The {role} server {where} does not serve a model named {self.model!r} "
                    f"(GET {self.ready_path} answered 404).")
        return f"The {role} server {where} has no {self.ready_path} (it answered 404)."
