"""One family of errors, so callers (magics, widgets, pipelines) can catch ours and nothing else."""

from __future__ import annotations


class MLDeployError(Exception):
    """Base of every error jupyter-mldeploy raises on purpose; its message is meant for people."""


class SpecError(MLDeployError, ValueError):
    """Bad input: a value that breaks a rule. Raised before any request leaves the machine."""


class ClusterError(MLDeployError):
    """The API server refused or failed a request."""

    def __init__(self, message: str, *, obj: str | None = None, status: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.obj = obj
        self.status = status
        self.reason = reason


class RolloutFailed(MLDeployError):
    """The rollout did not complete; `diagnosis` says why in plain words."""

    def __init__(self, message: str, *, diagnosis=None) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


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
