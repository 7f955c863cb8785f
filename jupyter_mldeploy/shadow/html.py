"""The ShadowReport's HTML form: the summary table, then every row (disagreements and errors first, tinted
when there are more rows than shown), then the unreadable lines and the ids with no partner."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .cells import cell, present

if TYPE_CHECKING:
    from .report import ShadowReport

# The per-row HTML table stops here; the DataFrame in `.rows` has everything.
HTML_ROW_LIMIT = 200
FAILED_TINT = "#fff3cd"  # a row one model failed
DIFFER_TINT = "#f8d7da"  # a row both models answered differently


def report_html(report: ShadowReport) -> str:
    """The report as one HTML fragment; every text from the models is escaped."""
    e = html.escape
    out = ['<div class="mldeploy-shadow">', f"<p><strong>{e(report.headline())}</strong></p>",
           '<table class="mldeploy-shadow-summary">']
    out += [f'<tr><th style="text-align:left">{e(k)}</th><td style="text-align:left">{e(v)}</td></tr>'
            for k, v in report.facts()]
    out.append("</table>")
    rows = report.rows
    if len(rows) > HTML_ROW_LIMIT:
        bad = report.problem_rows()
        good = rows.drop(bad.index)
        import pandas as pd

        rows = pd.concat([bad, good]).head(HTML_ROW_LIMIT)
        out.append(f"<p>First {HTML_ROW_LIMIT} of {len(report.rows)} rows, disagreements and errors "
                   f"first; <code>.rows</code> has them all.</p>")
    cols = [c for c in rows.columns]
    out.append('<table class="mldeploy-shadow-rows"><thead><tr>'
               + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr></thead><tbody>")
    for _, r in rows.iterrows():
        style = ""
        if present(r["primary_error"]) or present(r["shadow_error"]):
            style = f' style="background-color:{FAILED_TINT}"'
        elif r["agree"] == False:  # noqa: E712
            style = f' style="background-color:{DIFFER_TINT}"'
        out.append(f"<tr{style}>" + "".join(f"<td>{e(cell(r[c]))}</td>" for c in cols) + "</tr>")
    out.append("</tbody></table>")
    if report.unparsed:
        out.append("<p>Unreadable log lines:</p><ul>")
        out += [f"<li>{e(side)} line {n}: {e(why)}</li>" for side, n, why in report.unparsed[:20]]
        out.append("</ul>")
    if report.unmatched:
        shown = ", ".join(f"{side} {rid}" for side, rid in report.unmatched[:20])
        more = f" and {len(report.unmatched) - 20} more" if len(report.unmatched) > 20 else ""
        out.append(f"<p>Request ids with no partner: {e(shown + more)}</p>")
    out.append("</div>")
    return "\n".join(out)
