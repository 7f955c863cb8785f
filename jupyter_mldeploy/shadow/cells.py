"""How one value of a comparison reads in text and HTML cells: shared by the report, its HTML and plot,
the log join's messages and the ShadowView widget."""

from __future__ import annotations

import json
import math
from typing import Any

from ..serving.server import to_plain


def present(x: Any) -> bool:
    if x is None:
        return False
    try:
        return not (isinstance(x, float) and math.isnan(x))
    except TypeError:
        return True


def fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def cell(x: Any, width: int = 80) -> str:
    if not present(x):
        return ""
    if isinstance(x, float):
        text = f"{x:.6g}"
    elif isinstance(x, str):
        text = x
    else:
        text = json.dumps(to_plain(x), default=str)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def row_text(r: Any) -> str:
    parts = [f"{r['request_id']}", f"in {cell(r['input'], 40)}"]
    if present(r["primary_error"]):
        parts.append(f"primary error: {cell(r['primary_error'], 60)}")
    else:
        parts.append(f"primary {cell(r['primary'], 30)}")
    if present(r["shadow_error"]):
        parts.append(f"shadow error: {cell(r['shadow_error'], 60)}")
    else:
        parts.append(f"shadow {cell(r['shadow'], 30)}")
    if present(r["abs_diff"]):
        parts.append(f"diff {fmt(float(r['abs_diff']))}")
    return "  ".join(parts)
