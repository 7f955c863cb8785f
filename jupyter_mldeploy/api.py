"""The Python API that the magics and widgets stand on: deploy, undeploy, history, rollback.

One `%deploy` is: DeploySpec (validated, no I/O) -> render -> pre-flight fit check (node list, cached)
-> every object and a release record applied at once -> a `Deployment` handle -> follow the rollout.
"""

from __future__ import annotations

import difflib
import html
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import yaml

from . import cluster_values, preflight
from . import labels as L
from .capacity import Capacity
from .connection import connect
from .errors import (
    ClusterError,
    MLDeployError,
    NotDeployed,
    NotOurs,
    PreflightFailed,
    RolloutFailed,
    SpecError,
    StaleState,
    WaitTimeout,
)
from .follow import StatusCallback, follow, namespace_watches
from .kube import apply as kapply
from .kube import inventory, namespaces, owner
from .kube.client import Kube
from .kube.resources import collection_path, describe, named_path, object_path
from .render import redact, redact_pair, render, to_yaml
from .render import release as rel
from .render.workload import object_name
from .spec import DeploySpec, validate_model_name, validate_namespace
from .status import RolloutStatus, format_status_table, rollout_status, status_html

# PreflightFailed and WaitTimeout live in errors.py; named here too, their old home.
# Kube is the connection type the faces type against (they never import kube/ themselves).
__all__ = ["Deployment", "DryRun", "Kube", "PreflightFailed", "Revision", "WaitTimeout", "capacity", "deploy",
           "deploy_many", "get", "history", "namespace_watches", "rollback", "undeploy"]

# Every kind jupyter-mldeploy may write for a model (all of them name the model's anchor as owner).
OUR_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"), ("v1", "Service"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "Ingress"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"), ("networking.istio.io/v1", "VirtualService"),
    ("networking.istio.io/v1", "DestinationRule"), ("serving.knative.dev/v1", "Service"),
    ("v1", "Secret"), ("v1", "ConfigMap"),
)


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
    revision: int | None = None  # the model's revision this deploy wrote, assigned through the API server
    first_release: bool = False  # the API server created the model's anchor in this call
    pruned: list[str] = field(default_factory=list)  # objects of the previous release this one dropped
    pending: list = field(default_factory=list, repr=False)  # follow-up writes still in flight

    def _settle(self) -> None:
        while self.pending:
            self.pending.pop().result()
        owner.settled(self.kube, self.namespace, self.name)  # the release's record, written after it

    @property
    def object_name(self) -> str:
        return L.track_name(self.name, self.track)

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
                                      timeout=timeout, on_status=record, deployment=self)
        except (RolloutFailed, WaitTimeout) as e:
            self.last_status = e.status or self.last_status
            raise
        return self.last_status

    wait = watch

    def status(self) -> RolloutStatus:
        """A one-off snapshot (four reads at once), without watching."""
        self._settle()
        ns, name = self.namespace, self.object_name
        pool = kapply.pool()
        dep = pool.submit(self.kube.request, "GET", named_path("apps/v1", "Deployment", ns, name))
        pods = pool.submit(self.kube.request, "GET", collection_path("v1", "Pod", ns),
                           query={"labelSelector": self.selector})
        rss = pool.submit(self.kube.request, "GET", collection_path("apps/v1", "ReplicaSet", ns),
                          query={"labelSelector": self.selector})
        events = pool.submit(self.kube.request, "GET", collection_path("v1", "Event", ns))
        try:
            deployment = dep.result()[1]
        except ClusterError as e:
            if e.status == 404:
                raise NotDeployed(f"{name} is not deployed in namespace {ns}.") from None
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
                     f"applied to existing: {', '.join(self.changed) or '-'}"
                     + (f"; removed, no longer in the spec: {', '.join(self.pruned)}" if self.pruned else "")
                     + ")")
        lines = [head]
        if self.last_status is not None:
            lines.append(format_status_table(self.last_status))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = status_html(self.last_status) if self.last_status is not None else ""
        removed = [f"removed, no longer in the spec: {', '.join(self.pruned)}"] if self.pruned else []
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in [*self.notes, *removed])
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
    show_values: bool = False  # False: literal env values read <redacted> in the text (not in manifests)

    @property
    def yaml(self) -> str:
        return to_yaml(self.manifests if self.show_values else redact(self.manifests))

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


def _server_diff(kube: Kube, manifests: Sequence[dict], show_values: bool = False) -> str:
    pool = kapply.pool()
    would = [pool.submit(kapply.apply_one, kube, m, dry_run=True) for m in manifests]
    live = [pool.submit(kube.request, "GET", object_path(m)) for m in manifests]
    out = []
    for m, w, lv in zip(manifests, would, live, strict=True):
        new = _clean(w.result().result)
        try:
            old = _clean(lv.result()[1])
        except ClusterError as e:
            if e.status != 404:
                raise
            old = None
        if not show_values:  # a changed value shows as changed, never as what it was or became
            old, new = redact_pair(old or {}, new)
        after = yaml.safe_dump(new, sort_keys=True)
        before = "" if not old else yaml.safe_dump(old, sort_keys=True)
        name = describe(m)
        out.extend(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                        f"live/{name}", f"new/{name}"))
    return "".join(out) or "No changes: the cluster already holds this spec.\n"


# ---------------------------------------------------------------------------------------------------
# deploy


def rendered_pod_spec(spec: DeploySpec, manifests: Sequence[dict]) -> dict | None:
    """The pod spec of `spec`'s Deployment among the manifests about to be written (None: none is)."""
    name = object_name(spec)
    return next((m["spec"]["template"]["spec"] for m in manifests
                 if m.get("kind") == "Deployment" and m.get("metadata", {}).get("name") == name), None)


def _preflight(kube: Kube, spec: DeploySpec, notes: list[str], manifests: Sequence[dict]) -> None:
    # The pod spec checked is the one rendered for the write: rendered once, and what is checked is
    # exactly what is sent (an `extra` Deployment of the same name included).
    pod_spec = rendered_pod_spec(spec, manifests)
    nodes = inventory.nodes(kube)
    if nodes is None:
        notes.append("pre-flight skipped: this identity may not list nodes.")
        return
    if any(f.fits for f in preflight.check(spec if pod_spec is None else pod_spec, nodes)):
        return
    raise PreflightFailed(preflight.refusal(spec, nodes, inventory.scheduled_pods(kube), pod_spec=pod_spec))


def capacity(kube: Kube | None = None) -> Capacity:
    """What the cluster's nodes can hold, from the same cached node read the pre-flight uses; an unknown
    capacity (with the reason) when there is no connection or this identity may not list nodes."""
    if kube is None:
        try:
            kube = connect()
        except MLDeployError as e:
            return Capacity.unknown(str(e))
    try:
        return Capacity.from_nodes(inventory.nodes(kube))
    except ClusterError as e:
        return Capacity.unknown(str(e))


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


def _prepare(spec: DeploySpec, kube: Kube, namespace: str | None, state: dict | None,
             replica_split: bool) -> tuple[str, list[dict]]:
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"deploy needs a DeploySpec, got a {type(spec).__name__}.")
    ns = validate_namespace(spec.namespace or namespace or kube.namespace)
    return ns, render(spec, ns, replica_split=replica_split, state=state)


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
    owner.later(kube, ns, spec.name, kapply.pool().submit(_record, kube, c, report, written, removed, then))
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


def deploy(spec: DeploySpec, *, wait: bool = True, timeout: float = 600, namespace: str | None = None,
           kubeconfig: str | None = None, context: str | None = None, kube: Kube | None = None,
           dry_run: bool | str = False, on_status: StatusCallback | None = None, atomic: bool = False,
           state: dict | None = None, replica_split: bool = False,
           extra: Sequence[dict] = (), create_namespace: bool = False,
           show_values: bool = False) -> Deployment | DryRun:
    """Write every object of `spec` at once and (by default) follow the rollout until it completes.

    dry_run=True (or "client") returns the rendered manifests; dry_run="server" asks the API server
    and diffs against what is live; their text shows literal env values as <redacted> unless
    show_values=True. With atomic=True a failed rollout is rolled back (or removed
    when it was the first release). Ctrl-C during the writes undoes them (Interrupted); during the
    wait it stops the waiting only. Objects the previous release had and this one does not render
    are deleted (prune), ours only. create_namespace=True (Helm's --create-namespace) makes the
    namespace when it is missing, and waits for its default ServiceAccount; a dry run creates nothing.
    """
    kube = _kube(kube, kubeconfig, context)
    ns, manifests = _prepare(spec, kube, namespace, state, replica_split)
    rendered = {owner.key_of(m) for m in manifests}
    # An extra object (a traffic route) replaces a rendered one of the same kind and name.
    by_name = {describe(m): m for m in manifests}
    by_name.update({describe(m): dict(m) for m in extra})
    manifests = list(by_name.values())
    if dry_run in (True, "client"):
        return DryRun(manifests, show_values=show_values)
    if dry_run == "server":
        return DryRun(manifests, _server_diff(kube, manifests, show_values), show_values=show_values)
    if dry_run:
        raise SpecError(f"dry_run must be False, True, 'client' or 'server', not {dry_run!r}.")

    handle = Deployment(spec.name, ns, kube, track=spec.track, spec=spec)
    if create_namespace and namespaces.ensure(kube, ns):
        handle.notes.append(f"Created namespace {ns}.")
    _preflight(kube, spec, handle.notes, manifests)

    def then(report: kapply.ApplyReport) -> None:
        # Off the critical path; watch() (and anything that reads status) waits for it first.
        if spec.autoscale is not None and f"deployment/{object_name(spec)}" in report.created:
            _start_at_min_replicas(kube, ns, spec)

    c, report = write_release(kube, ns, spec, manifests, rendered=rendered, then=then)
    handle.revision, handle.first_release = c.revision, c.first_release
    handle.created = [a.name for a in report.applied if a.created]
    handle.changed = [a.name for a in report.applied if not a.created]
    handle.pruned = [describe(o.manifest(ns)) for o in report.pruned]
    handle.seconds_to_write = report.seconds
    if c.revision % rel.KEEP == 0:
        kapply.pool().submit(_trim_records, kube, ns, spec.name, spec.track)
    if not wait:
        return handle
    try:
        handle.watch(timeout, on_status)
    except KeyboardInterrupt:
        handle.interrupted = True
        handle.notes.append("Stopped watching (interrupted); the rollout goes on in the cluster.")
    except RolloutFailed as e:
        if atomic:
            e.args = (f"{e} {_undo_failed_rollout(handle, c)}",)
        raise
    return handle


def _start_at_min_replicas(kube: Kube, ns: str, spec: DeploySpec) -> None:
    """A new autoscaled Deployment starts at the HPA's minimum, not at 1.

    We never send `replicas` in the applied intent (the HPA owns it, and owning it would make our
    next apply conflict with the HPA), so on creation the scale subresource is set once.
    """
    kube.request("PATCH", named_path("apps/v1", "Deployment", ns, object_name(spec)) + "/scale",
                 body={"spec": {"replicas": spec.autoscale.min}},
                 content_type="application/merge-patch+json", query={"fieldManager": L.FIELD_MANAGER})


def _undo_failed_rollout(handle: Deployment, c: owner.Claim) -> str:
    """atomic: whether this was the first release is what the API server said when the anchor was
    created (a 201), never a clock."""
    if c.first_release:
        gone = undeploy(handle.name, namespace=handle.namespace, kube=handle.kube)
        return f"As asked (atomic), it was the first release, so it was removed ({len(gone)} objects)."
    previous = release_manifests(handle.kube, handle.namespace, handle.name, handle.track, c.previous)
    if previous is None:
        return ("As asked (atomic), the previous release would have been put back, but its record is gone; "
                "the failed release was left in place.")
    spec = newest_spec_at(handle.kube, handle.namespace, handle.name, handle.track, c.previous)
    write_release(handle.kube, handle.namespace, spec, previous)
    return f"As asked (atomic), the previous release (revision {c.previous}) was put back."


def newest_spec_at(kube: Kube, ns: str, name: str, track: str, revision: int) -> DeploySpec:
    _, record = kube.request("GET", named_path("v1", "Secret", ns, rel.record_name(name, track, revision)))
    return rel.spec_of(record)


def deploy_many(specs: Iterable[DeploySpec], *, wait: bool = False, timeout: float = 600,
                namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None,
                kube: Kube | None = None) -> list[Deployment]:
    """Deploy several models in one concurrent round of writes: all are written, or none is.

    "None" holds for updates too: when any write is refused, every model's created objects are deleted
    and its changed ones get their previous release back; the error says, per model, what happened.
    """
    kube = _kube(kube, kubeconfig, context)
    specs = list(specs)
    prepared = [(s, *_prepare(s, kube, namespace, None, False)) for s in specs]
    names = [(ns, object_name(s)) for s, ns, _ in prepared]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SpecError(f"deploy_many got {dup[1]} twice in namespace {dup[0]}; each model once, please.")
    handles = []
    for spec, ns, manifests in prepared:
        handle = Deployment(spec.name, ns, kube, track=spec.track, spec=spec)
        _preflight(kube, spec, handle.notes, manifests)
        handles.append(handle)
    pool = kapply.pool()
    jobs = [pool.submit(owner.claim, kube, ns, s.name, s.track) for s, ns, _ in prepared]
    claims, refused = [], []
    for (s, _ns, _), j in zip(prepared, jobs, strict=True):
        try:
            claims.append(j.result())
        except MLDeployError as e:
            refused.append(f"{s.name}: {e}")
    if refused:
        for c in claims:
            _give_back(kube, c)
        raise StaleState("Nothing was written: " + " ".join(refused))
    anchors = {(ns, s.name): c.anchor for (s, ns, _), c in zip(prepared, claims, strict=True)}
    writes, prunes = [], []
    for (s, ns, manifests), c in zip(prepared, claims, strict=True):
        writes += [*manifests, rel.release_record(s, manifests, ns, c.revision)]
        keep = {owner.key_of(m) for m in manifests}
        prunes += [(c.anchor, o) for o in c.anchor.on_track(s.track) if o.key not in keep]

    def previous() -> list[dict]:
        out: list[dict] = []
        for (s, ns, _), c in zip(prepared, claims, strict=True):
            out += release_manifests(kube, ns, s.name, s.track, c.previous) or []
        return out

    try:
        report = kapply.apply_all(
            kube, writes, prune=prunes, previous_loader=previous,
            owner=lambda m: anchors[(m["metadata"]["namespace"], m["metadata"]["labels"][L.APP_INSTANCE])])
    except BaseException as e:
        for c in claims:
            _give_back(kube, c)
        if isinstance(e, MLDeployError):
            e.args = (f"deploy_many wrote none of {', '.join(s.name for s in specs)}: {e}",)
        raise
    for (s, ns, _), c, h in zip(prepared, claims, handles, strict=True):
        mine = [a for a in report.applied if a.manifest["metadata"]["namespace"] == ns
                and a.manifest["metadata"]["labels"].get(L.APP_INSTANCE) == s.name
                and a.manifest["kind"] != "Secret"]
        h.revision, h.first_release = c.revision, c.first_release
        h.created = [a.name for a in mine if a.created]
        h.changed = [a.name for a in mine if not a.created]
        written = [owner.Owned(*owner.key_of(a.manifest), a.uid, s.track) for a in mine]
        part = kapply.ApplyReport(mine)
        owner.later(kube, ns, s.name, pool.submit(_record, kube, c, part, written, []))
    if wait:
        futures = [pool.submit(h.watch, timeout) for h in handles]
        for f in futures:
            f.result()
    return handles


def get(name: str, *, namespace: str | None = None, track: str = "stable", kubeconfig: str | None = None,
        context: str | None = None, kube: Kube | None = None) -> Deployment:
    """A handle on a model deployed earlier (by this kernel or any other)."""
    kube = _kube(kube, kubeconfig, context)
    handle = Deployment(validate_model_name(name), validate_namespace(namespace or kube.namespace), kube,
                        track=track)
    handle.status()
    return handle


# ---------------------------------------------------------------------------------------------------
# undeploy


def undeploy(name: str, *, namespace: str | None = None, kubeconfig: str | None = None,
             context: str | None = None, kube: Kube | None = None, track: str | None = None,
             wait: bool = True, timeout: float = 120) -> list[str]:
    """Delete every object jupyter-mldeploy made for `name` (one track if given), and nothing else.

    Without a track it is one delete of the model's anchor: the garbage collector deletes exactly the
    objects that name it as owner (uid), whatever their labels; with wait=True (the default) this
    returns once they are gone. With a track, exactly that track's recorded objects go (uid
    preconditions), in one concurrent round.
    """
    kube = _kube(kube, kubeconfig, context)
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
    kube = _kube(kube, kubeconfig, context)
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

