"""Undeploy: one delete of the model's anchor; the garbage collector removes what it owns."""

from __future__ import annotations

import time

from .. import labels as L
from ..connection import cluster
from ..errors import (
    ClusterError,
    NotDeployed,
    NotOurs,
    SpecError,
    WaitTimeout,
)
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import describe
from ..spec import validate_model_name, validate_namespace
from .releases import release_records


def undeploy(name: str, *, namespace: str | None = None, kubeconfig: str | None = None,
             context: str | None = None, kube: Kube | None = None, track: str | None = None,
             wait: bool = True, timeout: float = 120) -> list[str]:
    """Delete every object jupyter-mldeploy made for `name` (one track if given), and nothing else.

    Without a track it is one delete of the model's anchor: the garbage collector deletes exactly the
    objects that name it as owner (uid), whatever their labels; with wait=True (the default) this
    returns once they are gone. With a track, exactly that track's recorded objects go (uid
    preconditions), in one concurrent round.
    """
    kube = cluster(kube, kubeconfig, context)
    name = validate_model_name(name)
    ns = validate_namespace(namespace or kube.namespace)
    if track is not None and track not in L.TRACKS:
        raise SpecError(f"track {track!r} is not one of {', '.join(L.TRACKS)}.")
    if track is None:
        # This kernel's copy of the anchor is enough to delete it: the delete carries its uid, and the
        # API server answers with what the anchor owns now.
        a = owner.cached(kube, ns, name)
        if a is not None:
            try:
                owned = owner.delete(kube, a)
            except ClusterError as e:
                if e.status not in (404, 409):  # gone, or replaced since: read what is there now
                    raise
                a = None
        if a is None:
            a = _anchor_or_none(kube, ns, name)
            owned = owner.delete(kube, a)
        if wait:
            _wait_until_gone(kube, ns, name, timeout)
        return [describe(o.manifest(ns)) for o in owned]
    a = _anchor_or_none(kube, ns, name)
    objs = a.on_track(track)
    records = [owner.Owned("v1", "Secret", r["metadata"]["name"], r["metadata"]["uid"])
               for r in release_records(kube, ns, name, track)]
    gone = kapply.delete_owned(kube, objs + records, ns)
    owner.record(kube, ns, name, removed=[o.key for o in objs])
    return [g for g in gone if not g.startswith("secret/")]


def _anchor_or_none(kube: Kube, ns: str, name: str) -> owner.Anchor:
    try:
        a = owner.read(kube, ns, name)
    except NotOurs:
        a = None  # a same-named ConfigMap that is not our anchor: nothing of ours, and it stays
    if a is None:
        raise NotDeployed(f"Nothing named {name} was deployed by jupyter-mldeploy in namespace {ns}.")
    return a


def _wait_until_gone(kube: Kube, ns: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.05
    while not owner.gone(kube, ns, name):
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{name}'s objects are still being deleted by the garbage collector after "
                              f"{timeout:.0f} s; they go on being removed in the cluster.", None)
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
