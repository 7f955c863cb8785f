"""Releases: the record each deploy writes beside its objects (a Secret per revision), read back for
history, rollback and atomic undo; and the write of a release under the model's anchor."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import (
    ClusterError,
    MLDeployError,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import collection_path, named_path
from ..render import release as rel
from ..spec import DeploySpec, validate_model_name


def release_manifests(kube: Kube, namespace: str, name: str, track: str, revision: int | None
                      ) -> list[dict] | None:
    """The manifests a recorded release wrote (None: no such release, or it was trimmed)."""
    if revision is None:
        return None
    try:
        _, record = kube.request("GET", named_path("v1", "Secret", namespace,
                                                   rel.record_name(name, track, revision)))
    except ClusterError as e:
        if e.status == 404:
            return None
        raise
    return rel.manifests_of(record)


def release_records(kube: Kube, namespace: str, name: str, track: str, *, selector: str = "") -> list[dict]:
    """The model's release records on `track` that are really ours (owned by its anchor), oldest first."""
    a = owner.cached(kube, namespace, name) or owner.read(kube, namespace, name)
    if a is None:
        return []
    _, body = kube.request("GET", collection_path("v1", "Secret", namespace),
                           query={"labelSelector": rel.record_selector(name, track) + selector})
    return sorted((r for r in body.get("items", []) if a.owns(r)), key=rel.revision_of)


def newest_spec(kube: Kube, namespace: str, name: str, track: str = "stable") -> DeploySpec | None:
    """The spec of the live release of `track`, as recorded (None: that track was never deployed)."""
    validate_model_name(name)
    a = owner.read(kube, namespace, name)
    if a is None or track not in a.tracks:
        return None
    try:
        _, record = kube.request("GET", named_path("v1", "Secret", namespace,
                                                   rel.record_name(name, track, a.tracks[track])))
    except ClusterError as e:
        if e.status == 404:
            return None
        raise
    return rel.spec_of(record)


def _trim_records(kube: Kube, namespace: str, name: str, track: str) -> None:
    """Keep the newest KEEP release records of a track (in the background, after a successful write)."""
    try:
        old = release_records(kube, namespace, name, track)[:-rel.KEEP]
        kapply.delete_owned(kube, [owner.Owned("v1", "Secret", r["metadata"]["name"], r["metadata"]["uid"])
                                   for r in old], namespace)
    except MLDeployError:
        pass  # bookkeeping only: the next deploy trims again


def _track_of(c: owner.Claim, rendered: set[tuple[str, str, str]]) -> Callable[[dict], str | None]:
    """Which track an object belongs to, for prune: a rendered object is the deploy's track's; a route
    passed as `extra` serves every track (None), and an object already recorded keeps its track."""
    def track_of(m: dict) -> str | None:
        known = c.anchor.objects.get(owner.key_of(m))
        if known is not None:
            return known.track
        return c.track if owner.key_of(m) in rendered else None
    return track_of


def write_release(kube: Kube, ns: str, spec: DeploySpec, manifests: list[dict], *,
                  rendered: set[tuple[str, str, str]] | None = None,
                  then: Callable[[kapply.ApplyReport], None] | None = None
                  ) -> tuple[owner.Claim, kapply.ApplyReport]:
    """One release of one track: claim the next revision, then write every object, the release record and
    the prunes in one concurrent round. Raises (after undoing) when anything is refused or interrupted."""
    c = owner.claim(kube, ns, spec.name, spec.track)
    rendered = {owner.key_of(m) for m in manifests} if rendered is None else rendered
    try:
        record = rel.release_record(spec, manifests, ns, c.revision)
        keep = {owner.key_of(m) for m in manifests}
        prune = [(c.anchor, o) for o in c.anchor.on_track(spec.track) if o.key not in keep]
        report = kapply.apply_all(
            kube, [*manifests, record], owner=c.anchor, prune=prune,
            previous_loader=lambda: release_manifests(kube, ns, spec.name, spec.track, c.previous))
    except BaseException:
        _give_back(kube, c)
        raise
    report.applied = [a for a in report.applied if a.manifest["kind"] != "Secret"
                      or a.manifest["metadata"]["name"] != record["metadata"]["name"]]
    written = report.owned(_track_of(c, rendered))
    removed = [o.key for o in report.pruned]
    job = kapply.records().submit(_record, kube, c, report, written, removed, then)
    owner.later(kube, ns, spec.name, job)
    return c, report


def _record(kube: Kube, c: owner.Claim, report: kapply.ApplyReport, written: list[owner.Owned],
            removed: list[tuple[str, str, str]], then: Callable | None = None) -> None:
    """After a release (in the background, one chain): apply-ownership of what was created, any
    follow-up write, then the anchor's record of the model's objects, which also ends the lease."""
    try:
        kapply.adopt_created(kube, report)
        if then is not None:
            then(report)
    finally:
        owner.settle(kube, c, ok=True, written=written, removed=removed)


def _give_back(kube: Kube, c: owner.Claim) -> None:
    """After a refused or interrupted first release nothing may stay, the anchor included; after a later
    one, the lease goes and the live release stays what it was."""
    try:
        if c.first_release:
            owner.delete(kube, c.anchor, foreground=False)  # the undo already deleted what was made
        else:
            owner.settle(kube, c, ok=False)
    except MLDeployError:
        pass  # the lease expires by itself (owner.LEASE_SECONDS); the error being raised matters more


def newest_spec_at(kube: Kube, ns: str, name: str, track: str, revision: int) -> DeploySpec:
    _, record = kube.request("GET", named_path("v1", "Secret", ns, rel.record_name(name, track, revision)))
    return rel.spec_of(record)
