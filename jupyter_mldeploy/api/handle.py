"""The `Deployment` handle a deploy returns, and dry runs (client-side, or the API server's with a diff)."""

from __future__ import annotations

import difflib
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

from .. import labels as L
from ..errors import (
    ClusterError,
    NotDeployed,
    RolloutFailed,
    WaitTimeout,
)
from ..follow import StatusCallback, follow
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import collection_path, describe, named_path, object_path
from ..render import redact, redact_pair, to_yaml
from ..spec import DeploySpec
from ..status import RolloutStatus, format_status_table, rollout_status, status_html

if TYPE_CHECKING:
    from .history import Revision


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

    # The operations return handles, so the handle imports them on use.
    def undeploy(self) -> list[str]:
        from .removal import undeploy

        return undeploy(self.name, namespace=self.namespace, kube=self.kube)

    def history(self) -> list[Revision]:
        from .history import history

        return history(self.name, namespace=self.namespace, kube=self.kube, track=self.track)

    def rollback(self, revision: int | None = None, *, wait: bool = True, timeout: float = 600) -> Deployment:
        from .history import rollback

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
