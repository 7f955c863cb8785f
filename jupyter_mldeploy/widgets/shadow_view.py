"""ShadowView: a shadow comparison in a notebook: the summary, every row side by side with the differences
highlighted, the plot, and a Refresh button that sends the rows again.

A thin view over `shadow.compare` and its `ShadowReport`. The comparison runs in a worker thread and its
report comes back to the kernel's event loop through `loop.LoopWorker` (widgets are only touched there);
without a running loop, Refresh runs it on the caller's thread. All text from the models is escaped.
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from .. import shadow
from ..errors import MLDeployError
from ..shadow.cells import present as _present
from ..shadow.html import DIFFER_TINT as _DIFFER
from ..shadow.html import FAILED_TINT as _FAILED
from .loop import LoopWorker
from .messages import capture, error_sentence, note_html

if TYPE_CHECKING:
    from ..api import Kube
    from ..shadow import ShadowReport, ShadowSummary

__all__ = ["ShadowView", "rows_table", "summary_table"]

ROW_LIMIT = shadow.HTML_ROW_LIMIT  # rows shown; the report's DataFrame (`.rows`) has them all
_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #e0e0e0"
# Per-row tables can be long: cell spacing comes from table attributes, not a style on every cell.
_TABLE = 'cellpadding="3" rules="rows" style="border-collapse:collapse;font-size:12px;text-align:left"'
_COLUMNS = (("request_id", "Request"), ("input", "Input"), ("primary", "Primary"), ("shadow", "Shadow"),
            ("agree", "Agree"), ("abs_diff", "|diff|"), ("primary_ms", "Primary ms"),
            ("shadow_ms", "Shadow ms"))


def _text(x: Any, width: int = 60) -> str:
    if not _present(x):
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        text = f"{x:.4g}"
    elif isinstance(x, str):
        text = x
    else:
        try:
            text = json.dumps(x, default=str)
        except (TypeError, ValueError):
            text = str(x)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def summary_table(report: ShadowReport) -> str:
    """The headline and the figures (agreement, differences, latencies, errors) as an HTML table."""
    e = html.escape
    rows = "".join(f'<tr><th style="{_CELL}">{e(k)}</th><td style="{_CELL}">{e(v)}</td></tr>'
                   for k, v in report.facts())  # the report's own wording, shared with its text form
    return (f'<div class="mldeploy-shadow-summary"><b>{e(report.headline())}</b>'
            f'<table style="border-collapse:collapse;font-size:12px">{rows}</table></div>')


def rows_table(report: ShadowReport, *, only_differences: bool = False, limit: int = ROW_LIMIT) -> str:
    """One row per input, disagreements and failures first and tinted, the differing answers in bold."""
    e = html.escape
    frame = report.rows
    if frame.empty:
        return '<div class="mldeploy-shadow-rows" style="color:#757575">No rows.</div>'
    failed = frame["primary_error"].notna() | frame["shadow_error"].notna()
    differ = (frame["agree"] == False) & ~failed  # noqa: E712 - elementwise on an object column
    bad = frame[failed | differ]
    shown = bad if only_differences else frame.loc[list(bad.index) + list(frame.index.difference(bad.index))]
    total = len(shown)
    shown = shown.head(limit)
    head = "".join(f"<th>{e(label)}</th>" for _, label in _COLUMNS) + "<th>Error</th>"
    out = []
    for i, r in shown.iterrows():
        if failed[i]:
            cls, style = "mldeploy-shadow-failed", f"background:{_FAILED}"
        elif differ[i]:
            cls, style = "mldeploy-shadow-differ", f"background:{_DIFFER}"
        else:
            cls, style = "mldeploy-shadow-agree", ""
        cells = []
        for col, _ in _COLUMNS:
            value = r[col]
            strong = differ[i] and col in ("primary", "shadow", "agree", "abs_diff")
            text = e(_text(value))
            cells.append("<td>" + (f"<b>{text}</b>" if strong else text) + "</td>")
        errors = "; ".join(f"{side}: {r[f'{side}_error']}" for side in ("primary", "shadow")
                           if _present(r[f"{side}_error"]))
        cells.append(f'<td style="color:#c62828">{e(_text(errors, 120))}</td>' if errors else "<td></td>")
        out.append(f'<tr class="{cls}" style="{style}">{"".join(cells)}</tr>')
    note = ""
    if total > len(shown):
        note = (f'<div style="font-size:11px;color:#757575">First {len(shown)} of {total} rows, differences '
                f"first; <code>.rows</code> has them all.</div>")
    if only_differences and not total:
        return '<div class="mldeploy-shadow-rows" style="color:#2e7d32">Every row agrees.</div>'
    return (f'<div class="mldeploy-shadow-rows">{note}<table {_TABLE}>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(out)}</tbody></table></div>")


def _png(report: ShadowReport) -> bytes:
    fig = report.plot()  # closed in pyplot already: rendering it here is its only display
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


class ShadowView(widgets.VBox):
    """`ShadowView(report, data=X, primary_url=..., shadow_url=...)` or `ShadowView("churn", data=X)`.

    Given a name, the comparison runs at once (`shadow.compare` with the other arguments); given a
    report, it is shown, and Refresh (enabled when `data` is given) sends the rows again the same way.
    `summary`, `rows` and `plot()` are the current report's, so code written for a ShadowReport works.
    """

    comparing = traitlets.Bool(False, help="True while a comparison runs.")
    error = traitlets.Unicode("", help="Why the last comparison failed, one sentence; '' when it did not.")

    def __init__(self, report_or_name: ShadowReport | str, *, data: Any = None,
                 primary_url: str | None = None, shadow_url: str | None = None,
                 namespace: str | None = None, kube: Kube | None = None, mode: str = "auto",
                 tolerance: float = 1e-6, model: str | None = None, timeout: float = 10.0,
                 only_differences: bool = False, compare_fn: Callable[..., ShadowReport] | None = None,
                 **compare_kw: Any) -> None:
        if isinstance(report_or_name, str):
            name, report = report_or_name, None
        else:
            name, report = report_or_name.name, report_or_name
        self.name = name
        self.data = data
        self._compare_fn = compare_fn or shadow.compare
        self._how = dict(primary_url=primary_url, shadow_url=shadow_url, namespace=namespace, kube=kube,
                         mode=mode, tolerance=tolerance, model=model, timeout=timeout, **compare_kw)
        self.report: ShadowReport | None = report
        self.comparisons = 0  # comparisons run by this view

        self.summary_html = widgets.HTML()
        self.rows_html = widgets.HTML()
        self.plot_image = widgets.Image(format="png", layout=widgets.Layout(max_width="880px"))
        self.message = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh",
                                             tooltip="Send the rows to both models again and compare")
        self.only_differences = widgets.Checkbox(value=only_differences, description="only differences",
                                                 indent=False)
        super().__init__([self.summary_html, widgets.HBox([self.refresh_button, self.only_differences]),
                          self.message, self.plot_image, self.rows_html])
        self.add_class("mldeploy-shadow-view")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.only_differences.observe(lambda _c: self._render_rows(), names="value")
        if self.comm is not None:
            self.comm.on_close(lambda _msg: self._stop())
        # Built on the kernel's thread: the worker reaches the loop only through it.
        self._jobs = LoopWorker(f"mldeploy-shadow-{name}")
        if report is None and data is not None:
            self._show_outcome(capture(self._run_comparison))  # from a name: compare now, in the cell
        else:
            self._render()

    # -- the report's own interface ---------------------------------------------------------------------

    @property
    def summary(self) -> ShadowSummary | None:
        return self.report.summary if self.report is not None else None

    @property
    def rows(self) -> Any:
        return self.report.rows if self.report is not None else None

    def plot(self) -> Any:
        if self.report is None:
            raise MLDeployError(f"There is no comparison of {self.name} to plot yet.")
        return self.report.plot()

    @property
    def live(self) -> bool:
        return self._jobs.live

    # -- comparing ----------------------------------------------------------------------------------------

    def _run_comparison(self) -> tuple[ShadowReport, bytes]:
        report = self._compare_fn(self.name, self.data, **self._how)
        return report, _png(report)  # the figure is drawn off the loop too

    def refresh(self) -> None:
        """Send the rows to both models again and show the new comparison (in the worker when live)."""
        if self.comparing:
            return
        if self.data is None:
            self.error = "Refresh needs the rows: build the view with data=..."
            self._render()
            return
        self.comparing = True
        self.error = ""
        self._render()
        # one comparison at a time (`comparing`), so its outcome is the newest
        self._jobs.submit(self._run_comparison, self._show_outcome)

    def _show_outcome(self, outcome: tuple[Any, BaseException | None]) -> None:
        result, error = outcome
        self.comparing = False
        self.comparisons += 1
        if error is not None:
            self.error = error_sentence(error)  # the last report stays on screen
            self._render()
            return
        self.report, png = result
        self.error = ""
        self._render(png)

    # -- rendering (loop thread only) ----------------------------------------------------------------------

    def _render(self, png: bytes | None = None) -> None:
        e = html.escape
        if self.report is not None:
            self.summary_html.value = summary_table(self.report)
            self.plot_image.value = png if png is not None else _png(self.report)
            self.plot_image.layout.display = None
        else:
            self.summary_html.value = f"<b>{e(self.name or 'shadow')}</b>: no comparison yet."
            self.plot_image.layout.display = "none"
        self._render_rows()
        self.refresh_button.disabled = self.comparing or self.data is None
        if self.data is None:
            self.refresh_button.tooltip = "Build the view with data=... to compare again"
        if self.error:
            self.message.value = note_html(self.error, "error")
        elif self.comparing:
            self.message.value = note_html("comparing...", "quiet")
        else:
            self.message.value = ""

    def _render_rows(self) -> None:
        self.rows_html.value = ("" if self.report is None
                                else rows_table(self.report, only_differences=self.only_differences.value))

    # -- lifetime and text -----------------------------------------------------------------------------------

    def _stop(self) -> None:
        self._jobs.close()

    def close(self) -> None:
        self._stop()
        for w in (self.summary_html, self.rows_html, self.plot_image, self.message, self.refresh_button,
                  self.only_differences):
            w.close()
        super().close()

    def __str__(self) -> str:
        text = str(self.report) if self.report is not None else f"{self.name}: no comparison yet."
        return text + (f"\n{self.error}" if self.error else "")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict | None:
        data = super()._repr_mimebundle_(**kwargs)
        if data is not None:
            # a frontend without the widget manager (nbconvert, papermill, a console) shows the report
            data["text/plain"] = str(self)
            if self.report is not None:
                data["text/html"] = self.report._repr_html_()
        return data
