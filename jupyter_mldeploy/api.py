"""The Python API that the magics and widgets stand on: deploy, undeploy, history, rollback.

One `%deploy` is: DeploySpec (validated, no I/O) -> render -> pre-flight fit check (node list, cached)
-> every object and a release record applied at once -> a `Deployment` handle -> follow the rollout.
"""

from __future__ import annotations

import difflib
import html
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import yaml

from . import labels as L
from . import preflight
from .connection import connect
from .errors import ClusterError, MLDeployError, RolloutFailed, SpecError
from .follow import StatusCallback, WaitTimeout, follow
from .kube import apply as kapply
from .kube import inventory, namespaces
from .kube.client import Kube
from .kube.resources import collection_path, describe, object_path
from .render import release as rel
from .render import render, to_yaml
from .render.workload import object_name
from .spec import DeploySpec
from .status import RolloutStatus, format_status_table, rollout_status, status_html

__all__ = ["Deployment", "DryRun", "PreflightFailed", "Revision", "WaitTimeout", "deploy", "deploy_many",
           "get", "history", "rollback", "undeploy"]

# Every kind jupyter-mldeploy may have written for a model; undeploy deletes them by label.
OUR_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"), ("v1", "Service"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"), ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"), ("serving.knative.dev/v1", "Service"),
    ("v1", "ConfigMap"),
)


class PreflightFailed(MLDeployError):
    """No node of the cluster could ever run one pod of the spec; nothing was written."""


def _selector(d: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in d.items())


def _kube(kube: Kube | None, kubeconfig: str | None, context: str | None) -> Kube:
    return kube or connect(kubeconfig, context)


# ---------------------------------------------------------------------------------------------------
# the handle


@dataclass
class Deployment:
    """A model deployed on the cluster: watch it, inspect it, roll it back, remove it.

    Everything it knows can be read back from the cluster, so `get(name)` in another kernel (or
    tomorrow's papermill run) gives an equivalent handle.
    """

    name: str
    namespace: str
    kube: Kube = field(repr=False)
    track: str = "stable"
    spec: DeploySpec | None = None
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_status: RolloutStatus | None = None
    interrupted: bool = False
    seconds_to_write: float | None = None
    pending: list = field(default_factory=list, repr=False)  # follow-up writes still in flight

    def _settle(self) -> None:
        while self.pending:
            self.pending.pop().result()

    @property
    def object_name(self) -> str:
        return self.name if self.track == "stable" else f"{self.name}-{self.track}"

    @property
    def selector(self) -> str:
        return _selector({L.APP_INSTANCE: self.name, L.TRACK: self.track})

    def watch(self, timeout: float = 600, on_status: StatusCallback | None = None) -> RolloutStatus:
        """Follow the rollout until complete; RolloutFailed on a fatal diagnosis, WaitTimeout at timeout."""
        self._settle()

        def record(status: RolloutStatus) -> None:
            self.last_status = status
            if on_status is not None:
                on_status(status)

        try:
            self.last_status = follow(self.kube, self.namespace, self.object_name, self.selector,
                                      timeout=timeout, on_status=record)
        except (RolloutFailed, WaitTimeout) as e:
            self.last_status = getattr(e, "status", None) or self.last_status
            e.deployment = self
            raise
        return self.last_status

    wait = watch

    def status(self) -> RolloutStatus:
        """A one-off snapshot (four reads at once), without watching."""
        self._settle()
        ns, name = self.namespace, self.object_name
        pool = kapply.pool()
        dep = pool.submit(self.kube.request, "GET", f"{collection_path('apps/v1', 'Deployment', ns)}/{name}")
        pods = pool.submit(self.kube.request, "GET", collection_path("v1", "Pod", ns),
                           query={"labelSelector": self.selector})
        rss = pool.submit(self.kube.request, "GET", collection_path("apps/v1", "ReplicaSet", ns),
                          query={"labelSelector": self.selector})
        events = pool.submit(self.kube.request, "GET", collection_path("v1", "Event", ns))
        try:
            deployment = dep.result()[1]
        except ClusterError as e:
            if e.status == 404:
                raise MLDeployError(f"{name} is not deployed in namespace {ns}.") from None
            raise
        deployment.setdefault("kind", "Deployment")
        self.last_status = rollout_status(
            deployment, pods.result()[1].get("items", []), events.result()[1].get("items", []),
            replica_sets=rss.result()[1].get("items", []), name=name, namespace=ns)
        return self.last_status

    def undeploy(self) -> list[str]:
        return undeploy(self.name, namespace=self.namespace, kube=self.kube)

    def history(self) -> list[Revision]:
        return history(self.name, namespace=self.namespace, kube=self.kube, track=self.track)

    def rollback(self, revision: int | None = None, *, wait: bool = True, timeout: float = 600) -> Deployment:
        return rollback(self.name, revision, namespace=self.namespace, kube=self.kube, track=self.track,
                        wait=wait, timeout=timeout)

    # -- views ---------------------------------------------------------------------------------------

    def __str__(self) -> str:
        head = f"{self.object_name} in namespace {self.namespace}"
        if self.created or self.changed:
            head += (f" (created: {', '.join(self.created) or '-'}; "
                     f"applied to existing: {', '.join(self.changed) or '-'})")
        lines = [head]
        if self.last_status is not None:
            lines.append(format_status_table(self.last_status))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = status_html(self.last_status) if self.last_status is not None else ""
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (f"<div><b>{html.escape(self.object_name)}</b> in namespace "
                f"<code>{html.escape(self.namespace)}</code>{body}"
                + (f"<ul>{notes}</ul>" if notes else "") + "</div>")


# ---------------------------------------------------------------------------------------------------
# dry runs


@dataclass(frozen=True)
class DryRun:
    """What a deploy would write (client side), or what the API server would make of it (server side)."""

    manifests: list[dict]
    diff: str | None = None  # server-side dry run: unified diff against what is live

    @property
    def yaml(self) -> str:
        return to_yaml(self.manifests)

    def __str__(self) -> str:
        return self.diff if self.diff is not None else self.yaml

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"


def _clean(obj: dict) -> dict:
    """Drop what the server adds (status, managedFields, uid...) so a diff shows intent only."""
    meta = {k: v for k, v in obj.get("metadata", {}).items()
            if k not in ("managedFields", "uid", "resourceVersion", "generation", "creationTimestamp")}
    annotations = {k: v for k, v in meta.get("annotations", {}).items()
                   if k != "deployment.kubernetes.io/revision"}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def _server_diff(kube: Kube, manifests: Sequence[dict]) -> str:
    pool = kapply.pool()
    would = [pool.submit(kapply.apply_one, kube, m, dry_run=True) for m in manifests]
    live = [pool.submit(kube.request, "GET", object_path(m)) for m in manifests]
    out = []
    for m, w, lv in zip(manifests, would, live, strict=True):
        after = yaml.safe_dump(_clean(w.result().result), sort_keys=True)
        try:
            before = yaml.safe_dump(_clean(lv.result()[1]), sort_keys=True)
        except ClusterError as e:
            if e.status != 404:
                raise
            before = ""
        name = describe(m)
        out.extend(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        f"live/{name}", f"new/{name}"))
    return "".join(out) or "No changes: the cluster already holds this spec.\n"


# ---------------------------------------------------------------------------------------------------
# deploy


def _preflight(kube: Kube, spec: DeploySpec, notes: list[str]) -> None:
    nodes = inventory.nodes(kube)
    if nodes is None:
        notes.append("pre-flight skipped: this identity may not list nodes.")
        return
    if any(f.fits for f in preflight.check(spec, nodes)):
        return
    raise PreflightFailed(preflight.refusal(spec, nodes, inventory.scheduled_pods(kube)))


def _previous_release(kube: Kube, namespace: str, spec: DeploySpec, before_ms: int) -> list[dict] | None:
    _, body = kube.request("GET", collection_path("v1", "ConfigMap", namespace),
                           query={"labelSelector": rel.record_selector(spec.name, spec.track)})
    older = [r for r in body.get("items", []) if rel.created_ms(r) < before_ms]
    if not older:
        return None
    return rel.manifests_of(max(older, key=rel.created_ms))


_trim_counts: dict[tuple[str, str, str], int] = {}


def _deploys_since_trim(ns: str, spec: DeploySpec) -> int:
    """Trimming lists the records; doing it every KEEP deploys (per process) bounds both costs."""
    key = (ns, spec.name, spec.track)
    _trim_counts[key] = _trim_counts.get(key, rel.KEEP - 1) + 1  # the first deploy in a process trims
    if _trim_counts[key] >= rel.KEEP:
        _trim_counts[key] = 0
        return rel.KEEP
    return _trim_counts[key]


def recorded_objects(kube: Kube, namespace: str, name: str) -> set[str]:
    """Every object (kind/name) any release of `name`, on any track, has written."""
    _, body = kube.request("GET", collection_path("v1", "ConfigMap", namespace),
                           query={"labelSelector": f"{L.selector_for(name)},{rel.RECORD}=release"})
    return {describe(m) for r in body.get("items", []) for m in rel.manifests_of(r)}


def _trim_records(kube: Kube, namespace: str, name: str, track: str) -> None:
    """Keep the newest KEEP release records (run in the background after a successful write)."""
    try:
        _, body = kube.request("GET", collection_path("v1", "ConfigMap", namespace),
                               query={"labelSelector": rel.record_selector(name, track)})
        for old in sorted(body.get("items", []), key=rel.created_ms)[:-rel.KEEP]:
            kapply.delete_one(kube, {**old, "apiVersion": "v1", "kind": "ConfigMap"},
                              uid=old["metadata"]["uid"])
    except MLDeployError:
        pass  # bookkeeping only: the next deploy trims again


def _prepare(spec: DeploySpec, kube: Kube, namespace: str | None, state: dict | None,
             replica_split: bool) -> tuple[str, list[dict]]:
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"deploy needs a DeploySpec, got a {type(spec).__name__}.")
    ns = spec.namespace or namespace or kube.namespace
    return ns, render(spec, ns, replica_split=replica_split, state=state)


def deploy(spec: DeploySpec, *, wait: bool = True, timeout: float = 600, namespace: str | None = None,
           kubeconfig: str | None = None, context: str | None = None, kube: Kube | None = None,
           dry_run: bool | str = False, on_status: StatusCallback | None = None, atomic: bool = False,
           state: dict | None = None, replica_split: bool = False,
           extra: Sequence[dict] = (), create_namespace: bool = False) -> Deployment | DryRun:
    """Write every object of `spec` at once and (by default) follow the rollout until it completes.

    dry_run=True (or "client") returns the rendered manifests; dry_run="server" asks the API server
    and diffs against what is live. With atomic=True a failed rollout is rolled back (or removed
    when it was the first release). Ctrl-C or the timeout stops the waiting only. create_namespace=True
    (Helm's --create-namespace) makes the namespace when it is missing, and waits for its default
    ServiceAccount; a dry run creates nothing.
    """
    kube = _kube(kube, kubeconfig, context)
    ns, manifests = _prepare(spec, kube, namespace, state, replica_split)
    # An extra object (a traffic route) replaces a rendered one of the same kind and name.
    by_name = {describe(m): m for m in manifests}
    by_name.update({describe(m): dict(m) for m in extra})
    manifests = list(by_name.values())
    if dry_run in (True, "client"):
        return DryRun(manifests)
    if dry_run == "server":
        return DryRun(manifests, _server_diff(kube, manifests))
    if dry_run:
        raise SpecError(f"dry_run must be False, True, 'client' or 'server', not {dry_run!r}.")

    handle = Deployment(spec.name, ns, kube, track=spec.track, spec=spec)
    if create_namespace and namespaces.ensure(kube, ns):
        handle.notes.append(f"Created namespace {ns}.")
    _preflight(kube, spec, handle.notes)
    now_ms = int(time.time() * 1000)
    record = rel.release_record(spec, manifests, ns, now_ms)
    report = kapply.apply_all(kube, [*manifests, record],
                              previous_loader=lambda: _previous_release(kube, ns, spec, now_ms),
                              recorded=lambda: recorded_objects(kube, ns, spec.name))
    if _deploys_since_trim(ns, spec) >= rel.KEEP:
        kapply.pool().submit(_trim_records, kube, ns, spec.name, spec.track)
    ours = [a for a in report.applied if a.manifest["metadata"]["name"] != record["metadata"]["name"]]
    handle.created = [a.name for a in ours if a.created]
    handle.changed = [a.name for a in ours if not a.created]
    handle.seconds_to_write = report.seconds
    if spec.autoscale is not None and f"deployment/{object_name(spec)}" in handle.created:
        # Off the critical path; watch() (and anything that reads status) waits for it first.
        handle.pending.append(kapply.pool().submit(_start_at_min_replicas, kube, ns, spec))
    if not wait:
        return handle
    try:
        handle.watch(timeout, on_status)
    except KeyboardInterrupt:
        handle.interrupted = True
        handle.notes.append("Stopped watching (interrupted); the rollout goes on in the cluster.")
    except RolloutFailed as e:
        if atomic:
            e.args = (f"{e} {_undo_failed_rollout(handle, now_ms)}",)
        raise
    return handle


def _start_at_min_replicas(kube: Kube, ns: str, spec: DeploySpec) -> None:
    """A new autoscaled Deployment starts at the HPA's minimum, not at 1.

    We never send `replicas` in the applied intent (the HPA owns it, and owning it would make our
    next apply conflict with the HPA), so on creation the scale subresource is set once.
    """
    kube.request("PATCH", f"{collection_path('apps/v1', 'Deployment', ns)}/{object_name(spec)}/scale",
                 body={"spec": {"replicas": spec.autoscale.min}},
                 content_type="application/merge-patch+json", query={"fieldManager": L.FIELD_MANAGER})


def _undo_failed_rollout(handle: Deployment, now_ms: int) -> str:
    previous = _previous_release(handle.kube, handle.namespace, handle.spec, now_ms)
    if previous is None:
        gone = undeploy(handle.name, namespace=handle.namespace, kube=handle.kube, track=handle.track)
        return f"As asked (atomic), it was the first release, so it was removed ({len(gone)} objects)."
    kapply.apply_all(handle.kube, previous)
    return "As asked (atomic), the previous release was put back."


def deploy_many(specs: Iterable[DeploySpec], *, wait: bool = False, timeout: float = 600,
                namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None,
                kube: Kube | None = None) -> list[Deployment]:
    """Deploy several models in one concurrent round of writes: all are written, or none is."""
    kube = _kube(kube, kubeconfig, context)
    specs = list(specs)
    names = [(s.namespace or namespace or kube.namespace, object_name(s)) for s in specs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SpecError(f"deploy_many got {dup[1]} twice in namespace {dup[0]}; each model once, please.")
    now_ms = int(time.time() * 1000)
    handles, writes = [], []
    for spec in specs:
        ns, manifests = _prepare(spec, kube, namespace, None, False)
        handle = Deployment(spec.name, ns, kube, track=spec.track, spec=spec)
        _preflight(kube, spec, handle.notes)
        writes.extend(manifests)
        writes.append(rel.release_record(spec, manifests, ns, now_ms))
        handles.append(handle)
    kapply.apply_all(kube, writes)
    if wait:
        futures = [kapply.pool().submit(h.watch, timeout) for h in handles]
        for f in futures:
            f.result()
    return handles


def get(name: str, *, namespace: str | None = None, track: str = "stable", kubeconfig: str | None = None,
        context: str | None = None, kube: Kube | None = None) -> Deployment:
    """A handle on a model deployed earlier (by this kernel or any other)."""
    kube = _kube(kube, kubeconfig, context)
    handle = Deployment(name, namespace or kube.namespace, kube, track=track)
    handle.status()
    return handle


# ---------------------------------------------------------------------------------------------------
# undeploy


def undeploy(name: str, *, namespace: str | None = None, kubeconfig: str | None = None,
             context: str | None = None, kube: Kube | None = None, track: str | None = None) -> list[str]:
    """Delete every object jupyter-mldeploy made for `name` (all tracks unless one is given), at once."""
    kube = _kube(kube, kubeconfig, context)
    ns = namespace or kube.namespace
    served = inventory.served_groups(kube)
    kinds = [k for k in OUR_KINDS if k[0] in served]
    gone = kapply.delete_collections(kube, ns, L.selector_for(name, track), kinds)
    if not gone:
        raise MLDeployError(f"Nothing named {name} was deployed by jupyter-mldeploy in namespace {ns}.")
    return gone


# ---------------------------------------------------------------------------------------------------
# history and rollback


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
    kube = _kube(kube, kubeconfig, context)
    ns = namespace or kube.namespace
    selector = _selector({L.APP_INSTANCE: name, L.TRACK: track})
    _, body = kube.request("GET", collection_path("apps/v1", "ReplicaSet", ns),
                           query={"labelSelector": selector})
    revisions = []
    objname = name if track == "stable" else f"{name}-{track}"
    try:
        _, dep = kube.request("GET", f"{collection_path('apps/v1', 'Deployment', ns)}/{objname}")
    except ClusterError as e:
        if e.status == 404:
            raise MLDeployError(f"{objname} is not deployed in namespace {ns}.") from None
        raise
    live_hash = dep["spec"]["template"]["metadata"].get("annotations", {}).get(L.SPEC_HASH)
    for rs in body.get("items", []):
        meta = rs["metadata"]
        rev = meta.get("annotations", {}).get("deployment.kubernetes.io/revision")
        if rev is None:
            continue
        tmpl = rs["spec"]["template"]
        h = tmpl["metadata"].get("annotations", {}).get(L.SPEC_HASH)
        revisions.append(Revision(int(rev), tmpl["spec"]["containers"][0]["image"],
                                  tmpl["metadata"].get("labels", {}).get(L.APP_VERSION), h,
                                  meta.get("creationTimestamp", ""), rs.get("status", {}).get("replicas", 0),
                                  current=h == live_hash))
    return sorted(revisions, key=lambda r: r.revision)


def rollback(name: str, revision: int | None = None, *, namespace: str | None = None, track: str = "stable",
             kubeconfig: str | None = None, context: str | None = None, kube: Kube | None = None,
             wait: bool = True, timeout: float = 600, on_status: StatusCallback | None = None) -> Deployment:
    """Go back to an earlier revision (the previous one by default), every object as it was then."""
    kube = _kube(kube, kubeconfig, context)
    ns = namespace or kube.namespace
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
    _, body = kube.request("GET", collection_path("v1", "ConfigMap", ns), query={
        "labelSelector": f"{rel.record_selector(name, track)},{L.SPEC_HASH}={target.spec_hash}"})
    records = body.get("items", [])
    if not records:
        raise MLDeployError(f"The full spec of revision {target.revision} of {name} is no longer recorded "
                            f"(the newest {rel.KEEP} releases are kept); deploy it again by its spec.")
    spec = rel.spec_of(max(records, key=rel.created_ms))
    return deploy(spec, namespace=ns, kube=kube, wait=wait, timeout=timeout, on_status=on_status)

