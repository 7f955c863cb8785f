"""Label and annotation keys jupyter-mldeploy writes, in one place so every module agrees on them.

Objects carry the Kubernetes recommended labels (`app.kubernetes.io/...`). Our own keys live under the
`mldeploy.io/` prefix: the track label, the pod-template spec hash, and the rollout state annotations
that let another kernel (or tomorrow's papermill run) pick up a rollout where this one stopped.
"""

from __future__ import annotations

# The value of the managed-by label, and the server-side apply field manager: one identity for writes.
MANAGED_BY = "jupyter-mldeploy"
FIELD_MANAGER = "jupyter-mldeploy"

# Kubernetes recommended labels.
APP_NAME = "app.kubernetes.io/name"
APP_INSTANCE = "app.kubernetes.io/instance"
APP_VERSION = "app.kubernetes.io/version"
APP_COMPONENT = "app.kubernetes.io/component"
APP_MANAGED_BY = "app.kubernetes.io/managed-by"
APP_PART_OF = "app.kubernetes.io/part-of"

COMPONENT_PREDICTOR = "predictor"

# The recommended labels we set ourselves; a user label with one of these keys would fight ours.
# part-of is left to the user (a model may belong to a larger application).
RESERVED_LABELS = frozenset({APP_NAME, APP_INSTANCE, APP_VERSION, APP_COMPONENT, APP_MANAGED_BY})

PREFIX = "mldeploy.io/"

# Label: which track a pod/object belongs to (stable, canary, shadow, preview).
TRACK = "mldeploy.io/track"
# Label: "true" on pods whose answers go back to callers (stable and canary tracks), "false" on shadow
# and preview pods. Lets the router-less replica split select stable+canary pods without shadow ones.
LIVE = "mldeploy.io/live"

# Annotation on the pod template (and its Deployment): hash of the rendered pod template.
SPEC_HASH = "mldeploy.io/spec-hash"

# Rollout state annotations, kept on our own objects.
WEIGHT = "mldeploy.io/weight"
STABLE_VERSION = "mldeploy.io/stable-version"
CANDIDATE_VERSION = "mldeploy.io/candidate-version"
STEP = "mldeploy.io/step"
ROLLOUT_STATE = (WEIGHT, STABLE_VERSION, CANDIDATE_VERSION, STEP)

TRACKS = ("stable", "canary", "shadow", "preview")

# Rollout state annotations on the route object (or the Knative Service), beside the four above.
STRATEGY = "mldeploy.io/strategy"
STEPS = "mldeploy.io/steps"
PHASE = "mldeploy.io/phase"  # "promoting" from a promotion's first write until its route switch
ENDED = "mldeploy.io/ended"  # "promoted" or "rolled-back" once the rollout is over
ENDED_STRATEGY = "mldeploy.io/ended-strategy"  # which candidate track the ended rollout had
# Which router wrote a route object and what it was asked, so another kernel can read the traffic
# state from the cluster without knowing the router's format.
ROUTER = "mldeploy.io/router"
CANDIDATE_TRACK = "mldeploy.io/candidate-track"
MIRROR_PERCENT = "mldeploy.io/mirror-percent"
MIRROR_TRACK = "mldeploy.io/mirror-track"

# Knative revisions: each template carries the DeploySpec and Scale it runs, so any revision can be
# rolled back to from the cluster alone (a Revision keeps its template's annotations).
KNATIVE_SPEC = "mldeploy.io/spec"
KNATIVE_SCALE = "mldeploy.io/knative-scale"
STABLE_REVISION = "mldeploy.io/stable-revision"
CANDIDATE_REVISION = "mldeploy.io/candidate-revision"

# Release records (Secrets of this type, one per revision, labelled with the revision number).
RECORD = "mldeploy.io/record"
REVISION = "mldeploy.io/revision"
RELEASE_SECRET_TYPE = "mldeploy.io/release.v1"

# The owner anchor: a label carrying the model's name, and an annotation saying what it is for.
ANCHOR = "mldeploy.io/anchor"
ABOUT = "mldeploy.io/about"


def track_name(name: str, track: str) -> str:
    """`name` for the stable track, `<name>-<track>` for canary, shadow and preview: the one place
    an object name is derived from a model name (spec.NAME_MAX leaves room for the longest suffix)."""
    return name if track == "stable" else f"{name}-{track}"


def selector_for(name: str, track: str | None = None) -> str:
    """The label selector matching every object of model `name` that we manage (one track if given)."""
    selector = f"{APP_INSTANCE}={name},{APP_MANAGED_BY}={MANAGED_BY}"
    if track is not None:
        selector += f",{TRACK}={track}"
    return selector
