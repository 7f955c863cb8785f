"""Concurrent server-side apply that never touches what is not ours, with undo, prune and Ctrl-C safety.

Every object is written at once, one PATCH each (application/apply-patch+yaml, fieldManager
jupyter-mldeploy), with no read before the write. Ownership is by identity (see `owner.py`): each
applied intent names the model's anchor in its ownerReferences and carries a uid:
- an object recorded as ours is written with its recorded uid: if the live object of that name is a
  different one (deleted and made again by someone else), the API server refuses the write;
- any other object is created (POST), which the API server refuses when anything holds the name; the
  create's field ownership is then turned into apply ownership of exactly our intent (`adopt`).
A refusal is resolved by one read: the live object is ours when it names our anchor (another kernel of
ours made it), and is otherwise left exactly as it was, with an error saying who manages it.

When any write fails, or Ctrl-C arrives while they are in flight, the others are undone: objects this
call created are deleted (uid precondition), objects it changed get back the previous release's intent,
and objects it pruned are made again from it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .. import labels as L
from ..errors import ClusterError, Interrupted, NotOurs
from .client import Kube
from .owner import Anchor, Owned, key_of
from .resources import collection_path, describe, object_path

APPLY = "application/apply-patch+yaml"

# Three pools in a strict order, so that no job ever waits for a job queued behind it on its own pool
# (with one shared pool, 40 models' release records, each waiting for its adopt() writes, took every
# worker and waited for ever): requests wait on nothing; records wait only on requests; waits (following
# a rollout) wait on records and requests.
_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mldeploy-write")
_records = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mldeploy-record")
_waits = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mldeploy-wait")


def pool() -> ThreadPoolExecutor:
    """The shared pool for single requests (I/O bound; threads wait on sockets). A job here must not
    wait on another job of this pool: submit those from records() or waits() instead."""
    return _pool


def records() -> ThreadPoolExecutor:
    """The pool for the background work after a release (records, adoption, trimming), whose jobs
    wait on requests of pool()."""
    return _records


def waits() -> ThreadPoolExecutor:
    """The pool for following rollouts to their end, whose jobs wait on records and requests."""
    return _waits


@dataclass(frozen=True)
class Applied:
    manifest: dict
    result: dict
    created: bool

    @property
    def name(self) -> str:
        return describe(self.manifest)

    @property
    def uid(self) -> str:
        return self.result.get("metadata", {}).get("uid", "")


@dataclass
class ApplyReport:
    applied: list[Applied] = field(default_factory=list)
    pruned: list[Owned] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def created(self) -> list[str]:
        return [a.name for a in self.applied if a.created]

    @property
    def changed(self) -> list[str]:
        return [a.name for a in self.applied if not a.created]

    def owned(self, track_of: Callable[[Mapping], str | None]) -> list[Owned]:
        return [Owned(*key_of(a.manifest), a.uid, track_of(a.manifest)) for a in self.applied]


def _is_uid_refusal(e: ClusterError) -> bool:
    """The API server's answer to an intent whose uid is not the live object's."""
    text = str(e).lower()
    return e.status in (409, 422) and "uid" in text


def with_owner(manifest: Mapping, anchor: Anchor, uid: str) -> dict:
    """The intent as sent: owned by the model's anchor; `uid` (when given) is a server-side precondition."""
    meta = {**manifest["metadata"], "ownerReferences": [anchor.reference()]}
    meta.pop("uid", None)
    if uid:
        meta["uid"] = uid
    elif meta.get("resourceVersion") is not None:
        meta.pop("resourceVersion")  # a create carries none
    return {**manifest, "metadata": meta}


def apply_one(kube: Kube, manifest: Mapping, *, dry_run: bool = False, force: bool = False) -> Applied:
    status, result = kube.request(
        "PATCH", object_path(manifest), body=manifest, content_type=APPLY,
        query={"fieldManager": L.FIELD_MANAGER, "dryRun": "All" if dry_run else None,
               "force": "true" if force else None},
        what=describe(manifest),
    )
    return Applied(dict(manifest), result, created=status == 201)


def managers(obj: Mapping) -> list[str]:
    """Who writes an object (its field managers, subresource writers left out), for messages."""
    found = {m.get("manager", "?") for m in obj.get("metadata", {}).get("managedFields") or []
             if not m.get("subresource")}
    return sorted(found - {L.FIELD_MANAGER}) or sorted(found) or ["an unknown writer"]


def _not_ours(manifest: Mapping, live: Mapping) -> NotOurs:
    name = describe(manifest)
    return NotOurs(f"{name} already exists in namespace {manifest['metadata']['namespace']} and is not "
                   f"jupyter-mldeploy's (it is managed by {', '.join(managers(live))}); it was left as it "
                   f"was. Choose another model name, or remove that object first.",
                   obj=name, status=409, reason="NotOurs")


def _create(kube: Kube, intent: Mapping, *, dry_run: bool) -> Applied:
    _, result = kube.request("POST", collection_path(intent["apiVersion"], intent["kind"],
                                                     intent["metadata"]["namespace"]),
                             body=intent, query={"fieldManager": L.FIELD_MANAGER,
                                                 "dryRun": "All" if dry_run else None},
                             what=describe(intent))
    return Applied(dict(intent), result, created=True)


def _self_conflict(e: ClusterError) -> bool:
    """A 409 whose only conflicting manager is our own create (see `adopt`)."""
    named = re.findall(r'conflicts? with "([^"]*)"', str(e))
    return e.status == 409 and bool(named) and set(named) == {L.FIELD_MANAGER}


def _only_intent(fields: Mapping, intent: object) -> dict:
    """The part of a managedFields set that the intent names (keys of maps; list items kept whole)."""
    out = {}
    for key, sub in fields.items():
        if key.startswith("f:") and isinstance(intent, Mapping):
            if key[2:] not in intent:
                continue  # defaulted by the server, not ours (a Deployment's replicas under an HPA)
            out[key] = _only_intent(sub, intent[key[2:]]) if isinstance(sub, Mapping) else sub
        else:
            out[key] = sub
    return out


def adopt(kube: Kube, intent: Mapping, live: Mapping) -> None:
    """Turn the ownership a create gave us into server-side apply ownership of exactly our intent.

    A create (the only write the API server refuses when the name is taken) records its fields under
    an Update entry, which a later apply under the same name would conflict with; this rewrites that
    entry in place (JSON patch, tested against the uid and the entry) as our Apply entry.
    """
    for attempt in range(3):
        entries = live.get("metadata", {}).get("managedFields") or []
        i = next((i for i, m in enumerate(entries) if m.get("manager") == L.FIELD_MANAGER
                  and m.get("operation") == "Update" and not m.get("subresource")), None)
        if i is None:
            return
        entry = {k: v for k, v in entries[i].items() if k != "time"}
        entry.update(operation="Apply", fieldsV1=_only_intent(entry.get("fieldsV1") or {}, intent))
        ops = [{"op": "test", "path": "/metadata/uid", "value": live["metadata"]["uid"]},
               {"op": "test", "path": f"/metadata/managedFields/{i}/manager", "value": L.FIELD_MANAGER},
               {"op": "test", "path": f"/metadata/managedFields/{i}/operation", "value": "Update"},
               {"op": "replace", "path": f"/metadata/managedFields/{i}", "value": entry}]
        try:
            kube.request("PATCH", object_path(intent), body=ops, content_type="application/json-patch+json",
                         query={"fieldManager": L.FIELD_MANAGER}, what=describe(intent))
            break
        except ClusterError as e:
            if e.status != 422 or attempt == 2:  # 422: a test failed (another write moved the entries)
                raise
            _, live = kube.request("GET", object_path(intent), what=describe(intent))
    # Applying the intent once more makes the server compute the Apply entry itself, so the next
    # deploy of the same spec is a no-op (no new resourceVersion), as an apply should be.
    apply_one(kube, {**intent, "metadata": {**intent["metadata"], "uid": live["metadata"]["uid"]}})


def adopt_created(kube: Kube, report: ApplyReport) -> None:
    """adopt() every object a round created, at once (off the critical path of a deploy)."""
    jobs = [_pool.submit(adopt, kube, a.manifest, a.result) for a in report.applied if a.created]
    for j in jobs:
        j.result()


def _apply_as_ours(kube: Kube, intent: Mapping, *, dry_run: bool) -> Applied:
    try:
        return apply_one(kube, intent, dry_run=dry_run)
    except ClusterError as e:
        if not _self_conflict(e):
            raise
    # Our own earlier create (its adopt() never ran: a kernel stopped in between): adopt, then apply.
    _, live = kube.request("GET", object_path(intent), what=describe(intent))
    adopt(kube, intent, live)
    return apply_one(kube, intent, dry_run=dry_run)


def apply_owned(kube: Kube, manifest: Mapping, anchor: Anchor, *, dry_run: bool = False) -> Applied:
    """Write one object of `anchor`'s model; refused by the server when the name holds another object.

    Recorded objects are applied with their uid; others are created (POST), which the API server
    refuses with 409 AlreadyExists when anything holds the name. A refusal costs one read: the live
    object is ours only when it names our anchor as owner.
    """
    known = anchor.objects.get(key_of(manifest))
    # A manifest carrying resourceVersion or uid was built from a read of the live object (a route
    # move): those are preconditions, so it is never created, and a missing object is the caller's 404.
    based_on_read = bool(manifest["metadata"].get("resourceVersion") or manifest["metadata"].get("uid"))
    if known is not None:
        try:
            uid = manifest["metadata"].get("uid") or known.uid
            return _apply_as_ours(kube, with_owner(manifest, anchor, uid), dry_run=dry_run)
        except ClusterError as e:
            if not _is_uid_refusal(e):
                raise
    elif based_on_read:
        pass  # check whose it is
    else:
        try:
            return _create(kube, with_owner(manifest, anchor, ""), dry_run=dry_run)
        except ClusterError as e:
            if e.status != 409:
                raise
    try:
        _, live = kube.request("GET", object_path(manifest), what=describe(manifest))
    except ClusterError as e:
        if e.status != 404 or based_on_read:
            raise
        return _create(kube, with_owner(manifest, anchor, ""), dry_run=dry_run)  # gone since: make it
    if not anchor.owns(live):
        raise _not_ours(manifest, live)
    uid = manifest["metadata"].get("uid") or live["metadata"]["uid"]  # a caller's uid stays a precondition
    return _apply_as_ours(kube, with_owner(manifest, anchor, uid), dry_run=dry_run)


def delete_one(kube: Kube, manifest: Mapping, *, uid: str | None = None, missing_ok: bool = True) -> bool:
    body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    if uid:
        body["preconditions"] = {"uid": uid}  # never delete a same-named object made in between
    try:
        kube.request("DELETE", object_path(manifest), body=body, what=describe(manifest))
    except ClusterError as e:
        if e.status == 404 and missing_ok:
            return False
        if e.status == 409 and uid and missing_ok:  # another object holds the name now: not ours
            return False
        raise
    return True


def delete_owned(kube: Kube, objects: Sequence[Owned], namespace: str) -> list[str]:
    """Delete exactly these objects (uid preconditions), all at once; returns those that went."""
    jobs = [(o, _pool.submit(delete_one, kube, o.manifest(namespace), uid=o.uid)) for o in objects]
    return [describe(o.manifest(namespace)) for o, j in jobs if j.result()]


OwnerOf = Callable[[Mapping], Anchor]


def apply_all(kube: Kube, manifests: Sequence[Mapping], *, owner: Anchor | OwnerOf,
              dry_run: bool = False, prune: Sequence[tuple[Anchor, Owned]] = (),
              previous_loader: Callable[[], Iterable[Mapping] | None] | None = None) -> ApplyReport:
    """Write every manifest (and delete every object of `prune`) at once: all succeed, or what
    succeeded is undone and the first error raised (Interrupted on Ctrl-C, after the undo).

    `owner` is the model's anchor (or a function giving each manifest's, for several models).
    `previous_loader()` returns the previous release's manifests; it is read only to undo.
    """
    t0 = time.perf_counter()
    owner_of: OwnerOf = owner if callable(owner) else (lambda _m, a=owner: a)
    futures: list[tuple[Mapping, Future]] = [
        (m, _pool.submit(apply_owned, kube, m, owner_of(m), dry_run=dry_run)) for m in manifests]
    if not dry_run:
        futures += [(o.manifest(a.namespace), _pool.submit(delete_owned, kube, [o], a.namespace))
                    for a, o in prune]
    interrupted = False
    try:
        wait([f for _, f in futures])
    except KeyboardInterrupt:
        interrupted = True
        _finish_quietly([f for _, f in futures])
    done: list[Applied] = []
    pruned: list[tuple[Anchor, Owned]] = []
    errors: list[tuple[Mapping, BaseException]] = []
    for i, (m, f) in enumerate(futures):
        try:
            r = f.result()
        except ClusterError as e:
            errors.append((m, e))
            continue
        if i < len(manifests):
            done.append(r)
        elif r:
            pruned.append(prune[i - len(manifests)])
    if (errors or interrupted) and not dry_run:
        undone = undo(kube, done, pruned, previous_loader)
        note = f" Undone: {', '.join(undone)}." if undone else " Nothing had been written."
        if interrupted:
            raise Interrupted(f"Interrupted while writing.{note}")
        first_manifest, first = errors[0]
        raise type(first)(f"{first}{note}", obj=describe(first_manifest), status=first.status,
                          reason=first.reason)
    if errors:
        raise errors[0][1]
    return ApplyReport(done, [o for _, o in pruned], time.perf_counter() - t0)


def _finish_quietly(futures: Sequence[Future]) -> None:
    """Let in-flight requests end (each is bounded by its timeout), even through more Ctrl-C."""
    while True:
        try:
            wait(futures)
            return
        except KeyboardInterrupt:
            continue


def _where(m: Mapping) -> tuple[str, ...]:
    return (m["metadata"]["namespace"], *key_of(m))


def undo(kube: Kube, done: Sequence[Applied], pruned: Sequence[tuple[Anchor, Owned]] = (),
         previous_loader: Callable[[], Iterable[Mapping] | None] | None = None) -> list[str]:
    """Put back what this call wrote; returns what was undone, in words. Ctrl-C waits for it."""
    previous: dict[tuple[str, ...], Mapping] = {}
    if (pruned or any(not a.created for a in done)) and previous_loader is not None:
        previous = {_where(m): m for m in previous_loader() or []}
    jobs: list[tuple[str, Future | None]] = []
    for a in done:
        key = _where(a.manifest)
        if a.created:
            jobs.append((f"deleted {a.name}", _pool.submit(delete_one, kube, a.manifest, uid=a.uid)))
        elif key in previous:
            refs = a.manifest["metadata"].get("ownerReferences")  # the intent as sent, owner included
            back = {**previous[key], "metadata": {**previous[key]["metadata"], "uid": a.uid,
                                                  **({"ownerReferences": refs} if refs else {})}}
            jobs.append((f"restored {a.name}", _pool.submit(apply_one, kube, back)))
        else:
            jobs.append((f"left {a.name} as written (no earlier release recorded)", None))
    for anchor, o in pruned:
        key = (anchor.namespace, *o.key)
        if key in previous:
            again = with_owner(previous[key], anchor, "")
            jobs.append((f"made {describe(again)} again", _pool.submit(_create, kube, again, dry_run=False)))
    _finish_quietly([j for _, j in jobs if j is not None])
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
