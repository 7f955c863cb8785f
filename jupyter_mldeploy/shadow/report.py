"""The ShadowReport: primary and shadow answers side by side, its summary figures and its text form.

Its HTML form lives in `shadow.html` and its plot in `shadow.plot`; `build_report` folds the rows of a
replay or a log join into one report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .cells import cell, fmt, row_text
from .comparison import choose_mode, compare_values

__all__ = ["Row", "ShadowReport", "ShadowSummary", "TEXT_ROW_LIMIT", "build_report"]

TEXT_ROW_LIMIT = 10  # rows listed in the text form; the DataFrame in `.rows` has everything


@dataclass
class ShadowSummary:
    """Figures of one comparison. `agreement_pct` counts only rows both sides answered."""

    n: int
    compared: int
    agreeing: int
    agreement_pct: float | None
    mode: str
    tolerance: float
    mean_abs_diff: float | None
    max_abs_diff: float | None
    topk_overlap: float | None
    primary_p50_ms: float | None
    primary_p95_ms: float | None
    shadow_p50_ms: float | None
    shadow_p95_ms: float | None
    primary_errors: int
    shadow_errors: int
    latency_source: str
    wall_s: float | None = None
    unmatched_primary: int = 0
    unmatched_shadow: int = 0
    unparsed_primary: int = 0
    unparsed_shadow: int = 0
    duplicate_ids: int = 0
    input_mismatches: int = 0
    before_since: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@dataclass(repr=False)
class ShadowReport:
    """Primary and shadow answers side by side: `.rows` (DataFrame), `.summary`, text, HTML, `.plot()`."""

    name: str | None
    source: str  # "replay" (compare) or "live" (joined logs)
    rows: Any  # pandas.DataFrame, one row per input row
    summary: ShadowSummary
    primary: str  # where the primary answers came from
    shadow: str
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (side, request_id)
    unparsed: list[tuple[str, int, str]] = field(default_factory=list)  # (side, line number, why)

    @property
    def disagreements(self) -> Any:
        """The rows both sides answered differently."""
        return self.rows[self.rows["agree"] == False]  # noqa: E712 - elementwise on an object column

    @property
    def errors(self) -> Any:
        """The rows where at least one side failed."""
        return self.rows[self.rows["primary_error"].notna() | self.rows["shadow_error"].notna()]

    # -- text

    def headline(self) -> str:
        """One line naming the model, where the rows came from and the comparison mode."""
        s = self.summary
        what = (f"replay of {s.n} rows" if self.source == "replay"
                else f"{s.n} mirrored rows joined from logs")
        tol = f", tolerance {s.tolerance:g}" if s.mode == "numeric" else ""
        return f"Shadow comparison of {self.name or 'the model'} ({what}, mode {s.mode}{tol})"

    def facts(self) -> list[tuple[str, str]]:
        """The summary as (label, sentence) pairs, in the order every view shows them: the text form,
        the HTML form and the ShadowView widget all word the figures the same way."""
        s = self.summary
        facts = [("primary", self.primary), ("shadow", self.shadow)]
        if s.agreement_pct is None:
            facts.append(("agreement", f"no row was answered by both sides (of {s.n})"))
        else:
            facts.append(("agreement", f"{s.agreement_pct:.1f}% ({s.agreeing} of {s.compared} rows both "
                                       f"sides answered)"))
        if s.max_abs_diff is not None:
            facts.append(("abs difference", f"mean {fmt(s.mean_abs_diff)}, max {fmt(s.max_abs_diff)}"))
        if s.topk_overlap is not None:
            facts.append(("top-k overlap", f"{s.topk_overlap:.1%} on average"))
        facts.append(("latency", f"primary p50 {fmt(s.primary_p50_ms)} ms, p95 {fmt(s.primary_p95_ms)} ms; "
                                 f"shadow p50 {fmt(s.shadow_p50_ms)} ms, p95 {fmt(s.shadow_p95_ms)} ms "
                                 f"({s.latency_source})"))
        facts.append(("errors", f"primary {s.primary_errors}, shadow {s.shadow_errors}"))
        if s.wall_s is not None:
            facts.append(("wall time", f"{s.wall_s:.2f} s"))
        if self.source == "live":
            facts.append(("unmatched", f"{s.unmatched_primary} primary and {s.unmatched_shadow} shadow "
                                       f"request ids have no partner"))
            facts.append(("unreadable", f"{s.unparsed_primary} primary and {s.unparsed_shadow} shadow lines "
                                        f"are not prediction records"))
            if s.duplicate_ids:
                facts.append(("duplicates", f"{s.duplicate_ids} request ids on more than one line: "
                                            f"ambiguous, not paired"))
            if s.input_mismatches:
                facts.append(("input mismatch", f"{s.input_mismatches} pairs had different inputs on the "
                                                f"two sides: left out of the agreement"))
            if s.before_since:
                facts.append(("before since", f"{s.before_since} lines older than `since` left out"))
        return facts

    def __str__(self) -> str:
        lines = [self.headline()]
        lines += [f"  {k:<15} {v}" for k, v in self.facts()]
        bad = self.problem_rows()
        if len(bad):
            shown = bad.head(TEXT_ROW_LIMIT)
            lines.append(f"Disagreements and errors ({len(shown)} of {len(bad)}):")
            for _, r in shown.iterrows():
                lines.append("  " + row_text(r))
        for side, line_no, why in self.unparsed[:5]:
            lines.append(f"  unreadable {side} line {line_no}: {why}")
        if self.unmatched:
            more = f" (and {len(self.unmatched) - 5} more)" if len(self.unmatched) > 5 else ""
            lines.append("  no partner: " + ", ".join(f"{side} {rid}" for side, rid in self.unmatched[:5])
                         + more)
        return "\n".join(lines)

    __repr__ = __str__

    def problem_rows(self) -> Any:
        """The rows both sides answered differently or at least one side failed, in row order."""
        rows = self.rows
        if rows.empty:
            return rows
        mask = (rows["agree"] == False) | rows["primary_error"].notna() | rows["shadow_error"].notna()  # noqa: E712
        return rows[mask]

    # -- HTML

    def _repr_html_(self) -> str:
        from .html import report_html

        return report_html(self)

    # -- plot

    def plot(self) -> Any:
        """A matplotlib Figure: latency distributions of both sides, and the differences.

        matplotlib is imported here, not before; with no display and no backend chosen it uses Agg. The
        figure is closed in pyplot so a notebook shows it once (as the returned value).
        """
        from .plot import report_figure

        return report_figure(self)


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class Row:
    request_id: str
    input: Any
    primary: Any = None
    shadow: Any = None
    primary_ms: float | None = None
    shadow_ms: float | None = None
    primary_error: str | None = None
    shadow_error: str | None = None


def build_report(name: str | None, source: str, rows: list[Row], *, mode: str, tolerance: float, k: int,
                  primary: str, shadow: str, latency_source: str, **extra: Any) -> ShadowReport:
    import pandas as pd

    answered = [r for r in rows if r.primary_error is None and r.shadow_error is None]
    chosen = choose_mode(((r.primary, r.shadow) for r in answered), k) if mode == "auto" else mode
    records = []
    diffs: list[float] = []
    overlaps: list[float] = []
    agreeing = 0
    for r in rows:
        agree = diff = overlap = None
        if r.primary_error is None and r.shadow_error is None:
            agree, diff, overlap = compare_values(r.primary, r.shadow, chosen, tolerance, k)
            agreeing += agree
            if diff is not None:
                diffs.append(diff)
            if overlap is not None:
                overlaps.append(overlap)
        rec = {"request_id": r.request_id, "input": cell(r.input, 60), "primary": r.primary,
               "shadow": r.shadow, "agree": agree, "abs_diff": diff if diff is not None else math.nan,
               "primary_ms": r.primary_ms if r.primary_ms is not None else math.nan,
               "shadow_ms": r.shadow_ms if r.shadow_ms is not None else math.nan,
               "primary_error": r.primary_error, "shadow_error": r.shadow_error}
        if chosen == "topk":
            rec["topk_overlap"] = overlap if overlap is not None else math.nan
        records.append(rec)
    columns = ["request_id", "input", "primary", "shadow", "agree", "abs_diff", "primary_ms", "shadow_ms",
               "primary_error", "shadow_error"] + (["topk_overlap"] if chosen == "topk" else [])
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["agree"] = frame["agree"].astype(object)
    for col in ("primary", "shadow", "primary_error", "shadow_error"):
        frame[col] = frame[col].astype(object)
        frame.loc[frame[col].isna(), col] = None
    p_ms = [r.primary_ms for r in rows if r.primary_ms is not None]
    s_ms = [r.shadow_ms for r in rows if r.shadow_ms is not None]
    finite = [d for d in diffs if math.isfinite(d)]
    summary = ShadowSummary(
        n=len(rows), compared=len(answered), agreeing=agreeing,
        agreement_pct=100.0 * agreeing / len(answered) if answered else None,
        mode=chosen, tolerance=tolerance,
        mean_abs_diff=sum(finite) / len(finite) if finite else None,
        max_abs_diff=max(diffs) if diffs else None,
        topk_overlap=sum(overlaps) / len(overlaps) if overlaps else None,
        primary_p50_ms=quantile(p_ms, 0.5), primary_p95_ms=quantile(p_ms, 0.95),
        shadow_p50_ms=quantile(s_ms, 0.5), shadow_p95_ms=quantile(s_ms, 0.95),
        primary_errors=sum(r.primary_error is not None for r in rows),
        shadow_errors=sum(r.shadow_error is not None for r in rows),
        latency_source=latency_source,
        **{k_: v for k_, v in extra.items() if k_ in ShadowSummary.__dataclass_fields__},
    )
    return ShadowReport(name, source, frame, summary, primary, shadow,
                        unmatched=extra.get("unmatched", []), unparsed=extra.get("unparsed", []))
