"""jupyter-mldeploy: put a machine-learning model on Kubernetes from a notebook.

Importing this package is cheap: the Kubernetes client, IPython and ipywidgets are imported only
when something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first use (PEP 562) so `import jupyter_mldeploy`
# and `%load_ext jupyter_mldeploy` stay fast.
_LAZY = {
    "DeploySpec": "spec", "ImageRef": "spec", "Resources": "spec", "Autoscale": "spec", "Probe": "spec",
    "render": "render", "to_yaml": "render",
    "deploy": "api", "deploy_many": "api", "undeploy": "api", "get": "api", "history": "api",
    "rollback": "api", "Deployment": "api", "DryRun": "api", "Revision": "api",
    "MLDeployError": "errors", "SpecError": "errors", "ClusterError": "errors", "RolloutFailed": "errors",
    "NotOurs": "errors", "NotDeployed": "errors", "StaleState": "errors", "Interrupted": "errors",
}

__all__ = [
    "Autoscale", "ClusterError", "DeploySpec", "Deployment", "DryRun", "ImageRef", "Interrupted",
    "MLDeployError", "NotDeployed", "NotOurs", "Probe", "Resources", "Revision", "RolloutFailed", "SpecError",
    "StaleState", "deploy", "deploy_many", "get", "history",
    "load_ipython_extension", "render", "rollback", "to_yaml", "undeploy", "unload_ipython_extension",
]

if TYPE_CHECKING:
    from .api import Deployment, DryRun, Revision, deploy, deploy_many, get, history, rollback, undeploy
    from .errors import (
        ClusterError,
        Interrupted,
        MLDeployError,
        NotDeployed,
        NotOurs,
        RolloutFailed,
        SpecError,
        StaleState,
    )
    from .render import render, to_yaml
    from .spec import Autoscale, DeploySpec, ImageRef, Probe, Resources


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jupyter_mldeploy' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython) -> None:
    """`%load_ext jupyter_mldeploy`: register the magics (cheap: no Kubernetes import here)."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:
    from .magics import unload

    unload(ipython)
