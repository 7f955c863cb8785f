"""The one duration rule: a number of seconds, or text such as '500ms', '30s', '5m', '1.5h'. Pure.

Every setting, flag and argument that takes a duration (a timeout, a startup window, the time between
rollout steps) reads it here, so what works in Python works in a magic and in pyproject.toml.
"""

from __future__ import annotations

import math
import re

from .errors import SpecError

__all__ = ["parse_seconds"]

_SECONDS = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m|h)?\s*")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(value: object, where: str, *, allow_zero: bool = False) -> float:
    """`value` in seconds: a number, or text like '90', '500ms', '90s', '10m', '1.5h'.

    Refused, in one sentence naming `where`: anything else, infinity, and a negative duration; zero
    too unless `allow_zero` (no wait between rollout steps is a fair request, a zero timeout is not).
    """
    if isinstance(value, bool):
        raise SpecError(f"{where} must be a number of seconds, got the boolean {str(value).lower()}.")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _SECONDS.fullmatch(value)):
        seconds = float(m[1]) * _UNIT[m[2]]
    else:
        shown = repr(value) if isinstance(value, str) else f"a {type(value).__name__}"
        raise SpecError(f"{where} {shown} is not a duration: write seconds such as 600, or 90s, 10m, 1h.")
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        least = "zero seconds or more" if allow_zero else "more than zero seconds"
        raise SpecError(f"{where} must be {least}, got {value!r}.")
    return seconds
