"""Ending a rollout: promote (two rounds, claimed on the route), release, abort, and finishing an
interrupted promotion."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

from .. import api
from .. import labels as L
from ..connection import cluster
from ..errors import (
    MLDeployError,
    NotDeployed,
    RolloutFailed,
    RolloutInterrupted,
    WaitTimeout,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import collection_path
from ..render import render
from ..render.routers import ROUTER
from ..spec import DeploySpec
from ..status import RolloutStatus
from .reads import (
    _annotations,
    _current,
    _get_or_none,
    _k8s_time,
    _probe,
    _rollout_from,
    _written_at,
    candidate_spec,
    stable_spec,
)
from .state import (
    CANDIDATE_TRACKS,
    ENDED,
    ENDED_STRATEGY,
    PROMOTING,
    ROLLOUT_ROUTERS,
    Rollout,
    _check_where,
    _forget,
    _route,
)
from .writes import _apply, _write, _write_state

Phase = Callable[[str], None]


def promote(name: str, *, namespace: str | None = None, kube: Kube | None = None,
            kubeconfig: str | None = None, context: str | None = None, wait: bool = True,
            timeout: float = 600, on_status: Callable[[RolloutStatus], None] | None = None,
            on_phase: Phase | None = None) -> Rollout | None:
    """The candidate becomes stable.

    canary and shadow: (1) the stable takes the candidate's spec exactly (image, env, resources,
    probes, pull secrets, security context, volumes, selectors, tolerations, labels, annotations; its
    own replica count, autoscaling and exposure stay) and rolls, surge first, while the route still
    splits; (2) once it is complete, the route goes to 100% stable, and only after that write is
    accepted is the candidate track removed. blue-green: the switch; all traffic moves to the preview,
    the old stable stays for an instant rollback until `release`.

    Interrupted (Ctrl-C, the timeout, a papermill cell timeout), it stops before the next round and
    raises RolloutInterrupted saying where; `promote` again, from any kernel, carries on.
    `on_phase(name)` is called as each round begins: "claim", "roll", "switch", "cleanup".
    """
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.router == "knative":
        from .. import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.promote(r, wait=wait, timeout=timeout)
    if r.strategy == "blue-green" and r.weight == 0 and r.phase != PROMOTING:
        return _write_state(r, replace(r, weight=100))
    return _finish(r, timeout=timeout, on_status=on_status, on_phase=on_phase)


def release(name: str, *, namespace: str | None = None, kube: Kube | None = None,
            kubeconfig: str | None = None, context: str | None = None, wait: bool = True,
            timeout: float = 600, on_status: Callable[[RolloutStatus], None] | None = None,
            on_phase: Phase | None = None) -> Rollout | None:
    """After a blue-green switch: make the preview the stable track and remove the preview."""
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.strategy != "blue-green" or (r.weight != 100 and r.phase != PROMOTING):
        raise MLDeployError(f"{name} has no switched blue-green rollout to release; promote it first.")
    if r.router == "knative":
        from .. import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.promote(r, wait=wait, timeout=timeout)
    return _finish(r, timeout=timeout, on_status=on_status, on_phase=on_phase)


def _promoted(stable: DeploySpec, cand: DeploySpec) -> DeploySpec:
    """Exactly the candidate on the stable track, with the stable's own size and exposure (the replica
    router's split count was never part of either spec)."""
    return cand.with_(track="stable", replicas=stable.replicas, autoscale=stable.autoscale,
                      expose=stable.expose, host=stable.host, gateway=stable.gateway,
                      ingress_class=stable.ingress_class)


def _finish(r: Rollout, *, timeout: float, on_status, on_phase: Phase | None) -> None:
    step = on_phase or (lambda _p: None)
    where = f"before the stable {r.name} started rolling (traffic unchanged)"
    phase = "claim"

    def note(text: str) -> None:
        nonlocal where
        where = text

    try:
        if r.phase != PROMOTING:
            step("claim")
            # The claim: guarded like every write, so two kernels cannot both promote.
            r = _write_state(r, replace(r, phase=PROMOTING))
        note(f"before the stable {r.name} finished rolling to {r.candidate_version or 'the candidate'} "
             f"(traffic still goes as before, and {r.candidate_name} still runs)")
        phase = "roll"
        step("roll")
        stable = stable_spec(r.kube, r.namespace, r.name)
        cand = candidate_spec(r.kube, r.namespace, r.name, r.candidate_track)
        promoted = _promoted(stable, cand)
        # Round 1: the stable track takes the candidate's spec; the route (which replaces the stable's
        # own exposure of the same name) keeps its split and its state meanwhile.
        handle = api.deploy(promoted, namespace=r.namespace, kube=r.kube, wait=True, timeout=timeout,
                            on_status=on_status, replica_split=r.router in ("istio", "replicas"),
                            extra=_route(r))
        if getattr(handle, "interrupted", False):
            raise KeyboardInterrupt
        note(f"after the stable {r.name} rolled to {r.candidate_version or 'the candidate'} but before the "
             f"route switched to it ({r.candidate_name} still runs)")
        phase = "switch"
        step("switch")
        _end(r, promoted, "promoted", step, note)
    except (KeyboardInterrupt, WaitTimeout, RolloutFailed) as e:
        cause = ("interrupted" if isinstance(e, KeyboardInterrupt)
                 else f"the wait timed out after {timeout:g} s" if isinstance(e, WaitTimeout) else str(e))
        raise RolloutInterrupted(
            f"The promotion of {r.name} stopped {where} ({cause.rstrip('.')}); run %promote {r.name} "
            f"(rollout.promote) again, from any kernel, to carry on.", phase=phase) from None
    return None


def _end(r: Rollout, stable: DeploySpec, ended: str, step: Phase, note: Callable[[str], None]) -> None:
    """Round 2 of a promotion, or a rollback: the route to 100% stable first (guarded), then the stable
    objects a router had changed, and only then, the switch accepted, the candidate track removed."""
    done = replace(r, weight=0, mirror=None, step=-1, steps=(), phase=None,
                   stable_version=stable.effective_version, candidate_version=None,
                   route_labels=dict(stable.labels), route_annotations=dict(stable.annotations))
    _write(r, done, _route(done, candidate=False, ended=ended))
    words = "promoted" if ended == "promoted" else "rolled back"
    note(f"after the switch: {r.name} is {words} and answers every request, but {r.candidate_name} still "
         f"runs")
    after: list[dict] = []
    if r.router == "istio":  # back to the per-track selector: only the stable's pods
        after = [m for m in render(stable, r.namespace) if m["kind"] == "Service"]
    elif r.router == "replicas":  # the stable's own replica count (the Service is the route, written)
        after = [m for m in render(stable, r.namespace) if m["kind"] == "Deployment"]
    if after:
        _apply(r, after)
    step("cleanup")
    _remove_candidate(r.kube, r.namespace, r.name, r.candidate_track, r.router)
    _forget(r)


def _remove_candidate(kube: Kube, ns: str, name: str, track: str, router: str) -> list[str]:
    gone: list[str] = []
    if router == "nginx":
        # nginx's split lives on the canary Ingress: it goes before the candidate's Service it points at.
        gone += _delete_canary_ingress(kube, ns, name)
    with contextlib.suppress(NotDeployed):  # nothing left of that model: an earlier call removed it
        gone += api.undeploy(name, namespace=ns, kube=kube, track=track)
    return gone


def _delete_canary_ingress(kube: Kube, ns: str, name: str) -> list[str]:
    """The nginx router's canary Ingress, which no state renders once a rollout ends: deleted by its
    recorded uid, so a same-named Ingress that is not ours stays."""
    anchor = owner.cached(kube, ns, name) or owner.read(kube, ns, name)
    key = ("networking.k8s.io/v1", "Ingress", L.track_name(name, "canary"))
    if anchor is None or key not in anchor.objects:
        return []
    gone = kapply.delete_owned(kube, [anchor.objects[key]], ns)
    owner.record(kube, ns, name, removed=[key])
    return gone


def finish_interrupted(name: str, *, namespace: str | None = None, kube: Kube | None = None,
                       kubeconfig: str | None = None, context: str | None = None) -> list[str]:
    """After a promotion or rollback stopped between its switch and its cleanup: remove the candidate
    track it left. Returns what was removed ([] when there was nothing to finish)."""
    kube = cluster(kube, kubeconfig, context)
    ns = namespace or kube.namespace
    _check_where(name, ns)
    seen = _probe(kube, ns, name)
    if _rollout_from(seen, name, ns, kube) is not None:
        return []
    for router in ROLLOUT_ROUTERS:
        obj = seen.route_of(router, name, ns)
        ann = _annotations(obj)
        if ann.get(ROUTER) == router and ann.get(ENDED) and ann.get(ENDED_STRATEGY) in CANDIDATE_TRACKS:
            track = CANDIDATE_TRACKS[ann[ENDED_STRATEGY]]
            left = _get_or_none(kube, f"{collection_path('apps/v1', 'Deployment', ns)}/{name}-{track}")
            # Only a candidate from before the end (server times both): one deployed since is not left over.
            made = _k8s_time((left or {}).get("metadata", {}).get("creationTimestamp"))
            ended_at = _written_at(obj)
            if made is not None and ended_at is not None and made <= ended_at:
                return _remove_candidate(kube, ns, name, track, router)
    return []


def abort(name: str, *, namespace: str | None = None, kube: Kube | None = None, kubeconfig: str | None = None,
          context: str | None = None) -> None:
    """Roll the rollout back: all traffic to stable first (a guarded write), then the candidate removed."""
    r = _current(name, namespace, cluster(kube, kubeconfig, context))
    if r.router == "knative":
        from .. import rollout_knative

        _forget(r)  # its state lives on the Knative Service, read again there
        return rollout_knative.abort(r)
    if r.phase == PROMOTING:
        raise MLDeployError(f"{name} is being promoted (its stable may already run the candidate), so it "
                            f"cannot be rolled back half-way; nothing was written. Finish with %promote "
                            f"{name}, then %rollback {name} goes back to the previous revision.")
    stable = stable_spec(r.kube, r.namespace, name)
    _end(r, stable, "rolled-back", lambda _p: None, lambda _t: None)
