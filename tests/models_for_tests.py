"""Small models with known behaviour, served by the reference server in tests and the bench.

Importable as `models_for_tests` (tests/ is on sys.path under pytest; subprocesses get it on PYTHONPATH).
"""

from __future__ import annotations

import os
import time
from typing import Any

# The shadow disagrees with the primary by exactly this much on rows whose first value is >= 15.
SHADOW_OFFSET = 0.5
SHADOW_OFFSET_FROM = 15


def _values(row: Any) -> list[float]:
    if isinstance(row, dict):
        return [float(v) for v in row.values()]
    if isinstance(row, list):
        return [float(v) for v in row]
    return [float(row)]


def primary(rows: list) -> list[float]:
    """Regression: the sum of the row's values."""
    return [sum(_values(r)) for r in rows]


def shadow(rows: list) -> list[float]:
    """The primary plus SHADOW_OFFSET when the first value is >= 15; fails on a negative first value."""
    out = []
    for r in rows:
        v = _values(r)
        if v[0] < 0:
            raise ValueError(f"negative first value {v[0]}")
        out.append(sum(v) + (SHADOW_OFFSET if v[0] >= SHADOW_OFFSET_FROM else 0.0))
    return out


def classify(rows: list) -> dict[str, list]:
    """Two outputs: a label and class probabilities (class 1 when the sum is above 10)."""
    probs = []
    for r in rows:
        p1 = min(1.0, max(0.0, sum(_values(r)) / 20))
        probs.append([round(1 - p1, 6), round(p1, 6)])
    return {"predictions": [int(p[1] > 0.5) for p in probs], "probabilities": probs}


def classify_shadow(rows: list) -> dict[str, list]:
    """Like `classify` with a threshold of 12 instead of 10."""
    probs = []
    for r in rows:
        p1 = min(1.0, max(0.0, sum(_values(r)) / 24))
        probs.append([round(1 - p1, 6), round(p1, 6)])
    return {"predictions": [int(p[1] > 0.5) for p in probs], "probabilities": probs}


def slow(rows: list) -> list[float]:
    """The primary after a pause of MODEL_MS milliseconds (default 5): a model that takes time."""
    time.sleep(float(os.environ.get("MODEL_MS", "5")) / 1000)
    return primary(rows)


def slow_shadow(rows: list) -> list[float]:
    time.sleep(float(os.environ.get("MODEL_MS", "5")) / 1000)
    return [x + 1e-9 for x in primary(rows)]


class SumModel:
    """A scikit-learn-style estimator (no scikit-learn needed): predict and predict_proba."""

    n_features_in_ = 2

    def __init__(self, threshold: float = 10.0) -> None:
        self.threshold = threshold

    def predict(self, x: Any) -> list[int]:
        return [int(sum(_values(r)) > self.threshold) for r in _rows(x)]

    def predict_proba(self, x: Any) -> list[list[float]]:
        out = []
        for r in _rows(x):
            p1 = min(1.0, max(0.0, sum(_values(r)) / (2 * self.threshold)))
            out.append([1 - p1, p1])
        return out


def _rows(x: Any) -> list:
    if hasattr(x, "to_dict"):  # a pandas DataFrame
        return x.to_dict("records")
    return list(x)
