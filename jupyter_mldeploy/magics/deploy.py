"""The magics: %deploy / %%deploy, %undeploy, %rollout, %rollback, %mldeploy.

Each one is thin: parse the line (magics.args, where every mistake becomes one UsageError before any
connection is made), call jupyter_mldeploy.api, show the result (magics.display). The API, and with
it the Kubernetes client, is imported on the first call, so `%load_ext` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand

from ..config import MLDeploy, Settings
from ..errors import MLDeployError
from . import args
from . import display as views

if TYPE_CHECKING:
    from ..kube.client import Kube

__all__ = ["DeployMagics"]


def _help(stub: Callable) -> Callable[[Callable], Callable]:
    """Give a magic the help text @magic_arguments generated for its parser in magics.args."""
    def set_doc(func: Callable) -> Callable:
        func.__doc__ = stub.__doc__
        return func
    return set_doc


def _one_line(text: object) -> str:
    """Join a multi-line message into one line, leaving the spacing inside each line alone."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


@magics_class
class DeployMagics(Magics):
    """Deploy models to Kubernetes from a notebook; settings live in the `MLDeploy` configurable."""

    def __init__(self, shell: Any, settings: MLDeploy) -> None:
        super().__init__(shell)
        self.settings = settings

    # -- plumbing ----------------------------------------------------------------------------------

    @contextmanager
    def _reporting(self) -> Iterator[dict]:
        """Turn our errors into one line: a UsageError in a live frontend, MLDeployFailed headless.

        Yields a dict the magic fills with the resolved settings ("settings"), so the mode follows
        MLDeploy.interactive even when it comes from pyproject.toml.
        """
        ctx: dict[str, Any] = {}
        try:
            yield ctx
        except (UsageError, MLDeployError) as e:
            if isinstance(e, views.MLDeployFailed):
                raise
            settings: Settings | None = ctx.get("settings")
            setting = settings.interactive if settings is not None else self.settings.interactive
            message = _one_line(e)
            kind = UsageError if views.is_live(setting, self.shell) else views.MLDeployFailed
            failed = kind(message)
            failed.error = e  # the original, with its diagnosis or status, for code that wants it
            raise failed from None

    def _resolve(self, ctx: dict) -> Settings:
        ctx["settings"] = self.settings.resolve()
        return ctx["settings"]

    def _kube(self, settings: Settings, context: str | None) -> Kube:
        from ..kube.client import connect

        return connect(settings.kubeconfig, context or settings.context)

    def _live(self, settings: Settings) -> bool:
        return views.is_live(settings.interactive, self.shell)

    # -- %deploy -----------------------------------------------------------------------------------

    @no_var_expand  # {var} is substituted by magics.args, which evaluates nothing
    @line_cell_magic
    @_help(args.deploy)
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

            if req.dry_run == "client" and namespace is not None:
                from ..render import render  # no cluster needed to show what would be written

                return api.DryRun(render(spec, namespace))
            kube = self._kube(settings, req.context)
            namespace = namespace or kube.namespace
            if req.dry_run is not None:
                dry = api.deploy(spec, namespace=namespace, kube=kube, dry_run=req.dry_run)
                return api.DryRun(dry.manifests) if req.output == "yaml" else dry
            view = None
            if req.wait:
                view = views.progress_view(self._live(settings),
                                           f"Deploying {spec.object_name} ({spec.image}) to namespace "
                                           f"{namespace}, context {kube.context}")
            return self._follow(view, lambda: api.deploy(
                spec, namespace=namespace, kube=kube, wait=req.wait, timeout=timeout, atomic=req.atomic,
                on_status=view))

    def _follow(self, view: views.Progress | None, call: Callable[[], Any]) -> Any:
        """Run a deploy or rollback with `view` as on_status; show its final state either way."""
        try:
            handle = call()
        except MLDeployError as e:
            if view is not None:
                from ..status import RolloutStatus

                # RolloutFailed and WaitTimeout carry the last status (ClusterError's .status is HTTP's)
                status = getattr(e, "status", None)
                if not isinstance(status, RolloutStatus):
                    status = getattr(getattr(e, "deployment", None), "last_status", None)
                if isinstance(status, RolloutStatus):
                    view.finish(status)
                else:
                    view.close()
            raise
        except BaseException:
            if view is not None:
                view.close()
            raise
        if view is not None:
            view.finish(handle.last_status)
        return handle

    def _panel(self, req: args.DeployRequest, settings: Settings) -> Any:
        try:
            from ..widgets import DeployPanel
        except Exception as e:  # noqa: BLE001 - any failure to import means the same thing to the user
            raise UsageError(f"The deploy panel is not available ({type(e).__name__}: {_one_line(e)}); "
                             f"use %deploy without --panel.") from None
        try:
            kube = self._kube(settings, req.context)
        except MLDeployError:
            kube = None  # the panel opens anyway and says itself that no cluster is reachable
        return DeployPanel(req.name, spec=req.spec, namespace=req.namespace or settings.namespace, kube=kube)

    # -- the others --------------------------------------------------------------------------------

    @no_var_expand
    @line_magic
    @_help(args.undeploy)
    def undeploy(self, line: str) -> views.Undeployed:
        with self._reporting() as ctx:
            req = args.parse_target("undeploy", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube = self._kube(settings, req.context)
            namespace = req.namespace or settings.namespace or kube.namespace
            gone = api.undeploy(req.name, namespace=namespace, kube=kube)
            return views.Undeployed(req.name, namespace, gone)

    @no_var_expand
    @line_magic
    @_help(args.rollout)
    def rollout(self, line: str) -> views.RolloutReport:
        with self._reporting() as ctx:
            req = args.parse_target("rollout", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube = self._kube(settings, req.context)
            namespace = req.namespace or settings.namespace or kube.namespace
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
    @_help(args.rollback)
    def rollback(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_target("rollback", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import api

            kube = self._kube(settings, req.context)
            namespace = req.namespace or settings.namespace or kube.namespace
            target = f"revision {req.revision}" if req.revision else "the previous revision"
            view = None
            if req.wait:
                view = views.progress_view(self._live(settings),
                                           f"Rolling {req.name} in namespace {namespace} back to {target}")
            return self._follow(view, lambda: api.rollback(
                req.name, req.revision, namespace=namespace, kube=kube, wait=req.wait,
                timeout=req.timeout or settings.timeout, on_status=view))

    @no_var_expand
    @line_magic
    @_help(args.mldeploy)
    def mldeploy(self, line: str) -> views.Overview:
        with self._reporting() as ctx:
            req = args.parse_target("mldeploy", line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import labels as L
            from ..kube import inventory

            kube = self._kube(settings, req.context)
            if req.all_namespaces:
                namespace, source, path = None, "", "/apis/apps/v1/deployments"
            else:
                namespace = req.namespace or settings.namespace or kube.namespace
                if req.namespace:
                    source = "--namespace"
                elif settings.namespace:
                    source = settings.sources["namespace"]
                else:
                    source = f"kube context {kube.context}"
                path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
            selector = f"{L.APP_MANAGED_BY}={L.MANAGED_BY}"
            _, body = kube.request("GET", path, query={"labelSelector": selector})
            models = [_model_row(d) for d in body.get("items", [])]
            return views.Overview(kube.context, kube.server, namespace, source,
                                  sorted(models, key=lambda m: (m.namespace, m.name, m.track)),
                                  frozenset(inventory.served_groups(kube)), settings.router)


def _model_row(dep: dict) -> views.ModelRow:
    from .. import labels as L

    meta, spec, status = dep.get("metadata", {}), dep.get("spec", {}), dep.get("status", {})
    labels = meta.get("labels", {})
    containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
    return views.ModelRow(name=labels.get(L.APP_INSTANCE, meta.get("name", "?")),
                          namespace=meta.get("namespace", ""), track=labels.get(L.TRACK, "stable"),
                          version=labels.get(L.APP_VERSION, "-"), image=containers[0].get("image", "?"),
                          ready=int(status.get("readyReplicas") or 0),
                          desired=int(spec.get("replicas") or 0))
