"""`%undeploy`, `%rollout`, `%rollback`, `%mldeploy`, `%promote` and `%release`: a model (or, for
%mldeploy, a namespace) -> TargetRequest. Their stubs' docstrings are the magics' help."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from . import _parser as P

__all__ = ["TargetRequest", "mldeploy", "parse_target", "promote", "release", "rollback", "rollout",
           "undeploy"]


@dataclass(frozen=True)
class TargetRequest:
    """A parsed `%undeploy` / `%rollout` / `%rollback` / `%mldeploy` line."""

    name: str | None
    namespace: str | None
    context: str | None
    wait: bool = True
    timeout: float | None = None
    revision: int | None = None
    watch: bool = False
    events: bool = False
    all_namespaces: bool = False


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model to remove")
@P.where
def undeploy(line: str = "") -> None:
    """Remove a model: every object jupyter-mldeploy created for it (all tracks), at once.

    Objects that jupyter-mldeploy did not create are never touched.

    Examples::

      %undeploy churn
      %undeploy churn --namespace ml
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model")
@P.where
@argument("--watch", action="store_true", help="follow the rollout until it is ready")
@argument("--timeout", metavar="S", help="with --watch: how long to follow (default MLDeploy.timeout)")
@argument("--events", action="store_true", help="also list the recent events")
def rollout(line: str = "") -> None:
    """A model's rollout: its pods (status table) and its revisions (history).

    Examples::

      %rollout churn
      %rollout churn --watch
      %rollout churn --events --namespace ml
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model")
@argument("--to", metavar="REVISION", help="the revision to go back to (default: the previous one)")
@P.where
@argument("--wait", action=argparse.BooleanOptionalAction, default=None,
          help="wait until the rollback is ready (default: wait)")
@argument("--timeout", metavar="S", help="how long to wait (default MLDeploy.timeout)")
def rollback(line: str = "") -> None:
    """Roll a model back: its rollout in progress, or else to an earlier revision.

    While a canary, blue-green or shadow rollout is in progress, `%rollback NAME` rolls that rollout
    back: all traffic to the stable model first, then the candidate removed (after a blue-green
    switch, traffic goes back to the old stable). Otherwise, and always with --to, it goes back to an
    earlier revision of the stable model, every object as it was then; the revisions are the ones
    `%rollout NAME` lists.

    Examples::

      %rollback churn
      %rollback churn --to 2
    """


@magic_arguments()
@P.where
@argument("-A", "--all-namespaces", action="store_true", help="list models in every namespace")
def mldeploy(line: str = "") -> None:
    """Where %deploy goes: the kube context and namespace, the models jupyter-mldeploy runs there (and
    each one's rollout in progress), and the traffic layers the cluster serves (for canary and shadow
    rollouts).

    Examples::

      %mldeploy
      %mldeploy --namespace ml
      %mldeploy -A
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a rollout in progress")
@P.where
@argument("--timeout", metavar="S", help="how long to wait for the stable model to roll (default "
          "MLDeploy.timeout)")
def promote(line: str = "") -> None:
    """Promote a rollout's candidate.

    canary and shadow: the stable Deployment takes the candidate's image and rolls (new pods first, so
    ready capacity never drops), then all traffic goes to it and the candidate track is removed.
    blue-green: the switch; all traffic moves to the preview at once, and the old stable stays for an
    instant %rollback until %release.

    Examples::

      %promote churn
      %promote churn --timeout 5m
    """


@magic_arguments()
@argument("name", nargs="?", metavar="NAME", help="the model with a switched blue-green rollout")
@P.where
@argument("--timeout", metavar="S", help="how long to wait for the stable model to roll (default "
          "MLDeploy.timeout)")
def release(line: str = "") -> None:
    """Finish a blue-green rollout after the switch: the preview becomes the stable model and the old
    stable is removed (until then, %rollback switches back at once).

    Examples::

      %promote churn
      %release churn
    """


def parse_target(magic: str, line: str, user_ns: Mapping[str, Any] | None = None) -> TargetRequest:
    """`%undeploy`, `%rollout`, `%rollback`, `%mldeploy`, `%promote` or `%release` -> TargetRequest."""
    func = {"undeploy": undeploy, "rollout": rollout, "rollback": rollback, "mldeploy": mldeploy,
            "promote": promote, "release": release}[magic]
    a = P.parse(func, line, {} if user_ns is None else user_ns)
    name = None if magic == "mldeploy" else P.model_name(a.name, magic)
    namespace = P.namespace(a.namespace)
    if getattr(a, "all_namespaces", False) and namespace is not None:
        raise UsageError("-A lists every namespace, so --namespace does not apply; give one of them.")
    revision = None
    if getattr(a, "to", None) is not None:
        revision = P.count(a.to, "--to")
        if revision == 0:
            raise UsageError("--to 0 is not a revision: revisions count from 1 (see %rollout NAME).")
    return TargetRequest(name=name, namespace=namespace, context=P.context(a.context),
                         wait=getattr(a, "wait", None) is not False,
                         timeout=P.timeout(getattr(a, "timeout", None)), revision=revision,
                         watch=getattr(a, "watch", False), events=getattr(a, "events", False),
                         all_namespaces=getattr(a, "all_namespaces", False))
