"""DeployPanel: a form for one model (image, resources, scaling, strategy, namespace), Deploy and Undeploy,
and the live status of what was deployed.

A thin view over `api`: the form builds a `DeploySpec` on every change (all validation is the spec's
own), the Deploy button stays disabled while the form is invalid and the handler checks again, so an
invalid form never sends a request. Errors show as one sentence in the panel.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import traitlets

from .. import api
from ..api import Kube
from ..capacity import Capacity
from ..config import current
from ..connection import resolve
from ..errors import MLDeployError, SpecError
from ..spec import Autoscale, DeploySpec
from ..spec.rules import IN_PLACE_STRATEGIES
from .image import ImageBuilder
from .messages import as_sentence, note_html
from .resources import ResourcePicker
from .status_view import PodStatusView

__all__ = ["DeployPanel"]

_STYLE = {"description_width": "100px"}
_MODES = ("Fixed replicas", "Autoscale")


def _section(title: str) -> widgets.HTML:
    return widgets.HTML(f'<div style="font-weight:600;margin-top:6px">{html.escape(title)}</div>')


class DeployPanel(widgets.VBox):
    """`DeployPanel("churn", namespace="ml")`: fill the form, press Deploy, watch the pods below.

    `spec` pre-fills the form; its fields the form does not show (env, probes, labels...) are kept.
    `capacity` (a `capacity.Capacity`) and `deploy_fn`/`undeploy_fn` default to the cluster and
    `api.deploy`/`api.undeploy`; tests of the form alone may pass their own.
    """

    spec = traitlets.Instance(DeploySpec, allow_none=True, help="The form's spec; None while invalid.")
    problem = traitlets.Unicode("", help="Why the form cannot be deployed, one sentence; '' when it can.")

    def __init__(self, name: str | None = None, *, spec: DeploySpec | None = None,
                 namespace: str | None = None, kube: Kube | None = None,
                 price_table: Mapping[str, Any] | None = None,
                 capacity: Capacity | None = None, deploy_fn: Callable[..., Any] | None = None,
                 undeploy_fn: Callable[..., Any] | None = None, watch: bool = True, **kwargs: Any) -> None:
        self.base_spec = spec
        self._kube = kube
        self._kube_error: str | None = None
        self._deploy_fn = deploy_fn or api.deploy
        self._undeploy_fn = undeploy_fn or api.undeploy
        self._watch = watch
        self.deployment: api.Deployment | None = None
        self.status_view: PodStatusView | None = None

        self.name = widgets.Text(value=name or (spec.name if spec else ""), description="Name",
                                 placeholder="churn", style=_STYLE, continuous_update=True)
        ns = namespace or (spec.namespace if spec else None) or self._default_namespace()
        self.namespace = widgets.Text(value=ns, description="Namespace", style=_STYLE, continuous_update=True)
        self.image = ImageBuilder(spec.image if spec else None)
        self.resources = ResourcePicker(capacity or self._read_capacity(), price_table=price_table,
                                        resources=spec.resources if spec else None)
        autoscaled = bool(spec and spec.autoscale)
        self.mode = widgets.ToggleButtons(options=_MODES, value=_MODES[1] if autoscaled else _MODES[0],
                                          style={"button_width": "120px"})
        auto = spec.autoscale if spec and spec.autoscale else Autoscale(1, 3, 80)
        replicas = spec.replicas if spec and spec.replicas is not None else 1
        self.replicas = widgets.BoundedIntText(value=replicas, min=0, max=10_000, description="Replicas",
                                               style=_STYLE)
        self.min_replicas = widgets.BoundedIntText(value=auto.min, min=1, max=10_000, description="Min",
                                                   style=_STYLE)
        self.max_replicas = widgets.BoundedIntText(value=auto.max, min=1, max=10_000, description="Max",
                                                   style=_STYLE)
        self.cpu_percent = widgets.BoundedIntText(value=auto.cpu_percent, min=1, max=100,
                                                  description="Target CPU %", style=_STYLE)
        self.autoscale_box = widgets.HBox([self.min_replicas, self.max_replicas, self.cpu_percent])
        self.strategy = widgets.ToggleButtons(options=IN_PLACE_STRATEGIES,
                                              value=spec.strategy if spec else "rolling",
                                              tooltips=("replace pods a few at a time, keeping capacity",
                                                        "stop every old pod, then start the new ones"))
        self.deploy_button = widgets.Button(description="Deploy", button_style="primary", icon="rocket")
        self.undeploy_button = widgets.Button(description="Undeploy", button_style="danger", icon="trash")
        self.message = widgets.HTML()  # why the form is not deployable yet
        self.result = widgets.HTML()  # what the last Deploy/Undeploy did, or why it failed
        self.status_area = widgets.VBox()
        super().__init__([
            widgets.HTML('<div style="font-size:14px;font-weight:600">Deploy a model</div>'),
            widgets.HBox([self.name, self.namespace]),
            _section("Image"), self.image,
            _section("Resources per replica"), self.resources,
            _section("Scaling"), self.mode, self.replicas, self.autoscale_box,
            _section("Rollout strategy"), self.strategy,
            widgets.HBox([self.deploy_button, self.undeploy_button],
                         layout=widgets.Layout(margin="10px 0 0 0")),
            self.message, self.result,
            self.status_area,
        ], **kwargs)
        self.add_class("mldeploy-deploy-panel")
        self.deploy_button.add_class("mldeploy-deploy")
        self.undeploy_button.add_class("mldeploy-undeploy")
        self.deploy_button.on_click(self.deploy)
        self.undeploy_button.on_click(self.undeploy)
        for w in (self.name, self.namespace, self.mode, self.replicas, self.min_replicas, self.max_replicas,
                  self.cpu_percent, self.strategy):
            w.observe(self._validate, names="value")
        self.image.observe(self._validate, names="value")
        self.resources.observe(self._validate, names="problem")
        for w in (self.resources.cpu, self.resources.memory, self.resources.gpu, self.resources.gpu_type):
            w.observe(self._validate, names="value")
        self._validate()

    # -- the cluster -----------------------------------------------------------------------------------

    @property
    def kube(self) -> Kube | None:
        """The connection (made on first use); None when no cluster is configured."""
        if self._kube is None and self._kube_error is None:
            try:
                self._kube = resolve()[0]  # as the magics do: %config MLDeploy's kubeconfig and context
            except MLDeployError as e:
                self._kube_error = str(e)
        return self._kube

    def _default_namespace(self) -> str:
        if self.kube is not None:
            return resolve(kube=self.kube)[1]  # MLDeploy.namespace, else the kube context's
        return current().resolve().namespace or "default"

    def _read_capacity(self) -> Capacity:
        if self.kube is None:
            return Capacity.unknown(self._kube_error or "No cluster connection.")
        return api.capacity(self.kube)

    # -- the form --------------------------------------------------------------------------------------

    def _validate(self, _change: Any = None) -> None:
        autoscaled = self.mode.value == _MODES[1]
        self.replicas.layout.display = "none" if autoscaled else None
        self.autoscale_box.layout.display = None if autoscaled else "none"
        self.resources.replicas = ((self.min_replicas.value, self.max_replicas.value) if autoscaled
                                   else (self.replicas.value, self.replicas.value))
        spec, problem, pointer = None, "", ""
        if not self.name.value.strip():
            problem = "Give the model a name."
        elif self.image.image is None:
            problem = self.image.error
            pointer = "The image is not valid yet: see the message under the image fields."
        elif self.resources.problem:
            problem = self.resources.problem
            pointer = "The resources do not fit any node: see the message under the resource fields."
        else:
            try:
                spec = self._build(autoscaled)
            except SpecError as e:
                problem = as_sentence(str(e))
        self.spec, self.problem = spec, problem
        self.deploy_button.disabled = spec is None
        self.deploy_button.tooltip = problem or "Deploy this spec"
        self.undeploy_button.disabled = not self.name.value.strip()
        shown = pointer or problem
        self.message.value = note_html(shown, "error") if shown else ""

    def _build(self, autoscaled: bool) -> DeploySpec:
        base = self.base_spec
        fields: dict[str, Any] = {
            "name": self.name.value.strip(),
            "image": self.image.image,
            "namespace": self.namespace.value.strip() or None,
            "resources": self.resources.resources(base.resources if base else None),
            "replicas": None if autoscaled else self.replicas.value,
            "autoscale": (Autoscale(self.min_replicas.value, self.max_replicas.value, self.cpu_percent.value)
                          if autoscaled else None),
            "strategy": self.strategy.value,
        }
        return base.with_(**fields) if base is not None else DeploySpec(**fields)

    # -- actions -------------------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        self.result.value = note_html(text, "error" if error else "done")

    def deploy(self, _button: widgets.Button | None = None) -> api.Deployment | None:
        """Deploy what the form describes (nothing is sent while it is invalid) and show its pods live."""
        self._validate()
        if self.spec is None:
            self._say(self.problem or "The form is not complete.", error=True)
            return None
        spec = self.spec
        self.deploy_button.disabled = True
        self._say(f"Deploying {spec.name}...")
        try:
            handle = self._deploy_fn(spec, wait=False, kube=self.kube, namespace=spec.namespace)
        except MLDeployError as e:
            self._say(as_sentence(str(e)), error=True)
            return None
        finally:
            self.deploy_button.disabled = self.spec is None
        self.deployment = handle
        if self.status_view is not None:
            self.status_view.close()
        self.status_view = PodStatusView(handle, watch=self._watch)
        self.status_area.children = [self.status_view]
        created = ", ".join(handle.created) if handle.created else "nothing new"
        self._say(f"Deployed {spec.name} to namespace {handle.namespace} (created: {created}); "
                  f"its pods are shown below.")
        return handle

    def undeploy(self, _button: widgets.Button | None = None) -> list[str] | None:
        """Delete every object jupyter-mldeploy made for the model named in the form."""
        name = self.name.value.strip()
        if not name:
            self._say("Give the name of the model to undeploy.", error=True)
            return None
        ns = self.namespace.value.strip() or None
        try:
            gone = self._undeploy_fn(name, namespace=ns, kube=self.kube)
        except MLDeployError as e:
            self._say(as_sentence(str(e)), error=True)
            return None
        self._say(f"Undeployed {name}: removed {len(gone)} objects ({', '.join(gone)}).")
        return gone

    def close(self) -> None:
        """Close the panel, every widget in it, and stop its status view's watching."""
        if self.status_view is not None:
            self.status_view.close()
        for child in self.children:
            _close_tree(child)
        super().close()


def _close_tree(widget: widgets.Widget) -> None:
    # a Box's close() leaves its children's comms open in the kernel
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
