"""Loading a model (a callable, a pickle, a joblib file) and the adapter that calls it on rows.
Standard library only."""

from __future__ import annotations

import importlib
import os
import pickle
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .tensors import ServingError, to_plain

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
            return load_model(pickle.load(f))  # the documented, declared pickle form
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
    value = to_plain(value)
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
