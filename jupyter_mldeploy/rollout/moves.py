"""Moving traffic: set_weight, set_mirror, and the progressive steps."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from .. import api, traffic
from ..connection import cluster
from ..duration import parse_seconds
from ..errors import (
    MLDeployError,
    RolloutFailed,
    SpecError,
)
from ..kube.client import Kube
from ..render import render
from .finish import abort, promote
from .reads import _current, candidate_spec, stable_spec
from .state import PROMOTING, Rollout, _forget
from .writes import _write_state


def _not_promoting(r: Rollout, doing: str) -> None:
    if r.phase == PROMOTING:
        raise MLDeployError(f"{r.name} is being promoted, so {doing} would fight the promotion; nothing "
                            f"was written. Finish it with %promote {r.name} (from any kernel).")


def set_weight(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None,
               kubeconfig: str | None = None, context: str | None = None) -> Rollout:
    """Send `percent` of requests to the canary: one write to the route object, carrying the
    resourceVersion it is based on (StaleRollout when the rollout changed elsewhere; nothing written)."""
    traffic.check_percent(percent, "the canary weight")
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.router == "knative":
        from .. import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.set_weight(r, percent)
    if r.strategy != "canary":
        raise SpecError(f"{name} is a {r.strategy} rollout; a weight applies to canary rollouts "
                        f"(blue-green switches with promote, shadow uses set_mirror).")
    _not_promoting(r, "moving its weight")
    new = replace(r, weight=percent)
    then: list[dict] = []
    if r.router == "replicas":
        stable = stable_spec(r.kube, r.namespace, name)
        cand = candidate_spec(r.kube, r.namespace, name, "canary")
        split = traffic.achievable_split(percent, new.stable_replicas)
        new.split_sentence = split.sentence
        then = [m for spec, n in ((stable, split.stable), (cand, split.canary))
                for m in render(spec.with_(replicas=n), r.namespace) if m["kind"] == "Deployment"]
    return _write_state(r, new, then=then)


def set_mirror(name: str, percent: int, *, namespace: str | None = None, kube: Kube | None = None,
               kubeconfig: str | None = None, context: str | None = None) -> Rollout:
    """Copy `percent` of requests to the shadow (its answers are discarded by the router)."""
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.strategy != "shadow":
        raise SpecError(f"{name} is a {r.strategy} rollout; a mirror applies to shadow rollouts.")
    traffic.check_supported("shadow", r.router, mirror=percent)
    _not_promoting(r, "changing its mirror")
    return _write_state(r, replace(r, mirror=percent))





def parse_every(text: str | float | int) -> float:
    """The wait between steps in seconds (duration.parse_seconds; zero allowed)."""
    return parse_seconds(text, "every", allow_zero=True)


def steps(name: str, schedule: Sequence[int], *, every: str | float = "5m",
          check: Callable[[], bool] | None = None, once: bool = False, namespace: str | None = None,
          kube: Kube | None = None, kubeconfig: str | None = None, context: str | None = None,
          timeout: float = 600, on_step: Callable[[Rollout], None] | None = None) -> Rollout | None:
    """Advance the canary through `schedule` (e.g. [10, 25, 50, 100]) while its pods are Ready and
    `check()` passes; roll back when either fails. With once=True, one step and return (pipelines).
    `on_step(rollout)` is called after each weight is written, so a caller can show progress."""
    sched = traffic.check_schedule(schedule)
    wait_s = parse_every(every)
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.strategy != "canary":
        raise SpecError(f"steps apply to canary rollouts; {name} is a {r.strategy} rollout.")
    if r.router == "knative":
        from .. import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.steps(r, sched, wait_s=wait_s, check=check, once=once, timeout=timeout,
                                     on_step=on_step)
    _not_promoting(r, "another step")
    while True:
        _healthy_or_abort(r, check)
        nxt = r.step + 1 if r.steps == sched else _next_index(sched, r.weight)
        if nxt >= len(sched):
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        target = sched[nxt]
        r = _write_state(r, replace(r, weight=target, step=nxt, steps=sched))
        if target == 100:
            return promote(name, namespace=r.namespace, kube=r.kube, timeout=timeout)
        if on_step is not None:
            on_step(r)
        if once:
            return r
        _observe(r, check, wait_s)
        r = _current(name, r.namespace, r.kube)


def _next_index(sched: tuple[int, ...], weight: int) -> int:
    return next((i for i, s in enumerate(sched) if s > weight), len(sched))


def _healthy_or_abort(r: Rollout, check: Callable[[], bool] | None) -> None:
    status = api.get(r.name, namespace=r.namespace, kube=r.kube, track=r.candidate_track).last_status
    why = None
    if status is None or status.ready < 1:
        why = "the canary has no ready pod"
    elif status.diagnosis is not None and status.diagnosis.fatal:
        why = str(status.diagnosis)
    elif check is not None and not check():
        why = "the check failed"
    if why:
        abort(r.name, namespace=r.namespace, kube=r.kube)
        raise RolloutFailed(f"The canary of {r.name} was rolled back at {r.weight}%: {why}.",
                            diagnosis=status.diagnosis if status else None)


def _observe(r: Rollout, check: Callable[[], bool] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        _healthy_or_abort(r, check)
