"""`%canary NAME [PERCENT]`, `%mirror NAME [PERCENT]` and `%steps NAME 10,25,50,100`: a rollout in
progress and how to move it. Their stubs' docstrings are the magics' help."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ...config import parse_seconds
from ...errors import SpecError
from ...traffic import check_schedule
from . import _parser as P

__all__ = ["CanaryRequest", "StepsRequest", "canary", "mirror", "parse_canary", "parse_mirror", "parse_steps",
           "steps"]


@dataclass(frozen=True)
class CanaryRequest:
    """A parsed `%canary NAME [PERCENT]`: weight None means show (the slider, or the current split)."""

    name: str
    weight: int | None
    namespace: str | None
    context: str | None


@dataclass(frozen=True)
class StepsRequest:
    """A parsed `%steps NAME 10,25,50,100 [--every 5m] [--once]`."""

    name: str
    schedule: tuple[int, ...]
    every: float  # seconds between steps
    once: bool
    namespace: str | None
    context: str | None
    timeout: float | None


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a canary rollout in progress")
@argument("weight", nargs="?", metavar="PERCENT",
          help="percent of requests the canary answers, 0 to 100; without it: a slider in a notebook, the "
               "current split elsewhere")
@P.where
def canary(line: str = "") -> None:
    """Move a canary rollout's traffic: the percent of requests the canary answers.

    One write to the route object (an HTTPRoute, a VirtualService or the canary Ingress); without a
    router the stable and canary Deployments are resized, and the result says what split the replica
    count really allows. In a notebook, `%canary NAME` alone shows a slider (one write once the slider
    stops moving, disabled while the canary has no ready pod) with Promote and Roll back buttons.

    Examples::

      %canary churn 30
      %canary churn 0
      %canary churn
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a shadow rollout in progress")
@argument("percent", nargs="?", metavar="PERCENT",
          help="percent of requests copied to the shadow, 0 to 100; without it: the current mirror")
@P.where
def mirror(line: str = "") -> None:
    """Change how much traffic a shadow rollout copies to the shadow model.

    One write to the route object (an HTTPRoute's RequestMirror percent or a VirtualService's
    mirrorPercentage). Users are always answered by the stable model; the shadow's answers are
    discarded by the router; compare them with `%shadow NAME --live` (or send rows: --data VAR).

    Examples::

      %mirror churn 100
      %mirror churn 10
      %mirror churn
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a canary rollout in progress")
@argument("schedule", nargs="?", metavar="PERCENTS",
          help="rising canary weights separated by commas, the last one usually 100: 10,25,50,100")
@P.where
@argument("--every", metavar="DURATION", help="how long each step is watched before the next: seconds, or "
          "30s, 5m, 1h (default 5m)")
@argument("--once", action="store_true", help="take one step and return (for a scheduled pipeline: the next "
          "run takes the next step)")
@argument("--timeout", metavar="S", help="how long to wait for the promotion at 100%% (default "
          "MLDeploy.timeout)")
def steps(line: str = "") -> None:
    """Move a canary through rising weights, promoting it at the end.

    Before each step the canary must have a ready pod and no failing one; otherwise the rollout is
    rolled back and the cell fails with the reason. Reaching 100 promotes the canary. The step reached
    is kept on the cluster, so `--once` in tomorrow's run takes the next one.

    Examples::

      %steps churn 10,25,50,100 --every 5m
      %steps churn 50,100 --every 30s
      %steps churn 10,25,50,100 --once
    """


def parse_canary(line: str, user_ns: Mapping[str, Any] | None = None) -> CanaryRequest:
    """`%canary NAME [PERCENT]` -> CanaryRequest."""
    return _name_and_percent(canary, "canary", "weight", line, user_ns)


def parse_mirror(line: str, user_ns: Mapping[str, Any] | None = None) -> CanaryRequest:
    """`%mirror NAME [PERCENT]` -> CanaryRequest whose weight is the mirror percent."""
    return _name_and_percent(mirror, "mirror", "percent", line, user_ns)


def _name_and_percent(func: Callable, magic: str, field: str, line: str,
                      user_ns: Mapping[str, Any] | None) -> CanaryRequest:
    a = P.parse(func, line, {} if user_ns is None else user_ns)
    name = P.model_name(a.name, magic)
    value = getattr(a, field)
    percent = None if value is None else P.percent(value.rstrip("%"), f"%{magic}'s {field}")
    return CanaryRequest(name, percent, P.namespace(a.namespace), P.context(a.context))


def _schedule(text: str | None, name: str) -> tuple[int, ...]:
    if text is None:
        raise UsageError(f"%steps needs the weights to go through, such as %steps {name} 10,25,50,100.")
    try:
        return check_schedule(text, "%steps")  # the one schedule rule, the same as rollout.steps()
    except SpecError as e:
        raise UsageError(str(e)) from None


def parse_steps(line: str, user_ns: Mapping[str, Any] | None = None) -> StepsRequest:
    """`%steps NAME 10,25,50,100 [--every 5m] [--once]` -> StepsRequest."""
    a = P.parse(steps, line, {} if user_ns is None else user_ns)
    name = P.model_name(a.name, "steps")
    schedule = _schedule(a.schedule, name)
    every = 300.0
    if a.every is not None:
        if a.once:
            raise UsageError("--once takes one step and returns, so --every does not apply; give one of "
                             "them.")
        try:
            every = parse_seconds(a.every, "--every")
        except SpecError as e:
            raise UsageError(str(e)) from None
    return StepsRequest(name, schedule, every, a.once, P.namespace(a.namespace), P.context(a.context),
                        P.timeout(a.timeout))
