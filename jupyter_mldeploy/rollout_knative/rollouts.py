"""The handle of a Knative model, and its rollouts by the traffic block: start, set_weight, promote,
abort, rollback, steps, and the reads the widgets use (weights, pods)."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .. import api, traffic
from .. import labels as L
from ..connection import cluster, connect
from ..errors import (
    Interrupted,
    MLDeployError,
    NoRollout,
    RolloutFailed,
    SpecError,
    StaleRollout,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import named_path
from ..render.routers import knative as kn
from ..spec import DeploySpec, inherit, validate_namespace
from .revisions import (
    KnativeStatus,
    RevisionRow,
    _generation,
    _status_of,
    _wait,
    read_with_revisions,
    revisions_of,
    status,
)
from .running import _controller_or_refuse
from .service import (
    API,
    STEPS,
    STRATEGY,
    TRACK_OF,
    Scale,
    _check_spec,
    _clean_template,
    _entry,
    _read_ours,
    _service,
    _state,
    ours,
    read_service,
    spec_of,
    template,
)


@dataclass
class KnativeModel:
    """A model served as a Knative Service; `status()` reads it again."""

    name: str
    namespace: str
    kube: Kube = field(repr=False)
    revision: str | None = None
    last_status: KnativeStatus | None = None
    notes: list[str] = field(default_factory=list)

    def status(self) -> KnativeStatus:
        self.last_status = status(self.name, namespace=self.namespace, kube=self.kube)
        return self.last_status

    def undeploy(self) -> list[str]:
        return api.undeploy(self.name, namespace=self.namespace, kube=self.kube)

    def rollback(self, to: int | str | None = None, *, wait: bool = True,
                 timeout: float = 600) -> KnativeModel:
        return rollback(self.name, to, namespace=self.namespace, kube=self.kube, wait=wait, timeout=timeout)

    def history(self) -> list[RevisionRow]:
        return history(self.name, namespace=self.namespace, kube=self.kube)

    def __str__(self) -> str:
        body = str(self.last_status) if self.last_status is not None else f"{self.name} (Knative Service)"
        return "\n".join([body, *(f"note: {n}" for n in self.notes)])

    def _repr_html_(self) -> str:
        body = self.last_status._repr_html_() if self.last_status is not None else html.escape(self.name)
        return body + "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)




def start(candidate: DeploySpec | Mapping[str, Any], *, strategy: str, weight: int | None = None,
          mirror: int | None = None, namespace: str | None = None, kube: Kube | None = None,
          kubeconfig: str | None = None, context: str | None = None, wait: bool = True, timeout: float = 600,
          scale: Scale | None = None, on_status: Callable[[KnativeStatus], None] | None = None):
    """A canary (or blue-green preview) as a second revision, by the traffic block: the stable revision
    keeps 100 - weight percent; the candidate's revision gets `weight` and a tag of its track.

    The candidate inherits, as with every router: it is the stable revision's spec (read from the
    revision's own template) with only the changes given (`candidate`: a mapping of DeploySpec fields
    with the model's name, or a DeploySpec whose non-default fields are the changes)."""
    from ..rollout import Rollout, _changes

    traffic.check_supported(strategy, "knative", weight=weight if strategy != "shadow" else None,
                            mirror=mirror)  # shadow: refused here, Knative cannot mirror
    if strategy not in TRACK_OF:
        raise SpecError(f"strategy {strategy!r} has no candidate revision; use canary or blue-green.")
    if strategy == "blue-green" and weight not in (None, 0):
        raise SpecError("a blue-green rollout starts with no traffic on the preview; switch it with promote "
                        "once the preview is ready.")
    name, own_ns, changes = _changes(candidate)
    if scale is not None and not isinstance(scale, Scale):
        raise SpecError(f"scale must be a rollout_knative.Scale, got {type(scale).__name__}.")
    kube = cluster(kube, kubeconfig, context)
    ns = validate_namespace(own_ns or namespace or kube.namespace)
    ksvc, anchor = _read_ours(kube, ns, name)
    _controller_or_refuse(kube)
    state = _state(ksvc)
    if state.get(STRATEGY):
        raise MLDeployError(f"{name} already has a rollout in progress: promote it or roll it back first "
                            f"(%promote {name} or %rollback {name}).")
    # The template is the stable revision's while no rollout runs: the candidate is it, changed.
    candidate = inherit(spec_of(ksvc["spec"]["template"])[0], changes).with_(namespace=ns)
    _check_spec(candidate)
    stable_tmpl = ksvc["spec"]["template"]
    stable_rev = state.get(kn.STABLE_REVISION, stable_tmpl["metadata"]["name"])
    stable_scale = spec_of(stable_tmpl)[1]
    tmpl = template(candidate, ns, scale or stable_scale)
    cand_rev = tmpl["metadata"]["name"]
    if cand_rev == stable_rev:
        raise SpecError(f"the candidate has the same image and spec as the stable model (revision "
                        f"{stable_rev}): change the image or the spec to start a rollout.")
    weight = weight or 0
    r = Rollout(candidate.name, ns, strategy, "knative", weight=weight,
                stable_version=state.get(L.STABLE_VERSION), candidate_version=candidate.effective_version,
                kube=kube)
    _write_state(r, ksvc, anchor, tmpl=tmpl, stable_rev=stable_rev, cand_rev=cand_rev)
    if wait:
        _wait_or_note(kube, ns, candidate.name, cand_rev, timeout=timeout, on_status=on_status,
                      done="the candidate revision was written")
    return r


def _wait_or_note(kube: Kube, ns: str, name: str, revision: str, *, timeout: float,
                  on_status: Callable[[KnativeStatus], None] | None, done: str) -> KnativeStatus:
    """_wait, where Ctrl-C stops the waiting only: what was written stays, and the error says so."""
    try:
        return _wait(kube, ns, name, revision, timeout=timeout, on_status=on_status)
    except KeyboardInterrupt:
        raise Interrupted(f"Stopped waiting for {name} (interrupted); {done} and Knative goes on "
                          f"(%rollout {name} shows where it is).") from None


def _rollout_state(r, stable_rev: str, cand_rev: str | None) -> dict[str, str]:
    out = {STRATEGY: r.strategy, L.WEIGHT: str(r.weight), L.STEP: str(r.step),
           STEPS: ",".join(map(str, r.steps)), kn.STABLE_REVISION: stable_rev}
    if r.stable_version:
        out[L.STABLE_VERSION] = r.stable_version
    if r.candidate_version:
        out[L.CANDIDATE_VERSION] = r.candidate_version
    if cand_rev:
        out[kn.CANDIDATE_REVISION] = cand_rev
    return out


def traffic_block(strategy: str, weight: int, stable_rev: str, cand_rev: str | None) -> list[dict]:
    """The Knative Service's `spec.traffic` for a rollout at `weight` percent (pure): both revisions by
    name, each tagged with its track, so a 0% candidate (a blue-green preview) keeps its tag's URL."""
    traffic.check_percent(weight, "the weight")
    if cand_rev is None:
        return [_entry(stable_rev, 100, "stable")]
    if strategy not in TRACK_OF:
        raise SpecError(f"strategy {strategy!r} has no candidate revision; use canary or blue-green.")
    if cand_rev == stable_rev:
        raise SpecError(f"the stable and candidate revisions are both {stable_rev}.")
    return [_entry(stable_rev, 100 - weight, "stable"), _entry(cand_rev, weight, TRACK_OF[strategy])]


def stale_view(r, annotations: dict[str, str]) -> str | None:
    """Why the rollout `r` (a view read earlier) is not the one these Service annotations hold, in one
    sentence; None when it still is (pure). The weight may differ: moving it is what the caller asks."""
    if not annotations.get(STRATEGY):
        return (f"{r.name} has no rollout in progress any more (it was promoted or rolled back since this "
                f"view was read); nothing was written.")
    now = (annotations.get(STRATEGY), annotations.get(L.STABLE_VERSION), annotations.get(L.CANDIDATE_VERSION))
    seen = (r.strategy, r.stable_version, r.candidate_version)
    if now == seen:
        return None
    return (f"{r.name}'s rollout changed since this view was read (it is now {now[0]} from {now[1] or '?'} "
            f"to {now[2] or '?'}, not {seen[0]} from {seen[1] or '?'} to {seen[2] or '?'}); nothing was "
            f"written: read it again (%rollout {r.name}).")


def _write_state(r, ksvc: dict, anchor: owner.Anchor, *, tmpl: dict | None = None,
                 stable_rev: str | None = None, cand_rev: str | None = None) -> kapply.Applied:
    """The Service for rollout `r`: the template (the candidate's), the split and the state, in one write."""
    state = _state(ksvc)
    stable_rev = stable_rev or state[kn.STABLE_REVISION]
    cand_rev = cand_rev or state[kn.CANDIDATE_REVISION]
    tmpl = tmpl or ksvc["spec"]["template"]
    split = traffic_block(r.strategy, r.weight, stable_rev, cand_rev)
    return _service(r.kube, anchor, ksvc, tmpl=_clean_template(tmpl), traffic_=split,
                    state=_rollout_state(r, stable_rev, cand_rev))






def _rollout_now(r) -> tuple[dict, owner.Anchor]:
    """The model's Knative Service as it is now, and its anchor, when it still holds the rollout `r`
    describes (the same strategy and versions); otherwise the view `r` came from is stale (another
    kernel promoted, rolled back or started another rollout since) and nothing is written."""
    ksvc, anchor = _read_ours(r.kube, r.namespace, r.name)
    why = stale_view(r, _state(ksvc))
    if why:
        # The slider (and any caller) shows the cluster's state again on these, as for other routers.
        raise (StaleRollout if _state(ksvc).get(STRATEGY) else NoRollout)(why)
    return ksvc, anchor


def set_weight(r, percent: int):
    """`percent` of requests to the candidate revision: one read (for the resourceVersion) and one write."""
    if r.strategy != "canary":
        raise SpecError(f"{r.name} is a {r.strategy} rollout; a weight applies to canary rollouts "
                        f"(blue-green switches with promote).")
    traffic.check_percent(percent, "the canary weight")
    ksvc, anchor = _rollout_now(r)
    new = replace(r, weight=percent)
    _write_state(new, ksvc, anchor)
    return new


def promote(r, *, wait: bool = True, timeout: float = 600,
            on_status: Callable[[KnativeStatus], None] | None = None):
    """canary: all traffic to the candidate revision, which becomes the stable one (the template already
    is the candidate's, so nothing restarts). blue-green: the first promote switches all traffic to the
    preview and keeps the rollout (rollback switches back); `release` finishes it."""
    ksvc, anchor = _rollout_now(r)
    state = _state(ksvc)
    cand_rev = state[kn.CANDIDATE_REVISION]
    if r.strategy == "blue-green" and state.get(L.WEIGHT, "0") == "0":
        switched = replace(r, weight=100)
        _write_state(switched, ksvc, anchor)
        if wait:
            _wait_or_note(r.kube, r.namespace, r.name, cand_rev, timeout=timeout, on_status=on_status,
                          done="all traffic was switched to the preview")
        return switched
    done = {L.STABLE_VERSION: r.candidate_version or "", kn.STABLE_REVISION: cand_rev, L.WEIGHT: "0"}
    _service(r.kube, anchor, ksvc, tmpl=_clean_template(ksvc["spec"]["template"]),
             traffic_=[_entry(cand_rev, 100, "stable")], state=done)
    if wait:
        _wait_or_note(r.kube, r.namespace, r.name, cand_rev, timeout=timeout, on_status=on_status,
                      done="the promote was written")
    return None


def abort(r, *, wait: bool = True, timeout: float = 600) -> None:
    """All traffic back on the stable revision, and the template back to the stable revision's (Knative
    reuses that revision: same name, same spec). The candidate revision stays, with no traffic, until
    Knative's garbage collection removes it; Knative scales an unrouted revision to zero."""
    ksvc, anchor = _rollout_now(r)
    stable_rev = _state(ksvc)[kn.STABLE_REVISION]
    _back_to(r.kube, anchor, ksvc, stable_rev, wait=wait, timeout=timeout, on_status=None)


def _back_to(kube: Kube, anchor: owner.Anchor, ksvc: dict, revision: str, *, wait: bool, timeout: float,
             on_status) -> KnativeStatus | None:
    ns, name = ksvc["metadata"]["namespace"], ksvc["metadata"]["name"]
    rev = kube.get_or_none(named_path(API, "Revision", ns, revision))
    if rev is None or not revisions_of(ksvc, [rev]):
        raise MLDeployError(f"revision {revision} of {name} no longer exists (Knative's garbage collection "
                            f"removed it); deploy its spec again.")
    spec, scale = spec_of(rev)
    tmpl = template(spec, ns, scale)
    if tmpl["metadata"]["name"] != revision:
        raise MLDeployError(f"revision {revision} was made by another version of jupyter-mldeploy and cannot "
                            f"be rebuilt under its name; deploy its spec again.")
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: revision, L.WEIGHT: "0"}
    _service(kube, anchor, ksvc, tmpl=tmpl, traffic_=[_entry(revision, 100, "stable")], state=state)
    if wait:
        return _wait_or_note(kube, ns, name, revision, timeout=timeout, on_status=on_status,
                             done=f"all traffic was sent back to {revision}")
    return None


def history(name: str, *, namespace: str | None = None, kube: Kube | None = None,
            kubeconfig: str | None = None, context: str | None = None) -> list[RevisionRow]:
    """The model's revisions, oldest first, with the share each gets now."""
    return status(name, namespace=namespace, kube=kube, kubeconfig=kubeconfig, context=context).revisions


def rollback(name: str, to: int | str | None = None, *, namespace: str | None = None,
             kube: Kube | None = None, kubeconfig: str | None = None, context: str | None = None,
             wait: bool = True, timeout: float = 600,
             on_status: Callable[[KnativeStatus], None] | None = None) -> KnativeModel:
    """Back to an earlier revision: the one before the current stable revision by default, or `to` (a
    configuration generation number as in `%rollback --to N`, a revision name or a version)."""
    kube = cluster(kube, kubeconfig, context)
    ns = validate_namespace(namespace or kube.namespace)
    ksvc, anchor, all_revs = read_with_revisions(kube, ns, name)
    if _state(ksvc).get(STRATEGY):
        raise MLDeployError(f"{name} has a rollout in progress: %rollback {name} (without --to) rolls it "
                            f"back first.")
    revs = revisions_of(ksvc, all_revs)
    current = _state(ksvc).get(kn.STABLE_REVISION)
    gen = {r["metadata"]["name"]: _generation(r) for r in revs}
    if to is None:
        older = [n for n, g in gen.items() if n != current and g < gen.get(current, 1 << 30)]
        if not older:
            raise MLDeployError(f"{name} has no earlier revision to roll back to.")
        target = max(older, key=gen.get)
    else:
        matches = [r["metadata"]["name"] for r in revs
                   if to in (gen[r["metadata"]["name"]], r["metadata"]["name"],
                             r["metadata"].get("labels", {}).get(L.APP_VERSION))]
        if not matches:
            known = ", ".join(f"{g}: {n}" for n, g in gen.items()) or "none"
            raise MLDeployError(f"{name} has no revision {to!r}; its revisions are {known}.")
        target = matches[-1]
    if target == current:
        raise MLDeployError(f"Revision {target} of {name} is already live.")
    handle = KnativeModel(name, ns, kube, revision=target)
    handle.last_status = _back_to(kube, anchor, ksvc, target, wait=wait, timeout=timeout, on_status=on_status)
    return handle


def steps(r, schedule: Sequence[int], *, wait_s: float, check: Callable[[], bool] | None, once: bool,
          timeout: float, on_step: Callable | None):
    """rollout.steps for a Knative canary: each step is one write of the traffic block, made only while
    the candidate revision is Ready and `check()` passes; otherwise the rollout is rolled back."""
    sched = tuple(schedule)
    while True:
        _healthy_or_abort(r, check)
        ksvc, anchor = _rollout_now(r)
        nxt = r.step + 1 if r.steps == sched else next((i for i, s in enumerate(sched) if s > r.weight),
                                                        len(sched))
        if nxt >= len(sched) or sched[nxt] == 100:
            return promote(r, timeout=timeout)
        r = replace(r, weight=sched[nxt], step=nxt, steps=sched)
        _write_state(r, ksvc, anchor)
        if on_step is not None:
            on_step(r)
        if once:
            return r
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            _healthy_or_abort(r, check)


def _healthy_or_abort(r, check: Callable[[], bool] | None) -> None:
    st = status(r.name, namespace=r.namespace, kube=r.kube)
    ksvc_state = read_service(r.kube, r.namespace, r.name)
    cand = st.revision(_state(ksvc_state or {}).get(kn.CANDIDATE_REVISION, ""))
    why = None
    if cand is None or cand.ready != "True":
        why = cand.problem if cand is not None and cand.problem else "the candidate revision is not Ready"
    elif check is not None and not check():
        why = "the check failed"
    if why:
        abort(r, wait=False)
        raise RolloutFailed(f"The canary of {r.name} was rolled back at {r.weight}%: {why}.")


def read_weights(r) -> tuple[float, float]:
    """(stable, candidate) percent as Knative's route controller computed them (status.traffic)."""
    ksvc = ours(r.kube or connect(), r.namespace, r.name)
    if ksvc is None:
        return 100.0, 0.0
    state = _state(ksvc)
    st = _status_of(ksvc, [])
    return (float(st.routed.get(state.get(kn.STABLE_REVISION, ""), 0)),
            float(st.routed.get(state.get(kn.CANDIDATE_REVISION, ""), 0)))


def read_pods(r) -> dict:
    """Each track's revision pods (ready of desired, as Knative's autoscaler reports them on the
    Revision), for the split picture: a Knative canary has no `<name>-canary` Deployment."""
    from ..split import TrackPods

    ksvc, _, revs = read_with_revisions(r.kube or connect(), r.namespace, r.name)
    st = _status_of(ksvc, revisions_of(ksvc, revs))
    out = {}
    for track, key in (("stable", kn.STABLE_REVISION), ("canary", kn.CANDIDATE_REVISION)):
        row = st.revision(_state(ksvc).get(key, ""))
        out[track] = TrackPods(int(row.actual or 0), int(row.desired or 0)) if row else TrackPods()
    return out


def ready_candidate_pods(r) -> int:
    st = status(r.name, namespace=r.namespace, kube=r.kube or connect())
    ksvc = read_service(r.kube or connect(), r.namespace, r.name) or {}
    cand = st.revision(_state(ksvc).get(kn.CANDIDATE_REVISION, ""))
    return int(cand.actual or 0) if cand is not None and cand.ready == "True" else 0
