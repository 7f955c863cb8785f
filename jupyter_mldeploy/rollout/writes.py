"""Guarded writes: every route write carries the resourceVersion and uid it was based on; a stale
view is refused with what changed (StaleRollout), a status-only change is retried once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..errors import (
    ClusterError,
    StaleRollout,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.resources import describe
from .reads import _ago, _ended, _probe, _rollout_from, _Seen
from .state import CANDIDATE_TRACKS, PROMOTING, Rollout, _forget, _objects_of, _remember, _route


def _apply(r: Rollout, manifests: list[dict]) -> kapply.ApplyReport:
    """Write objects of the model outside a deploy (routes, replica counts): owned by its anchor and
    recorded in it, so a same-named object that is not ours is refused and undeploy finds them."""
    anchor = owner.ensure(r.kube, r.namespace, r.name)
    report = kapply.apply_all(r.kube, manifests, owner=anchor)
    kapply.adopt_created(r.kube, report)

    def track_of(m: dict) -> str | None:
        known = anchor.objects.get(owner.key_of(m))
        return known.track if known is not None else None

    owner.record(r.kube, r.namespace, r.name, written=report.owned(track_of))
    return report


def _is_stale(e: ClusterError) -> bool:
    """A refused precondition: the object changed (409) or went away (404) since its version was read."""
    text = str(e)
    if e.status == 404:
        return True
    return e.status == 409 and "Apply failed" not in text and "managed by" not in text


def _guarded(m: dict, version: tuple[str, str] | None) -> dict:
    """`m` with the resourceVersion and uid it is based on: server-side apply then refuses the write
    when the object changed since, or is gone (a resourceVersion alone would create it again)."""
    if version is None:
        return m
    return {**m, "metadata": {**m["metadata"], "resourceVersion": version[0], "uid": version[1]}}


def _write(r: Rollout, new: Rollout, manifests: list[dict], *, then: Sequence[dict] = ()) -> Rollout:
    """Write the route objects of `new` that differ from what `r` holds, each with the resourceVersion
    and uid `r` saw, the state object first; then `then` (replica counts), once the route is accepted.

    On a refused precondition the route is read again: when the rollout state is what this call
    expects (only status or unrelated fields moved) the objects not yet written are retried once on the
    new versions; otherwise StaleRollout names what changed, and nothing (more) was written.
    """
    before = {describe(m): m for m in r.last_route}
    state_key = describe(_objects_of(r.router, r.name, r.namespace)[0])
    todo = sorted((m for m in manifests if before.get(describe(m)) != m),
                  key=lambda m: describe(m) != state_key)  # the state object first
    versions = dict(r.versions)
    basis = r  # what the cluster should hold: r, until the state object carrying `new` is accepted
    for attempt in (1, 2):
        try:
            while todo:
                m = todo[0]
                report = _apply(r, [_guarded(m, versions.get(describe(m)))])
                for a in report.applied:
                    meta = a.result.get("metadata", {})
                    versions[describe(a.manifest)] = (meta.get("resourceVersion"), meta.get("uid"))
                if describe(m) == state_key:
                    basis = new
                todo.pop(0)
            break
        except ClusterError as e:
            if not _is_stale(e):
                raise
            seen = _probe(r.kube, r.namespace, r.name)
            fresh = _rollout_from(seen, r.name, r.namespace, r.kube)
            why = _what_changed(basis, fresh, seen)
            if fresh is not None:
                _remember(fresh)
            else:
                _forget(r)
            if why is not None:
                raise StaleRollout(why if basis is r else f"{why[:-1]} after the route's state object; "
                                   f"run the operation again to finish it.") from None
            if attempt == 2:
                raise StaleRollout(f"the route of {r.name} kept changing while it was written, so nothing "
                                   f"more was written; try again.") from None
            versions = {**versions, **fresh.versions}
    if then:
        _apply(r, list(then))
    out = replace(new, versions=versions, last_route=manifests)
    return _remember(out)


def _what_changed(r: Rollout, fresh: Rollout | None, seen: _Seen) -> str | None:
    """One sentence naming how the rollout on the cluster differs from `r`; None when it does not."""
    name = r.name
    state_obj = seen.route_of(r.router, name, r.namespace)
    ago = _ago(state_obj, seen.server_now)
    since = f" {ago}" if ago else ""
    nothing = "; nothing was written."
    if fresh is None:
        ended = _ended(seen, name, r.namespace)
        if ended is not None:
            return f"{name} was {ended[1]} from another kernel{since}{nothing}"
        if state_obj is None:
            gone = describe(_objects_of(r.router, name, r.namespace)[0])
            return f"{name}'s route {gone} was removed{nothing}"
        return f"{name} has no rollout in progress any more{nothing}"
    if (fresh.strategy, fresh.router, fresh.candidate_version) != (r.strategy, r.router, r.candidate_version):
        return (f"a new {fresh.strategy} rollout of {name} (candidate {fresh.candidate_version or '?'}) was "
                f"started from another kernel{since}{nothing}")
    if fresh.phase != r.phase:
        if fresh.phase == PROMOTING:
            return (f"{name} is being promoted from another kernel (since{since or ' recently'}); nothing "
                    f"was written; if that kernel stopped, %promote {name} again carries the promotion on.")
        return f"{name}'s rollout moved on from another kernel{since}{nothing}"
    if fresh.weight != r.weight:
        what = CANDIDATE_TRACKS[r.strategy]
        return (f"the {what} weight of {name} was moved from {r.weight}% to {fresh.weight}% from another "
                f"kernel{since}{nothing}")
    if fresh.mirror != r.mirror:
        return (f"the mirror of {name} was changed from {r.mirror}% to {fresh.mirror}% from another "
                f"kernel{since}{nothing}")
    if (fresh.step, fresh.steps) != (r.step, r.steps):
        return f"the steps of {name} were advanced from another kernel{since}{nothing}"
    return None


def _write_state(r: Rollout, new: Rollout, *, then: Sequence[dict] = ()) -> Rollout:
    return _write(r, new, _route(new), then=then)
