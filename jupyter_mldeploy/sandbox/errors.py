"""The sandbox's own error: one clear message saying what to do."""

from ..errors import MLDeployError


class SandboxError(MLDeployError):
    """The local control plane could not be built, started or reached."""
