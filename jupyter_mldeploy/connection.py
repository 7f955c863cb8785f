"""The connection used when a call names none: MLDeploy's settings, and the local sandbox by name.

`connect()` with no arguments follows the same settings as the magics (`%config MLDeploy.kubeconfig` /
`.context`, MLDEPLOY_CONTEXT, pyproject.toml, then KUBECONFIG, ~/.kube/config, in-cluster), so a notebook
needs no private connection object to call the public API after `%config`.

The local sandbox is found by name: the context "sandbox" (or one of the sandbox's own contexts, when no
kubeconfig is configured) means the kubeconfig `jupyter-mldeploy sandbox up` wrote. With nothing
configured at all and the sandbox up, the error says the exact line that uses it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MLDeployError

if TYPE_CHECKING:
    from .config import Settings
    from .kube.client import Kube

__all__ = ["SANDBOX_CONTEXT", "cluster", "connect", "resolve", "sandbox_target"]

SANDBOX_CONTEXT = "sandbox"


def _sandbox_contexts() -> tuple[str, str]:
    from .sandbox.control_plane import ADMIN_CONTEXT, LIMITED_CONTEXT

    return ADMIN_CONTEXT, LIMITED_CONTEXT


def sandbox_target(kubeconfig: str | None, context: str | None) -> tuple[str, str] | None:
    """(kubeconfig, context) of the local sandbox when `context` names it, else None.

    "sandbox" always means the local sandbox; the sandbox's own context names (mldeploy-sandbox,
    mldeploy-sandbox-limited) mean it only when no kubeconfig is given and KUBECONFIG is unset, so a
    kubeconfig that has contexts of those names keeps them.
    """
    if context is None:
        return None
    admin, limited = _sandbox_contexts()
    if context != SANDBOX_CONTEXT and not (context in (admin, limited) and kubeconfig is None
                                           and not os.environ.get("KUBECONFIG")):
        return None
    from .sandbox.control_plane import Sandbox

    box = Sandbox()
    if not box.kubeconfig.is_file():
        raise MLDeployError(f"The kube context {context!r} is the local sandbox, which is not up (no "
                            f"kubeconfig in {box.dir}): start it with `jupyter-mldeploy sandbox up`.")
    return str(box.kubeconfig), admin if context == SANDBOX_CONTEXT else context


def _nothing_configured(kubeconfig: str | None, context: str | None) -> bool:
    return (kubeconfig is None and context is None and not os.environ.get("KUBECONFIG")
            and not (Path.home() / ".kube" / "config").exists()
            and not os.environ.get("KUBERNETES_SERVICE_HOST"))


def no_cluster_hint() -> str | None:
    """What to run when no cluster is configured but the local sandbox is up; None when it is not."""
    from .sandbox.control_plane import Sandbox

    box = Sandbox()
    if not box.kubeconfig.is_file() or not box.status()["up"]:
        return None
    return (f"No Kubernetes cluster is configured, but the local sandbox is up: run "
            f"%config MLDeploy.context = \"{SANDBOX_CONTEXT}\" in the notebook (or set "
            f"MLDEPLOY_CONTEXT={SANDBOX_CONTEXT}, or `export KUBECONFIG={box.kubeconfig}`, before starting "
            f"Jupyter or papermill).")


def connect(kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """The shared connection for these values, else for MLDeploy's resolved settings."""
    from .config import current
    from .kube import client

    if kubeconfig is None or context is None:
        settings = current().resolve()
        kubeconfig = kubeconfig or settings.kubeconfig
        context = context or settings.context
    target = sandbox_target(kubeconfig, context)
    if target is not None:
        kubeconfig, context = target
    elif _nothing_configured(kubeconfig, context):
        hint = no_cluster_hint()
        if hint is not None:
            raise MLDeployError(hint)
    return client.connect(kubeconfig, context)


def cluster(kube: Kube | None = None, kubeconfig: str | None = None, context: str | None = None) -> Kube:
    """The cluster a public function talks to, one rule for `api`, `rollout`, `rollout_knative` and
    `shadow`: `kube` when given, else `connect(kubeconfig, context)` (MLDeploy's settings fill in what
    is not given)."""
    return kube if kube is not None else connect(kubeconfig, context)


def resolve(namespace: str | None = None, *, kube: Kube | None = None, context: str | None = None,
            settings: Settings | None = None) -> tuple[Kube, str]:
    """The connection and namespace a face uses, the one way for every face (magics and widgets alike).

    An explicit value wins; then MLDeploy's resolved settings (`%config MLDeploy.kubeconfig` / `.context`
    / `.namespace`, the environment, pyproject.toml); then the kube context's own namespace. `kube`
    given means the cluster is chosen already (only the namespace is resolved)."""
    if settings is None:
        from .config import current

        settings = current().resolve()
    if kube is None:
        kube = connect(settings.kubeconfig, context or settings.context)
    return kube, namespace or settings.namespace or kube.namespace
