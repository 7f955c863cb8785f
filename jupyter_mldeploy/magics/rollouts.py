"""The rollout magics: %canary, %mirror, %promote, %release and %steps, on a rollout in progress.

What each did is an `outcomes.Change` (its sentence is the one the CanarySlider shows too)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from IPython.core.magic import line_magic, magics_class, no_var_expand

from .. import outcomes
from . import args
from . import display as views
from ._base import MLDeployMagics, Recorder, help_of

if TYPE_CHECKING:
    from ..rollout import Rollout

__all__ = ["RolloutMagics"]


@magics_class
class RolloutMagics(MLDeployMagics):
    """Move, promote, release or step a rollout in progress (started by %deploy --strategy ...)."""

    @no_var_expand
    @line_magic
    @help_of(args.canary)
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
    @help_of(args.mirror)
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
    @help_of(args.promote)
    def promote(self, line: str) -> outcomes.Change:
        with self._reporting() as ctx:
            req = args.parse_target("promote", line, self.shell.user_ns)
            return self._promotion("promote", req, ctx)

    @no_var_expand
    @line_magic
    @help_of(args.release)
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
        recorder = Recorder(view)
        operation = outcomes.promote if what == "promote" else outcomes.release
        return self._follow(view, lambda: operation(
            req.name, namespace=namespace, kube=kube, timeout=req.timeout or settings.timeout,
            on_status=recorder, on_start=lambda before: titles.append(outcomes.promoting(before))), recorder)

    @no_var_expand
    @line_magic
    @help_of(args.steps)
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
