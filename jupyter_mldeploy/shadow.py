"""Compare a primary and a shadow model side by side.

Every traffic router throws the shadow's answers away; this module pairs them with the primary's.

- `compare()` replays a sample (rows, a NumPy array or a DataFrame) to both models at once: each row goes
  to primary and shadow concurrently, with the same request id on both sides, either to explicit URLs
  of Open Inference Protocol servers or through the Kubernetes API server's service proxy
  (`/api/v1/namespaces/{ns}/services/{svc}:80/proxy/...`) with the kubeconfig's credentials.
- `live()` joins the prediction log lines of both models (the JSON lines the reference server in
  `jupyter_mldeploy.serving` writes) by request id, for traffic a router mirrored. Lines that do not
  parse and lines with no partner are counted and shown, never dropped silently.
- `live_from_pods()` reads those lines from the pods' logs through the API server.

Both give a `ShadowReport`: a per-row DataFrame, a summary, a plain-text and an HTML view, and a plot.
"""

from __future__ import annotations

import html
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ClusterError, MLDeployError, SpecError
from .serving.server import ServingError, _plain, decode_tensor, encode_tensor

if TYPE_CHECKING:
    from .kube.client import Kube

__all__ = ["ShadowReport", "ShadowSummary", "choose_mode", "compare", "compare_values", "live",
           "live_from_pods"]

Mode = Literal["auto", "exact", "numeric", "label", "topk"]
MODES = ("auto", "exact", "numeric", "label", "topk")
# The Services' port, as rendered by render.workload (SERVICE_PORT); the shadow Service is <name>-shadow.
SERVICE_PORT = 80
PROXY_CATCH_UP = 3.0  # seconds a just-created Service may stay invisible to the service proxy
SHADOW_SUFFIX = "-shadow"
# The per-row HTML table stops here; the DataFrame in `.rows` has everything.
HTML_ROW_LIMIT = 200
TEXT_ROW_LIMIT = 10


# ---------------------------------------------------------------------------------------------------
# Comparing two answers


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _numbers(x: Any) -> list[float] | None:
    """A number or a (nested) list of numbers as a flat list of floats; None for anything else."""
    if _is_num(x):
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
    if all(_is_num(v) for v in values):
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
        raise SpecError(f"Unknown comparison mode {mode!r}; use one of {', '.join(MODES)}.")
    return bool(agree), diff, overlap


# ---------------------------------------------------------------------------------------------------
# The report


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

    def _headline(self) -> str:
        s = self.summary
        what = (f"replay of {s.n} rows" if self.source == "replay"
                else f"{s.n} mirrored rows joined from logs")
        tol = f", tolerance {s.tolerance:g}" if s.mode == "numeric" else ""
        return f"Shadow comparison of {self.name or 'the model'} ({what}, mode {s.mode}{tol})"

    def _facts(self) -> list[tuple[str, str]]:
        s = self.summary
        facts = [("primary", self.primary), ("shadow", self.shadow)]
        if s.agreement_pct is None:
            facts.append(("agreement", f"no row was answered by both sides (of {s.n})"))
        else:
            facts.append(("agreement", f"{s.agreement_pct:.1f}% ({s.agreeing} of {s.compared} rows both "
                                       f"sides answered)"))
        if s.max_abs_diff is not None:
            facts.append(("abs difference", f"mean {_fmt(s.mean_abs_diff)}, max {_fmt(s.max_abs_diff)}"))
        if s.topk_overlap is not None:
            facts.append(("top-k overlap", f"{s.topk_overlap:.1%} on average"))
        facts.append(("latency", f"primary p50 {_fmt(s.primary_p50_ms)} ms, p95 {_fmt(s.primary_p95_ms)} ms; "
                                 f"shadow p50 {_fmt(s.shadow_p50_ms)} ms, p95 {_fmt(s.shadow_p95_ms)} ms "
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
        lines = [self._headline()]
        lines += [f"  {k:<15} {v}" for k, v in self._facts()]
        bad = self._bad_rows()
        if len(bad):
            shown = bad.head(TEXT_ROW_LIMIT)
            lines.append(f"Disagreements and errors ({len(shown)} of {len(bad)}):")
            for _, r in shown.iterrows():
                lines.append("  " + _row_text(r))
        for side, line_no, why in self.unparsed[:5]:
            lines.append(f"  unreadable {side} line {line_no}: {why}")
        if self.unmatched:
            more = f" (and {len(self.unmatched) - 5} more)" if len(self.unmatched) > 5 else ""
            lines.append("  no partner: " + ", ".join(f"{side} {rid}" for side, rid in self.unmatched[:5])
                         + more)
        return "\n".join(lines)

    __repr__ = __str__

    def _bad_rows(self) -> Any:
        rows = self.rows
        if rows.empty:
            return rows
        mask = (rows["agree"] == False) | rows["primary_error"].notna() | rows["shadow_error"].notna()  # noqa: E712
        return rows[mask]

    # -- HTML

    def _repr_html_(self) -> str:
        e = html.escape
        out = ['<div class="mldeploy-shadow">', f"<p><strong>{e(self._headline())}</strong></p>",
               '<table class="mldeploy-shadow-summary">']
        out += [f'<tr><th style="text-align:left">{e(k)}</th><td style="text-align:left">{e(v)}</td></tr>'
                for k, v in self._facts()]
        out.append("</table>")
        rows = self.rows
        if len(rows) > HTML_ROW_LIMIT:
            bad = self._bad_rows()
            good = rows.drop(bad.index)
            import pandas as pd

            rows = pd.concat([bad, good]).head(HTML_ROW_LIMIT)
            out.append(f"<p>First {HTML_ROW_LIMIT} of {len(self.rows)} rows, disagreements and errors "
                       f"first; <code>.rows</code> has them all.</p>")
        cols = [c for c in rows.columns]
        out.append('<table class="mldeploy-shadow-rows"><thead><tr>'
                   + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr></thead><tbody>")
        for _, r in rows.iterrows():
            style = ""
            if _present(r["primary_error"]) or _present(r["shadow_error"]):
                style = ' style="background-color:#fff3cd"'
            elif r["agree"] == False:  # noqa: E712
                style = ' style="background-color:#f8d7da"'
            out.append(f"<tr{style}>" + "".join(f"<td>{e(_cell(r[c]))}</td>" for c in cols) + "</tr>")
        out.append("</tbody></table>")
        if self.unparsed:
            out.append("<p>Unreadable log lines:</p><ul>")
            out += [f"<li>{e(side)} line {n}: {e(why)}</li>" for side, n, why in self.unparsed[:20]]
            out.append("</ul>")
        if self.unmatched:
            shown = ", ".join(f"{side} {rid}" for side, rid in self.unmatched[:20])
            more = f" and {len(self.unmatched) - 20} more" if len(self.unmatched) > 20 else ""
            out.append(f"<p>Request ids with no partner: {e(shown + more)}</p>")
        out.append("</div>")
        return "\n".join(out)

    # -- plot

    def plot(self) -> Any:
        """A matplotlib Figure: latency distributions of both sides, and the differences.

        matplotlib is imported here, not before; with no display and no backend chosen it uses Agg. The
        figure is closed in pyplot so a notebook shows it once (as the returned value).
        """
        import matplotlib

        if ("matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND")
                and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY")):
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_lat, ax_diff) = plt.subplots(1, 2, figsize=(11, 3.8))
        rows = self.rows
        p_ms = [float(x) for x in rows["primary_ms"] if _present(x)]
        s_ms = [float(x) for x in rows["shadow_ms"] if _present(x)]
        both = p_ms + s_ms
        bins: Any = 30
        if both and max(both) > min(both):
            lo, hi = min(both), max(both)
            bins = [lo + (hi - lo) * i / 30 for i in range(31)]
        if p_ms:
            label = f"primary, p50 {_fmt(self.summary.primary_p50_ms)} ms"
            ax_lat.hist(p_ms, bins=bins, alpha=0.6, label=label)
        if s_ms:
            label = f"shadow, p50 {_fmt(self.summary.shadow_p50_ms)} ms"
            ax_lat.hist(s_ms, bins=bins, alpha=0.6, label=label)
        ax_lat.set_xlabel(f"latency, ms ({self.summary.latency_source})")
        ax_lat.set_ylabel("rows")
        ax_lat.set_title("Latency")
        if p_ms or s_ms:
            ax_lat.legend()
        diffs = [float(x) for x in rows["abs_diff"] if _present(x) and math.isfinite(float(x))]
        if diffs:
            ax_diff.hist(diffs, bins=30, color="tab:red", alpha=0.75)
            ax_diff.set_xlabel("|primary - shadow|")
            ax_diff.set_ylabel("rows")
            ax_diff.set_title(f"Differences (max {_fmt(self.summary.max_abs_diff)})")
        else:
            s = self.summary
            counts = [s.agreeing, s.compared - s.agreeing, s.primary_errors, s.shadow_errors]
            ax_diff.bar(["agree", "differ", "primary errors", "shadow errors"], counts,
                        color=["tab:green", "tab:red", "tab:orange", "tab:orange"])
            ax_diff.set_ylabel("rows")
            ax_diff.set_title(f"Agreement ({s.mode})")
        fig.suptitle(self._headline(), fontsize=10)
        fig.tight_layout()
        plt.close(fig)
        return fig


def _present(x: Any) -> bool:
    if x is None:
        return False
    try:
        return not (isinstance(x, float) and math.isnan(x))
    except TypeError:
        return True


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def _cell(x: Any, width: int = 80) -> str:
    if not _present(x):
        return ""
    if isinstance(x, float):
        text = f"{x:.6g}"
    elif isinstance(x, str):
        text = x
    else:
        text = json.dumps(_plain(x), default=str)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _row_text(r: Any) -> str:
    parts = [f"{r['request_id']}", f"in {_cell(r['input'], 40)}"]
    if _present(r["primary_error"]):
        parts.append(f"primary error: {_cell(r['primary_error'], 60)}")
    else:
        parts.append(f"primary {_cell(r['primary'], 30)}")
    if _present(r["shadow_error"]):
        parts.append(f"shadow error: {_cell(r['shadow_error'], 60)}")
    else:
        parts.append(f"shadow {_cell(r['shadow'], 30)}")
    if _present(r["abs_diff"]):
        parts.append(f"diff {_fmt(float(r['abs_diff']))}")
    return "  ".join(parts)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass
class _Row:
    request_id: str
    input: Any
    primary: Any = None
    shadow: Any = None
    primary_ms: float | None = None
    shadow_ms: float | None = None
    primary_error: str | None = None
    shadow_error: str | None = None


def _build_report(name: str | None, source: str, rows: list[_Row], *, mode: str, tolerance: float, k: int,
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
        rec = {"request_id": r.request_id, "input": _cell(r.input, 60), "primary": r.primary,
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
        primary_p50_ms=_quantile(p_ms, 0.5), primary_p95_ms=_quantile(p_ms, 0.95),
        shadow_p50_ms=_quantile(s_ms, 0.5), shadow_p95_ms=_quantile(s_ms, 0.95),
        primary_errors=sum(r.primary_error is not None for r in rows),
        shadow_errors=sum(r.shadow_error is not None for r in rows),
        latency_source=latency_source,
        **{k_: v for k_, v in extra.items() if k_ in ShadowSummary.__dataclass_fields__},
    )
    return ShadowReport(name, source, frame, summary, primary, shadow,
                        unmatched=extra.get("unmatched", []), unparsed=extra.get("unparsed", []))


# ---------------------------------------------------------------------------------------------------
# Replay: compare()


class _RowError(Exception):
    """One side failed one row; the message goes into the report."""


def _as_rows(data: Any) -> list:
    if data is None:
        raise SpecError("compare() needs data: a list of rows, a NumPy array or a pandas DataFrame.")
    if hasattr(data, "columns") and hasattr(data, "itertuples"):  # pandas DataFrame
        cols = [str(c) for c in data.columns]
        rows = [dict(zip(cols, _plain(list(values)), strict=True))
                for values in data.itertuples(index=False, name=None)]
    elif hasattr(data, "tolist"):  # NumPy array, pandas Series
        rows = _plain(data.tolist())
        if not isinstance(rows, list):
            raise SpecError("data is a single value; give rows (a list, a 1-D or 2-D array, or a DataFrame).")
    elif isinstance(data, (str, bytes, Mapping)):
        raise SpecError(f"data must be rows (a list, an array or a DataFrame), not a {type(data).__name__}.")
    else:
        rows = [_plain(r) for r in data]
    if not rows:
        raise SpecError("data has no rows: there is nothing to compare.")
    return rows


def _request_body(row: Any, request_id: str) -> dict:
    if isinstance(row, Mapping):
        inputs = [encode_tensor(str(k), [v]) for k, v in row.items()]
    else:
        inputs = [encode_tensor("input-0", [row])]
    return {"id": request_id, "inputs": inputs}


def _answer(response: Any, output: str | None) -> Any:
    outputs = response.get("outputs") if isinstance(response, Mapping) else None
    if not isinstance(outputs, list) or not outputs:
        raise _RowError("the answer has no outputs")
    if output is None:
        tensor = outputs[0]
    else:
        tensor = next((o for o in outputs if isinstance(o, Mapping) and o.get("name") == output), None)
        if tensor is None:
            names = [o.get("name") for o in outputs if isinstance(o, Mapping)]
            raise _RowError(f"the answer has no output named {output!r} (it has {names})")
    try:
        values = decode_tensor(tensor)
    except ServingError as e:
        raise _RowError(f"unreadable answer: {e}") from None
    if len(values) != 1:
        raise _RowError(f"the answer has {len(values)} values for one row")
    return values[0]


@dataclass(frozen=True)
class _Protocol:
    """What to send and where: Open Inference Protocol v2, or the older {"instances"} /predict."""

    kind: str  # "v2" or "predict"
    model: str
    output: str | None

    @property
    def infer_path(self) -> str:
        return f"/v2/models/{self.model}/infer" if self.kind == "v2" else "/predict"

    @property
    def ready_path(self) -> str:
        return f"/v2/models/{self.model}/ready" if self.kind == "v2" else "/healthz"

    def body(self, row: Any, request_id: str) -> dict:
        return _request_body(row, request_id) if self.kind == "v2" else {"instances": [row]}

    def answer(self, response: Any) -> Any:
        if self.kind == "v2":
            return _answer(response, self.output)
        predictions = response.get("predictions") if isinstance(response, Mapping) else None
        if not isinstance(predictions, list) or len(predictions) != 1:
            raise _RowError('the answer is not {"predictions": [one value]}')
        return predictions[0]

    def not_found(self, role: str, where: str) -> str:
        if self.kind == "v2":
            return (f"The {role} server {where} does not serve a model named {self.model!r} "
                    f"(GET {self.ready_path} answered 404).")
        return f"The {role} server {where} has no {self.ready_path} (it answered 404)."


class _Side:
    role: str  # "primary" or "shadow"
    label: str  # the Service name or the base URL, for messages
    where: str  # for the report

    def infer(self, body: dict, request_id: str) -> dict:
        raise NotImplementedError

    def check(self) -> str | None:
        """None when the model is ready; else one sentence saying what is wrong."""
        raise NotImplementedError


class _UrlSide(_Side):
    def __init__(self, role: str, base_url: str, proto: _Protocol, pool: Any, timeout: float) -> None:
        self.role, self.proto, self.pool, self.timeout = role, proto, pool, timeout
        self.base = base_url.rstrip("/")
        self.label = self.where = self.base
        self.infer_url = self.base + proto.infer_path

    def _request(self, method: str, url: str, body: bytes | None, headers: dict) -> tuple[int, Any]:
        import urllib3

        try:
            resp = self.pool.request(method, url, body=body, headers=headers, retries=False,
                                     timeout=urllib3.Timeout(total=self.timeout))
        except urllib3.exceptions.TimeoutError:
            raise _RowError(f"no answer within {self.timeout:g} s") from None
        except urllib3.exceptions.HTTPError as e:
            reason = getattr(e, "reason", None) or e
            raise _RowError(f"could not connect: {_short(reason)}") from None
        try:
            payload = json.loads(resp.data) if resp.data else {}
        except ValueError:
            payload = {"error": resp.data[:200].decode(errors="replace")}
        return resp.status, payload

    def infer(self, body: dict, request_id: str) -> dict:
        data = json.dumps(body, separators=(",", ":")).encode()
        status, payload = self._request("POST", self.infer_url, data, {
            "Content-Type": "application/json", "x-request-id": request_id})
        if status != 200:
            detail = payload.get("error") if isinstance(payload, Mapping) else None
            raise _RowError(f"HTTP {status}" + (f": {detail}" if detail else ""))
        return payload

    def check(self) -> str | None:
        url = self.base + self.proto.ready_path
        try:
            status, payload = self._request("GET", url, None, {})
        except _RowError as e:
            return f"Nothing answered at {self.base} for the {self.role} model ({e})."
        if status == 404:
            return self.proto.not_found(self.role, f"at {self.base}")
        if status != 200 or (isinstance(payload, Mapping) and payload.get("ready") is False):
            return f"The {self.role} model at {self.base} is not ready (GET {url} answered {status})."
        return None


def _no_endpoints(e: ClusterError) -> bool:
    text = str(e)
    return (e.status == 503 and "no endpoints available" in text) or (
        e.status == 404 and 'endpoints "' in text and "not found" in text)


def _service_not_found(e: ClusterError) -> bool:
    text = str(e)
    return e.status == 404 and 'services "' in text and "not found" in text


class _ProxySide(_Side):
    def __init__(self, role: str, kube: Kube, namespace: str, service: str, proto: _Protocol,
                 timeout: float) -> None:
        self.role, self.kube, self.namespace, self.service, self.proto = role, kube, namespace, service, proto
        self.timeout = timeout
        self.label = service
        self.base = f"/api/v1/namespaces/{namespace}/services/{service}:{SERVICE_PORT}/proxy"
        self.where = f"Service {namespace}/{service} (through the API server's service proxy)"

    def infer(self, body: dict, request_id: str) -> dict:
        # The request id travels both as the x-request-id header and as the OIP `id`.
        try:
            _, payload = self.kube.request("POST", self.base + self.proto.infer_path, body=body,
                                           timeout=self.timeout, what=f"{self.role} model {self.service}",
                                           headers={"x-request-id": request_id})
        except ClusterError as e:
            if _no_endpoints(e):
                raise _RowError(f"no ready pod behind Service {self.service}") from None
            if e.status is None:
                text = str(e)
                raise _RowError(f"no answer within {self.timeout:g} s" if "timed out" in text else text
                                ) from None
            detail = str(e).split(": ", 2)[-1] if "error trying to reach" in str(e) else ""
            raise _RowError(f"HTTP {e.status} through the service proxy" + (f": {detail}" if detail else "")
                            ) from None
        return payload

    def check(self) -> str | None:
        path = self.base + self.proto.ready_path
        deadline = time.monotonic() + PROXY_CATCH_UP
        while True:
            try:
                self.kube.request("GET", path, timeout=self.timeout, what=f"{self.role} model {self.service}")
                return None
            except ClusterError as e:
                if not (_service_not_found(e) and self._service_exists() and time.monotonic() < deadline):
                    return self._problem(e)
            # The proxy resolves Services through the API server's cache, which can trail a Service
            # created a moment ago; the Service itself exists, so ask again, briefly.
            time.sleep(0.1)

    def _service_exists(self) -> bool:
        try:
            self.kube.request("GET", f"/api/v1/namespaces/{self.namespace}/services/{self.service}",
                              timeout=self.timeout, what=f"Service {self.service}")
        except ClusterError as e:
            if e.status == 404:
                return False
            raise
        return True

    def _problem(self, e: ClusterError) -> str:
        text = str(e)
        if _no_endpoints(e):
            return "no-endpoints"
        if _service_not_found(e):
            return (f"There is no Service {self.service} in namespace {self.namespace}, so there is no "
                    f"{self.role} model to ask.")
        if e.status == 404:
            return self.proto.not_found(self.role, f"behind Service {self.service}")
        if e.status in (502, 503) and "error trying to reach" in text:
            return (f"The API server could not reach the {self.role} model behind Service "
                    f"{self.service}: {text.split(': ', 2)[-1]}")
        raise e


def _short(e: Any) -> str:
    text = str(e)
    for key in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if key in text:
            return key
    return text[:160]


def _preflight(sides: Sequence[_Side], name: str) -> None:
    with ThreadPoolExecutor(max_workers=len(sides)) as pool:
        problems = list(pool.map(lambda s: s.check(), sides))
    no_pod = [s for s, p in zip(sides, problems, strict=True) if p == "no-endpoints"]
    if len(no_pod) == 2:
        raise MLDeployError(
            f"Neither the primary model {sides[0].label} nor the shadow model {sides[1].label} "
            f"has a ready pod behind its Service, so nothing answered; check their pods with "
            f"%rollout {name}.")
    messages = []
    for side, problem in zip(sides, problems, strict=True):
        if problem == "no-endpoints":
            messages.append(f"The {side.role} model {side.label} has no ready pod behind its Service, "
                            f"so nothing answered; check its pods with %rollout {name}.")
        elif problem:
            messages.append(problem)
    if messages:
        raise MLDeployError(" ".join(messages))


def compare(name: str | None = None, data: Any = None, *, primary_url: str | None = None,
            shadow_url: str | None = None, namespace: str | None = None, kube: Kube | None = None,
            model: str | None = None, via: Literal["proxy", "urls"] | None = None, tolerance: float = 1e-6,
            mode: Mode = "auto", k: int = 5, concurrency: int = 8, timeout: float = 10.0,
            output: str | None = None, protocol: Literal["v2", "predict"] = "v2") -> ShadowReport:
    """Send every row of `data` to the primary and the shadow model at once; compare the answers.

    name: the model's deployment name: Services `<name>` (primary) and `<name>-shadow` (shadow), and the
        model name in `/v2/models/{model}/infer` unless `model` is given.
    data: a list of rows, a NumPy array (one row per first index) or a pandas DataFrame (one input tensor
        per column, which the server sees as one dict per row).
    via: "urls" (`primary_url` and `shadow_url`: base URLs of Open Inference Protocol servers) or
        "proxy" (the API server's service proxy in `namespace`, with `kube` or the default connection).
        Default: "urls" when URLs are given, else "proxy".
    mode: "exact", "numeric" (|p - s| <= tolerance), "label" (argmax or the label itself), "topk" (the k
        best indices of score vectors are the same set), or "auto" (see `choose_mode`).
    output: which output tensor to compare (default: the first one of each answer).
    protocol: "v2" (`POST /v2/models/{model}/infer`, readiness `GET /v2/models/{model}/ready`) or
        "predict" for images that only have `POST /predict` ({"instances": [row]}) and `GET /healthz`;
        with "predict" the request id travels only in the x-request-id header (URLs), not via the proxy.
    concurrency: rows in flight at once; both sides of a row are sent at the same time. Each request
        waits at most `timeout` seconds.

    A side that cannot answer at all (no ready pod, no Service, nothing listening) raises MLDeployError
    with one sentence before any row is sent; a row one side fails is counted in the report.
    """
    rows = _as_rows(data)
    if mode not in MODES:
        raise SpecError(f"Unknown comparison mode {mode!r}; use one of {', '.join(MODES)}.")
    if not (isinstance(concurrency, int) and concurrency >= 1):
        raise SpecError(f"concurrency must be a positive integer, not {concurrency!r}.")
    if not timeout or timeout <= 0:
        raise SpecError(f"timeout must be a positive number of seconds, not {timeout!r}.")
    if tolerance < 0:
        raise SpecError(f"tolerance must not be negative, not {tolerance!r}.")
    if not (isinstance(k, int) and k >= 1):
        raise SpecError(f"k must be a positive integer, not {k!r}.")
    if protocol not in ("v2", "predict"):
        raise SpecError(f"protocol must be 'v2' or 'predict', not {protocol!r}.")
    if protocol == "predict" and output is not None:
        raise SpecError("output= picks an Open Inference Protocol output tensor; /predict has only "
                        "predictions.")
    if via is None:
        via = "urls" if (primary_url or shadow_url) else "proxy"
    model_name = model or name
    sides: list[_Side]
    pool = None
    if via == "urls":
        if not (primary_url and shadow_url):
            raise SpecError("via='urls' needs both primary_url and shadow_url.")
        if not model_name and protocol == "v2":
            raise SpecError("Say which model to ask: name= or model= (the {model} in /v2/models/{model}).")
        import urllib3

        pool = urllib3.PoolManager(num_pools=4, maxsize=concurrency, block=False)
        proto = _Protocol(protocol, model_name or "", output)
        sides = [_UrlSide("primary", primary_url, proto, pool, timeout),
                 _UrlSide("shadow", shadow_url, proto, pool, timeout)]
    elif via == "proxy":
        if not name:
            raise SpecError("via='proxy' needs the model's name (its Services are <name> and <name>-shadow).")
        if kube is None:
            from .connection import connect

            kube = connect()
        ns = namespace or kube.namespace
        proto = _Protocol(protocol, model_name or name, output)
        sides = [_ProxySide("primary", kube, ns, name, proto, timeout),
                 _ProxySide("shadow", kube, ns, name + SHADOW_SUFFIX, proto, timeout)]
    else:
        raise SpecError(f"via must be 'proxy' or 'urls', not {via!r}.")

    try:
        _preflight(sides, name or model_name or "")
        results, wall = _replay(rows, sides, concurrency, proto)
    finally:
        if pool is not None:
            pool.clear()
    return _build_report(name or model_name, "replay", results, mode=mode, tolerance=tolerance, k=k,
                         primary=sides[0].where, shadow=sides[1].where,
                         latency_source="round trip from here", wall_s=wall)


def _replay(rows: list, sides: Sequence[_Side], concurrency: int,
            proto: _Protocol) -> tuple[list[_Row], float]:
    run = uuid.uuid4().hex[:12]
    results = [_Row(request_id=f"{run}-{i:05d}", input=row) for i, row in enumerate(rows)]
    stop = threading.Event()

    def call(side: _Side, body: dict, rid: str) -> tuple[Any, float, str | None]:
        started = time.perf_counter()
        try:
            value = proto.answer(side.infer(body, rid))
            error = None
        except _RowError as e:
            value, error = None, str(e)
        return value, (time.perf_counter() - started) * 1000, error

    def one(i: int) -> None:
        if stop.is_set():
            return
        r = results[i]
        body = proto.body(r.input, r.request_id)
        primary = side_pool.submit(call, sides[0], body, r.request_id)
        r.shadow, r.shadow_ms, r.shadow_error = call(sides[1], body, r.request_id)
        r.primary, r.primary_ms, r.primary_error = primary.result()

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="shadow-primary") as side_pool, \
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="shadow-row") as row_pool:
        futures = [row_pool.submit(one, i) for i in range(len(rows))]
        try:
            for f in futures:
                f.result()
        except BaseException:
            stop.set()
            for f in futures:
                f.cancel()
            raise
    return results, time.perf_counter() - started


# ---------------------------------------------------------------------------------------------------
# Live: join mirrored prediction logs


def _lines(source: str | os.PathLike | Iterable[str]) -> list[str]:
    if isinstance(source, os.PathLike):
        return Path(source).read_text(encoding="utf-8", errors="replace").splitlines()
    if isinstance(source, str):
        if "\n" not in source and not source.lstrip().startswith("{") and source.strip():
            path = Path(source)
            if not path.is_file():
                raise SpecError(f"No log file at {source} (give a path, the log text, or its lines).")
            return path.read_text(encoding="utf-8", errors="replace").splitlines()
        return source.splitlines()
    if isinstance(source, bytes):
        return source.decode(errors="replace").splitlines()
    out = []
    for line in source:
        out.extend((line.decode(errors="replace") if isinstance(line, bytes) else str(line)).splitlines()
                   or [""])
    return out


def _cutoff(since: Any) -> datetime | None:
    if since is None:
        return None
    now = datetime.now(timezone.utc)
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    if isinstance(since, timedelta):
        return now - since
    if _is_num(since):
        return now - timedelta(seconds=float(since))
    if isinstance(since, str):
        try:
            return _cutoff(datetime.fromisoformat(since.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise SpecError(f"since must be a datetime, a timedelta, seconds, or an ISO 8601 time; not {since!r}.")


# A log line longer than this is not read as a record (a reference server's line for a few thousand
# rows is far shorter), nor one nested deeper than MAX_DEPTH (json.loads would recurse on it).
MAX_LINE_CHARS = 4 * 1024 * 1024
MAX_DEPTH = 64


@dataclass
class _Parsed:
    records: dict[str, dict]  # request id -> its one line; ids seen more than once are not here
    unparsed: list[tuple[int, str]]
    ambiguous: set[str]  # request ids on more than one line of this log
    before_since: int


def _too_deep(line: str) -> bool:
    """Whether brackets nest deeper than MAX_DEPTH, counted outside strings, without parsing."""
    depth = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _parse_log(lines: list[str], cutoff: datetime | None) -> _Parsed:
    records: dict[str, dict] = {}
    unparsed: list[tuple[int, str]] = []
    ambiguous: set[str] = set()
    before = 0
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if len(line) > MAX_LINE_CHARS:
            unparsed.append((n, f"a line of {len(line)} characters, longer than {MAX_LINE_CHARS}"))
            continue
        if line.count("[") + line.count("{") > MAX_DEPTH and _too_deep(line):
            unparsed.append((n, f"nested deeper than {MAX_DEPTH} levels: {_cell(line, 60)}"))
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            unparsed.append((n, f"not JSON: {_cell(line, 60)}"))
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("request_id"), str) or not rec["request_id"]:
            unparsed.append((n, f"no request_id: {_cell(line, 60)}"))
            continue
        if not isinstance(rec.get("inputs"), list) or (
                not isinstance(rec.get("outputs"), (dict, list)) and not rec.get("error")):
            unparsed.append((n, f"no inputs/outputs: {_cell(line, 60)}"))
            continue
        if cutoff is not None:
            try:
                ts = datetime.fromisoformat(str(rec.get("ts")).replace("Z", "+00:00"))
                ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
            except ValueError:
                unparsed.append((n, f"no readable ts to compare with since: {_cell(line, 60)}"))
                continue
            if ts < cutoff:
                before += 1
                continue
        rid = rec["request_id"]
        if rid in ambiguous:
            continue
        if rid in records:
            # Two lines, one id: which of them the other side's line answers cannot be known.
            del records[rid]
            ambiguous.add(rid)
            continue
        records[rid] = rec
    return _Parsed(records, unparsed, ambiguous, before)


def _logged(rec: dict, output: str | None, i: int) -> Any:
    outputs = rec.get("outputs")
    if isinstance(outputs, dict):
        if not outputs:
            raise _RowError("the log line has no outputs")
        key = output if output is not None else next(iter(outputs))
        if key not in outputs:
            raise _RowError(f"the log line has no output named {key!r}")
        outputs = outputs[key]
    if not isinstance(outputs, list) or i >= len(outputs):
        raise _RowError("the log line has fewer outputs than inputs")
    return outputs[i]


def _side_of(rec: dict, output: str | None, i: int) -> tuple[Any, str | None]:
    if rec.get("error"):
        return None, str(rec["error"])
    try:
        return _logged(rec, output, i), None
    except _RowError as e:
        return None, str(e)


def _latency(rec: dict) -> float | None:
    value = rec.get("latency_ms")
    return float(value) if _is_num(value) else None


def live(name: str | None = None, *, primary_log: str | os.PathLike | Iterable[str],
         shadow_log: str | os.PathLike | Iterable[str], since: Any = None, mode: Mode = "auto",
         tolerance: float = 1e-6, k: int = 5, output: str | None = None) -> ShadowReport:
    """Join the primary's and the shadow's prediction log lines by request id into a ShadowReport.

    primary_log / shadow_log: a path, the log text, or an iterable of lines (a file object, a list).
    since: keep lines from this moment on (a datetime, a timedelta or seconds ago, or an ISO 8601 time);
        older lines are counted in `summary.before_since`.
    Lines that are not prediction records and request ids seen on one side only are counted in the
    summary and listed in `.unparsed` / `.unmatched`. A request id on more than one line of a side is
    ambiguous: it is counted (`summary.duplicate_ids`) and paired with nothing. A pair whose inputs
    differ is not the same request: it is counted (`summary.input_mismatches`) and left out of the
    agreement. Latencies are the servers' own (`latency_ms`).
    """
    if mode not in MODES:
        raise SpecError(f"Unknown comparison mode {mode!r}; use one of {', '.join(MODES)}.")
    cutoff = _cutoff(since)
    p = _parse_log(_lines(primary_log), cutoff)
    s = _parse_log(_lines(shadow_log), cutoff)
    # An id on several lines of either side pairs nothing: it is counted, never guessed at.
    ambiguous = p.ambiguous | s.ambiguous
    rows: list[_Row] = []
    mismatches = 0
    for rid, prec in p.records.items():
        srec = s.records.get(rid)
        if srec is None or rid in ambiguous:
            continue
        p_inputs, s_inputs = prec["inputs"], srec["inputs"]
        if p_inputs != s_inputs:
            # Not the same request (a reused or crafted id): comparing the answers would mean nothing.
            mismatches += 1
            continue
        n = max(len(p_inputs), 1)
        for i in range(n):
            row = _Row(request_id=rid if n == 1 else f"{rid}#{i}",
                       input=p_inputs[i] if i < len(p_inputs) else None,
                       primary_ms=_latency(prec), shadow_ms=_latency(srec))
            row.primary, row.primary_error = _side_of(prec, output, i)
            row.shadow, row.shadow_error = _side_of(srec, output, i)
            rows.append(row)
    unmatched = [("primary", rid) for rid in p.records if rid not in s.records and rid not in ambiguous]
    unmatched += [("shadow", rid) for rid in s.records if rid not in p.records and rid not in ambiguous]
    unparsed = [("primary", n, why) for n, why in p.unparsed] + [("shadow", n, why) for n, why in s.unparsed]
    return _build_report(
        name, "live", rows, mode=mode, tolerance=tolerance, k=k, primary="primary prediction log",
        shadow="shadow prediction log", latency_source="server-side, from the log lines",
        unmatched_primary=sum(1 for side, _ in unmatched if side == "primary"),
        unmatched_shadow=sum(1 for side, _ in unmatched if side == "shadow"),
        unparsed_primary=len(p.unparsed), unparsed_shadow=len(s.unparsed),
        duplicate_ids=len(ambiguous), input_mismatches=mismatches,
        before_since=p.before_since + s.before_since, unmatched=unmatched, unparsed=unparsed)


# ---------------------------------------------------------------------------------------------------
# Live from pods: read the logs through the API server


# What one pod's log read may bring back at most: its newest TAIL_LINES lines, and of those at most
# LIMIT_BYTES (the API server cuts there; the cut line is dropped). Both are said in the report.
TAIL_LINES = 50_000
LIMIT_BYTES = 32 * 1024 * 1024


def _get_text(kube: Kube, path: str, query: Mapping[str, Any], timeout: float, what: str) -> str:
    """GET a plain-text subresource (a pod log); the query bounds it (tailLines, limitBytes)."""
    return kube.text(path, query=query, timeout=timeout, what=what)


def _bounded_log(text: str, pod: str, tail_lines: int, limit_bytes: int) -> tuple[list[str], str | None]:
    """A pod log's lines, and a note when a bound was reached (so older or newer lines were not read)."""
    lines = text.splitlines()
    if len(text.encode("utf-8", errors="replace")) >= limit_bytes:
        if lines and not text.endswith("\n"):
            lines.pop()  # cut mid-line by limitBytes
        return lines, f"pod {pod}: only the first {limit_bytes} bytes of its last {tail_lines} lines read"
    if len(lines) >= tail_lines:
        return lines, f"pod {pod}: only its last {tail_lines} lines read"
    return lines, None


def live_from_pods(kube: Kube, namespace: str, name: str, since: float | timedelta | None = None, *,
                   container: str | None = None, mode: Mode = "auto", tolerance: float = 1e-6, k: int = 5,
                   output: str | None = None, timeout: float = 30.0, tail_lines: int = TAIL_LINES,
                   limit_bytes: int = LIMIT_BYTES) -> ShadowReport:
    """`live()` over the logs of the model's pods: stable track = primary, shadow track = shadow.

    Pods are found with `app.kubernetes.io/instance=<name>,mldeploy.io/track=<track>`; each pod's log is
    read with `GET .../pods/{pod}/log?sinceSeconds=...&tailLines=...&limitBytes=...` (all at once), so
    one read brings back at most `tail_lines` lines and `limit_bytes` bytes; when a pod's log reaches
    either bound, `report.primary` / `report.shadow` say so. `container` defaults to each pod's first
    container. Tested against the sandbox, whose kwok serves pod logs from files
    (tests/integration/test_pod_logs.py).
    """
    from . import labels

    seconds = None
    if since is not None:
        seconds = since.total_seconds() if isinstance(since, timedelta) else float(since)
        if seconds <= 0:
            raise SpecError(f"since must be a positive number of seconds, not {since!r}.")
    for value, what in ((tail_lines, "tail_lines"), (limit_bytes, "limit_bytes")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{what} must be a positive whole number, not {value!r}.")
    tracks = {"primary": "stable", "shadow": "shadow"}
    notes: dict[str, list[str]] = {role: [] for role in tracks}

    def pods(track: str) -> list[dict]:
        selector = f"{labels.APP_INSTANCE}={name},{labels.TRACK}={track}"
        _, body = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               query={"labelSelector": selector}, what=f"pods of {name}")
        return body.get("items", [])

    def log(pod: dict) -> tuple[list[str], str | None]:
        pod_name = pod["metadata"]["name"]
        chosen = container or (pod.get("spec", {}).get("containers") or [{}])[0].get("name")
        query: dict[str, Any] = {"container": chosen, "tailLines": tail_lines, "limitBytes": limit_bytes}
        if seconds is not None:
            query["sinceSeconds"] = max(1, math.ceil(seconds))
        text = _get_text(kube, f"/api/v1/namespaces/{namespace}/pods/{pod_name}/log", query, timeout,
                         f"log of pod {pod_name}")
        return _bounded_log(text, pod_name, tail_lines, limit_bytes)

    with ThreadPoolExecutor(max_workers=8) as pool:
        found = dict(zip(tracks, pool.map(pods, tracks.values()), strict=True))
        for role, track in tracks.items():
            if not found[role]:
                raise MLDeployError(f"No {track} pods of {name} in namespace {namespace} "
                                    f"({labels.APP_INSTANCE}={name},{labels.TRACK}={track}): there are no "
                                    f"{role} logs to read.")
        logs: dict[str, list[str]] = {}
        for role in tracks:
            logs[role] = []
            for lines, note in pool.map(log, found[role]):
                logs[role].extend(lines)
                if note:
                    notes[role].append(note)
    report = live(name, primary_log=logs["primary"], shadow_log=logs["shadow"], mode=mode,
                  tolerance=tolerance, k=k, output=output)
    for role, track in tracks.items():
        where = f"logs of {len(found[role])} {track} pod(s) in {namespace}"
        if notes[role]:
            where += " (bounded read: " + "; ".join(notes[role]) + ")"
        setattr(report, role, where)
    return report
