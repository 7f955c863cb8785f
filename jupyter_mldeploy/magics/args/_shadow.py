"""`%shadow NAME --data VAR` (send rows to both models) or `%shadow NAME --live` (join the pods'
prediction logs) -> ShadowRequest. The stub's docstring is the magic's help."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ...config import parse_seconds
from ...errors import SpecError
from ...shadow.comparison import MODES as COMPARE_MODES
from . import _parser as P
from ._vars import IDENT, lookup, one_line

__all__ = ["COMPARE_MODES", "ShadowRequest", "parse_shadow", "shadow"]


@dataclass(frozen=True)
class ShadowRequest:
    """A parsed `%shadow NAME --data VAR ...` (`data` is the notebook variable's value itself) or
    `%shadow NAME --live [--since DURATION]` (data and data_name None: nothing is sent)."""

    name: str
    data: Any
    data_name: str | None
    primary_url: str | None
    shadow_url: str | None
    mode: str
    tolerance: float
    model: str | None
    timeout: float | None
    namespace: str | None
    context: str | None
    live: bool = False  # join the pods' prediction logs of mirrored traffic instead of sending rows
    since: float | None = None  # with live: seconds of log to read; None: all the pods still have


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model: Services NAME (primary) and NAME-shadow")
@argument("--data", metavar="VAR", help="the notebook variable holding the rows to send: a list, a NumPy "
          "array or a pandas DataFrame")
@argument("--live", action="store_true", help="send nothing: join the prediction logs of the stable and "
          "shadow pods, the requests the router mirrored (instead of --data)")
@argument("--since", metavar="DURATION", help="with --live: only log lines this recent: seconds, or 90s, "
          "10m, 1h (default: all the lines the pods still have)")
@argument("--primary-url", metavar="URL", help="base URL of the primary model server (with --shadow-url)")
@argument("--shadow-url", metavar="URL", help="base URL of the shadow model server (with --primary-url)")
@argument("--mode", choices=COMPARE_MODES, metavar="M", help=f"how answers are compared: "
          f"{', '.join(COMPARE_MODES)} (default auto: picked from the answers' types)")
@argument("--tolerance", metavar="X", help="with --mode numeric: the largest difference that still agrees "
          "(default 1e-6)")
@argument("--model", metavar="M", help="model name in /v2/models/M/infer (default NAME); not with --live")
@P.where
@argument("--timeout", metavar="S", help="how long each request may take (default 10s; with --live, each "
          "pod's log read, default 30s)")
def shadow(line: str = "") -> None:
    """Compare the primary and the shadow model on the same rows, side by side.

    Every row of --data goes to both models at once (Open Inference Protocol v2), with the same request
    id; the answers are paired, compared, and shown with their agreement, the differences and both
    latencies (a table and a plot in a notebook, text elsewhere). Without URLs the Services NAME and
    NAME-shadow are asked through the API server's service proxy.

    With --live nothing is sent: the prediction logs of the stable and the shadow pods (read through
    the API server, like `kubectl logs [--since]`) are joined by request id, so the comparison is of
    the real traffic the router mirrored; latencies are the servers' own.

    Examples::

      %shadow churn --data X_test
      %shadow churn --data X_test --mode numeric --tolerance 0.01
      %shadow churn --data rows --primary-url http://127.0.0.1:8081 --shadow-url http://127.0.0.1:8082
      report = %shadow churn --data X_test
      %shadow churn --live --since 10m
    """


def _url(value: str | None, flag: str) -> str | None:
    if value is None:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{flag} {value!r} is not an http:// or https:// URL, such as http://127.0.0.1:8080.")
    return value


def _data(path: str | None, user_ns: Mapping[str, Any], name: str) -> Any:
    if path is None:
        raise UsageError(f"%shadow needs --data VAR, the notebook variable holding the rows to send, such as "
                         f"%shadow {name} --data X_test, or --live to compare the requests the router "
                         f"mirrored.")
    if not re.fullmatch(IDENT, path):
        shown = path if len(path) <= 40 else path[:39] + "\u2026"
        raise UsageError(f"--data {one_line(shown)!r} is not a variable name: give the name of the notebook "
                         f"variable holding the rows (without braces), such as --data X_test.")
    first = path.split(".")[0]
    if first not in user_ns:
        raise UsageError(f"--data {path}: there is no variable {first!r} in the notebook.")
    return lookup(path, user_ns, "--data")


def _live_options(a: argparse.Namespace) -> float | None:
    """--live against --data, the URLs, --model and --since: one sentence each; the --since seconds."""
    if not a.live:
        if a.since is not None:
            raise UsageError("--since chooses which log lines --live reads, so it needs --live (--data "
                             "sends its rows now).")
        return None
    if a.data is not None:
        raise UsageError("--live compares the requests the router already mirrored and --data sends rows "
                         "now; give one of them.")
    for flag, given in (("--primary-url", a.primary_url), ("--shadow-url", a.shadow_url),
                        ("--model", a.model)):
        if given is not None:
            raise UsageError(f"{flag} applies to the rows --data sends; --live reads the stable and shadow "
                             f"pods' logs through the API server, so drop {flag}.")
    if a.since is None:
        return None
    try:
        return parse_seconds(a.since, "--since")
    except SpecError as e:
        raise UsageError(str(e)) from None


def parse_shadow(line: str, user_ns: Mapping[str, Any] | None = None) -> ShadowRequest:
    """`%shadow NAME --data VAR [--primary-url U --shadow-url U] ...` or `%shadow NAME --live [--since D]`
    -> ShadowRequest."""
    user_ns = {} if user_ns is None else user_ns
    a = P.parse(shadow, line, user_ns)
    name = P.model_name(a.name, "shadow")
    since = _live_options(a)
    primary_url, shadow_url = _url(a.primary_url, "--primary-url"), _url(a.shadow_url, "--shadow-url")
    if (primary_url is None) != (shadow_url is None):
        raise UsageError("--primary-url and --shadow-url go together: give both (model servers you can "
                         "reach) or neither (the Services, through the API server).")
    tolerance = 1e-6
    if a.tolerance is not None:
        try:
            tolerance = float(a.tolerance)
        except ValueError:
            raise UsageError(f"--tolerance {a.tolerance!r} is not a number, such as 0.01.") from None
        if not (tolerance >= 0 and tolerance != float("inf")):
            raise UsageError(f"--tolerance {a.tolerance!r} must be a finite number of 0 or more.")
    model = a.model
    if model is not None and not re.fullmatch(r"[A-Za-z0-9][-_.A-Za-z0-9]*", model):
        raise UsageError(f"--model {model!r} is not a model name: letters, digits, '-', '_' and '.'.")
    data = None if a.live else _data(a.data, user_ns, name)
    return ShadowRequest(name, data, a.data, primary_url, shadow_url, a.mode or "auto", tolerance, model,
                         P.timeout(a.timeout), P.namespace(a.namespace), P.context(a.context), a.live, since)
