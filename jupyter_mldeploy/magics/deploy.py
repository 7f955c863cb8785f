"""The deploy magics: %deploy / %%deploy, %undeploy, %rollout, %rollback and %mldeploy.

Each one is thin: parse the line (magics.args, where every mistake becomes one UsageError before any
connection is made), call jupyter_mldeploy.api / rollout / outcomes, show the result (magics.display,
or a widget in a live frontend). The API, and with it the Kubernetes client, is imported on the first
call, so `%load_ext` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class, no_var_expand

from .. import outcomes
from ..config import Settings, describe_cluster
from ..errors import MLDeployError
from . import args
from . import display as views
from ._base import MLDeployMagics, Recorder, help_of, one_line

if TYPE_CHECKING:
    from ..api import Kube
    from ..rollout import Rollout

__all__ = ["DeployMagics"]


@magics_class
class DeployMagics(MLDeployMagics):
    """Deploy models to Kubernetes from a notebook: %deploy, %undeploy, %rollout, %rollback, %mldeploy."""

    # -- %deploy -----------------------------------------------------------------------------------

    @no_var_expand  # {var} is substituted by magics.args, which evaluates nothing
    @line_cell_magic
    @help_of(args.deploy)
    def deploy(self, line: str, cell: str | None = None) -> Any:
        with self._reporting() as ctx:
            req = args.parse_deploy(line, cell, self.shell.user_ns)
            settings = self._resolve(ctx)
            if req.panel:
                return self._panel(req, settings)
            spec = req.spec
            namespace = spec.namespace or req.namespace or settings.namespace
            timeout = req.timeout or settings.timeout
            from .. import api

            if req.rollout is None and (req.router or settings.router) == "knative":
                return self._knative_deploy(req, settings, namespace, timeout)
            if req.dry_run == "client" and namespace is not None and req.rollout is None:
                # The namespace known, api.deploy renders without connecting: no cluster needed.
                return api.deploy(spec, namespace=namespace, dry_run="client", show_values=req.show_values)
            kube = self._kube(settings, req.context)
            self._say_cluster(settings, kube, req.context)
            namespace = namespace or kube.namespace
            if req.rollout is not None:
                return self._start_rollout(req, settings, kube, namespace, timeout)
            if req.dry_run is not None:
                dry = api.deploy(spec, namespace=namespace, kube=kube, dry_run=req.dry_run,
                                 show_values=req.show_values)
                return api.DryRun(dry.manifests, show_values=req.show_values) if req.output == "yaml" else dry
            view = None
            if req.wait:
                view = views.progress_view(self._live(settings),
                                           f"Deploying {spec.object_name} ({spec.image}) to namespace "
                                           f"{namespace}, context {kube.context}")
            return self._follow(view, lambda: _unless_knative(spec.name, namespace, kube, lambda: api.deploy(
                spec, namespace=namespace, kube=kube, wait=req.wait, timeout=timeout, atomic=req.atomic,
                on_status=view, create_namespace=req.create_namespace)))


    def _knative_deploy(self, req: args.DeployRequest, settings: Settings, namespace: str | None,
                        timeout: float) -> Any:
        """%deploy NAME --router knative: the model as a Knative Service (a new revision per spec)."""
        from .. import api
        from .. import rollout_knative as rk

        # The line parser refuses these with --router knative; MLDeploy.router = "knative" gets here too.
        for flag, given in (("--dry-run server", req.dry_run == "server"), ("--atomic", req.atomic)):
            if given:
                raise UsageError(f"{flag} does not apply with the knative router: Knative keeps the current "
                                 f"revision answering until the new one is Ready, and %rollback "
                                 f"{req.spec.name} goes back to an earlier revision.")
        scale = rk.Scale.from_dict(req.knative_scale) if req.knative_scale else None
        if req.dry_run == "client" and namespace is not None:
            return api.DryRun([rk.manifest(req.spec, namespace, scale)])
        kube = self._kube(settings, req.context)
        namespace = namespace or kube.namespace
        if req.dry_run == "client":
            return api.DryRun([rk.manifest(req.spec, namespace, scale)])
        lines = None
        if req.wait:
            print(f"Deploying {req.spec.name} ({req.spec.image}) as a Knative Service in namespace "
                  f"{namespace}, context {kube.context}", flush=True)
            lines = rk.ProgressLines(lambda text: print(text, flush=True))
        return rk.deploy(req.spec, scale=scale, namespace=namespace, kube=kube, wait=req.wait,
                         timeout=timeout, on_status=lines, create_namespace=req.create_namespace)

    def _start_rollout(self, req: args.DeployRequest, settings: Settings, kube: Kube, namespace: str,
                       timeout: float) -> Rollout:
        """%deploy --strategy canary|blue-green|shadow: the candidate beside the stable, and its route.

        Only the fields given (req.changes) go to rollout.start: the candidate is the stable spec with
        those changed."""
        from .. import api, rollout

        spec = req.spec
        if (req.router or settings.router) == "knative":
            from .. import rollout_knative as rk

            if req.dry_run is not None:
                raise UsageError(f"--dry-run does not apply to a Knative rollout: the candidate is a new "
                                 f"revision of the Knative Service {spec.name}, and %rollback {spec.name} "
                                 f"puts the split back.")
            scale = rk.Scale.from_dict(req.knative_scale) if req.knative_scale else None
            lines = rk.ProgressLines(lambda text: print(text, flush=True)) if req.wait else None
            return rk.start(req.changes or spec, strategy=req.rollout, weight=req.weight, mirror=req.mirror,
                            namespace=namespace, kube=kube, wait=req.wait, timeout=timeout, scale=scale,
                            on_status=lines)
        how = dict(strategy=req.rollout, router=req.router or settings.router, weight=req.weight,
                   mirror=req.mirror, gateway=req.gateway, namespace=namespace, kube=kube)
        if req.dry_run is not None:
            dry = rollout.start(req.changes, **how, dry_run=req.dry_run, show_values=req.show_values)
            return api.DryRun(dry.manifests, show_values=req.show_values) if req.output == "yaml" else dry
        view = None
        if req.wait:
            view = views.progress_view(self._live(settings),
                                       f"Starting a {req.rollout} rollout of {spec.name}: {spec.image} "
                                       f"beside the stable model in namespace {namespace}, context "
                                       f"{kube.context}")
        recorder = Recorder(view)
        return self._follow(view, lambda: rollout.start(
            req.changes, **how, wait=req.wait, timeout=timeout, on_status=recorder), recorder)


    def _panel(self, req: args.DeployRequest, settings: Settings) -> Any:
        try:
            from ..widgets import DeployPanel
        except Exception as e:  # noqa: BLE001 - any failure to import means the same thing to the user
            raise UsageError(f"The deploy panel is not available ({type(e).__name__}: {one_line(e)}); "
                             f"use %deploy without --panel.") from None
        try:
            kube = self._kube(settings, req.context)
        except MLDeployError:
            kube = None  # the panel opens anyway and says itself that no cluster is reachable
        return DeployPanel(req.name, spec=req.spec, namespace=req.namespace or settings.namespace, kube=kube)

    # -- the others --------------------------------------------------------------------------------

    @no_var_expand
    @line_magic
    @help_of(args.undeploy)
    def undeploy(self, line: str) -> views.Undeployed:
        with self._reporting() as ctx:
            req = args.parse_target("undeploy", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube, namespace = self._connect(settings, req)
            gone = api.undeploy(req.name, namespace=namespace, kube=kube)
            return views.Undeployed(req.name, namespace, gone)

    @no_var_expand
    @line_magic
    @help_of(args.rollout)
    def rollout(self, line: str) -> views.RolloutReport:
        with self._reporting() as ctx:
            req = args.parse_target("rollout", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube, namespace = self._connect(settings, req)
            knative = _knative_status(req.name, namespace, kube)
            if knative is not None:
                return knative
            handle = api.get(req.name, namespace=namespace, kube=kube)
            if req.watch and not handle.last_status.complete:
                view = views.progress_view(self._live(settings),
                                           f"Watching {req.name} in namespace {namespace}")
                timeout = req.timeout or settings.timeout

                def watch() -> api.Deployment:
                    handle.watch(timeout, on_status=view)
                    return handle

                self._follow(view, watch)
            return views.RolloutReport(handle.last_status, handle.history(), show_events=req.events)

    @no_var_expand
    @line_magic
    @help_of(args.rollback)
    def rollback(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_target("rollback", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube, namespace = self._connect(settings, req)
            if req.revision is None:  # --to N always means a revision of the stable model
                change = outcomes.rollback_rollout(req.name, namespace=namespace, kube=kube)
                if change is not None:
                    return change
            target = f"revision {req.revision}" if req.revision else "the previous revision"
            from .. import rollout_knative as rk

            if rk.ours(kube, namespace, req.name) is not None:
                return rk.rollback(req.name, req.revision, namespace=namespace, kube=kube, wait=req.wait,
                                   timeout=req.timeout or settings.timeout)
            view = None
            if req.wait:
                view = views.progress_view(self._live(settings),
                                           f"Rolling {req.name} in namespace {namespace} back to {target}")
            return self._follow(view, lambda: api.rollback(
                req.name, req.revision, namespace=namespace, kube=kube, wait=req.wait,
                timeout=req.timeout or settings.timeout, on_status=view))

    @no_var_expand
    @line_magic
    @help_of(args.mldeploy)
    def mldeploy(self, line: str) -> views.Overview:
        with self._reporting() as ctx:
            req = args.parse_target("mldeploy", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from ..overview import list_models, rollouts_in_progress

            kube = self._kube(settings, req.context)
            if req.all_namespaces:
                namespace, source = None, ""
            else:
                namespace = req.namespace or settings.namespace or kube.namespace
                if req.namespace:
                    source = "--namespace"
                elif settings.namespace:
                    source = settings.sources["namespace"]
                else:
                    source = f"kube context {kube.context}"
            models = list_models(namespace, kube=kube)
            from .. import rollout_knative as rk
            from ..rollout import offered_routers

            offered = frozenset(offered_routers(kube))
            knative = "knative" in offered
            return views.Overview(kube.context, kube.server, namespace, source,
                                  models, offered, settings.router,
                                  rollouts=rollouts_in_progress(models, kube=kube),
                                  knative_models=rk.models(kube, namespace) if knative else (),
                                  knative_health=rk.health_sentence(kube) if knative else None,
                                  cluster=describe_cluster(settings, kube.context,
                                                           flag=bool(req.context)))


def _unless_knative(name: str, namespace: str, kube: Kube, call: Callable[[], Any]) -> Any:
    """A plain deploy; when the cluster refuses it because the model is a Knative model of ours (Knative
    owns the Service of that name), say so (read only on that failure)."""
    from ..errors import ClusterError

    try:
        return call()
    except ClusterError as e:
        from .. import rollout_knative as rk

        try:
            knative = rk.ours(kube, namespace, name) is not None
        except MLDeployError:
            knative = False
        if knative:
            raise type(e)(f"{name} is served as a Knative Service: deploy it with --router knative (a new "
                          f"revision), or %undeploy it first. {e}", obj=e.obj, status=e.status,
                          reason=e.reason) from None
        raise


def _knative_status(name: str, namespace: str, kube: Kube) -> Any:
    """The model's KnativeStatus when it is one of our Knative Services, else None (one read)."""
    from .. import rollout_knative as rk

    try:
        if rk.ours(kube, namespace, name) is None:
            return None  # none, someone else's, or Knative not served: a plain Deployment, if anything
    except MLDeployError:
        return None
    return rk.status(name, namespace=namespace, kube=kube)
