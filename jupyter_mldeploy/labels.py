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


def selector_for(name: str, track: str | None = None) -> str:
    """The label selector matching every object of model `name` that we manage (one track if given)."""
    selector = f"{APP_INSTANCE}={name},{APP_MANAGED_BY}={MANAGED_BY}"
    if track is not None:
        selector += f",{TRACK}={track}"
    return selector
