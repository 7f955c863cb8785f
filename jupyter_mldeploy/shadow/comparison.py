"""Comparing two answers: the comparison modes, what `mode="auto"` picks, and one pair's verdict."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

from ..errors import SpecError

Mode = Literal["auto", "exact", "numeric", "label", "topk"]
MODES = ("auto", "exact", "numeric", "label", "topk")


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numbers(x: Any) -> list[float] | None:
    """A number or a (nested) list of numbers as a flat list of floats; None for anything else."""
    if is_number(x):
        return [float(x)]
    if isinstance(x, list) and x:
        out: list[float] = []
        for v in x:
            inner = _numbers(v)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None


def _label(x: Any) -> Any:
    """The label an answer stands for: the argmax of a score vector, or the value itself."""
    vec = _numbers(x) if isinstance(x, list) else None
    if vec is not None and len(vec) > 1:
        return max(range(len(vec)), key=vec.__getitem__)
    if isinstance(x, list) and len(x) == 1:
        return x[0]
    return x


def _topk(vec: list[float], k: int) -> set[int]:
    return set(sorted(range(len(vec)), key=lambda i: (-vec[i], i))[:k])


def choose_mode(pairs: Iterable[tuple[Any, Any]], k: int = 5) -> str:
    """What `mode="auto"` picks from the answers' types.

    Float scalars -> numeric (absolute tolerance). Integers, strings and booleans -> label (class ids and
    names). Float vectors longer than k -> topk; probability-like vectors (in [0, 1], summing to 1) ->
    label (argmax); other float vectors -> numeric. Anything else -> exact.
    """
    values = [v for pair in pairs for v in pair]
    if not values:
        return "exact"
    if all(is_number(v) for v in values):
        return "label" if all(isinstance(v, int) for v in values) else "numeric"
    if all(isinstance(v, (str, bool)) for v in values):
        return "label"
    vectors = [_numbers(v) if isinstance(v, list) else None for v in values]
    if all(vec is not None and all(isinstance(v, list) for v in values) for vec in vectors):
        flat = [vec for vec in vectors if vec is not None]
        if any(len(vec) > k for vec in flat):
            return "topk"
        if all(all(0 <= x <= 1 for x in vec) and abs(sum(vec) - 1) < 1e-3 for vec in flat):
            return "label"
        return "numeric"
    return "exact"


def compare_values(primary: Any, shadow: Any, mode: str, tolerance: float = 1e-6,
                   k: int = 5) -> tuple[bool, float | None, float | None]:
    """(agree, absolute difference or None, top-k overlap or None) for one pair of answers.

    The absolute difference (the largest element-wise one for vectors) is given whenever both answers
    are numbers of the same shape, whatever the mode, so a label mode still shows how far scores moved.
    """
    p, s = _numbers(primary), _numbers(shadow)
    diff = None
    if p is not None and s is not None and len(p) == len(s):
        diff = max(abs(a - b) for a, b in zip(p, s, strict=True))
        if math.isnan(diff):
            diff = math.inf
    overlap = None
    if mode == "exact":
        agree = primary == shadow
    elif mode == "numeric":
        agree = diff <= tolerance if diff is not None else primary == shadow
    elif mode == "label":
        agree = _label(primary) == _label(shadow)
    elif mode == "topk":
        if p is not None and s is not None and len(p) == len(s) and len(p) > 0:
            kk = min(k, len(p))
            a, b = _topk(p, kk), _topk(s, kk)
            overlap = len(a & b) / kk
            agree = a == b
        else:
            agree = primary == shadow
    else:
        check_mode(mode)  # raises: no other mode is known
    return bool(agree), diff, overlap



def check_mode(mode: str) -> None:
    """Refuse an unknown comparison mode with one sentence."""
    if mode not in MODES:
        raise SpecError(f"Unknown comparison mode {mode!r}; use one of {', '.join(MODES)}.")
