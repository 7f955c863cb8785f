"""Plain tables, as aligned text and as escaped HTML: the one table rule every result object uses."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["html_table", "text_table"]


def text_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The header and rows as lines, each column as wide as its widest cell, three spaces apart."""
    rows = [tuple(head), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def html_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The same table as HTML, every cell escaped."""
    e = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")
