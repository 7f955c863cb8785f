"""One family of errors, so callers (magics, widgets, pipelines) can catch ours and nothing else.

Every error jupyter-mldeploy raises on purpose is declared here, and every attribute an error carries
is declared by its constructor (nothing is attached after it is made), so a caller reads
`e.status` or `e.deployment` without `getattr` guesses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: errors.py imports nothing of the package at run time
    from .api import Deployment
    from .diagnosis import Diagnosis
    from .status import RolloutStatus

__all__ = [
    "ClusterError", "ClusterValueError", "Interrupted", "MLDeployError", "NoRollout", "NotDeployed",
    "NotOurs", "PreflightFailed", "RolloutFailed", "RolloutInterrupted", "SpecError", "StaleRollout",
    "StaleState", "WaitTimeout",
]


class MLDeployError(Exception):
    """Base of every error jupyter-mldeploy raises on purpose; its message is meant for people."""


class SpecError(MLDeployError, ValueError):
    """Bad input: a value that breaks a rule. Raised before any request leaves the machine."""


class ClusterError(MLDeployError):
    """The API server refused or failed a request. `obj` names the object, `status` is the HTTP status
    code (None when no answer came) and `reason` the server's reason (`Conflict`, `NotFound`, ...)."""

    obj: str | None
    status: int | None
    reason: str | None

    def __init__(self, message: str, *, obj: str | None = None, status: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.obj = obj
        self.status = status
        self.reason = reason


class ClusterValueError(MLDeployError):
    """A value on a cluster object is not what jupyter-mldeploy wrote there (edited by hand?)."""


class RolloutFailed(MLDeployError):
    """The rollout did not complete; `diagnosis` says why in plain words, `status` is the last
    RolloutStatus seen (None when none was) and `deployment` the handle whose rollout failed (None when
    the failure was not met through one)."""

    diagnosis: Diagnosis | None
    status: RolloutStatus | None
    deployment: Deployment | None

    def __init__(self, message: str, *, diagnosis: Diagnosis | None = None,
                 status: RolloutStatus | None = None, deployment: Deployment | None = None) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis
        self.status = status
        self.deployment = deployment


class WaitTimeout(MLDeployError):
    """Stopped waiting; the rollout goes on in the cluster. `status` is the last RolloutStatus seen
    (None when none was, or when the wait was for something else) and `deployment` the handle waited
    on (None when the wait was not through one)."""

    status: RolloutStatus | None
    deployment: Deployment | None

    def __init__(self, message: str, status: RolloutStatus | None = None, *,
                 deployment: Deployment | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.deployment = deployment


class PreflightFailed(MLDeployError):
    """No node of the cluster could ever run one pod of the spec; nothing was written."""


class StaleState(MLDeployError):
    """The cluster changed under us (another kernel, kubectl): nothing was written; the message says what."""


class NoRollout(MLDeployError):
    """A rollout operation on a model that has no rollout in progress; nothing was written."""


class StaleRollout(StaleState):
    """The rollout changed on the cluster since this kernel read it (another kernel acted on it); the
    message names what changed and nothing was written."""


class RolloutInterrupted(MLDeployError):
    """A promotion stopped part-way (Ctrl-C, a timeout, a failed round); the message says where it
    stopped and how to carry on. `phase` names the round it stopped in."""

    phase: str

    def __init__(self, message: str, *, phase: str) -> None:
        super().__init__(message)
        self.phase = phase


class NotOurs(ClusterError):
    """A same-named object exists that jupyter-mldeploy did not create; it was left exactly as it was."""


class Interrupted(MLDeployError, KeyboardInterrupt):
    """Ctrl-C (or a papermill cell timeout) stopped a write; the message says what was undone or where to
    carry on. Caught by `except KeyboardInterrupt` as well as by `except MLDeployError`."""


class NotDeployed(MLDeployError):
    """Nothing of that name was deployed by jupyter-mldeploy there (or that track is not)."""
