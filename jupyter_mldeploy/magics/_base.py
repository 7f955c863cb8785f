"""What every jupyter-mldeploy magic shares: errors as one line, the settings, the connection, the
first "Cluster: ..." sentence, following an operation with a progress view, and widgets that may not
load. The magics themselves are thin subclasses, one module per concern as IPython's own
core/magics/ (magics.deploy, magics.rollouts, magics.shadow)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from ..config import MLDeploy, Settings, describe_cluster
from ..errors import MLDeployError
from . import display as views

if TYPE_CHECKING:
    from ..api import Kube
    from ..status import RolloutStatus

__all__ = ["MLDeployMagics", "Recorder", "help_of", "one_line"]


def help_of(stub: Callable) -> Callable[[Callable], Callable]:
    """Give a magic the help text @magic_arguments generated for its parser in magics.args."""
    def set_doc(func: Callable) -> Callable:
        func.__doc__ = stub.__doc__
        return func
    return set_doc


def one_line(text: object) -> str:
    """Join a multi-line message into one line, leaving the spacing inside each line alone."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


class Recorder:
    """Forwards a rollout operation's statuses to the view and keeps the last one: a Rollout (unlike a
    Deployment handle) carries no status for the view's final table."""

    def __init__(self, view: views.Progress | None) -> None:
        self.view = view
        self.last: RolloutStatus | None = None

    def __call__(self, status: RolloutStatus) -> None:
        self.last = status
        if self.view is not None:
            self.view(status)



class MLDeployMagics(Magics):
    """The base of the magics classes (it registers no magic itself); settings live in `MLDeploy`."""

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
            message = one_line(e)
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


    def _follow(self, view: views.Progress | None, call: Callable[[], Any],
                recorder: Recorder | None = None) -> Any:
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


    def _widget(self, module: str, name: str, instead: str) -> Any:
        """A widget class, or one sentence saying what to use instead when widgets cannot load."""
        try:
            return getattr(importlib.import_module(f"..widgets.{module}", __package__), name)
        except Exception as e:  # noqa: BLE001 - any failure to import means the same thing to the user
            raise UsageError(f"The {name} widget is not available ({type(e).__name__}: {one_line(e)}); "
                             f"use {instead}.") from None

    def _where(self, req: Any, ctx: dict) -> tuple[Settings, Kube, str]:
        settings = self._resolve(ctx)
        return (settings, *self._connect(settings, req))
