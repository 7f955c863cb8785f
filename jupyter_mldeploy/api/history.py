"""History and rollback: the Deployment's revisions, and going back to one of them."""

from __future__ import annotations

from dataclasses import dataclass

from .. import cluster_values
from .. import labels as L
from ..connection import cluster
from ..errors import (
    ClusterError,
    MLDeployError,
    NotDeployed,
)
from ..follow import StatusCallback
from ..kube.client import Kube
from ..kube.resources import collection_path, named_path
from ..render import release as rel
from ..spec import validate_model_name, validate_namespace
from .deploying import deploy
from .handle import Deployment, _selector
from .releases import release_records


@dataclass(frozen=True)
class Revision:
    revision: int
    image: str
    version: str | None
    spec_hash: str | None
    created: str
    replicas: int
    current: bool

    def __str__(self) -> str:
        mark = "*" if self.current else " "
        return f"{mark} {self.revision:>3}  {self.created}  {self.version or '-':<14} {self.image}"


def history(name: str, *, namespace: str | None = None, track: str = "stable", kubeconfig: str | None = None,
            context: str | None = None, kube: Kube | None = None) -> list[Revision]:
    """The Deployment's revisions (its ReplicaSets), oldest first; the live one is marked current."""
    kube = cluster(kube, kubeconfig, context)
    name = validate_model_name(name)
    ns = validate_namespace(namespace or kube.namespace)
    selector = _selector({L.APP_INSTANCE: name, L.TRACK: track})
    _, body = kube.request("GET", collection_path("apps/v1", "ReplicaSet", ns),
                           query={"labelSelector": selector})
    revisions = []
    objname = L.track_name(name, track)
    try:
        _, dep = kube.request("GET", named_path("apps/v1", "Deployment", ns, objname))
    except ClusterError as e:
        if e.status == 404:
            raise NotDeployed(f"{objname} is not deployed in namespace {ns}.") from None
        raise
    live_hash = dep["spec"]["template"]["metadata"].get("annotations", {}).get(L.SPEC_HASH)
    for rs in body.get("items", []):
        meta = rs["metadata"]
        rev = meta.get("annotations", {}).get("deployment.kubernetes.io/revision")
        if rev is None:
            continue
        tmpl = rs["spec"]["template"]
        h = tmpl["metadata"].get("annotations", {}).get(L.SPEC_HASH)
        number = cluster_values.whole_number(rev, key="deployment.kubernetes.io/revision",
                                             where=f"ReplicaSet {meta.get('name')} in namespace {ns}")
        revisions.append(Revision(number, tmpl["spec"]["containers"][0]["image"],
                                  tmpl["metadata"].get("labels", {}).get(L.APP_VERSION), h,
                                  meta.get("creationTimestamp", ""), rs.get("status", {}).get("replicas", 0),
                                  current=h == live_hash))
    return sorted(revisions, key=lambda r: r.revision)


def rollback(name: str, revision: int | None = None, *, namespace: str | None = None, track: str = "stable",
             kubeconfig: str | None = None, context: str | None = None, kube: Kube | None = None,
             wait: bool = True, timeout: float = 600, on_status: StatusCallback | None = None) -> Deployment:
    """Go back to an earlier revision (the previous one by default), every object as it was then."""
    kube = cluster(kube, kubeconfig, context)
    ns = validate_namespace(namespace or kube.namespace)
    revs = history(name, namespace=ns, track=track, kube=kube)
    current = next((r for r in revs if r.current), None)
    if revision is None:
        older = [r for r in revs if current is None or r.revision < current.revision]
        if not older:
            raise MLDeployError(f"{name} has no earlier revision to roll back to.")
        target = older[-1]
    else:
        target = next((r for r in revs if r.revision == revision), None)
        if target is None:
            known = ", ".join(str(r.revision) for r in revs) or "none"
            raise MLDeployError(f"{name} has no revision {revision}; its revisions are {known}.")
    if current is not None and target.spec_hash == current.spec_hash:
        raise MLDeployError(f"Revision {target.revision} of {name} is already live.")
    records = release_records(kube, ns, name, track, selector=f",{L.SPEC_HASH}={target.spec_hash}")
    if not records:
        raise MLDeployError(f"The full spec of revision {target.revision} of {name} is no longer recorded "
                            f"(the newest {rel.KEEP} releases are kept); deploy it again by its spec.")
    spec = rel.spec_of(records[-1])
    return deploy(spec, namespace=ns, kube=kube, wait=wait, timeout=timeout, on_status=on_status)
