"""How the magics show things: live widgets in a notebook frontend, text headless; the small result objects.

Live (a notebook frontend with widget support): a progress bar and the pod table, updated from the
`on_status` callback on the kernel's own thread, at most 10 times a second; when the rollout ends
the widgets are replaced in place by a static copy of the final state, so a saved notebook keeps it.
Headless (papermill, nbconvert, nbval, plain IPython): a progress line whenever it changes, at most
one a second, then the final status table as text.
"""

from __future__ import annotations

import html
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from IPython.core.error import UsageError

from ..outcomes import Change
from ..overview import ModelRow
from ..status import RolloutStatus
from ..traffic import NGINX_INGRESS_CLASS, ROUTER_APIS, ROUTERS
from ..views.status import format_progress_line, format_status_table, progress_bar, status_html
from ..views.tables import html_table, text_table

__all__ = ["LazyProgress", "LiveProgress", "MLDeployFailed", "ModelRow", "Overview", "Progress",
           "RolloutChange", "RolloutReport", "TextProgress", "TrafficLayer", "Undeployed", "is_live",
           "progress_view", "TRAFFIC_LAYERS"]


class MLDeployFailed(UsageError):
    """A magic failed where nobody watches (papermill, nbconvert): the run must fail, in one line.

    A UsageError (so callers catch one kind), but not shown as one: IPython prints a plain
    UsageError only to stderr, which papermill does not see. `_render_traceback_` makes IPython
    publish a real error output whose whole traceback is this one sentence.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


# ---------------------------------------------------------------------------------------------------
# which view


def is_live(setting: str, shell: Any) -> bool:
    """Widgets or text? `setting` is MLDeploy.interactive: "yes", "no" or "auto".

    auto means: ipywidgets importable, inside a kernel, and a frontend that renders widgets is
    attached. A kernel cannot ask its frontend, so the signs are: ipywidgets' control comm was opened
    (JupyterLab and Notebook 7 open it), the kernel was started by a Jupyter server
    (JPY_SESSION_NAME), or by VS Code (__vsc_ipynb_file__). papermill, nbconvert and nbval start
    kernels with none of these, so they get text and a failure fails the run.
    """
    if setting == "no":
        return False
    try:
        import ipywidgets
    except ImportError:
        return False
    if setting == "yes":
        return True
    if getattr(shell, "kernel", None) is None:
        return False
    if getattr(ipywidgets.Widget, "_control_comm", None) is not None:
        return True
    return bool(os.environ.get("JPY_SESSION_NAME")) or "__vsc_ipynb_file__" in getattr(shell, "user_ns", {})


class Progress(Protocol):
    def __call__(self, status: RolloutStatus) -> None: ...

    def finish(self, status: RolloutStatus | None) -> None: ...

    def close(self) -> None: ...


class TextProgress:
    """Progress lines (only when the line changes, at most one a second), then the final table."""

    def __init__(self, *, min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None) -> None:
        self.min_interval = min_interval
        self.clock = clock
        self.write = write or (lambda text: print(text, file=sys.stdout, flush=True))
        self.last_line: str | None = None
        self.last_time = float("-inf")

    def __call__(self, status: RolloutStatus) -> None:
        line = format_progress_line(status)
        now = self.clock()
        if line != self.last_line and now - self.last_time >= self.min_interval:
            self.write(line)
            self.last_line, self.last_time = line, now

    def finish(self, status: RolloutStatus | None) -> None:
        if status is None:
            return
        line = format_progress_line(status)
        if line != self.last_line:  # the final state is always shown, however soon it came
            self.write(line)
            self.last_line = line
        self.write(format_status_table(status))

    def close(self) -> None:
        pass


class _Static:
    """A display-only snapshot: what replaces the live widgets when the rollout ends."""

    def __init__(self, text: str, html_text: str) -> None:
        self.text, self.html = text, html_text

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        return {"text/plain": self.text, "text/html": self.html}


class LiveProgress:
    """A progress bar and the pod table, updated in place at most `1/min_interval` times a second."""

    def __init__(self, title: str, *, min_interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import ipywidgets as w
        from IPython.display import display

        self.min_interval = min_interval
        self.clock = clock
        self.last_time = float("-inf")
        self.pending: RolloutStatus | None = None
        self.updates = 0
        self.title = w.HTML(f"<b>{html.escape(title)}</b>")
        self.bar = w.IntProgress(value=0, min=0, max=1, description="ready", bar_style="info")
        self.table = w.HTML("<i>writing the objects...</i>")
        self.box = w.VBox([self.title, self.bar, self.table])
        self.handle = display(self.box, display_id=True)

    def __call__(self, status: RolloutStatus) -> None:
        # follow() calls this on the kernel's thread, so touching widgets here is safe.
        self.pending = status
        now = self.clock()
        if now - self.last_time >= self.min_interval:
            self._render(status)
            self.last_time = now

    def _render(self, status: RolloutStatus) -> None:
        self.pending = None
        self.updates += 1
        bar = progress_bar(status)  # the same bar, colours and table as widgets.PodStatusView
        self.bar.max, self.bar.value = bar.max, bar.value
        self.bar.description, self.bar.bar_style = bar.description, bar.style
        self.table.value = status_html(status)

    def finish(self, status: RolloutStatus | None) -> None:
        status = status or self.pending
        if status is None:
            self.close()
            return
        self._render(status)
        # The widgets live only as long as the kernel; a static copy stays in the saved notebook.
        if self.handle is not None:
            self.handle.update(_Static(format_status_table(status), status_html(status)))
        self.box.close()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update(_Static("", ""))
        self.box.close()


class LazyProgress:
    """A progress view opened by the first status (or a final one): an operation that reports none, such
    as a blue-green switch, shows no view at all. `open()` makes the real view."""

    def __init__(self, open: Callable[[], Progress]) -> None:
        self._open = open
        self.view: Progress | None = None

    def __call__(self, status: RolloutStatus) -> None:
        if self.view is None:
            self.view = self._open()
        self.view(status)

    def finish(self, status: RolloutStatus | None) -> None:
        if self.view is None and status is not None:
            self.view = self._open()
        if self.view is not None:
            self.view.finish(status)

    def close(self) -> None:
        if self.view is not None:
            self.view.close()


def say(live: bool, text: str) -> None:
    """One line for the user: printed headless, a small output of its own in a live frontend (kept
    in the saved notebook, and out of stdout, which a live view leaves empty)."""
    if live:
        from IPython.display import display

        display(_Static(text, f"<p>{html.escape(text)}</p>"))
    else:
        print(text, flush=True)


def progress_view(live: bool, title: str) -> Progress:
    if live:
        return LiveProgress(title)
    print(title, flush=True)
    return TextProgress()


# ---------------------------------------------------------------------------------------------------
# result objects: every one has a plain-text and an HTML form


class _Text:
    """IPython shows a result's text form (its __str__), not a dataclass repr (hence repr=False below:
    IPython's pretty printer would take a subclass's own __repr__ before this _repr_pretty_)."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


@dataclass(frozen=True, repr=False)
class RolloutReport(_Text):
    """What `%rollout NAME` shows: the pods now and the revisions (oldest first, * marks the live one)."""

    status: RolloutStatus
    revisions: Sequence[Any]  # api.Revision
    show_events: bool = False

    def _rev_rows(self) -> list[tuple[str, ...]]:
        return [("*" if r.current else "", str(r.revision), r.version or "-", r.image, str(r.replicas),
                 r.created) for r in self.revisions]

    _REV_HEAD = ("", "REVISION", "VERSION", "IMAGE", "PODS", "CREATED")

    def __str__(self) -> str:
        lines = [format_status_table(self.status, show_events=self.show_events), ""]
        if self.revisions:
            lines.append("Revisions (oldest first, * = live):")
            lines.extend(text_table(self._REV_HEAD, self._rev_rows()))
        else:
            lines.append("No revisions recorded yet.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        out = [status_html(self.status)]
        if self.show_events and self.status.events:
            rows = [(e.type, e.reason, e.object, e.message) for e in self.status.events]
            out.append("<p>Events (newest last):</p>"
                       + html_table(("Type", "Reason", "Object", "Message"), rows))
        out.append("<p>Revisions (oldest first, * = live):</p>"
                   + html_table(("", "Revision", "Version", "Image", "Pods", "Created"), self._rev_rows()))
        return "<div>" + "".join(out) + "</div>"


@dataclass(frozen=True, repr=False)
class Undeployed(_Text):
    """What `%undeploy NAME` removed."""

    name: str
    namespace: str
    deleted: Sequence[str]

    def __str__(self) -> str:
        return f"Removed {self.name} from namespace {self.namespace}: {', '.join(self.deleted)}."

    def _repr_html_(self) -> str:
        items = "".join(f"<li><code>{html.escape(d)}</code></li>" for d in self.deleted)
        return (f"<div>Removed <b>{html.escape(self.name)}</b> from namespace "
                f"<code>{html.escape(self.namespace)}</code>:<ul>{items}</ul></div>")


# What %promote, %release, %rollback (of a rollout) and %steps return: its home is outcomes.Change.
RolloutChange = Change


@dataclass(frozen=True)
class TrafficLayer:
    name: str
    what: str
    needs: str  # what the cluster must have for it to be offered


# What each router is, in words (the cluster's side, `needs`, is read from traffic's tables), in
# traffic.ROUTERS order. With MLDeploy.router = "auto" a rollout takes the Gateway API when a parent
# Gateway is given, then Istio, then ingress-nginx, then the replica split (rollout.choose_router).
_WHAT = {
    "gateway": "Gateway API HTTPRoute weights and mirroring",
    "istio": "Istio VirtualService",
    "knative": "Knative Service traffic split between named revisions, driven by %deploy --router knative "
               "and the rollouts (canary, blue-green; no shadow: Knative cannot mirror)",
    "nginx": "Ingress with ingress-nginx canary annotations",
    "replicas": "plain replica ratio behind one Service (always available)",
}


def _needs(router: str) -> str:
    if router == "nginx":  # the Ingress API is served everywhere: the controller's class is the sign
        return f"an IngressClass named {NGINX_INGRESS_CLASS}"
    return ROUTER_APIS.get(router, "nothing")


TRAFFIC_LAYERS = tuple(TrafficLayer(r, _WHAT[r], _needs(r)) for r in ROUTERS)


@dataclass(frozen=True, repr=False)
class Overview(_Text):
    """What `%mldeploy` shows: where deploys go, what runs there, which traffic layers are served."""

    context: str
    server: str
    namespace: str | None  # None: every namespace
    namespace_source: str
    models: Sequence[ModelRow]
    offered: frozenset[str] = field(default_factory=frozenset)  # router names, rollout.offered_routers
    router: str = "auto"
    rollouts: Sequence[Any] = ()  # rollout.Rollout, one per model with a rollout in progress
    knative_models: Sequence[str] = ()  # one line per Knative Service of ours (rollout_knative.models)
    knative_health: str | None = None  # what Knative Serving runs and lacks (rollout_knative.health_sentence)
    cluster: str = ""  # config.describe_cluster: where the cluster came from

    @property
    def layers(self) -> list[TrafficLayer]:
        return [t for t in TRAFFIC_LAYERS if t.name in self.offered]

    @property
    def missing_layers(self) -> list[TrafficLayer]:
        return [t for t in TRAFFIC_LAYERS if t.name not in self.offered]

    def _missing(self) -> str:
        return ", ".join(f"{t.name} (needs {t.needs})" for t in self.missing_layers)

    def _where_of(self, r: Any) -> str:
        return f"{r.namespace}/" if self.namespace is None else ""

    def _where(self) -> str:
        if self.namespace is None:
            return "every namespace"
        return f"namespace {self.namespace} (from {self.namespace_source})"

    def _rows(self) -> list[tuple[str, ...]]:
        return [(*((m.namespace,) if self.namespace is None else ()), m.name, m.track, m.version,
                 f"{m.ready}/{m.desired}", m.image) for m in self.models]

    def _head(self) -> tuple[str, ...]:
        return (*(("NAMESPACE",) if self.namespace is None else ()), "NAME", "TRACK", "VERSION", "READY",
                "IMAGE")

    def __str__(self) -> str:
        lines = [f"Context {self.context} ({self.server}), {self._where()}."]
        if self.cluster:
            lines.append(f"The cluster: {self.cluster}.")
        if self.models:
            lines.append("Deployed by jupyter-mldeploy:")
            lines.extend("  " + row for row in text_table(self._head(), self._rows()))
        else:
            lines.append("Nothing deployed by jupyter-mldeploy here yet.")
        if self.rollouts:
            lines.append("Rollouts in progress:")
            lines.extend(f"  {self._where_of(r)}{r}" for r in self.rollouts)
        if self.knative_models:
            lines.append("Knative Services (revision and traffic share):")
            lines.extend(f"  {m}" for m in self.knative_models)
        lines.append("Traffic layers served: " + ", ".join(f"{t.name} ({t.what})" for t in self.layers) + ".")
        if self.knative_health:
            lines.append(self.knative_health)
        if self.missing_layers:
            lines.append(f"Not served: {self._missing()}.")
        lines.append(f"Router setting (MLDeploy.router): {self.router}.")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        out = [f"<div><p>Context <b>{e(self.context)}</b> (<code>{e(self.server)}</code>), "
               f"{e(self._where())}.</p>"]
        if self.cluster:
            out.append(f"<p>The cluster: {e(self.cluster)}.</p>")
        if self.models:
            out.append(html_table(tuple(h.title() for h in self._head()), self._rows()))
        else:
            out.append("<p>Nothing deployed by jupyter-mldeploy here yet.</p>")
        if self.rollouts:
            items = "".join(f"<li>{e(self._where_of(r))}{e(str(r))}</li>" for r in self.rollouts)
            out.append(f"<p>Rollouts in progress:</p><ul>{items}</ul>")
        if self.knative_models:
            items = "".join(f"<li>{e(m)}</li>" for m in self.knative_models)
            out.append(f"<p>Knative Services (revision and traffic share):</p><ul>{items}</ul>")
        layers = "".join(f"<li><b>{e(t.name)}</b>: {e(t.what)}</li>" for t in self.layers)
        out.append(f"<p>Traffic layers served:</p><ul>{layers}</ul>")
        if self.knative_health:
            out.append(f"<p>{e(self.knative_health)}</p>")
        if self.missing_layers:
            out.append(f"<p>Not served: {e(self._missing())}.</p>")
        out.append(f"<p>Router setting (MLDeploy.router): <code>{e(self.router)}</code></p></div>")
        return "".join(out)
