"""A model as a Knative Service, driven: deploy, canary and blue-green by the traffic block, promote,
roll back, steps, status, and failures read from the Revision's and Route's conditions.

Knative replaces the workload objects (it makes a Deployment per revision, its own autoscaler and the
Service `<name>`), so a Knative model is one object of ours: the Knative Service `<name>`, owned (by
uid) by the model's anchor `<name>.mldeploy` like every other object jupyter-mldeploy writes
(kube/owner.py). It is created only when the name is free: a Knative Service or a plain Service of that
name that the anchor does not own is refused, never adopted. A deploy takes the anchor's lease, so two
kernels never write the model at once; every later write (a weight, a promote, a rollback) carries the
resourceVersion it read, so a concurrent change is refused rather than overwritten, and Ctrl-C during
a write puts back what was there. Its template is the newest revision; `spec.traffic` names
revisions and gives each a percent and a tag (stable, canary, preview).

Every revision is named `<name>-<version slug>-<hash>`: a new image or spec is a new revision, the same
spec is the same revision, so a rollback names an earlier revision again and Knative reuses it (its
pods come back; nothing is rebuilt). Each revision's template carries its DeploySpec and Scale in
annotations, so any kernel can roll back from the cluster alone. The rollout state lives in the
Service's annotations under the same keys as the other routers' (rollout.read reads them).

Mirroring does not exist in Knative: shadow is refused (traffic.check_supported) before any write.
Undeploy is api.undeploy: one delete of the anchor; the garbage collector removes the Knative Service,
then, through Knative's own owner references, the Configuration, Route, Revisions, their Deployments and
pods. The Knative Service is recorded in the anchor with no track (it serves every track), so a plain
deploy of the same name never prunes it.

One module per concern: service (ownership, templates, the guarded write), revisions (status and
waiting), running (what runs), rollouts (the handle and the traffic-block operations) and deploys.
Every name importable from `jupyter_mldeploy.rollout_knative` before still is.
"""

from __future__ import annotations

from ..diagnosis.leases import lease_holders as lease_holders
from .deploys import _plain_refusal as _plain_refusal
from .deploys import deploy
from .revisions import KnativeStatus, RevisionRow, explain_revision, status
from .revisions import _generation as _generation
from .revisions import _status_of as _status_of
from .revisions import revisions_of as revisions_of
from .rollouts import KnativeModel, abort, history, promote, read_weights, rollback, set_weight, start, steps
from .rollouts import read_pods as read_pods
from .rollouts import ready_candidate_pods as ready_candidate_pods
from .rollouts import stale_view as stale_view
from .rollouts import traffic_block as traffic_block
from .running import ProgressLines as ProgressLines
from .running import components as components
from .running import describe_components as describe_components
from .running import health_sentence as health_sentence
from .running import ingress_ready as ingress_ready
from .running import models as models
from .service import API as API
from .service import GENERATION_LABEL as GENERATION_LABEL
from .service import POLL as POLL
from .service import SERVICE_LABEL as SERVICE_LABEL
from .service import SERVICE_UID_LABEL as SERVICE_UID_LABEL
from .service import STATUS_RETRIES as STATUS_RETRIES
from .service import STEPS as STEPS
from .service import STRATEGY as STRATEGY
from .service import TRACK_OF as TRACK_OF
from .service import Scale, ours
from .service import intent_of as intent_of
from .service import manifest as manifest
from .service import only_knative_wrote as only_knative_wrote
from .service import read_service as read_service
from .service import spec_of as spec_of
from .service import template as template

# Classes name their public home, where IPython's for_type_by_name (the magics' text views), reprs
# and pickles look for them.
for _cls in (KnativeModel, KnativeStatus, RevisionRow):
    _cls.__module__ = __name__

# The `X as X` imports keep importable what was before, beside __all__: keys, helpers other modules
# and tests use.
__all__ = ["KnativeModel", "KnativeStatus", "RevisionRow", "Scale", "abort", "deploy", "explain_revision",
           "history", "ours", "promote", "read_weights", "rollback", "set_weight", "start", "status", "steps"]
