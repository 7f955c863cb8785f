"""Small fraud models for the notebooks and examples, served by jupyter-mldeploy's reference server.

Shipped inside the package (not beside the notebooks) so a notebook runs from any working directory,
as a scheduled pipeline does: `from jupyter_mldeploy.serving import examples`.

Each model takes rows of transactions, `[amount, hour, transactions_today]`, and answers two outputs per
row: `predictions` (1 = fraud, 0 = not) and `scores` (how suspicious, from 0 to 1). Version 2.0 is a
careful refinement of 1.0 (it changes a few answers); version 2.1 flags far too much. They are plain
rules so they need nothing but the standard library.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

__all__ = ["VERSIONS", "model", "sample"]

Row = Sequence[float]


def _score_v1(amount: float, hour: float, count: float) -> float:
    night = 0.3 if hour < 6 else 0.0
    return min(1.0, amount / 1500 + night + count / 60)


def _score_v2(amount: float, hour: float, count: float) -> float:
    # 2.0 also looks harder at bursts of transactions
    burst = 0.15 if count >= 12 else 0.0
    return min(1.0, _score_v1(amount, hour, count) + burst)


def _score_v2_1(amount: float, hour: float, count: float) -> float:
    # 2.1 was trained on the wrong label: everything above a small amount looks suspicious
    return min(1.0, 0.3 + amount / 800)


def _serve(score: Callable[[float, float, float], float]) -> Callable[[list], dict[str, list]]:
    def predict(rows: list) -> dict[str, list]:
        scores = [round(score(*(float(v) for v in row[:3])), 4) for row in rows]
        return {"predictions": [int(s >= 0.5) for s in scores], "scores": scores}

    predict.__name__ = score.__name__.replace("_score", "fraud")
    return predict


VERSIONS: dict[str, Callable[[list], dict[str, list]]] = {
    "1.0": _serve(_score_v1),
    "2.0": _serve(_score_v2),
    "2.1": _serve(_score_v2_1),
}


def model(version: str) -> Callable[[list], dict[str, list]]:
    """The fraud model callable for a version (what the reference server serves): '1.0', '2.0', '2.1'."""
    try:
        return VERSIONS[str(version)]
    except KeyError:
        raise ValueError(f"There is no model version {version!r} here; the versions are "
                         f"{', '.join(VERSIONS)}.") from None


def sample(n: int = 200, seed: int = 7) -> list[list[float]]:
    """`n` made-up transactions, the same ones for the same seed: [amount, hour, transactions_today]."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        amount = round(rng.lognormvariate(4.5, 1.0), 2)
        hour = rng.randrange(24)
        count = rng.randrange(1, 20)
        rows.append([amount, float(hour), float(count)])
    return rows
