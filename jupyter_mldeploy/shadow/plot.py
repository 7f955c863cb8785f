"""The ShadowReport's plot: latency distributions of both sides, and the differences (or the agreement
counts when no answer is a number)."""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING, Any

from .cells import fmt, present

if TYPE_CHECKING:
    from .report import ShadowReport


def report_figure(report: ShadowReport) -> Any:
    """A matplotlib Figure; matplotlib is imported here (Agg when there is no display and no backend was
    chosen), and the figure is closed in pyplot so a notebook shows it once (as the returned value)."""
    import matplotlib

    if ("matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND")
            and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lat, ax_diff) = plt.subplots(1, 2, figsize=(11, 3.8))
    rows = report.rows
    p_ms = [float(x) for x in rows["primary_ms"] if present(x)]
    s_ms = [float(x) for x in rows["shadow_ms"] if present(x)]
    both = p_ms + s_ms
    bins: Any = 30
    if both and max(both) > min(both):
        lo, hi = min(both), max(both)
        bins = [lo + (hi - lo) * i / 30 for i in range(31)]
    if p_ms:
        label = f"primary, p50 {fmt(report.summary.primary_p50_ms)} ms"
        ax_lat.hist(p_ms, bins=bins, alpha=0.6, label=label)
    if s_ms:
        label = f"shadow, p50 {fmt(report.summary.shadow_p50_ms)} ms"
        ax_lat.hist(s_ms, bins=bins, alpha=0.6, label=label)
    ax_lat.set_xlabel(f"latency, ms ({report.summary.latency_source})")
    ax_lat.set_ylabel("rows")
    ax_lat.set_title("Latency")
    if p_ms or s_ms:
        ax_lat.legend()
    diffs = [float(x) for x in rows["abs_diff"] if present(x) and math.isfinite(float(x))]
    if diffs:
        ax_diff.hist(diffs, bins=30, color="tab:red", alpha=0.75)
        ax_diff.set_xlabel("|primary - shadow|")
        ax_diff.set_ylabel("rows")
        ax_diff.set_title(f"Differences (max {fmt(report.summary.max_abs_diff)})")
    else:
        s = report.summary
        counts = [s.agreeing, s.compared - s.agreeing, s.primary_errors, s.shadow_errors]
        ax_diff.bar(["agree", "differ", "primary errors", "shadow errors"], counts,
                    color=["tab:green", "tab:red", "tab:orange", "tab:orange"])
        ax_diff.set_ylabel("rows")
        ax_diff.set_title(f"Agreement ({s.mode})")
    fig.suptitle(report.headline(), fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
