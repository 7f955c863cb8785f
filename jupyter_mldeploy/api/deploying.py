"""Deploy: DeploySpec -> render (once) -> pre-flight fit check of the rendered pod template -> every
object and a release record at once -> a Deployment handle -> follow the rollout."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .. import labels as L
from .. import preflight
from ..capacity import Capacity
from ..connection import cluster
from ..errors import (
    ClusterError,
    MLDeployError,
    PreflightFailed,
    RolloutFailed,
    SpecError,
    StaleState,
)
from ..follow import StatusCallback
from ..kube import apply as kapply
from ..kube import inventory, namespaces, owner
from ..kube.client import Kube
from ..kube.resources import describe, named_path
from ..render import release as rel
from ..render import render
from ..render.workload import object_name
from ..spec import DeploySpec, validate_model_name, validate_namespace
from .handle import Deployment, DryRun, _server_diff
from .releases import _give_back, _record, _trim_records, newest_spec_at, release_manifests, write_release
from .removal import undeploy


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


def capacity(kube: Kube | None = None, *, kubeconfig: str | None = None,
             context: str | None = None) -> Capacity:
    """What the cluster's nodes can hold, from the same cached node read the pre-flight uses; an unknown
    capacity (with the reason) when there is no connection or this identity may not list nodes."""
    if kube is None:
        try:
            kube = cluster(None, kubeconfig, context)
        except MLDeployError as e:
            return Capacity.unknown(str(e))
    try:
        return Capacity.from_nodes(inventory.nodes(kube))
    except ClusterError as e:
        return Capacity.unknown(str(e))


def _merged(manifests: Sequence[dict], extra: Sequence[dict]) -> list[dict]:
    """The rendered objects with the extra ones: an extra object (a traffic route) replaces a rendered
    one of the same kind and name."""
    by_name = {describe(m): m for m in manifests}
    by_name.update({describe(m): dict(m) for m in extra})
    return list(by_name.values())


def _prepare(spec: DeploySpec, kube: Kube | None, namespace: str | None, state: dict | None,
             replica_split: bool) -> tuple[str, list[dict]]:
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"deploy needs a DeploySpec, got a {type(spec).__name__}.")
    ns = validate_namespace(spec.namespace or namespace or (kube.namespace if kube else None))
    return ns, render(spec, ns, replica_split=replica_split, state=state)


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
    if dry_run in (True, "client") and isinstance(spec, DeploySpec) and (spec.namespace or namespace):
        # Rendering reads nothing from the cluster once the namespace is known: no connection at all.
        return DryRun(_merged(_prepare(spec, None, namespace, state, replica_split)[1], extra),
                      show_values=show_values)
    kube = cluster(kube, kubeconfig, context)
    ns, manifests = _prepare(spec, kube, namespace, state, replica_split)
    rendered = {owner.key_of(m) for m in manifests}
    manifests = _merged(manifests, extra)
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
        kapply.records().submit(_trim_records, kube, ns, spec.name, spec.track)
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


def deploy_many(specs: Iterable[DeploySpec], *, wait: bool = False, timeout: float = 600,
                namespace: str | None = None, kubeconfig: str | None = None, context: str | None = None,
                kube: Kube | None = None) -> list[Deployment]:
    """Deploy several models in one concurrent round of writes: all are written, or none is.

    "None" holds for updates too: when any write is refused, every model's created objects are deleted
    and its changed ones get their previous release back; the error says, per model, what happened.
    """
    kube = cluster(kube, kubeconfig, context)
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
        owner.later(kube, ns, s.name, kapply.records().submit(_record, kube, c, part, written, []))
    if wait:
        futures = [kapply.waits().submit(h.watch, timeout) for h in handles]
        for f in futures:
            f.result()
    return handles


def get(name: str, *, namespace: str | None = None, track: str = "stable", kubeconfig: str | None = None,
        context: str | None = None, kube: Kube | None = None) -> Deployment:
    """A handle on a model deployed earlier (by this kernel or any other)."""
    kube = cluster(kube, kubeconfig, context)
    handle = Deployment(validate_model_name(name), validate_namespace(namespace or kube.namespace), kube,
                        track=track)
    handle.status()
    return handle
