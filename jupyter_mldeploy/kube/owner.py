"""Ownership by identity: one anchor object per model, which every object of the model names as owner.

The anchor is a ConfigMap `<name>.mldeploy` in the model's namespace. Every object jupyter-mldeploy
writes for the model carries an ownerReference to it (by uid), so:
- what is ours is known by kind, name and uid, never inferred from labels; a same-named object without
  that reference is someone else's, whatever its labels or fields;
- undeploy is one delete of the anchor: the garbage collector removes exactly its dependents, as it
  does for a Deployment's ReplicaSets;
- the anchor also holds the model's revision counter and a short lease, written with a
  resourceVersion precondition, so the API server (not a client clock) orders releases, and two
  kernels deploying the same model at once cannot interleave their writes.

Its data: `revision` (the last revision claimed), `tracks` (the live revision of each track), `objects`
(the objects of the model, with uid and track) and, while a deploy writes, `lease`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from .. import labels as L
from ..errors import ClusterError, MLDeployError, NotOurs, StaleState
from .client import Kube
from .resources import collection_path, named_path

SUFFIX = ".mldeploy"
ANCHOR = L.ANCHOR  # label on the anchor: the model's name
# A lease older than this (by the server's clock) belongs to a kernel that died while writing.
LEASE_SECONDS = 120.0


def anchor_name(model: str) -> str:
    return f"{model}{SUFFIX}"


@dataclass(frozen=True)
class Owned:
    """One object of a model, by identity."""

    api_version: str
    kind: str
    name: str
    uid: str
    track: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.api_version, self.kind, self.name)

    def manifest(self, namespace: str) -> dict:
        return {"apiVersion": self.api_version, "kind": self.kind,
                "metadata": {"name": self.name, "namespace": namespace, "uid": self.uid}}


def key_of(manifest: Mapping) -> tuple[str, str, str]:
    return (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])


@dataclass
class Anchor:
    namespace: str
    model: str
    uid: str
    resource_version: str
    revision: int = 0
    tracks: dict[str, int] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], Owned] = field(default_factory=dict)
    lease: dict | None = None
    changed_at: str | None = None  # server time of the last write, from managedFields
    created: bool = False  # this call created it: the model's first release

    @property
    def name(self) -> str:
        return anchor_name(self.model)

    def reference(self) -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "name": self.name, "uid": self.uid,
                "blockOwnerDeletion": True}

    def owns(self, obj: Mapping) -> bool:
        refs = obj.get("metadata", {}).get("ownerReferences") or []
        return any(r.get("uid") == self.uid for r in refs)

    def on_track(self, track: str) -> list[Owned]:
        return [o for o in self.objects.values() if o.track == track]


def _body(a: Anchor, *, create: bool = False) -> dict:
    meta: dict = {"name": a.name, "namespace": a.namespace,
                  "labels": {L.APP_INSTANCE: a.model, L.APP_MANAGED_BY: L.MANAGED_BY, ANCHOR: a.model},
                  "annotations": {L.ABOUT: "Owner of every object jupyter-mldeploy wrote for "
                                  f"{a.model}; deleting it deletes them."}}
    if not create:
        meta["resourceVersion"] = a.resource_version
        meta["uid"] = a.uid
    data = {"revision": str(a.revision), "tracks": json.dumps(a.tracks, sort_keys=True),
            "objects": json.dumps([[o.api_version, o.kind, o.name, o.uid, o.track]
                                   for o in sorted(a.objects.values(), key=lambda o: o.key)])}
    if a.lease:
        data["lease"] = json.dumps(a.lease, sort_keys=True)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _parse(obj: Mapping, model: str, *, deleting_ok: bool = False) -> Anchor:
    meta, data = obj["metadata"], obj.get("data") or {}
    if meta.get("labels", {}).get(ANCHOR) != model or "revision" not in data:
        raise NotOurs(
            f"configmap/{meta['name']} exists in namespace {meta['namespace']} but is not jupyter-mldeploy's "
            f"anchor for {model}; it was left as it was. Deploy under another name, or remove it first.",
            obj=f"configmap/{meta['name']}", status=409, reason="NotOurs")
    try:
        objects = {}
        for api_version, kind, name, uid, track in json.loads(data.get("objects") or "[]"):
            o = Owned(api_version, kind, name, uid, track)
            objects[o.key] = o
        a = Anchor(meta["namespace"], model, meta["uid"], meta["resourceVersion"],
                   revision=int(data["revision"]), tracks={k: int(v) for k, v in
                                                           json.loads(data.get("tracks") or "{}").items()},
                   objects=objects, lease=json.loads(data["lease"]) if data.get("lease") else None)
    except (ValueError, TypeError, KeyError) as e:
        raise MLDeployError(f"configmap/{meta['name']} (jupyter-mldeploy's record of what {model} owns) was "
                            f"edited by hand and cannot be read ({e}); nothing was written.") from None
    times = [m.get("time") for m in meta.get("managedFields") or [] if m.get("time")]
    a.changed_at = max(times) if times else meta.get("creationTimestamp")
    if meta.get("deletionTimestamp") and not deleting_ok:
        raise MLDeployError(f"{model} is being removed in namespace {a.namespace} (undeploy is still "
                            f"deleting its objects); try again in a moment.")
    return a


# -- a process-wide cache, only ever used behind a resourceVersion or uid precondition --------------

_lock = threading.Lock()
_cache: dict[tuple[int, str, str], Anchor] = {}


def _remember(kube: Kube, a: Anchor | None, ns: str, model: str) -> None:
    with _lock:
        if a is None:
            _cache.pop((id(kube), ns, model), None)
        else:
            _cache[(id(kube), ns, model)] = replace(a, created=False)


# A deploy records what it wrote in the background (off its critical path); anything else this process
# does to the same model's anchor waits for that first, so it never meets its own lease.
_pending: dict[tuple[int, str, str], Future] = {}


def later(kube: Kube, ns: str, model: str, job: Future) -> None:
    with _lock:
        _pending[(id(kube), ns, model)] = job


def settled(kube: Kube, ns: str, model: str) -> None:
    with _lock:
        job = _pending.pop((id(kube), ns, model), None)
    if job is not None:
        job.result()


def forget_pending(kube: Kube, ns: str, model: str) -> None:
    """The model is going away: its background record-keeping may fail as its objects go; no one
    needs its outcome, so no later call of this process meets that error."""
    with _lock:
        job = _pending.pop((id(kube), ns, model), None)
    if job is not None:
        job.add_done_callback(lambda j: j.exception())


def cached(kube: Kube, ns: str, model: str) -> Anchor | None:
    with _lock:
        a = _cache.get((id(kube), ns, model))
    return replace(a, tracks=dict(a.tracks), objects=dict(a.objects)) if a else None


def _server_now(headers: Mapping[str, str]) -> datetime | None:
    try:
        return parsedate_to_datetime(headers.get("Date") or headers.get("date") or "")
    except (TypeError, ValueError):
        return None


def _at(text: str | None) -> datetime | None:
    try:
        return datetime.strptime(text or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def read(kube: Kube, ns: str, model: str, *, now: dict | None = None) -> Anchor | None:
    """The anchor as the cluster holds it (None: nothing of `model` was ever deployed there)."""
    headers: dict[str, str] = {} if now is None else now
    try:
        _, obj = kube.request("GET", named_path("v1", "ConfigMap", ns, anchor_name(model)),
                              reply_headers=headers, what=f"configmap/{anchor_name(model)}")
    except ClusterError as e:
        if e.status == 404:
            _remember(kube, None, ns, model)
            return None
        raise
    a = _parse(obj, model)
    _remember(kube, a, ns, model)
    return a


def _ago(a: Anchor, headers: Mapping[str, str]) -> str:
    """'20 s ago' by the server's clocks only (its Date header and its managedFields time)."""
    now, then = _server_now(headers), _at(a.changed_at)
    if now is None or then is None:
        return f"at {a.changed_at or 'an unknown time'} (server time)"
    return f"{max(0, int((now - then).total_seconds()))} s ago"


# Leases this process took. One of them on the anchor means a write of ours was interrupted (Ctrl-C
# while the claim's answer was on its way): not another kernel, so it must not lock us out.
_mine: set[str] = set()


def _lease_live(a: Anchor, headers: Mapping[str, str]) -> bool:
    if not a.lease or a.lease.get("token") in _mine:
        return False
    now, then = _server_now(headers), _at(a.changed_at)
    if now is None or then is None:
        return True  # cannot tell: assume the other writer is alive rather than interleave with it
    return (now - then).total_seconds() < LEASE_SECONDS


@dataclass
class Claim:
    """A revision claimed for one deploy: the writes that follow carry `anchor`'s identity."""

    anchor: Anchor
    revision: int
    track: str
    previous: int | None  # the track's live revision before this deploy (None: its first release)
    token: str
    # The model did not exist before this call: said by the API server (our create of the anchor got
    # 201), never by a clock.
    first_release: bool = False


def claim(kube: Kube, ns: str, model: str, track: str) -> Claim:
    """Take the next revision of `model` and a lease on it, or refuse when another kernel is writing.

    One request when this process's cached anchor is current (a PUT with its resourceVersion), two or
    three when it is not. No client clock is read.
    """
    settled(kube, ns, model)
    token = uuid.uuid4().hex
    _mine.add(token)
    base = cached(kube, ns, model)
    for attempt in range(3):
        headers: dict[str, str] = {}
        fresh = base is None  # read just now, not this process's cached copy
        if fresh:
            base = read(kube, ns, model, now=headers)
        if base is None:
            new = Anchor(ns, model, "", "", revision=1, lease={"token": token, "revision": 1})
            try:
                _, obj = kube.request("POST", collection_path("v1", "ConfigMap", ns),
                                      body=_body(new, create=True), query={"fieldManager": L.FIELD_MANAGER},
                                      what=f"configmap/{new.name}")
            except ClusterError as e:
                if e.status == 409 and attempt < 2:  # created by another kernel just now: read it
                    continue
                raise
            a = _parse(obj, model)
            a.created = True
            _remember(kube, a, ns, model)
            return Claim(a, 1, track, None, token, first_release=True)
        if fresh and _lease_live(base, headers):
            raise StaleState(f"{model} is being deployed from another kernel (revision "
                             f"{base.lease.get('revision')}, started {_ago(base, headers)}); nothing was "
                             f"written. Try again when it is done.")
        nxt = replace(base, revision=base.revision + 1, lease={"token": token, "revision": base.revision + 1})
        try:
            _, obj = kube.request("PUT", named_path("v1", "ConfigMap", ns, base.name), body=_body(nxt),
                                  query={"fieldManager": L.FIELD_MANAGER}, what=f"configmap/{base.name}",
                                  reply_headers=headers)
        except ClusterError as e:
            if e.status == 409 and not fresh:
                # Our cached copy was old (another kernel deployed since): read what is there now.
                base = None
                continue
            if e.status == 409:
                now: dict[str, str] = {}
                current = read(kube, ns, model, now=now)
                ago = _ago(current, now) if current else "just now"
                raise StaleState(f"{model} was deployed from another kernel {ago}, while this one was "
                                 f"about to; nothing was written.") from None
            if e.status in (404, 422):  # the anchor was removed (or replaced) since we read it
                _remember(kube, None, ns, model)
                base = None
                continue
            raise
        a = _parse(obj, model)
        _remember(kube, a, ns, model)
        return Claim(a, a.revision, track, base.tracks.get(track), token)
    raise StaleState(f"{model} keeps changing in namespace {ns} (another kernel is deploying it); nothing "
                     f"was written.")


def settle(kube: Kube, c: Claim, *, ok: bool, written: Iterable[Owned] = (),
           removed: Iterable[tuple[str, str, str]] = ()) -> None:
    """Record what a deploy wrote and drop its lease (after success or undo). Retries on a concurrent
    write to the anchor (a rollout recording a route), merging: it only adds and removes our entries."""
    written, removed = list(written), set(removed)
    a = c.anchor
    for _ in range(5):
        new = replace(a, objects=dict(a.objects), tracks=dict(a.tracks))
        if new.lease and new.lease.get("token") == c.token:
            new.lease = None
        for key in removed:
            new.objects.pop(key, None)
        for o in written:
            new.objects[o.key] = o
        if ok:
            new.tracks[c.track] = c.revision
        try:
            _, obj = kube.request("PUT", named_path("v1", "ConfigMap", a.namespace, a.name), body=_body(new),
                                  query={"fieldManager": L.FIELD_MANAGER}, what=f"configmap/{a.name}")
        except ClusterError as e:
            if e.status != 409:
                raise
            a = read(kube, a.namespace, a.model)
            if a is None:
                return  # undeployed meanwhile: nothing left to record
            continue
        parsed = _parse(obj, a.model)
        _remember(kube, parsed, a.namespace, a.model)
        c.anchor = parsed
        return
    raise StaleState(f"{a.model}: could not record what was written (the anchor kept changing).")


def record(kube: Kube, ns: str, model: str, written: Iterable[Owned] = (),
           removed: Iterable[tuple[str, str, str]] = ()) -> Anchor | None:
    """Add or drop entries outside a deploy (a rollout's route writes, a track removed)."""
    settled(kube, ns, model)
    a = cached(kube, ns, model) or read(kube, ns, model)
    if a is None:
        return None
    written, removed = list(written), list(removed)
    if all(a.objects.get(o.key) == o for o in written) and not any(k in a.objects for k in removed):
        return a  # the anchor holds this already (a weight move rewrites a known route): no write
    c = Claim(a, a.revision, "", None, token="")
    for _ in range(2):
        try:
            settle(kube, c, ok=False, written=written, removed=removed)
            return c.anchor
        except ClusterError as e:
            if e.status not in (404, 422):
                raise
            a = read(kube, ns, model)
            if a is None:
                return None
            c = Claim(a, a.revision, "", None, token="")
    return c.anchor


def ensure(kube: Kube, ns: str, model: str) -> Anchor:
    """The model's anchor, created when missing (for writes outside deploy, e.g. a route)."""
    settled(kube, ns, model)
    a = cached(kube, ns, model) or read(kube, ns, model)
    if a is not None:
        return a
    c = claim(kube, ns, model, "stable")
    settle(kube, c, ok=False)
    return c.anchor


def delete(kube: Kube, a: Anchor, *, foreground: bool = True) -> list[Owned]:
    """Delete the anchor (uid precondition); the garbage collector deletes every object it owns.

    Foreground: the anchor stays (marked for deletion) until its objects are gone, so "gone" can be
    waited for. Returns the objects it owned, as the API server answered the delete."""
    forget_pending(kube, a.namespace, a.model)
    body = {"kind": "DeleteOptions", "apiVersion": "v1",
            "propagationPolicy": "Foreground" if foreground else "Background",
            "preconditions": {"uid": a.uid}}
    try:
        _, obj = kube.request("DELETE", named_path("v1", "ConfigMap", a.namespace, a.name), body=body,
                              what=f"configmap/{a.name}")
    finally:
        _remember(kube, None, a.namespace, a.model)
    if obj.get("kind") == "ConfigMap":
        return list(_parse(obj, a.model, deleting_ok=True).objects.values())
    return list(a.objects.values())


def gone(kube: Kube, ns: str, model: str) -> bool:
    try:
        kube.request("GET", named_path("v1", "ConfigMap", ns, anchor_name(model)))
    except ClusterError as e:
        if e.status == 404:
            return True
        raise
    return False
