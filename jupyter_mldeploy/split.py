"""The canary split the cluster holds, as a picture: the shares read back from the route object, each
track's version and ready pods, drawn as a bar (HTML for the CanarySlider, text for a terminal).

Pure: `weights_from_route` / `weights_from_replicas` read the shares out of the objects, and `Split`
with its `text()` / `html()` draws them, so the slider, `%canary NAME` headless and the tests draw the
same picture. `split_reads` fetches those objects from the cluster. No ipywidgets here: a headless
kernel may not have it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass

from . import labels as L
from . import traffic
from .cluster_values import number

__all__ = ["ROUTE_OBJECTS", "Split", "TrackPods", "Weights", "pods_from_deployment", "weights_from_replicas",
           "weights_from_route"]

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


# Where each router with a route object keeps the split: (apiVersion, kind, suffix of the object's
# name), from traffic.ROUTER_INFO (Knative's lives on its Service; the replica split has no object).
ROUTE_OBJECTS = {name: r.objects[r.weights_in] for name, r in traffic.ROUTER_INFO.items()
                 if r.weights_in is not None and r.driver == "rollout"}


def weights_from_route(router: str, name: str, namespace: str, obj: Mapping | None) -> Weights:
    """The split a route object holds (the VirtualService, the HTTPRoute or the nginx canary Ingress
    named by ROUTE_OBJECTS). A missing object (None) holds no share (0/0), except nginx's: with no
    canary Ingress every request goes to stable."""
    obj = obj or {}
    if router == "istio":
        routes = ((obj.get("spec", {}).get("http") or [{}])[0]).get("route") or []
        # An Istio route with a single destination and no weight takes all requests.
        by = {d["destination"].get("subset"): d.get("weight", 100 if len(routes) == 1 else 0) for d in routes}
        return Weights(float(by.get("stable", 0)), float(by.get("canary", 0)), router)
    if router == "gateway":
        refs = ((obj.get("spec", {}).get("rules") or [{}])[0]).get("backendRefs") or []
        by = {b["name"]: b.get("weight", 1) for b in refs}  # Gateway API: weights are proportional, default 1
        total = sum(by.values()) or 1
        canary = by.get(L.track_name(name, "canary"), 0)
        return Weights(100 * by.get(name, 0) / total, 100 * canary / total, router)
    if router == "nginx":
        ann = obj.get("metadata", {}).get("annotations", {})
        prefix = "nginx.ingress.kubernetes.io/"
        where = f"Ingress {name}-canary in namespace {namespace}"  # a hand-edited value is one sentence
        weight = number(ann.get(prefix + "canary-weight", 0), key=prefix + "canary-weight", where=where)
        total = number(ann.get(prefix + "canary-weight-total", 100), key=prefix + "canary-weight-total",
                       where=where) or 100
        return Weights(100 - 100 * weight / total, 100 * weight / total, router)
    raise ValueError(f"router {router!r} keeps no route object")


def weights_from_replicas(stable: Mapping | None, canary: Mapping | None, weight: int | None,
                          sentence: str | None = None, router: str = "replicas") -> Weights:
    """Without a router requests divide by pods: the split is what the two Deployments ask for, with the
    sentence saying what the replica count allows (the rollout's own, else worked out from `weight`)."""
    s = int((stable or {}).get("spec", {}).get("replicas") or 0)
    c = int((canary or {}).get("spec", {}).get("replicas") or 0)
    total = s + c
    if sentence is None and total:
        sentence = traffic.achievable_split(weight, total).sentence
    return Weights(100 * s / total if total else 100.0, 100 * c / total if total else 0.0, router,
                   sentence)


def pods_from_deployment(dep: Mapping | None) -> TrackPods:
    """A Deployment's ready pods of its desired count, from its own spec and status."""
    if not dep:
        return TrackPods()
    return TrackPods(int((dep.get("status") or {}).get("readyReplicas") or 0),
                     int((dep.get("spec") or {}).get("replicas") or 0))


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
