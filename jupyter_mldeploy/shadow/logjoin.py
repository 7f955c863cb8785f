"""`live()`: join the primary's and the shadow's prediction log lines by request id, for traffic a
router mirrored. Lines that do not parse and ids with no partner are counted and shown, never dropped."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..errors import SpecError
from .cells import cell
from .comparison import Mode, check_mode, is_number
from .report import Row, ShadowReport, build_report
from .wire import RowError


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
    if is_number(since):
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
            unparsed.append((n, f"nested deeper than {MAX_DEPTH} levels: {cell(line, 60)}"))
            continue
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):
            unparsed.append((n, f"not JSON: {cell(line, 60)}"))
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("request_id"), str) or not rec["request_id"]:
            unparsed.append((n, f"no request_id: {cell(line, 60)}"))
            continue
        if not isinstance(rec.get("inputs"), list) or (
                not isinstance(rec.get("outputs"), (dict, list)) and not rec.get("error")):
            unparsed.append((n, f"no inputs/outputs: {cell(line, 60)}"))
            continue
        if cutoff is not None:
            try:
                ts = datetime.fromisoformat(str(rec.get("ts")).replace("Z", "+00:00"))
                ts = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
            except ValueError:
                unparsed.append((n, f"no readable ts to compare with since: {cell(line, 60)}"))
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
            raise RowError("the log line has no outputs")
        key = output if output is not None else next(iter(outputs))
        if key not in outputs:
            raise RowError(f"the log line has no output named {key!r}")
        outputs = outputs[key]
    if not isinstance(outputs, list) or i >= len(outputs):
        raise RowError("the log line has fewer outputs than inputs")
    return outputs[i]


def _side_of(rec: dict, output: str | None, i: int) -> tuple[Any, str | None]:
    if rec.get("error"):
        return None, str(rec["error"])
    try:
        return _logged(rec, output, i), None
    except RowError as e:
        return None, str(e)


def _latency(rec: dict) -> float | None:
    value = rec.get("latency_ms")
    return float(value) if is_number(value) else None


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
    check_mode(mode)
    cutoff = _cutoff(since)
    p = _parse_log(_lines(primary_log), cutoff)
    s = _parse_log(_lines(shadow_log), cutoff)
    # An id on several lines of either side pairs nothing: it is counted, never guessed at.
    ambiguous = p.ambiguous | s.ambiguous
    rows: list[Row] = []
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
            row = Row(request_id=rid if n == 1 else f"{rid}#{i}",
                       input=p_inputs[i] if i < len(p_inputs) else None,
                       primary_ms=_latency(prec), shadow_ms=_latency(srec))
            row.primary, row.primary_error = _side_of(prec, output, i)
            row.shadow, row.shadow_error = _side_of(srec, output, i)
            rows.append(row)
    unmatched = [("primary", rid) for rid in p.records if rid not in s.records and rid not in ambiguous]
    unmatched += [("shadow", rid) for rid in s.records if rid not in p.records and rid not in ambiguous]
    unparsed = [("primary", n, why) for n, why in p.unparsed] + [("shadow", n, why) for n, why in s.unparsed]
    return build_report(
        name, "live", rows, mode=mode, tolerance=tolerance, k=k, primary="primary prediction log",
        shadow="shadow prediction log", latency_source="server-side, from the log lines",
        unmatched_primary=sum(1 for side, _ in unmatched if side == "primary"),
        unmatched_shadow=sum(1 for side, _ in unmatched if side == "shadow"),
        unparsed_primary=len(p.unparsed), unparsed_shadow=len(s.unparsed),
        duplicate_ids=len(ambiguous), input_mismatches=mismatches,
        before_since=p.before_since + s.before_since, unmatched=unmatched, unparsed=unparsed)
