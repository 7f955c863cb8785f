"""A `%deploy` line's strategy and rollout flags (--strategy, --weight, --mirror, --router, --gateway and
Knative's --min-scale/--max-scale/--concurrency), checked against each other before any connection."""

from __future__ import annotations

import argparse
import difflib
from typing import Any

from IPython.core.error import UsageError

from ...errors import SpecError
from ...traffic import ROLLOUT_STRATEGIES, ROUTERS, STRATEGIES
from . import _parser as P

__all__ = ["AVAILABLE_STRATEGIES", "ROLLOUT_ROUTERS", "ROLLOUT_STRATEGIES"]

AVAILABLE_STRATEGIES = STRATEGIES  # the names the magics and their tests have imported
# The traffic layers the rollout operations drive (traffic.ROUTERS, the one list), or auto: chosen from
# what the cluster serves. knative also takes plain deploys (the model as a Knative Service).
ROLLOUT_ROUTERS = ("auto", *ROUTERS)


def strategy(value: str | None) -> str | None:
    if value is None or value in STRATEGIES:
        return value
    close = difflib.get_close_matches(value, STRATEGIES, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(f"--strategy {value!r} is not one of {', '.join(STRATEGIES)}{hint}.")


def rollout_options(a: argparse.Namespace, rollout: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    """--weight, --mirror, --router and --gateway checked against the strategy; pure, one sentence each."""
    weight, mirror = P.percent(a.weight, "--weight"), P.percent(a.mirror, "--mirror")
    if weight is not None and rollout != "canary":
        raise UsageError("--weight is the share of requests a canary answers, so it needs --strategy canary "
                         "(a shadow takes --mirror, and blue-green switches all at once with %promote).")
    if mirror is not None and rollout != "shadow":
        raise UsageError("--mirror is the percent of requests copied to a shadow, so it needs --strategy "
                         "shadow.")
    scale = _knative_scale(a)
    if rollout is None:
        if a.router == "knative":
            for flag, given in (("--atomic", a.atomic), ("--panel", a.panel), ("--dry-run server",
                                                                                 a.dry_run == "server")):
                if given:
                    raise UsageError(f"{flag} does not apply with --router knative: Knative keeps the "
                                     f"current revision answering until the new one is Ready, and "
                                     f"%rollback {a.name or 'NAME'} goes back to an earlier revision.")
            return {"router": "knative", "knative_scale": scale}
        if a.router is not None:
            raise UsageError(f"--router chooses the traffic layer of a rollout, so it needs --strategy "
                             f"{', '.join(ROLLOUT_STRATEGIES[:-1])} or {ROLLOUT_STRATEGIES[-1]}.")
        return {}
    if a.create_namespace:
        raise UsageError(f"--create-namespace is for a first deploy: a {rollout} rollout starts beside the "
                         f"deployed stable model, so its namespace exists; drop --create-namespace.")
    for flag, given in (("--atomic", a.atomic), ("--panel", a.panel)):
        if given:
            raise UsageError(f"{flag} applies to plain deploys, not to a {rollout} rollout: drop {flag} (a "
                             f"rollout is undone with %rollback {a.name or 'NAME'}).")
    gateway = None
    if fields.get("expose") != "gateway" and "gateway" in fields:
        # Not exposed through the Gateway: the parent Gateway is the rollout route's, not the spec's.
        from ...spec import validate_gateway  # pure: the one Gateway-name rule

        gateway = fields.pop("gateway")
        try:
            validate_gateway(gateway, "--gateway")
        except SpecError as e:
            raise UsageError(P.sentence(str(e))) from None
    if a.router not in (None, "auto"):
        from ...traffic import check_supported  # pure: what the strategy and router can do, no cluster

        try:
            check_supported(rollout, a.router, weight=weight, mirror=mirror)
        except SpecError as e:
            raise UsageError(P.sentence(str(e))) from None
    return {"rollout": rollout, "weight": weight, "mirror": mirror, "router": a.router, "gateway": gateway,
            "knative_scale": scale}


def _knative_scale(a: argparse.Namespace) -> dict[str, int] | None:
    """--min-scale, --max-scale and --concurrency, which only Knative's autoscaler reads."""
    given = {k: v for k, v in (("min", a.min_scale), ("max", a.max_scale), ("target", a.concurrency))
             if v is not None}
    if not given:
        return None
    if a.router != "knative":
        flags = ", ".join(f for f, v in (("--min-scale", a.min_scale), ("--max-scale", a.max_scale),
                                         ("--concurrency", a.concurrency)) if v is not None)
        raise UsageError(f"{flags} size a Knative revision, so they need --router knative (other routers "
                         f"scale with --replicas or --autoscale).")
    out = {}
    for key, flag in (("min", "--min-scale"), ("max", "--max-scale"), ("target", "--concurrency")):
        if key in given:
            text = given[key].strip()
            if not (text.isascii() and text.isdigit()):
                raise UsageError(f"{flag} {given[key]!r} is not a whole number.")
            out[key] = int(text)
    from ...render.routers.knative import Scale  # pure: validation only

    try:
        Scale(**out)
    except SpecError as e:
        raise UsageError(P.sentence(str(e))) from None
    return out


def spec_strategy(value: str | None) -> str | None:
    """The DeploySpec's own strategy: a rollout strategy is not one (it is handled by the magic)."""
    value = strategy(value)
    return None if value in ROLLOUT_STRATEGIES else value


def rollout_strategy(line_value: str | None, fields: dict[str, Any]) -> str | None:
    """The rollout strategy from the line or the body (removed from the spec's fields), or None."""
    line_rollout = line_value if line_value in ROLLOUT_STRATEGIES else None
    body_value = fields.get("strategy")
    if line_rollout is not None and body_value is not None and body_value != line_rollout:
        raise UsageError(f"strategy is given both on the %%deploy line (--strategy {line_rollout}) and in "
                         f"the body ({body_value}); give it in one place.")
    if body_value in ROLLOUT_STRATEGIES:
        return fields.pop("strategy")
    return line_rollout
