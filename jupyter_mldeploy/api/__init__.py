"""The Python API that the magics and widgets stand on: deploy, undeploy, history, rollback.

One `%deploy` is: DeploySpec (validated, no I/O) -> render (once) -> pre-flight fit check of the
rendered pod template (node list, cached) -> every object and a release record applied at once -> a
`Deployment` handle -> follow the rollout.

One module per concern: handle (Deployment, DryRun), releases (records, write_release), deploying
(deploy, deploy_many, get, capacity), removal (undeploy) and history (history, rollback). Every name
importable from `jupyter_mldeploy.api` before still is.
"""

from __future__ import annotations

from ..errors import PreflightFailed, WaitTimeout
from ..follow import namespace_watches
from ..kube.client import Kube
from .deploying import capacity, deploy, deploy_many, get
from .deploying import rendered_pod_spec as rendered_pod_spec
from .handle import OUR_KINDS as OUR_KINDS
from .handle import Deployment, DryRun
from .history import Revision, history, rollback
from .releases import _give_back as _give_back
from .releases import newest_spec as newest_spec
from .releases import newest_spec_at as newest_spec_at
from .releases import release_manifests as release_manifests
from .releases import release_records as release_records
from .releases import write_release as write_release
from .removal import undeploy

# Classes name their public home, where IPython's for_type_by_name (the magics' text views), reprs
# and pickles look for them.
for _cls in (Deployment, DryRun, Revision):
    _cls.__module__ = __name__

# PreflightFailed and WaitTimeout live in errors.py; named here too, their old home.
# Kube is the connection type the faces type against (they never import kube/ themselves).
# The `X as X` imports keep importable what was before, beside __all__.
__all__ = ["Deployment", "DryRun", "Kube", "PreflightFailed", "Revision", "WaitTimeout", "capacity", "deploy",
           "deploy_many", "get", "history", "namespace_watches", "rollback", "undeploy"]
