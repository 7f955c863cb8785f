"""The canary split the cluster holds, as a picture: the shares read back from the route object, each
track's version and ready pods, drawn as a bar (HTML for the CanarySlider, text for a terminal).

`read_weights` and `read_pods` read the cluster (the route object, the two Deployments); `Split` and
its `text()` / `html()` are pure, so the slider, `%canary NAME` headless and the tests draw the same
picture. No ipywidgets here: a headless kernel may not have it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import traffic
from .cluster_values import number
from .errors import ClusterError
from .kube.resources import collection_path

if TYPE_CHECKING:
    from .kube.client import Kube
    from .rollout import Rollout

__all__ = ["Split", "TrackPods", "Weights", "pods_from_deployment", "read_pods", "read_split",
           "read_weights"]

STABLE_COLOUR, CANARY_COLOUR = "#1565c0", "#ef6c00"
_GREY = "#757575"


def _pct(x: float) -> str:
    return f"{x:.0f}%" if abs(x - round(x)) < 0.05 else f"{x:.1f}%"


@dataclass(frozen=True)
class Weights:
    """The split the cluster holds: percent of requests to each track (and, without a router, what the
    replica count allows, in a sentence)."""

    stable: float
    canary: float
    router: str
    sentence: str | None = None

    def __str__(self) -> str:
        return f"stable {_pct(self.stable)} / canary {_pct(self.canary)}"


@dataclass(frozen=True)
class TrackPods:
    """One track's Deployment: ready pods of the desired count (0/0 when it is not there)."""

    ready: int = 0
    desired: int = 0

    def __str__(self) -> str:
        return f"{self.ready}/{self.desired} ready"


def _get(kube: Kube, path: str) -> dict | None:
    try:
        return kube.request("GET", path)[1]
    except ClusterError as e:
        if e.status == 404:
            return None
        raise


def read_weights(r: Rollout) -> Weights:
    """Read the weights from the route object itself (not the rollout's own record of them)."""
    from .connection import connect

    kube, ns, name = r.kube or connect(), r.namespace, r.name
    if r.router == "knative":  # the split Knative's route controller computed between the two revisions
        from . import rollout_knative

        return Weights(*rollout_knative.read_weights(r), r.router)
    if r.router == "istio":
        vs = _get(kube, f"{collection_path('networking.istio.io/v1', 'VirtualService', ns)}/{name}") or {}
        routes = ((vs.get("spec", {}).get("http") or [{}])[0]).get("route") or []
        # An Istio route with a single destination and no weight takes all requests.
        by = {d["destination"].get("subset"): d.get("weight", 100 if len(routes) == 1 else 0) for d in routes}
        return Weights(float(by.get("stable", 0)), float(by.get("canary", 0)), r.router)
    if r.router == "gateway":
        hr = _get(kube, f"{collection_path('gateway.networking.k8s.io/v1', 'HTTPRoute', ns)}/{name}") or {}
        refs = ((hr.get("spec", {}).get("rules") or [{}])[0]).get("backendRefs") or []
        by = {b["name"]: b.get("weight", 1) for b in refs}  # Gateway API: weights are proportional, default 1
        total = sum(by.values()) or 1
        return Weights(100 * by.get(name, 0) / total, 100 * by.get(f"{name}-canary", 0) / total, r.router)
    if r.router == "nginx":
        ing = _get(kube, f"{collection_path('networking.k8s.io/v1', 'Ingress', ns)}/{name}-canary") or {}
        ann = ing.get("metadata", {}).get("annotations", {})
        prefix = "nginx.ingress.kubernetes.io/"
        where = f"Ingress {name}-canary in namespace {ns}"  # a hand-edited value is one sentence
        weight = number(ann.get(prefix + "canary-weight", 0), key=prefix + "canary-weight", where=where)
        total = number(ann.get(prefix + "canary-weight-total", 100), key=prefix + "canary-weight-total",
                       where=where) or 100
        return Weights(100 - 100 * weight / total, 100 * weight / total, r.router)
    # replicas: requests divide by pods, so the split is what the Deployments ask for
    deployments = collection_path("apps/v1", "Deployment", ns)
    stable, canary = (_get(kube, f"{deployments}/{n}") or {} for n in (name, f"{name}-canary"))
    s = int(stable.get("spec", {}).get("replicas") or 0)
    c = int(canary.get("spec", {}).get("replicas") or 0)
    total = s + c
    sentence = r.split_sentence
    if sentence is None and total:
        sentence = traffic.achievable_split(r.weight, total).sentence
    return Weights(100 * s / total if total else 100.0, 100 * c / total if total else 0.0, r.router, sentence)


def pods_from_deployment(dep: Mapping | None) -> TrackPods:
    """A Deployment's ready pods of its desired count, from its own spec and status."""
    if not dep:
        return TrackPods()
    return TrackPods(int((dep.get("status") or {}).get("readyReplicas") or 0),
                     int((dep.get("spec") or {}).get("replicas") or 0))


def read_pods(name: str, *, namespace: str, kube: Kube) -> dict[str, TrackPods]:
    """Each track's ready pods, from the stable and canary Deployments (two reads)."""
    deployments = collection_path("apps/v1", "Deployment", namespace)
    return {track: pods_from_deployment(_get(kube, f"{deployments}/{n}"))
            for track, n in (("stable", name), ("canary", f"{name}-canary"))}


@dataclass(frozen=True)
class Split:
    """What the picture shows: the model, the shares, each track's version and pods."""

    name: str
    weights: Weights
    stable_version: str | None = None
    canary_version: str | None = None
    stable_pods: TrackPods | None = None  # None: not read
    canary_pods: TrackPods | None = None

    def _tracks(self) -> list[tuple[str, str | None, float, TrackPods | None, str]]:
        w = self.weights
        return [("stable", self.stable_version, w.stable, self.stable_pods, STABLE_COLOUR),
                ("canary", self.canary_version, w.canary, self.canary_pods, CANARY_COLOUR)]

    def text(self, width: int = 40) -> str:
        """A text bar ('#' stable, '+' canary) and one line per track, for a terminal or papermill log."""
        stable = round(width * self.weights.stable / 100)
        lines = [f"{self.name}: {self.weights} via {self.weights.router}",
                 f"  [{'#' * stable}{'+' * (width - stable)}]"]
        for (track, version, share, pods, _), mark in zip(self._tracks(), "#+", strict=True):
            lines.append(f"  {mark} {track:<6} {version or '?':<10} {_pct(share):>5}"
                         + (f"  {pods}" if pods is not None else ""))
        if self.weights.sentence:
            lines.append(f"  {self.weights.sentence}")
        return "\n".join(lines)

    def html(self) -> str:
        """A bar of the two shares with the versions and ready pods of each track; everything escaped."""
        e = html.escape
        segments, legend = [], []
        for track, version, share, pods, colour in self._tracks():
            label = f"{track} {version or '?'} \u00b7 {_pct(share)}"
            if share > 0:
                inner = e(label) if share >= 18 else ""  # too narrow for words: the legend has them
                segments.append(
                    f'<div class="mldeploy-split-{track}" title="{e(label)}" style="width:{share:.2f}%;'
                    f"background:{colour};color:#fff;font-size:12px;line-height:22px;white-space:nowrap;"
                    f'overflow:hidden;text-align:center">{inner}</div>')
            legend.append(f'<span style="margin-right:14px"><span style="display:inline-block;width:10px;'
                          f'height:10px;background:{colour};margin-right:4px"></span><b>{e(track)}</b> '
                          f"<code>{e(version or '?')}</code> {e(_pct(share))}"
                          + (f", {e(str(pods))}" if pods is not None else "") + "</span>")
        sentence = (f'<div style="color:{_GREY};font-size:12px">{e(self.weights.sentence)}</div>'
                    if self.weights.sentence else "")
        return (f'<div class="mldeploy-split-bar" style="display:flex;width:400px;height:22px;'
                f'border:1px solid #bbb;border-radius:3px;overflow:hidden;margin:4px 0">{"".join(segments)}'
                f'</div><div class="mldeploy-split-legend" style="font-size:12px">{"".join(legend)}</div>'
                f"{sentence}")


def read_split(r: Rollout, *, pods: Mapping[str, TrackPods] | None = None) -> Split:
    """The picture of a canary rollout as the cluster holds it (pods read unless given)."""
    from .connection import connect

    weights = read_weights(r)
    if pods is None and r.router == "knative":  # its tracks are revisions, not Deployments
        from . import rollout_knative

        pods = rollout_knative.read_pods(r)
    if pods is None:
        pods = read_pods(r.name, namespace=r.namespace, kube=r.kube or connect())
    return Split(r.name, weights, r.stable_version, r.candidate_version, pods.get("stable"),
                 pods.get("canary"))
