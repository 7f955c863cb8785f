"""What a Knative model is doing: revisions, their conditions in plain words, and the wait for one."""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import labels as L
from ..connection import cluster
from ..errors import RolloutFailed, WaitTimeout
from ..kube import apply as kapply
from ..kube import owner
from ..kube.client import Kube
from ..kube.resources import collection_path
from ..spec import validate_namespace
from ..views.tables import html_table, text_table
from .service import API, GENERATION_LABEL, POLL, SERVICE_LABEL, SERVICE_UID_LABEL, _read_ours


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
        head = (f"Knative Service {self.name} in namespace {self.namespace}: Ready {self.ready}"
                + (f" ({self.reason})" if self.reason else "") + (f", URL {self.url}" if self.url else ""))
        lines = [head, *("  " + row for row in text_table(self.HEAD, self._rows()))]
        if not self.settled:
            lines.append("  The route controller has not applied the newest traffic split yet.")
        lines += [f"  problem: {r.problem}" for r in self.revisions if r.problem]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        problems = "".join(f"<li><b>{e(r.name)}</b>: {e(r.problem)}</li>"
                           for r in self.revisions if r.problem)
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        return (f"<div><b>{e(self.name)}</b> (Knative Service) in <code>{e(self.namespace)}</code>: Ready "
                f"{e(self.ready)}{' (' + e(self.reason) + ')' if self.reason else ''}"
                + html_table(tuple(h.title() for h in self.HEAD), self._rows())
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


def read_with_revisions(kube: Kube, ns: str, name: str) -> tuple[dict, owner.Anchor, list[dict]]:
    """The model's Knative Service (ours only, with its anchor) and every revision, read at once."""
    revs_f = kapply.pool().submit(_revisions, kube, ns, name)
    try:
        ksvc, anchor = _read_ours(kube, ns, name)
    finally:
        revs = revs_f.result()
    return ksvc, anchor, revs


def status(name: str, *, namespace: str | None = None, kube: Kube | None = None,
           kubeconfig: str | None = None, context: str | None = None) -> KnativeStatus:
    """One snapshot: the Service (ours only) and its revisions, read at once."""
    kube = cluster(kube, kubeconfig, context)
    ksvc, _, revs = read_with_revisions(kube, validate_namespace(namespace or kube.namespace), name)
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
