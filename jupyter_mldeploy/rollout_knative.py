"""A model as a Knative Service, driven: deploy, canary and blue-green by the traffic block, promote,
roll back, steps, status, and failures read from the Revision's and Route's conditions.

Knative replaces the workload objects (it makes a Deployment per revision, its own autoscaler and the
Service `<name>`), so a Knative model is one object of ours: the Knative Service `<name>`, owned (by
uid) by the model's anchor `<name>.mldeploy` like every other object jupyter-mldeploy writes
(kube/owner.py). It is created only when the name is free: a Knative Service or a plain Service of that
name that the anchor does not own is refused, never adopted. A deploy takes the anchor's lease, so two
kernels never write the model at once; every later write (a weight, a promote, a rollback) carries the
resourceVersion it read, so a concurrent change is refused rather than overwritten, and Ctrl-C during
a write puts back what was there. Its template is the newest revision; `spec.traffic` names
revisions and gives each a percent and a tag (stable, canary, preview).

Every revision is named `<name>-<version slug>-<hash>`: a new image or spec is a new revision, the same
spec is the same revision, so a rollback names an earlier revision again and Knative reuses it (its
pods come back; nothing is rebuilt). Each revision's template carries its DeploySpec and Scale in
annotations, so any kernel can roll back from the cluster alone. The rollout state lives in the
Service's annotations under the same keys as the other routers' (rollout.read reads them).

Mirroring does not exist in Knative: shadow is refused (traffic.check_supported) before any write.
Undeploy is api.undeploy: one delete of the anchor; the garbage collector removes the Knative Service,
then, through Knative's own owner references, the Configuration, Route, Revisions, their Deployments and
pods. The Knative Service is recorded in the anchor with no track (it serves every track), so a plain
deploy of the same name never prunes it.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from . import api, traffic
from . import labels as L
from .connection import connect
from .errors import (
    ClusterError,
    Interrupted,
    MLDeployError,
    NoRollout,
    NotDeployed,
    NotOurs,
    RolloutFailed,
    SpecError,
    StaleRollout,
    StaleState,
)
from .follow import WaitTimeout
from .kube import apply as kapply
from .kube import namespaces, owner
from .kube.client import Kube
from .kube.resources import collection_path, named_path
from .render.routers import knative as kn
from .render.workload import pod_template
from .spec import DeploySpec, inherit, validate_namespace

__all__ = ["KnativeModel", "KnativeStatus", "RevisionRow", "Scale", "abort", "deploy", "explain_revision",
           "history", "ours", "promote", "read_weights", "rollback", "set_weight", "start", "status", "steps"]

Scale = kn.Scale
API = "serving.knative.dev/v1"
STRATEGY = L.STRATEGY
STEPS = L.STEPS
SERVICE_LABEL = "serving.knative.dev/service"
GENERATION_LABEL = "serving.knative.dev/configurationGeneration"
SERVICE_UID_LABEL = "serving.knative.dev/serviceUID"  # on each Revision: the Knative Service that made it
TRACK_OF = {"canary": "canary", "blue-green": "preview"}
POLL = 0.5


def _svc_path(ns: str, name: str) -> str:
    return named_path(API, "Service", ns, name)


def read_service(kube: Kube, ns: str, name: str) -> dict | None:
    """The Knative Service `name`, or None (also when Knative is not installed)."""
    return kube.get_or_none(_svc_path(ns, name))


# -- ownership: by identity (the anchor's uid in the Service's ownerReferences), never by labels -------


def _not_ours(name: str, ns: str) -> NotOurs:
    return NotOurs(f"The Knative Service {name} in namespace {ns} is not jupyter-mldeploy's (it does not "
                   f"name {owner.anchor_name(name)} as its owner, whatever its labels); it was left as it "
                   f"was. Choose another model name, or remove it first.", obj=f"ksvc/{name}", status=409,
                   reason="NotOurs")


def _anchor_of(kube: Kube, ns: str, name: str, ksvc: dict) -> owner.Anchor | None:
    """The model's anchor when it owns `ksvc`, else None. This process's copy first, read again when that
    copy does not own it (another kernel may have undeployed and deployed the model since)."""
    a = owner.cached(kube, ns, name)
    if a is not None and a.owns(ksvc):
        return a
    try:
        a = owner.read(kube, ns, name)
    except NotOurs:
        return None  # a same-named ConfigMap that is not an anchor: nothing here is ours
    return a if a is not None and a.owns(ksvc) else None


def ours(kube: Kube, ns: str, name: str) -> dict | None:
    """The Knative Service `name` when it is ours (its owner is the model's anchor); None when there is
    none, when it is someone else's, or when the cluster does not serve Knative."""
    try:
        ksvc = read_service(kube, ns, name)
    except ClusterError as e:
        if e.status in (403, 404):
            return None
        raise
    if ksvc is None or _anchor_of(kube, ns, name, ksvc) is None:
        return None
    return ksvc


def _read_ours(kube: Kube, ns: str, name: str) -> tuple[dict, owner.Anchor]:
    """The model's Knative Service and its anchor, read now; refused when the Service is not ours."""
    ksvc = read_service(kube, ns, name)
    if ksvc is None:
        raise NotDeployed(f"{name} is not deployed as a Knative Service in namespace {ns}: deploy it first "
                          f"with %deploy {name} --image ... --router knative.")
    a = _anchor_of(kube, ns, name, ksvc)
    if a is None:
        raise _not_ours(name, ns)
    return ksvc, a


def _labels(name: str) -> dict[str, str]:
    return {L.APP_INSTANCE: name, L.APP_NAME: name, L.APP_MANAGED_BY: L.MANAGED_BY,
            L.APP_COMPONENT: L.COMPONENT_PREDICTOR}


def _check_spec(spec: DeploySpec) -> None:
    """What a Knative Service cannot carry, refused in one sentence each (no request sent)."""
    if not isinstance(spec, DeploySpec):
        raise SpecError(f"deploy needs a DeploySpec, got a {type(spec).__name__}.")
    if spec.autoscale is not None:
        raise SpecError("with the knative router Knative's own autoscaler sizes each revision, so autoscale "
                        "(a HorizontalPodAutoscaler) does not apply: use min_scale, max_scale and the "
                        "concurrency target (--min-scale, --max-scale, --concurrency).")
    if spec.replicas is not None:
        raise SpecError("with the knative router Knative's autoscaler sets the number of pods, so replicas "
                        "does not apply: use min_scale (pods kept warm) and max_scale.")
    if spec.expose is not None or spec.host is not None:
        raise SpecError("with the knative router the model's address is its Knative route (a URL from the "
                        "cluster's Knative domain configuration), so expose and host do not apply.")
    if spec.strategy == "recreate":
        traffic.check_supported("recreate", "knative")


def template(spec: DeploySpec, ns: str, scale: Scale) -> dict:
    """The revision template for `spec` (track-free: a revision changes role without changing)."""
    spec = spec.with_(track="stable", namespace=ns)
    return kn.revision_template(spec.to_dict(), pod_template(spec), scale, name=spec.name,
                                version=spec.effective_version)


def spec_of(template_or_revision: dict) -> tuple[DeploySpec, Scale]:
    """The DeploySpec and Scale a revision (or a revision template) runs, from its annotations."""
    ann = template_or_revision.get("metadata", {}).get("annotations", {})
    if kn.SPEC not in ann:
        name = template_or_revision.get("metadata", {}).get("name", "?")
        raise MLDeployError(f"revision {name} was not made by jupyter-mldeploy (it carries no spec), so it "
                            f"cannot be rolled back to by its spec.")
    return (DeploySpec.from_dict(json.loads(ann[kn.SPEC])),
            Scale.from_dict(json.loads(ann.get(kn.SCALE, "{}"))))


def intent_of(ksvc: dict) -> dict:
    """What jupyter-mldeploy wrote to make `ksvc` as it is: the template rebuilt from its spec annotation,
    the traffic block and our own annotations (never the webhook's defaults or Knative's annotations,
    which a manager re-sending them would take over). An undo puts this back."""
    meta = ksvc["metadata"]
    state = {k: v for k, v in (meta.get("annotations") or {}).items()
             if k.startswith(L.PREFIX) and k != L.ROUTER}
    block = [{k: t[k] for k in ("revisionName", "percent", "tag") if k in t}
             for t in ksvc.get("spec", {}).get("traffic") or []]
    return kn.service(meta["name"], meta["namespace"], template=_clean_template(ksvc["spec"]["template"]),
                      traffic=block, labels=_labels(meta["name"]), state=state)


def only_knative_wrote(before: dict, now: dict) -> bool:
    """Whether the Service changed between two reads only where Knative's controllers write (its status,
    which moves the resourceVersion too): same object, same spec generation, same labels and our
    annotations. Pure. Any other difference is another writer, whose change must not be overwritten."""
    b, n = before.get("metadata", {}), now.get("metadata", {})

    def ours(meta: dict) -> dict:
        return {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(L.PREFIX)}
    return (b.get("uid") == n.get("uid") and b.get("generation") == n.get("generation")
            and b.get("labels") == n.get("labels") and ours(b) == ours(n)
            and b.get("ownerReferences") == n.get("ownerReferences"))


# A write refused only because Knative updated the status meanwhile is sent again, this many times at
# most (Knative writes the status a few times in the seconds after each change of the spec).
STATUS_RETRIES = 8


def _write(kube: Kube, anchor: owner.Anchor, manifest: dict, *, before: dict | None,
           record: bool = True) -> kapply.Applied:
    """Write the model's Knative Service, owned by `anchor`: a create when `manifest` carries no
    resourceVersion (refused when anything holds the name), else an apply refused when another writer
    changed the Service since `before` was read (a change of Knative's status alone is no conflict: the
    write goes again at the new resourceVersion). Ctrl-C puts `before` back (or deletes what this call
    created)."""
    name = manifest["metadata"]["name"]
    for _attempt in range(STATUS_RETRIES + 1):
        try:
            report = kapply.apply_all(kube, [manifest], owner=anchor,
                                      previous_loader=(lambda b=before: [intent_of(b)]) if before else None)
            break
        except ClusterError as e:
            if not (e.status == 409 and "modified" in str(e)) or before is None:
                raise
            now = read_service(kube, anchor.namespace, name)
            if now is None or not only_knative_wrote(before, now):
                stale = StaleRollout if _state(before).get(STRATEGY) else StaleState
                raise stale(f"The Knative Service {name} changed while this operation ran (another "
                                 f"kernel or kubectl wrote it); nothing was written: run the command "
                                 f"again.") from None
            before = now
            manifest = {**manifest, "metadata": {**manifest["metadata"],
                                                 "resourceVersion": now["metadata"]["resourceVersion"]}}
    else:
        raise StaleState(f"The Knative Service {name} kept changing while this operation ran; nothing was "
                         f"written: run the command again.")
    applied = report.applied[0]
    if applied.created:
        kapply.adopt_created(kube, report)  # our create's fields become our apply's, for the next write
    known = anchor.objects.get(owner.key_of(manifest))
    if record and (known is None or known.uid != applied.uid):
        owner.record(kube, anchor.namespace, anchor.model, written=[_owned(applied)])
    return applied


def _owned(applied: kapply.Applied) -> owner.Owned:
    # No track: the Service serves every track, so no track's deploy or undeploy prunes it.
    return owner.Owned(API, "Service", applied.manifest["metadata"]["name"], applied.uid, None)


def _service(kube: Kube, anchor: owner.Anchor, ksvc: dict, *, tmpl: dict, traffic_: list[dict],
             state: dict) -> kapply.Applied:
    """Rewrite our Knative Service `ksvc` (as read): refused if it changed since."""
    meta = ksvc["metadata"]
    return _write(kube, anchor, kn.service(meta["name"], meta["namespace"], template=tmpl, traffic=traffic_,
                                           labels=_labels(meta["name"]), state=state,
                                           resource_version=meta["resourceVersion"]), before=ksvc)


def _entry(revision: str, percent: int, tag: str) -> dict:
    return {"revisionName": revision, "percent": percent, "tag": tag}


# -- status ------------------------------------------------------------------------------------------


def _cond(obj: dict, ctype: str) -> dict:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return {}


@dataclass(frozen=True)
class RevisionRow:
    name: str
    generation: int
    version: str
    image: str
    ready: str  # True, False, Unknown
    reason: str | None
    percent: int  # the share the route controller computed (status.traffic)
    tags: tuple[str, ...]
    actual: int | None
    desired: int | None
    problem: str | None  # plain words when Ready is False


def explain_revision(rev: dict) -> str | None:
    """A failed revision in plain words (None while it is Ready or still starting)."""
    name = rev.get("metadata", {}).get("name", "?")
    ready = _cond(rev, "Ready")
    if ready.get("status") != "False":
        return None
    containers = rev.get("spec", {}).get("containers") or [{}]
    image = containers[0].get("image", "?")
    health, res = _cond(rev, "ContainerHealthy"), _cond(rev, "ResourcesAvailable")
    message = (ready.get("message") or "").strip()
    if health.get("reason") == "ContainerMissing" or "Unable to fetch image" in message:
        cause = message.split(": ", 1)[-1] if message else "no answer"
        return (f"Knative could not resolve image {image} to a digest, so revision {name} never started "
                f"({_cut(cause)}). Its registry cannot be reached from the cluster, or the image does not "
                f"exist: pin the image by digest (image@sha256:...), or list its registry in Knative's "
                f"config-deployment registries-skipping-tag-resolving.")
    if res.get("reason") == "ProgressDeadlineExceeded" or ready.get("reason") == "ProgressDeadlineExceeded":
        deadline = rev.get("metadata", {}).get("annotations", {}).get("serving.knative.dev/progress-deadline")
        within = (f"within its progress deadline ({deadline})" if deadline
                  else "within Knative's progress deadline")
        return (f"revision {name} never became ready: its pods did not turn Ready {within}, so Knative gave "
                f"up on it. Check the readiness probe and the pods' logs (%rollout shows them).")
    if health.get("status") == "False":
        return f"revision {name} failed: its container {_cut(health.get('message') or health.get('reason'))}."
    return f"revision {name} failed: {ready.get('reason', '')}: {_cut(message)}"


def _cut(text: object, limit: int = 240) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _service_notes(ksvc: dict) -> list[str]:
    notes = []
    ready = _cond(ksvc, "Ready")
    route = _cond(ksvc, "RoutesReady")
    if route.get("reason") == "IngressNotConfigured" or ready.get("reason") == "IngressNotConfigured":
        notes.append("No Knative networking layer has configured the route's KIngress "
                     "(IngressNotConfigured), so requests cannot reach the revisions through Knative yet; "
                     "the traffic shares shown are the ones Knative's route controller computed.")
    elif route.get("status") == "False":
        notes.append(f"The route is not ready: {route.get('reason')}: {_cut(route.get('message'))}")
    config = _cond(ksvc, "ConfigurationsReady")
    if config.get("status") == "False" and "already exists" in (config.get("message") or ""):
        notes.append(f"Knative refused the newest template: {_cut(config.get('message'))}")
    return notes


@dataclass
class KnativeStatus:
    """A Knative model's revisions and how the route splits requests between them."""

    name: str
    namespace: str
    url: str | None
    ready: str  # the Service's Ready condition
    reason: str | None
    revisions: list[RevisionRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    asked: dict[str, int] = field(default_factory=dict)  # spec.traffic: revision -> percent
    routed: dict[str, int] = field(default_factory=dict)  # status.traffic: revision -> percent
    generation_seen: bool = False  # the controller has caught up with the newest write
    entries_match: bool = False  # status.traffic has every entry of spec.traffic, 0% tags included

    def revision(self, name: str) -> RevisionRow | None:
        return next((r for r in self.revisions if r.name == name), None)

    @property
    def settled(self) -> bool:
        """The route controller's split is the one asked."""
        return self.generation_seen and self.entries_match and self.routed == self.asked

    def _rows(self) -> list[tuple[str, ...]]:
        return [(r.name, r.version, f"{r.percent}%", ",".join(r.tags) or "-", r.ready,
                 f"{r.actual if r.actual is not None else '-'}/{r.desired if r.desired is not None else '-'}",
                 r.image) for r in self.revisions]

    HEAD = ("REVISION", "VERSION", "TRAFFIC", "TAGS", "READY", "PODS", "IMAGE")

    def __str__(self) -> str:
        from .magics.display import _table

        head = (f"Knative Service {self.name} in namespace {self.namespace}: Ready {self.ready}"
                + (f" ({self.reason})" if self.reason else "") + (f", URL {self.url}" if self.url else ""))
        lines = [head, *("  " + row for row in _table(self.HEAD, self._rows()))]
        if not self.settled:
            lines.append("  The route controller has not applied the newest traffic split yet.")
        lines += [f"  problem: {r.problem}" for r in self.revisions if r.problem]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from .magics.display import _html_table

        e = html.escape
        problems = "".join(f"<li><b>{e(r.name)}</b>: {e(r.problem)}</li>"
                           for r in self.revisions if r.problem)
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        return (f"<div><b>{e(self.name)}</b> (Knative Service) in <code>{e(self.namespace)}</code>: Ready "
                f"{e(self.ready)}{' (' + e(self.reason) + ')' if self.reason else ''}"
                + _html_table(tuple(h.title() for h in self.HEAD), self._rows())
                + (f"<ul>{problems}{notes}</ul>" if problems or notes else "") + "</div>")


def _generation(rev: dict) -> int:
    """The configuration generation Knative labels a revision with (0 when the label is not a number)."""
    text = rev.get("metadata", {}).get("labels", {}).get(GENERATION_LABEL, "")
    return int(text) if isinstance(text, str) and text.isdigit() else 0


def _revisions(kube: Kube, ns: str, name: str) -> list[dict]:
    """The revisions of the Knative Service `name`, oldest first (by the server's generation numbers)."""
    _, body = kube.request("GET", collection_path(API, "Revision", ns),
                           query={"labelSelector": f"{SERVICE_LABEL}={name}"})
    return sorted(body.get("items", []), key=_generation)


def revisions_of(ksvc: dict, revs: Sequence[dict]) -> list[dict]:
    """Only the revisions this very Service made (Knative's serviceUID label), so a revision left by an
    earlier Service of the same name, or labelled by hand, is never shown, counted or rolled back to."""
    uid = ksvc.get("metadata", {}).get("uid")
    return [r for r in revs if r.get("metadata", {}).get("labels", {}).get(SERVICE_UID_LABEL) == uid]


def status(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> KnativeStatus:
    """One snapshot: the Service (ours only) and its revisions, read at once."""
    kube = kube or connect()
    ns = validate_namespace(namespace or kube.namespace)
    revs_f = kapply.pool().submit(_revisions, kube, ns, name)
    try:
        ksvc, _ = _read_ours(kube, ns, name)
    finally:
        revs = revs_f.result()
    return _status_of(ksvc, revisions_of(ksvc, revs))


def _status_of(ksvc: dict, revs: list[dict]) -> KnativeStatus:
    meta, st = ksvc["metadata"], ksvc.get("status", {})
    asked: dict[str, int] = {}
    for t in ksvc.get("spec", {}).get("traffic") or []:
        if t.get("revisionName"):
            asked[t["revisionName"]] = asked.get(t["revisionName"], 0) + int(t.get("percent") or 0)
    routed: dict[str, int] = {}
    tags: dict[str, list[str]] = {}
    for t in st.get("traffic") or []:
        rev = t.get("revisionName")
        if rev:
            routed[rev] = routed.get(rev, 0) + int(t.get("percent") or 0)
            if t.get("tag"):
                tags.setdefault(rev, []).append(t["tag"])
    def entries(block: list) -> list[tuple]:
        return sorted((t.get("revisionName") or "", int(t.get("percent") or 0), t.get("tag") or "")
                      for t in block or [])

    # The Service may report a generation before its Route's status for it has arrived: compare whole
    # entries, so a 0% tagged revision (a blue-green preview) counts too.
    match = entries(ksvc.get("spec", {}).get("traffic")) == entries(st.get("traffic"))
    asked = {k: v for k, v in asked.items() if v}
    routed = {k: v for k, v in routed.items() if v}
    rows = []
    for rev in revs:
        rmeta = rev["metadata"]
        ready = _cond(rev, "Ready")
        containers = rev.get("spec", {}).get("containers") or [{}]
        rs = rev.get("status", {})
        rows.append(RevisionRow(
            name=rmeta["name"], generation=_generation(rev),
            version=rmeta.get("labels", {}).get(L.APP_VERSION, "-"), image=containers[0].get("image", "?"),
            ready=ready.get("status", "Unknown"), reason=ready.get("reason"),
            percent=routed.get(rmeta["name"], 0), tags=tuple(tags.get(rmeta["name"], ())),
            actual=rs.get("actualReplicas"), desired=rs.get("desiredReplicas"),
            problem=explain_revision(rev)))
    ready = _cond(ksvc, "Ready")
    return KnativeStatus(meta["name"], meta["namespace"], st.get("url"), ready.get("status", "Unknown"),
                         ready.get("reason"), rows, _service_notes(ksvc), asked, routed,
                         generation_seen=st.get("observedGeneration") == meta.get("generation"),
                         entries_match=match)


def _wait(kube: Kube, ns: str, name: str, revision: str, *, timeout: float,
          on_status: Callable[[KnativeStatus], None] | None) -> KnativeStatus:
    """Until `revision` is Ready and the route splits as asked; RolloutFailed when it fails."""
    deadline = time.monotonic() + timeout
    while True:
        st = status(name, namespace=ns, kube=kube)
        if on_status is not None:
            on_status(st)
        row = st.revision(revision)
        if row is not None and row.problem:
            raise RolloutFailed(f"{name}: {row.problem}")
        refused = [n for n in st.notes if n.startswith("Knative refused")]
        if refused:
            raise RolloutFailed(f"{name}: {refused[0]}")
        if row is not None and row.ready == "True" and st.settled:
            return st
        if time.monotonic() >= deadline:
            where = (f"revision {revision} is {row.ready} ({row.reason or 'starting'})" if row is not None
                     else f"revision {revision} was not created yet")
            err = WaitTimeout(f"Stopped waiting for {name} after {timeout:.0f} s: {where}; Knative goes on.",
                              None)
            err.knative = st
            raise err
        time.sleep(POLL)


# -- the handle ----------------------------------------------------------------------------------------


@dataclass
class KnativeModel:
    """A model served as a Knative Service; `status()` reads it again."""

    name: str
    namespace: str
    kube: Kube = field(repr=False)
    revision: str | None = None
    last_status: KnativeStatus | None = None
    notes: list[str] = field(default_factory=list)

    def status(self) -> KnativeStatus:
        self.last_status = status(self.name, namespace=self.namespace, kube=self.kube)
        return self.last_status

    def undeploy(self) -> list[str]:
        return api.undeploy(self.name, namespace=self.namespace, kube=self.kube)

    def rollback(self, to: int | str | None = None, *, wait: bool = True,
                 timeout: float = 600) -> KnativeModel:
        return rollback(self.name, to, namespace=self.namespace, kube=self.kube, wait=wait, timeout=timeout)

    def history(self) -> list[RevisionRow]:
        return history(self.name, namespace=self.namespace, kube=self.kube)

    def __str__(self) -> str:
        body = str(self.last_status) if self.last_status is not None else f"{self.name} (Knative Service)"
        return "\n".join([body, *(f"note: {n}" for n in self.notes)])

    def _repr_html_(self) -> str:
        body = self.last_status._repr_html_() if self.last_status is not None else html.escape(self.name)
        return body + "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)


# -- operations -----------------------------------------------------------------------------------------


def _state(ksvc: dict) -> dict[str, str]:
    return dict(ksvc.get("metadata", {}).get("annotations", {}))


def _plain_refusal(name: str, ns: str, plain: dict | None, anchor: owner.Anchor) -> str | None:
    """Why the name is not free for a Knative Service (Knative makes a Service `<name>` for its route),
    or None when it is."""
    objects = [o for o in anchor.objects.values() if (o.api_version, o.kind) != (API, "Service")]
    if plain is not None and not anchor.owns(plain):
        return (f"A Service named {name} already exists in namespace {ns} and is not jupyter-mldeploy's (it "
                f"is managed by {', '.join(kapply.managers(plain))}), and Knative needs that name for its "
                f"route; it was left as it was: choose another model name, or remove it first.")
    if plain is not None or objects:
        return (f"A Service named {name} already exists in namespace {ns}: {name} is deployed without "
                f"Knative (as a Deployment), and Knative needs that name for its route; %undeploy {name} "
                f"first, or choose another name.")
    return None


def deploy(spec: DeploySpec, *, scale: Scale | None = None, namespace: str | None = None,
           kube: Kube | None = None, wait: bool = True, timeout: float = 600,
           on_status: Callable[[KnativeStatus], None] | None = None,
           create_namespace: bool = False) -> KnativeModel:
    """Serve `spec` as the Knative Service `<name>`, all traffic on its revision once it is Ready.

    A changed image or spec makes a new revision (Knative starts it before moving traffic, so the
    old one keeps answering meanwhile); the same spec is a no-op. `scale` defaults to the current
    revision's (or Scale(): one pod kept warm). The model's anchor is claimed first (its lease keeps
    another kernel from writing the model meanwhile); a Knative Service or Service of that name that
    is not ours is refused and left as it was. create_namespace=True makes the namespace when it is
    missing (as api.deploy does).
    """
    _check_spec(spec)
    if scale is not None and not isinstance(scale, Scale):
        raise SpecError(f"scale must be a rollout_knative.Scale, got {type(scale).__name__}.")
    kube = kube or connect()
    ns = validate_namespace(spec.namespace or namespace or kube.namespace)
    _controller_or_refuse(kube)
    made = create_namespace and namespaces.ensure(kube, ns)
    c = owner.claim(kube, ns, spec.name, "stable")
    try:
        applied, rev = _deploy_write(kube, ns, spec, scale, c.anchor)
    except BaseException:
        api._give_back(kube, c)  # the lease goes; a first release leaves no anchor behind
        raise
    owner.settle(kube, c, ok=True, written=[_owned(applied)])
    handle = KnativeModel(spec.name, ns, kube, revision=rev)
    if made:
        handle.notes.append(f"Created namespace {ns}.")
    if wait:
        try:
            handle.last_status = _wait(kube, ns, spec.name, rev, timeout=timeout, on_status=on_status)
        except KeyboardInterrupt:
            handle.notes.append("Stopped watching (interrupted); Knative goes on with the revision.")
    return handle


def _deploy_write(kube: Kube, ns: str, spec: DeploySpec, scale: Scale | None,
                  anchor: owner.Anchor) -> tuple[kapply.Applied, str]:
    pool = kapply.pool()
    svc_f = pool.submit(read_service, kube, ns, spec.name)
    plain_f = pool.submit(kube.get_or_none, named_path("v1", "Service", ns, spec.name))
    ksvc, plain = svc_f.result(), plain_f.result()
    if ksvc is not None and not anchor.owns(ksvc):
        raise _not_ours(spec.name, ns)
    if ksvc is None:
        refusal = _plain_refusal(spec.name, ns, plain, anchor)
        if refusal:
            raise NotOurs(refusal, obj=f"service/{spec.name}", status=409, reason="NotOurs")
    else:
        if _state(ksvc).get(STRATEGY):
            raise MLDeployError(f"{spec.name} has a {_state(ksvc)[STRATEGY]} rollout in progress: promote "
                                f"it or roll it back first (%promote {spec.name} or %rollback {spec.name}).")
        if scale is None:
            scale = spec_of(ksvc["spec"]["template"])[1]
    tmpl = template(spec, ns, scale or Scale())
    rev = tmpl["metadata"]["name"]
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: rev, L.WEIGHT: "0"}
    block = [_entry(rev, 100, "stable")]
    if ksvc is None:  # a create: refused by the API server if anything took the name since the read
        m = kn.service(spec.name, ns, template=tmpl, traffic=block, labels=_labels(spec.name), state=state)
        return _write(kube, anchor, m, before=None, record=False), rev
    m = kn.service(spec.name, ns, template=tmpl, traffic=block, labels=_labels(spec.name), state=state,
                   resource_version=ksvc["metadata"]["resourceVersion"])
    return _write(kube, anchor, m, before=ksvc, record=False), rev


def start(candidate: DeploySpec | Mapping[str, Any], *, strategy: str, weight: int | None = None,
          mirror: int | None = None, namespace: str | None = None, kube: Kube | None = None,
          wait: bool = True, timeout: float = 600, scale: Scale | None = None,
          on_status: Callable[[KnativeStatus], None] | None = None):
    """A canary (or blue-green preview) as a second revision, by the traffic block: the stable revision
    keeps 100 - weight percent; the candidate's revision gets `weight` and a tag of its track.

    The candidate inherits, as with every router: it is the stable revision's spec (read from the
    revision's own template) with only the changes given (`candidate`: a mapping of DeploySpec fields
    with the model's name, or a DeploySpec whose non-default fields are the changes)."""
    from .rollout import Rollout, _changes

    traffic.check_supported(strategy, "knative", weight=weight if strategy != "shadow" else None,
                            mirror=mirror)  # shadow: refused here, Knative cannot mirror
    if strategy not in TRACK_OF:
        raise SpecError(f"strategy {strategy!r} has no candidate revision; use canary or blue-green.")
    if strategy == "blue-green" and weight not in (None, 0):
        raise SpecError("a blue-green rollout starts with no traffic on the preview; switch it with promote "
                        "once the preview is ready.")
    name, own_ns, changes = _changes(candidate)
    if scale is not None and not isinstance(scale, Scale):
        raise SpecError(f"scale must be a rollout_knative.Scale, got {type(scale).__name__}.")
    kube = kube or connect()
    ns = validate_namespace(own_ns or namespace or kube.namespace)
    ksvc, anchor = _read_ours(kube, ns, name)
    _controller_or_refuse(kube)
    state = _state(ksvc)
    if state.get(STRATEGY):
        raise MLDeployError(f"{name} already has a rollout in progress: promote it or roll it back first "
                            f"(%promote {name} or %rollback {name}).")
    # The template is the stable revision's while no rollout runs: the candidate is it, changed.
    candidate = inherit(spec_of(ksvc["spec"]["template"])[0], changes).with_(namespace=ns)
    _check_spec(candidate)
    stable_tmpl = ksvc["spec"]["template"]
    stable_rev = state.get(kn.STABLE_REVISION, stable_tmpl["metadata"]["name"])
    stable_scale = spec_of(stable_tmpl)[1]
    tmpl = template(candidate, ns, scale or stable_scale)
    cand_rev = tmpl["metadata"]["name"]
    if cand_rev == stable_rev:
        raise SpecError(f"the candidate has the same image and spec as the stable model (revision "
                        f"{stable_rev}): change the image or the spec to start a rollout.")
    weight = weight or 0
    r = Rollout(candidate.name, ns, strategy, "knative", weight=weight,
                stable_version=state.get(L.STABLE_VERSION), candidate_version=candidate.effective_version,
                kube=kube)
    _write_state(r, ksvc, anchor, tmpl=tmpl, stable_rev=stable_rev, cand_rev=cand_rev)
    if wait:
        _wait_or_note(kube, ns, candidate.name, cand_rev, timeout=timeout, on_status=on_status,
                      done="the candidate revision was written")
    return r


def _wait_or_note(kube: Kube, ns: str, name: str, revision: str, *, timeout: float,
                  on_status: Callable[[KnativeStatus], None] | None, done: str) -> KnativeStatus:
    """_wait, where Ctrl-C stops the waiting only: what was written stays, and the error says so."""
    try:
        return _wait(kube, ns, name, revision, timeout=timeout, on_status=on_status)
    except KeyboardInterrupt:
        raise Interrupted(f"Stopped waiting for {name} (interrupted); {done} and Knative goes on "
                          f"(%rollout {name} shows where it is).") from None


def _rollout_state(r, stable_rev: str, cand_rev: str | None) -> dict[str, str]:
    out = {STRATEGY: r.strategy, L.WEIGHT: str(r.weight), L.STEP: str(r.step),
           STEPS: ",".join(map(str, r.steps)), kn.STABLE_REVISION: stable_rev}
    if r.stable_version:
        out[L.STABLE_VERSION] = r.stable_version
    if r.candidate_version:
        out[L.CANDIDATE_VERSION] = r.candidate_version
    if cand_rev:
        out[kn.CANDIDATE_REVISION] = cand_rev
    return out


def traffic_block(strategy: str, weight: int, stable_rev: str, cand_rev: str | None) -> list[dict]:
    """The Knative Service's `spec.traffic` for a rollout at `weight` percent (pure): both revisions by
    name, each tagged with its track, so a 0% candidate (a blue-green preview) keeps its tag's URL."""
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise SpecError(f"the weight must be a whole number from 0 to 100, not {weight!r}.")
    if cand_rev is None:
        return [_entry(stable_rev, 100, "stable")]
    if strategy not in TRACK_OF:
        raise SpecError(f"strategy {strategy!r} has no candidate revision; use canary or blue-green.")
    if cand_rev == stable_rev:
        raise SpecError(f"the stable and candidate revisions are both {stable_rev}.")
    return [_entry(stable_rev, 100 - weight, "stable"), _entry(cand_rev, weight, TRACK_OF[strategy])]


def stale_view(r, annotations: dict[str, str]) -> str | None:
    """Why the rollout `r` (a view read earlier) is not the one these Service annotations hold, in one
    sentence; None when it still is (pure). The weight may differ: moving it is what the caller asks."""
    if not annotations.get(STRATEGY):
        return (f"{r.name} has no rollout in progress any more (it was promoted or rolled back since this "
                f"view was read); nothing was written.")
    now = (annotations.get(STRATEGY), annotations.get(L.STABLE_VERSION), annotations.get(L.CANDIDATE_VERSION))
    seen = (r.strategy, r.stable_version, r.candidate_version)
    if now == seen:
        return None
    return (f"{r.name}'s rollout changed since this view was read (it is now {now[0]} from {now[1] or '?'} "
            f"to {now[2] or '?'}, not {seen[0]} from {seen[1] or '?'} to {seen[2] or '?'}); nothing was "
            f"written: read it again (%rollout {r.name}).")


def _write_state(r, ksvc: dict, anchor: owner.Anchor, *, tmpl: dict | None = None,
                 stable_rev: str | None = None, cand_rev: str | None = None) -> kapply.Applied:
    """The Service for rollout `r`: the template (the candidate's), the split and the state, in one write."""
    state = _state(ksvc)
    stable_rev = stable_rev or state[kn.STABLE_REVISION]
    cand_rev = cand_rev or state[kn.CANDIDATE_REVISION]
    tmpl = tmpl or ksvc["spec"]["template"]
    split = traffic_block(r.strategy, r.weight, stable_rev, cand_rev)
    return _service(r.kube, anchor, ksvc, tmpl=_clean_template(tmpl), traffic_=split,
                    state=_rollout_state(r, stable_rev, cand_rev))


def _clean_template(tmpl: dict) -> dict:
    """The template as we wrote it: the webhook adds defaults (timeouts, probe ports, resources) that a
    manager re-sending the template would otherwise take over as its own."""
    spec, scale = spec_of(tmpl)
    ns = spec.namespace
    return template(spec, ns, scale)


def _rollout_now(r) -> tuple[dict, owner.Anchor]:
    """The model's Knative Service as it is now, and its anchor, when it still holds the rollout `r`
    describes (the same strategy and versions); otherwise the view `r` came from is stale (another
    kernel promoted, rolled back or started another rollout since) and nothing is written."""
    ksvc, anchor = _read_ours(r.kube, r.namespace, r.name)
    why = stale_view(r, _state(ksvc))
    if why:
        # The slider (and any caller) shows the cluster's state again on these, as for other routers.
        raise (StaleRollout if _state(ksvc).get(STRATEGY) else NoRollout)(why)
    return ksvc, anchor


def set_weight(r, percent: int):
    """`percent` of requests to the candidate revision: one read (for the resourceVersion) and one write."""
    if r.strategy != "canary":
        raise SpecError(f"{r.name} is a {r.strategy} rollout; a weight applies to canary rollouts "
                        f"(blue-green switches with promote).")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise SpecError(f"the canary weight must be a whole number from 0 to 100, not {percent!r}.")
    ksvc, anchor = _rollout_now(r)
    new = replace(r, weight=percent)
    _write_state(new, ksvc, anchor)
    return new


def promote(r, *, wait: bool = True, timeout: float = 600,
            on_status: Callable[[KnativeStatus], None] | None = None):
    """canary: all traffic to the candidate revision, which becomes the stable one (the template already
    is the candidate's, so nothing restarts). blue-green: the first promote switches all traffic to the
    preview and keeps the rollout (rollback switches back); `release` finishes it."""
    ksvc, anchor = _rollout_now(r)
    state = _state(ksvc)
    cand_rev = state[kn.CANDIDATE_REVISION]
    if r.strategy == "blue-green" and state.get(L.WEIGHT, "0") == "0":
        switched = replace(r, weight=100)
        _write_state(switched, ksvc, anchor)
        if wait:
            _wait_or_note(r.kube, r.namespace, r.name, cand_rev, timeout=timeout, on_status=on_status,
                          done="all traffic was switched to the preview")
        return switched
    done = {L.STABLE_VERSION: r.candidate_version or "", kn.STABLE_REVISION: cand_rev, L.WEIGHT: "0"}
    _service(r.kube, anchor, ksvc, tmpl=_clean_template(ksvc["spec"]["template"]),
             traffic_=[_entry(cand_rev, 100, "stable")], state=done)
    if wait:
        _wait_or_note(r.kube, r.namespace, r.name, cand_rev, timeout=timeout, on_status=on_status,
                      done="the promote was written")
    return None


def abort(r, *, wait: bool = True, timeout: float = 600) -> None:
    """All traffic back on the stable revision, and the template back to the stable revision's (Knative
    reuses that revision: same name, same spec). The candidate revision stays, with no traffic, until
    Knative's garbage collection removes it; Knative scales an unrouted revision to zero."""
    ksvc, anchor = _rollout_now(r)
    stable_rev = _state(ksvc)[kn.STABLE_REVISION]
    _back_to(r.kube, anchor, ksvc, stable_rev, wait=wait, timeout=timeout, on_status=None)


def _back_to(kube: Kube, anchor: owner.Anchor, ksvc: dict, revision: str, *, wait: bool, timeout: float,
             on_status) -> KnativeStatus | None:
    ns, name = ksvc["metadata"]["namespace"], ksvc["metadata"]["name"]
    rev = kube.get_or_none(named_path(API, "Revision", ns, revision))
    if rev is None or not revisions_of(ksvc, [rev]):
        raise MLDeployError(f"revision {revision} of {name} no longer exists (Knative's garbage collection "
                            f"removed it); deploy its spec again.")
    spec, scale = spec_of(rev)
    tmpl = template(spec, ns, scale)
    if tmpl["metadata"]["name"] != revision:
        raise MLDeployError(f"revision {revision} was made by another version of jupyter-mldeploy and cannot "
                            f"be rebuilt under its name; deploy its spec again.")
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: revision, L.WEIGHT: "0"}
    _service(kube, anchor, ksvc, tmpl=tmpl, traffic_=[_entry(revision, 100, "stable")], state=state)
    if wait:
        return _wait_or_note(kube, ns, name, revision, timeout=timeout, on_status=on_status,
                             done=f"all traffic was sent back to {revision}")
    return None


def history(name: str, *, namespace: str | None = None, kube: Kube | None = None) -> list[RevisionRow]:
    """The model's revisions, oldest first, with the share each gets now."""
    return status(name, namespace=namespace, kube=kube).revisions


def rollback(name: str, to: int | str | None = None, *, namespace: str | None = None,
             kube: Kube | None = None, wait: bool = True, timeout: float = 600,
             on_status: Callable[[KnativeStatus], None] | None = None) -> KnativeModel:
    """Back to an earlier revision: the one before the current stable revision by default, or `to` (a
    configuration generation number as in `%rollback --to N`, a revision name or a version)."""
    kube = kube or connect()
    ns = validate_namespace(namespace or kube.namespace)
    revs_f = kapply.pool().submit(_revisions, kube, ns, name)
    try:
        ksvc, anchor = _read_ours(kube, ns, name)
    finally:
        all_revs = revs_f.result()
    if _state(ksvc).get(STRATEGY):
        raise MLDeployError(f"{name} has a rollout in progress: %rollback {name} (without --to) rolls it "
                            f"back first.")
    revs = revisions_of(ksvc, all_revs)
    current = _state(ksvc).get(kn.STABLE_REVISION)
    gen = {r["metadata"]["name"]: _generation(r) for r in revs}
    if to is None:
        older = [n for n, g in gen.items() if n != current and g < gen.get(current, 1 << 30)]
        if not older:
            raise MLDeployError(f"{name} has no earlier revision to roll back to.")
        target = max(older, key=gen.get)
    else:
        matches = [r["metadata"]["name"] for r in revs
                   if to in (gen[r["metadata"]["name"]], r["metadata"]["name"],
                             r["metadata"].get("labels", {}).get(L.APP_VERSION))]
        if not matches:
            known = ", ".join(f"{g}: {n}" for n, g in gen.items()) or "none"
            raise MLDeployError(f"{name} has no revision {to!r}; its revisions are {known}.")
        target = matches[-1]
    if target == current:
        raise MLDeployError(f"Revision {target} of {name} is already live.")
    handle = KnativeModel(name, ns, kube, revision=target)
    handle.last_status = _back_to(kube, anchor, ksvc, target, wait=wait, timeout=timeout, on_status=on_status)
    return handle


def steps(r, schedule: Sequence[int], *, wait_s: float, check: Callable[[], bool] | None, once: bool,
          timeout: float, on_step: Callable | None):
    """rollout.steps for a Knative canary: each step is one write of the traffic block, made only while
    the candidate revision is Ready and `check()` passes; otherwise the rollout is rolled back."""
    sched = tuple(schedule)
    while True:
        _healthy_or_abort(r, check)
        ksvc, anchor = _rollout_now(r)
        nxt = r.step + 1 if r.steps == sched else next((i for i, s in enumerate(sched) if s > r.weight),
                                                        len(sched))
        if nxt >= len(sched) or sched[nxt] == 100:
            return promote(r, timeout=timeout)
        r = replace(r, weight=sched[nxt], step=nxt, steps=sched)
        _write_state(r, ksvc, anchor)
        if on_step is not None:
            on_step(r)
        if once:
            return r
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            _healthy_or_abort(r, check)


def _healthy_or_abort(r, check: Callable[[], bool] | None) -> None:
    st = status(r.name, namespace=r.namespace, kube=r.kube)
    ksvc_state = read_service(r.kube, r.namespace, r.name)
    cand = st.revision(_state(ksvc_state or {}).get(kn.CANDIDATE_REVISION, ""))
    why = None
    if cand is None or cand.ready != "True":
        why = cand.problem if cand is not None and cand.problem else "the candidate revision is not Ready"
    elif check is not None and not check():
        why = "the check failed"
    if why:
        abort(r, wait=False)
        raise RolloutFailed(f"The canary of {r.name} was rolled back at {r.weight}%: {why}.")


def read_weights(r) -> tuple[float, float]:
    """(stable, candidate) percent as Knative's route controller computed them (status.traffic)."""
    ksvc = ours(r.kube or connect(), r.namespace, r.name)
    if ksvc is None:
        return 100.0, 0.0
    state = _state(ksvc)
    st = _status_of(ksvc, [])
    return (float(st.routed.get(state.get(kn.STABLE_REVISION, ""), 0)),
            float(st.routed.get(state.get(kn.CANDIDATE_REVISION, ""), 0)))


def read_pods(r) -> dict:
    """Each track's revision pods (ready of desired, as Knative's autoscaler reports them on the
    Revision), for the split picture: a Knative canary has no `<name>-canary` Deployment."""
    from .split import TrackPods

    kube = r.kube or connect()
    revs = kapply.pool().submit(_revisions, kube, r.namespace, r.name)
    ksvc, _ = _read_ours(kube, r.namespace, r.name)
    st = _status_of(ksvc, revisions_of(ksvc, revs.result()))
    out = {}
    for track, key in (("stable", kn.STABLE_REVISION), ("canary", kn.CANDIDATE_REVISION)):
        row = st.revision(_state(ksvc).get(key, ""))
        out[track] = TrackPods(int(row.actual or 0), int(row.desired or 0)) if row else TrackPods()
    return out


def ready_candidate_pods(r) -> int:
    st = status(r.name, namespace=r.namespace, kube=r.kube or connect())
    ksvc = read_service(r.kube or connect(), r.namespace, r.name) or {}
    cand = st.revision(_state(ksvc).get(kn.CANDIDATE_REVISION, ""))
    return int(cand.actual or 0) if cand is not None and cand.ready == "True" else 0


# -- what runs ----------------------------------------------------------------------------------------


def _controller_or_refuse(kube: Kube) -> None:
    """Refuse (nothing written) when Knative's leases can be read and no controller holds one: the
    Service would never become revisions. Unreadable leases (a namespace-bound identity) pass."""
    found = components(kube)
    if found and not found["controller"]:
        raise MLDeployError("Knative Serving's controller is not running on this cluster (no fresh lease in "
                            "knative-serving), so nothing would turn a Knative Service into revisions; start "
                            "Knative Serving (in the sandbox: sandbox up --knative), or use another router.")


def components(kube: Kube) -> dict[str, bool]:
    """Which Knative Serving components hold a fresh lease in knative-serving (controller, webhook,
    autoscaler), and whether the activator has endpoints; {} when Knative is not installed. Fresh by
    the API server's clock (its Date header), never this machine's."""
    headers: dict[str, str] = {}
    try:
        _, body = kube.request("GET", "/apis/coordination.k8s.io/v1/namespaces/knative-serving/leases",
                               reply_headers=headers)
    except ClusterError:
        return {}
    found = lease_holders(body.get("items", []), owner._server_now(headers))
    try:
        _, eps = kube.request("GET", "/api/v1/namespaces/knative-serving/endpoints/activator-service")
        found["activator"] = any(s.get("addresses") for s in eps.get("subsets") or [])
    except ClusterError:
        found["activator"] = False
    return found


def lease_holders(leases: Sequence[dict], now: datetime | None) -> dict[str, bool]:
    """Which of controller, webhook and autoscaler hold a lease renewed within twice its duration of
    `now` (the server's time; None: unknown, so a held lease counts). Pure."""
    from .kube.diagnose import parse_time

    found = {"controller": False, "webhook": False, "autoscaler": False}
    for lease in leases:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            continue
        renewed = parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 else 60
        if now is not None and (renewed is None or now.timestamp() - renewed >= 2 * duration):
            continue
        lname = lease.get("metadata", {}).get("name", "")
        for c in found:
            if lname.startswith(c):
                found[c] = True
    return found


def ingress_ready(kube: Kube) -> bool | None:
    """Whether any KIngress is Ready (a networking layer acts on them); None when there is none."""
    try:
        _, body = kube.request("GET", "/apis/networking.internal.knative.dev/v1alpha1/ingresses")
    except ClusterError:
        return None
    items = body.get("items", [])
    if not items:
        return None
    return any(_cond(i, "Ready").get("status") == "True" for i in items)


def manifest(spec: DeploySpec, namespace: str, scale: Scale | None = None) -> dict:
    """The Knative Service a first deploy of `spec` writes (for dry runs; no cluster needed)."""
    _check_spec(spec)
    tmpl = template(spec, namespace, scale or Scale())
    rev = tmpl["metadata"]["name"]
    state = {L.STABLE_VERSION: spec.effective_version, kn.STABLE_REVISION: rev, L.WEIGHT: "0"}
    return kn.service(spec.name, namespace, template=tmpl, traffic=[_entry(rev, 100, "stable")],
                      labels=_labels(spec.name), state=state)


class ProgressLines:
    """An on_status that prints one line whenever a revision's readiness or the split changes."""

    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.out = out
        self.seen: tuple | None = None

    def __call__(self, st: KnativeStatus) -> None:
        key = (tuple((r.name, r.ready, r.reason, r.percent) for r in st.revisions), st.settled)
        if key == self.seen:
            return
        self.seen = key
        revs = "; ".join(f"{r.name} Ready {r.ready}" + (f" ({r.reason})" if r.reason and r.ready != "True"
                                                         else "") + f", {r.percent}%"
                         for r in st.revisions) or "no revision yet"
        self.out(f"  {time.strftime('%H:%M:%S')}  {revs}" + ("" if st.settled else "; route catching up"))


_LACKS = {
    "controller": "no Knative controller runs, so nothing turns a Knative Service into revisions (the "
                  "knative router refuses to deploy)",
    "webhook": "Knative's webhook does not answer, so Knative Services are refused or go in without "
               "Knative's defaults and validation",
    "autoscaler": "Knative's autoscaler does not run, so no PodAutoscaler is reconciled and revisions stay "
                  "Deploying, never Ready",
    "activator": "Knative's activator has no endpoints, so a revision scaled to zero cannot be woken by a "
                 "request",
}


def health_sentence(kube: Kube) -> str | None:
    """What Knative Serving can and cannot do on this cluster, in one or two sentences; None when the
    cluster does not serve Knative."""
    found = components(kube)
    if not found:
        return None
    return describe_components(found, ingress_ready(kube))


def describe_components(found: dict[str, bool], ingress: bool | None) -> str:
    """health_sentence's words for which components run and whether a KIngress is Ready (pure)."""
    running = [c for c, up in found.items() if up]
    lacks = [_LACKS[c] for c, up in found.items() if not up]
    if ingress is not True:
        lacks.append("no networking layer makes a KIngress Ready, so routes stay IngressNotConfigured: the "
                     "split is computed by Knative's route controller, but no request reaches a revision "
                     "through Knative" + ("" if ingress is False else " (no KIngress yet)"))
    head = (f"Knative Serving components running: {', '.join(running)}." if running
            else "Knative Serving's API is served but none of its components runs.")
    return head + (" Lacking: " + "; ".join(lacks) + "." if lacks else "")


def _anchor_uids(kube: Kube, namespace: str | None) -> set[tuple[str, str, str]]:
    """(namespace, name, uid) of every model anchor there (one list request)."""
    path = "/api/v1/configmaps" if namespace is None else collection_path("v1", "ConfigMap", namespace)
    try:
        _, body = kube.request("GET", path, query={"labelSelector": owner.ANCHOR})
    except ClusterError:
        return set()
    return {(c["metadata"]["namespace"], c["metadata"]["name"], c["metadata"]["uid"])
            for c in body.get("items", [])}


def models(kube: Kube, namespace: str | None) -> list[str]:
    """One line per Knative Service of ours: its revisions and their traffic shares."""
    path = ("/apis/serving.knative.dev/v1/services" if namespace is None
            else collection_path(API, "Service", namespace))
    try:
        _, body = kube.request("GET", path)
    except ClusterError:
        return []
    anchors = {(ns, n): uid for ns, n, uid in _anchor_uids(kube, namespace)}
    out = []
    for ksvc in body.get("items", []):
        meta = ksvc["metadata"]
        uid = anchors.get((meta["namespace"], owner.anchor_name(meta["name"])))
        if uid is None or not any(r.get("uid") == uid for r in meta.get("ownerReferences") or []):
            continue  # not owned by its model's anchor: someone else's, whatever its labels
        st = _status_of(ksvc, [])
        split = ", ".join(f"{rev} {pct}%" for rev, pct in sorted(st.routed.items())) or "no traffic yet"
        where = f"{st.namespace}/" if namespace is None else ""
        out.append(f"{where}{st.name}: {split}; Ready {st.ready}" + (f" ({st.reason})" if st.reason else ""))
    return out
