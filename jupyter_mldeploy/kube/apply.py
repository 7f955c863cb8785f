"""Concurrent server-side apply with undo on partial failure, and concurrent delete.

Every object is written at once, one PATCH each (application/apply-patch+yaml, fieldManager
jupyter-mldeploy), with no read before the write. The status code tells what happened: 201 created,
200 existed. When any write fails, the others are undone: objects this call created are deleted,
and objects it changed are re-applied from the previous release record (see `release_record`);
objects someone else manages get back exactly what they had, because applying an empty intent under
our field manager releases only the fields we own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .. import labels as L
from ..errors import ClusterError
from .client import Kube
from .resources import collection_path, describe, object_path

APPLY = "application/apply-patch+yaml"
# Managers that write fields of objects we own as part of normal operation, not ownership.
_ROUTINE_MANAGERS = {L.FIELD_MANAGER, "kube-controller-manager", "kube-scheduler"}

_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mldeploy-write")


def pool() -> ThreadPoolExecutor:
    """The shared thread pool for concurrent writes (I/O bound; threads wait on sockets)."""
    return _pool


@dataclass(frozen=True)
class Applied:
    manifest: dict
    result: dict
    created: bool

    @property
    def name(self) -> str:
        return describe(self.manifest)


@dataclass
class ApplyReport:
    applied: list[Applied] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def created(self) -> list[str]:
        return [a.name for a in self.applied if a.created]

    @property
    def changed(self) -> list[str]:
        return [a.name for a in self.applied if not a.created]


def apply_one(kube: Kube, manifest: Mapping, *, dry_run: bool = False, force: bool = False) -> Applied:
    status, result = kube.request(
        "PATCH", object_path(manifest), body=manifest, content_type=APPLY,
        query={"fieldManager": L.FIELD_MANAGER, "dryRun": "All" if dry_run else None,
               "force": "true" if force else None},
        what=describe(manifest),
    )
    return Applied(dict(manifest), result, created=status == 201)


def foreign_managers(obj: Mapping) -> list[str]:
    """Other managers that own spec fields of `obj`: a sign someone else created or manages it.

    Subresource writes (scale by an HPA or `kubectl scale`, status by controllers) and metadata-only
    edits (`kubectl annotate`) do not count.
    """
    found = []
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("subresource") or entry.get("manager") in _ROUTINE_MANAGERS:
            continue
        fields = entry.get("fieldsV1") or {}
        if any(k.startswith("f:") and k not in ("f:metadata", "f:status") for k in fields):
            found.append(entry["manager"])
    return sorted(set(found))


def release_only_ours(kube: Kube, manifest: Mapping) -> None:
    """Apply an empty intent: fields only we owned go away, shared ones stay as the other owner set."""
    meta = manifest["metadata"]
    kube.request("PATCH", object_path(manifest), content_type=APPLY,
                 body={"apiVersion": manifest["apiVersion"], "kind": manifest["kind"],
                       "metadata": {"name": meta["name"], "namespace": meta["namespace"]}},
                 query={"fieldManager": L.FIELD_MANAGER}, what=describe(manifest))


def delete_one(kube: Kube, manifest: Mapping, *, uid: str | None = None, missing_ok: bool = True) -> bool:
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    if uid:
        body["preconditions"] = {"uid": uid}  # never delete a same-named object made in between
    try:
        kube.request("DELETE", object_path(manifest), body=body, what=describe(manifest))
    except ClusterError as e:
        if e.status == 404 and missing_ok:
            return False
        raise
    return True


def apply_all(kube: Kube, manifests: Sequence[Mapping], *, dry_run: bool = False,
              previous_loader: Callable[[], Iterable[Mapping] | None] | None = None,
              recorded: Callable[[], set[str]] | None = None) -> ApplyReport:
    """Write every manifest at once; all succeed, or what succeeded is undone and the first error raised.

    `previous_loader()` returns the manifests of the previous release (read only on failure), used to
    put back objects this call changed. An existing object that another manager also writes is ours
    only if `recorded()` (read only in that case) names it among the objects jupyter-mldeploy wrote
    before; otherwise it is someone else's and is given back as it was.
    """
    t0 = time.perf_counter()
    done: list[Applied] = []
    errors: list[tuple[Mapping, ClusterError]] = []
    if len(manifests) == 1:  # one write (a weight move): no hand-off to another thread
        try:
            done.append(apply_one(kube, manifests[0], dry_run=dry_run))
        except ClusterError as e:
            errors.append((manifests[0], e))
    else:
        futures = [_pool.submit(apply_one, kube, m, dry_run=dry_run) for m in manifests]
        for m, f in zip(manifests, futures, strict=True):
            try:
                done.append(f.result())
            except ClusterError as e:
                errors.append((m, e))
    foreign: set[str] = set()
    if not dry_run:
        suspects = {a.name: owners for a in done if not a.created and (owners := foreign_managers(a.result))}
        if suspects:
            ours = recorded() if recorded is not None else set()
            foreign = {n for n in suspects if n not in ours}
        if foreign and not errors:
            a = next(a for a in done if a.name in foreign)
            owners = suspects[a.name]
            errors.append((a.manifest, ClusterError(
                f"{a.name} already exists and is managed by {', '.join(owners)}, not jupyter-mldeploy; "
                f"it was left as it was. Choose another name, or remove that object first.",
                obj=a.name, status=409, reason="NotOurs")))
    if errors:
        if not dry_run:
            undone = undo(kube, done, previous_loader, foreign)
            first_manifest, first = errors[0]
            note = f" Undone: {', '.join(undone)}." if undone else ""
            raise ClusterError(f"{first}{note}", obj=describe(first_manifest), status=first.status,
                               reason=first.reason)
        raise errors[0][1]
    return ApplyReport(done, time.perf_counter() - t0)


def undo(kube: Kube, done: Sequence[Applied], previous_loader=None, foreign: set[str] = frozenset()
         ) -> list[str]:
    """Put back what this call wrote; returns what was undone, in words."""
    previous = {}
    changed_ours = [a for a in done if not a.created and a.name not in foreign]
    if changed_ours and previous_loader is not None:
        previous = {describe(m): m for m in previous_loader() or []}
    jobs = []
    for a in done:
        uid = a.result.get("metadata", {}).get("uid")
        if a.created:
            jobs.append((f"deleted {a.name}", _pool.submit(delete_one, kube, a.manifest, uid=uid)))
        elif a.name in foreign:
            job = _pool.submit(release_only_ours, kube, a.manifest)
            jobs.append((f"released our fields of {a.name}", job))
        elif a.name in previous:
            jobs.append((f"restored {a.name}", _pool.submit(apply_one, kube, previous[a.name])))
        else:
            jobs.append((f"left {a.name} as written (no earlier release recorded)", None))
    words = []
    for text, job in jobs:
        if job is None:
            words.append(text)
            continue
        try:
            job.result()
            words.append(text)
        except ClusterError as e:
            words.append(f"could not undo {text.split(' ', 1)[-1]}: {e}")
    return words


def delete_collections(kube: Kube, namespace: str, selector: str,
                       kinds: Iterable[tuple[str, str]]) -> list[str]:
    """Delete every object matching `selector` in each kind, all kinds at once. Returns what went."""
    def one(kind: tuple[str, str]) -> list[str]:
        path = collection_path(kind[0], kind[1], namespace)
        try:
            _, body = kube.request("DELETE", path, query={"labelSelector": selector},
                                   body={"kind": "DeleteOptions", "apiVersion": "v1",
                                         "propagationPolicy": "Background"})
        except ClusterError as e:
            if e.status == 404:  # that API is not served by this cluster
                return []
            if e.status != 403:
                raise
            # Roles without deletecollection (many custom ones): list, then delete one by one.
            _, listed = kube.request("GET", path, query={"labelSelector": selector})
            items = [{"apiVersion": kind[0], "kind": kind[1], "metadata": i["metadata"]}
                     for i in listed.get("items", [])]
            for item in items:
                delete_one(kube, item, uid=item["metadata"]["uid"])
            body = {"items": items}
        return [describe({"apiVersion": kind[0], "kind": kind[1], "metadata": i["metadata"]})
                for i in body.get("items", [])]

    results = [_pool.submit(one, k) for k in kinds]
    gone: list[str] = []
    for r in results:
        gone.extend(r.result())
    return gone
