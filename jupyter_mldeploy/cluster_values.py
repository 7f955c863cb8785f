"""Numbers read back from the cluster (annotations on our objects), checked: anyone with `kubectl edit`
can put text where a number was, and that must end in one sentence, not a ValueError traceback."""

from __future__ import annotations

import math

from .errors import MLDeployError

__all__ = ["ClusterValueError", "number", "whole_number", "whole_numbers"]


class ClusterValueError(MLDeployError):
    """A value on a cluster object is not what jupyter-mldeploy wrote there (edited by hand?)."""


def _refuse(text: object, key: str, where: str, expected: str) -> ClusterValueError:
    shown = str(text)
    shown = shown if len(shown) <= 40 else shown[:40] + "..."
    return ClusterValueError(f"The annotation {key} on {where} is {shown!r}, not {expected}: it was "
                             f"probably edited by hand; set it back to a number (kubectl annotate "
                             f"--overwrite) or remove it.")


def whole_number(text: object, *, key: str, where: str) -> int:
    """An annotation's value as an int ("20", " 20 "), or one sentence naming the object and the key."""
    value = str(text).strip()
    body = value[1:] if value.startswith("-") else value
    if not (body.isascii() and body.isdigit()):
        raise _refuse(text, key, where, "a whole number")
    return int(value)


def whole_numbers(text: object, *, key: str, where: str) -> tuple[int, ...]:
    """A comma-separated annotation ("10,50,100") as ints; "" is none. One sentence otherwise."""
    parts = [p.strip() for p in str(text).split(",")] if str(text).strip() else []
    try:
        return tuple(whole_number(p, key=key, where=where) for p in parts)
    except ClusterValueError:
        raise _refuse(text, key, where, "a comma-separated list of whole numbers") from None


def number(text: object, *, key: str, where: str) -> float:
    """An annotation's value as a finite float, or one sentence naming the object and the key."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise _refuse(text, key, where, "a number") from None
    if not math.isfinite(value):
        raise _refuse(text, key, where, "a finite number")
    return value
