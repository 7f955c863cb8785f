"""The magics: %deploy / %%deploy, %undeploy, %rollout, %rollback, %mldeploy, and the rollout ones:
%canary, %steps, %shadow, %promote, %release.

Each one is thin: parse the line (magics.args, where every mistake becomes one UsageError before any
connection is made), call jupyter_mldeploy.api / rollout / shadow, show the result (magics.display, or a
widget in a live frontend). The API, and with it the Kubernetes client, is imported on the first call,
so `%load_ext` stays cheap.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand

from .. import outcomes
from ..config import MLDeploy, Settings, describe_cluster
from ..errors import MLDeployError
from . import args
from . import display as views

if TYPE_CHECKING:
    from ..api import Kube
    from ..rollout import Rollout
    from ..status import RolloutStatus

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


class _Recorder:
    """Forwards a rollout operation's statuses to the view and keeps the last one: a Rollout (unlike a
    Deployment handle) carries no status for the view's final table."""

    def __init__(self, view: views.Progress | None) -> None:
        self.view = view
        self.last: RolloutStatus | None = None

    def __call__(self, status: RolloutStatus) -> None:
        self.last = status
        if self.view is not None:
            self.view(status)


@magics_class
class DeployMagics(Magics):
    """Deploy models to Kubernetes from a notebook; settings live in the `MLDeploy` configurable."""

    def __init__(self, shell: Any, settings: MLDeploy) -> None:
        super().__init__(shell)
        self.settings = settings
        self._told: str | None = None  # the cluster the last deploy in this kernel said it used

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
        from ..connection import connect

        return connect(settings.kubeconfig, context or settings.context)

    def _connect(self, settings: Settings, req: Any) -> tuple[Kube, str]:
        """The connection and namespace of a magic's line, resolved as every face resolves them."""
        from ..connection import resolve

        return resolve(req.namespace, context=req.context, settings=settings)

    def _say_cluster(self, settings: Settings, kube: Kube, flag: str | None) -> None:
        """The first deploy in a kernel (and the first after the cluster changed) says where the
        cluster came from, so a project file or $KUBECONFIG never picks it unseen."""
        told = f"Cluster: {describe_cluster(settings, kube.context, flag=bool(flag))} ({kube.server})."
        if told != self._told:
            self._told = told
            views.say(self._live(settings), told)

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

            if req.rollout is None and (req.router or settings.router) == "knative":
                return self._knative_deploy(req, settings, namespace, timeout)
            if req.dry_run == "client" and namespace is not None and req.rollout is None:
                from ..render import render  # no cluster needed to show what would be written

                return api.DryRun(render(spec, namespace), show_values=req.show_values)
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

    def _follow(self, view: views.Progress | None, call: Callable[[], Any],
                recorder: _Recorder | None = None) -> Any:
        """Run a deploy, rollback or rollout operation with `view` as on_status (through `recorder` when
        the result carries no status); show its final state either way."""
        try:
            handle = call()
        except MLDeployError as e:
            if view is not None:
                from ..status import RolloutStatus

                # RolloutFailed and WaitTimeout carry the last status (ClusterError's .status is HTTP's)
                status = getattr(e, "status", None)
                if not isinstance(status, RolloutStatus):
                    status = getattr(getattr(e, "deployment", None), "last_status", None)
                if not isinstance(status, RolloutStatus) and recorder is not None:
                    status = recorder.last
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
            last = getattr(handle, "last_status", None)
            view.finish(last if last is not None else recorder.last if recorder is not None else None)
        return handle

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
        recorder = _Recorder(view)
        return self._follow(view, lambda: rollout.start(
            req.changes, **how, wait=req.wait, timeout=timeout, on_status=recorder), recorder)

    def _widget(self, module: str, name: str, instead: str) -> Any:
        """A widget class, or one sentence saying what to use instead when widgets cannot load."""
        try:
            return getattr(importlib.import_module(f"..widgets.{module}", __package__), name)
        except Exception as e:  # noqa: BLE001 - any failure to import means the same thing to the user
            raise UsageError(f"The {name} widget is not available ({type(e).__name__}: {_one_line(e)}); "
                             f"use {instead}.") from None

    def _where(self, req: Any, ctx: dict) -> tuple[Settings, Kube, str]:
        settings = self._resolve(ctx)
        return (settings, *self._connect(settings, req))

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

            kube, namespace = self._connect(settings, req)
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
    @_help(args.rollback)
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
    @_help(args.mldeploy)
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

    # -- rollouts ----------------------------------------------------------------------------------

    @no_var_expand
    @line_magic
    @_help(args.canary)
    def canary(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_canary(line, self.shell.user_ns)
            settings, kube, namespace = self._where(req, ctx)
            from .. import rollout

            if req.weight is not None:
                return rollout.set_weight(req.name, req.weight, namespace=namespace, kube=kube)
            if self._live(settings):
                slider = self._widget("canary", "CanarySlider", f"%canary {req.name} PERCENT")
                return slider(req.name, namespace=namespace, kube=kube)
            found = outcomes.current(req.name, namespace=namespace, kube=kube)
            if found.strategy == "canary":  # headless, the slider's picture as text
                from ..split_reads import read_split

                print(read_split(found).text(), flush=True)
            return found

    @no_var_expand
    @line_magic
    @_help(args.mirror)
    def mirror(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_mirror(line, self.shell.user_ns)
            _settings, kube, namespace = self._where(req, ctx)
            from .. import rollout

            if req.weight is not None:
                return rollout.set_mirror(req.name, req.weight, namespace=namespace, kube=kube)
            return outcomes.current(req.name, namespace=namespace, kube=kube)

    @no_var_expand
    @line_magic
    @_help(args.promote)
    def promote(self, line: str) -> outcomes.Change:
        with self._reporting() as ctx:
            req = args.parse_target("promote", line, self.shell.user_ns)
            return self._promotion("promote", req, ctx)

    @no_var_expand
    @line_magic
    @_help(args.release)
    def release(self, line: str) -> outcomes.Change:
        with self._reporting() as ctx:
            req = args.parse_target("release", line, self.shell.user_ns)
            return self._promotion("release", req, ctx)

    def _promotion(self, what: str, req: args.TargetRequest, ctx: dict) -> outcomes.Change:
        """outcomes.promote or .release, followed: a progress view opens when the stable model starts
        rolling (a blue-green switch rolls nothing, so it shows none)."""
        settings, kube, namespace = self._where(req, ctx)
        live = self._live(settings)
        titles: list[str] = []
        view = views.LazyProgress(lambda: views.progress_view(live, titles[-1]))
        recorder = _Recorder(view)
        operation = outcomes.promote if what == "promote" else outcomes.release
        return self._follow(view, lambda: operation(
            req.name, namespace=namespace, kube=kube, timeout=req.timeout or settings.timeout,
            on_status=recorder, on_start=lambda before: titles.append(outcomes.promoting(before))), recorder)

    @no_var_expand
    @line_magic
    @_help(args.steps)
    def steps(self, line: str) -> outcomes.Change:
        with self._reporting() as ctx:
            req = args.parse_steps(line, self.shell.user_ns)
            settings, kube, namespace = self._where(req, ctx)
            from .. import rollout

            plan = ", ".join(f"{w}%" for w in req.schedule)
            if not req.once:  # the cell blocks for a while: say what it is doing
                print(f"Stepping the canary of {req.name} through {plan}, watching each step for "
                      f"{req.every:g} s; an unhealthy canary is rolled back.", flush=True)

            def report(r: Rollout) -> None:
                if not req.once:
                    print(f"  {time.strftime('%H:%M:%S')}  {r.weight:>3}% to the canary (step {r.step + 1} "
                          f"of {len(r.steps)}); the next step in {req.every:g} s if it stays healthy",
                          flush=True)

            after = rollout.steps(req.name, req.schedule, every=req.every, once=req.once, namespace=namespace,
                                  kube=kube, timeout=req.timeout or settings.timeout, on_step=report)
            return outcomes.stepped(req.name, namespace, plan, after)

    @no_var_expand
    @line_magic
    @_help(args.shadow)
    def shadow(self, line: str) -> Any:
        with self._reporting() as ctx:
            req = args.parse_shadow(line, self.shell.user_ns)
            settings = self._resolve(ctx)
            from .. import shadow

            if req.live:
                return self._shadow_live(req, settings)
            kube, namespace = None, None
            if req.primary_url is None:  # through the API server's service proxy
                kube, namespace = self._connect(settings, req)
            how = dict(primary_url=req.primary_url, shadow_url=req.shadow_url, namespace=namespace, kube=kube,
                       mode=req.mode, tolerance=req.tolerance, model=req.model, timeout=req.timeout or 10.0)
            report = shadow.compare(req.name, req.data, **how)
            if self._live(settings):
                view = self._widget("shadow_view", "ShadowView",
                                    "%config MLDeploy.interactive = 'no' for the text report")
                return view(report, data=req.data, **how)
            return report

    def _shadow_live(self, req: args.ShadowRequest, settings: Settings) -> Any:
        """%shadow NAME --live: the stable and shadow pods' prediction logs joined, nothing sent."""
        from .. import shadow

        kube, namespace = self._connect(settings, req)
        report = shadow.live_from_pods(kube, namespace, req.name, since=req.since, mode=req.mode,
                                       tolerance=req.tolerance, timeout=req.timeout or 30.0)
        if self._live(settings):
            # Without data the view only shows the report (its Refresh, which re-sends rows, stays off).
            view = self._widget("shadow_view", "ShadowView",
                                "%config MLDeploy.interactive = 'no' for the text report")
            return view(report)
        return report


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
