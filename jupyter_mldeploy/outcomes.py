"""What a rollout operation did, as one `Change`: its sentence, its text and its HTML.

The magics (%promote, %release, %rollback, %steps) and the CanarySlider show the same Change, so
"Promoted ...", "Switched ...", "Rolled back ..." and "has no rollout in progress" are worded here only.
The operations below wrap `rollout.promote` / `release` / `abort` and read what they did from what they
return (a blue-green switch hands back the rollout still in progress; a finished promotion hands back
None), so the branching stays in `rollout`.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import NoRollout

if TYPE_CHECKING:
    from .api import Kube
    from .rollout import Rollout
    from .status import RolloutStatus

__all__ = ["Change", "current", "no_rollout", "promote", "promoted", "promoting", "release",
           "rollback_rollout", "rolled_back", "stepped", "switched"]

StatusCallback = Callable[["RolloutStatus"], None]


@dataclass(frozen=True, repr=False)
class Change:
    """What `%promote`, `%release`, `%rollback` (of a rollout), `%steps` or the slider's buttons did, in
    one sentence, and the rollout as it stands afterwards (None when it is over).

    `kind` names what happened: "switched", "promoted", "finished", "rolled back" or "stepped".
    """

    name: str
    namespace: str
    message: str
    rollout: Any = None  # rollout.Rollout
    kind: str = ""

    @property
    def sentence(self) -> str:
        return self.message

    def __str__(self) -> str:
        return self.message if self.rollout is None else f"{self.message}\n{self.rollout}"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:  # IPython shows the text, not a dataclass repr
        p.text(str(self))

    def _repr_html_(self) -> str:
        out = f"<div>{html.escape(self.message)}"
        if self.rollout is not None:
            out += f"<br><code>{html.escape(str(self.rollout))}</code>"
        return out + "</div>"


# -- the sentences (pure) ------------------------------------------------------------------------------


def _version(v: str | None, fallback: str = "the candidate") -> str:
    return f"version {v}" if v else fallback


def no_rollout(name: str, namespace: str | None) -> NoRollout:
    """The error for an operation on a model with no rollout in progress (nothing was written)."""
    return NoRollout(f"{name} has no rollout in progress in namespace {namespace}: start one with %deploy "
                     f"{name} --image ... --strategy canary (or blue-green, shadow).")


def promoting(before: Rollout) -> str:
    """The title while a promotion (or a release) rolls the stable model."""
    return (f"Promoting {before.name} in namespace {before.namespace}: the stable model takes "
            f"{_version(before.candidate_version)}, then {before.candidate_name} goes")


def switched(before: Rollout, after: Rollout | None = None) -> Change:
    """A blue-green switch: all traffic on the preview, the old stable kept for an instant rollback."""
    name = before.name
    return Change(name, before.namespace, f"Switched {name}: all traffic now goes to {before.candidate_name} "
                  f"({_version(before.candidate_version)}); the old stable model keeps running until "
                  f"%release {name}, and %rollback {name} switches back.", after, "switched")


def promoted(before: Rollout) -> Change:
    """The candidate is the stable model now and the rollout is over."""
    name, v = before.name, _version(before.candidate_version)
    if before.router == "knative":  # revisions stay: Knative keeps them, with no traffic, until its GC
        return Change(name, before.namespace, f"Promoted {name}: the revision of {v} now answers every "
                      f"request; the old stable revision keeps no traffic (%rollback {name} goes back).",
                      kind="promoted")
    return Change(name, before.namespace, f"Promoted {name}: {v} is now the stable model and answers every "
                  f"request; {before.candidate_name} was removed.", kind="promoted")


def rolled_back(before: Rollout) -> Change:
    """All traffic is on the stable model again and the candidate is gone (or, Knative, has none)."""
    # A switched blue-green had all traffic on the preview: the stable it goes back to is the old one.
    back = "back on the old stable model" if before.weight == 100 else "on the stable model"
    stable = f" ({before.stable_version})" if before.stable_version else ""
    head = f"Rolled back the {before.strategy} rollout of {before.name}: all traffic is {back}{stable}"
    if before.router == "knative":
        return Change(before.name, before.namespace, f"{head}; the candidate revision keeps no traffic.",
                      kind="rolled back")
    return Change(before.name, before.namespace, f"{head} and {before.candidate_name} was removed.",
                  kind="rolled back")


def _finished(name: str, namespace: str, what: str, gone: list[str]) -> Change:
    return Change(name, namespace, f"Finished the {what} of {name} that had stopped after its switch: "
                  f"removed {', '.join(gone)}.", kind="finished")


def stepped(name: str, namespace: str, plan: str, after: Rollout | None) -> Change:
    """Where a step schedule left the canary (`after` None: it went all the way and was promoted)."""
    if after is None:
        return Change(name, namespace, f"The canary of {name} went through {plan} and was promoted: it is "
                      f"now the stable model.", kind="promoted")
    left = len(after.steps) - after.step - 1
    return Change(name, namespace, f"The canary of {name} now answers {after.weight}% of requests (step "
                  f"{after.step + 1} of {len(after.steps)}; {left} to go).", after, "stepped")


# -- the operations ------------------------------------------------------------------------------------


def current(name: str, *, namespace: str, kube: Kube) -> Rollout:
    """The rollout in progress, read now, or `no_rollout`'s error."""
    from . import rollout

    found = rollout.read(name, namespace=namespace, kube=kube)
    if found is None:
        raise no_rollout(name, namespace)
    return found


def _promotion(operation: Callable[..., Rollout | None], what: str, name: str, *, namespace: str,
               kube: Kube, timeout: float, on_status: StatusCallback | None,
               on_start: Callable[[Rollout], None] | None) -> Change:
    from . import rollout

    before = rollout.read(name, namespace=namespace, kube=kube)
    if before is None:  # none in progress: finish the cleanup a stopped promotion left, or say there is none
        gone = rollout.finish_interrupted(name, namespace=namespace, kube=kube)
        if not gone:
            raise no_rollout(name, namespace)
        return _finished(name, namespace, what, gone)
    if on_start is not None:
        on_start(before)
    after = operation(name, namespace=namespace, kube=kube, timeout=timeout, on_status=on_status)
    # A switch keeps the rollout (and returns it); a finished promotion returns None.
    return switched(before, after) if after is not None else promoted(before)


def promote(name: str, *, namespace: str, kube: Kube, timeout: float = 600,
            on_status: StatusCallback | None = None,
            on_start: Callable[[Rollout], None] | None = None) -> Change:
    """`rollout.promote`, told as a Change. `on_start(before)` is called once the rollout is read, before
    anything is written (a face titles its progress view with `promoting(before)`)."""
    from . import rollout

    return _promotion(rollout.promote, "promotion", name, namespace=namespace, kube=kube, timeout=timeout,
                      on_status=on_status, on_start=on_start)


def release(name: str, *, namespace: str, kube: Kube, timeout: float = 600,
            on_status: StatusCallback | None = None,
            on_start: Callable[[Rollout], None] | None = None) -> Change:
    """`rollout.release` (after a blue-green switch), told as a Change."""
    from . import rollout

    return _promotion(rollout.release, "release", name, namespace=namespace, kube=kube, timeout=timeout,
                      on_status=on_status, on_start=on_start)


def rollback_rollout(name: str, *, namespace: str, kube: Kube) -> Change | None:
    """`rollout.abort` of the rollout in progress, told as a Change; None when there is none (then a
    rollback means an earlier revision of the stable model, `api.rollback`)."""
    from . import rollout

    found = rollout.read(name, namespace=namespace, kube=kube)
    if found is None:
        return None
    rollout.abort(name, namespace=namespace, kube=kube)
    return rolled_back(found)
