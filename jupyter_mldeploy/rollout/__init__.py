"""Rollout strategies as operations: start, set_weight, set_mirror, promote, abort, release, steps.

A rollout is a stable track `<name>` plus one candidate track (`<name>-canary`, `<name>-shadow` or
`<name>-preview`) and a traffic layer that splits, mirrors or switches requests between them. Its
state (strategy, router, weight, mirror, step, versions, phase) lives in annotations on the route
object, which every operation rewrites in full, so any kernel, or tomorrow's papermill run, can read it
back and carry on.

The candidate inherits: it is the stable spec (its newest stable release) with only the asked fields
changed, and promote makes the stable exactly the candidate, keeping the stable's own replica count,
autoscaling and exposure.

No stale state: every route write carries the resourceVersion of the object it was based on
(metadata.resourceVersion in the server-side apply body, an optimistic lock). The Rollout this process
read or wrote last is kept, so moving the weight is one write, but only as an optimisation that the
precondition guards: on 409 the route is read again; when only fields outside the rollout state
changed (a gateway controller's status) the write is retried once on the new version, and when the
rollout itself changed (another kernel moved the weight, promoted, rolled back) nothing is written and
StaleRollout says what changed and how long ago, by the API server's clocks only.

Promote is two rounds: (1) the stable takes the candidate's spec and rolls while the route still
splits; (2) the route switches to the stable, and only once that write is accepted is the candidate
removed. The first write of a promotion claims it on the route (`mldeploy.io/phase: promoting`,
guarded like every write), so two kernels cannot promote at once, and one that stopped (Ctrl-C, a
timeout, a papermill cell timeout) leaves a state that `promote` from any kernel carries on.

Knative replaces the Deployments altogether: its rollout state lives on the model's Knative Service,
which `read` probes beside the other routes; with router "knative" each operation hands over, at its
entry, to rollout_knative (revisions and the Knative Service's traffic block, under the same rules:
the candidate inherits the stable revision's spec, every write is guarded, a stale view is refused).

One module per concern: state (Rollout, keys, the route for a state, the cache), reads, writes (the
guards), starting, moves (set_weight, set_mirror, steps) and finish (promote, release, abort). Every
name importable from `jupyter_mldeploy.rollout` before still is.
"""

from __future__ import annotations

from ..errors import NoRollout as NoRollout
from ..errors import RolloutFailed as RolloutFailed
from ..errors import RolloutInterrupted as RolloutInterrupted
from ..errors import StaleRollout as StaleRollout
from .finish import Phase as Phase
from .finish import _promoted as _promoted
from .finish import abort, finish_interrupted, promote, release
from .moves import parse_every as parse_every
from .moves import set_mirror, set_weight, steps
from .reads import _ago as _ago
from .reads import _http_date as _http_date
from .reads import _Seen as _Seen
from .reads import candidate_spec as candidate_spec
from .reads import read
from .reads import stable_spec as stable_spec
from .starting import _changes as _changes
from .starting import _spec_diff as _spec_diff
from .starting import choose_router as choose_router
from .starting import offered_routers, start
from .state import CANDIDATE_TRACKS as CANDIDATE_TRACKS
from .state import ENDED as ENDED
from .state import ENDED_STRATEGY as ENDED_STRATEGY
from .state import PHASE as PHASE
from .state import PROMOTING as PROMOTING
from .state import ROLLOUT_ROUTERS as ROLLOUT_ROUTERS
from .state import STEPS as STEPS
from .state import STRATEGY as STRATEGY
from .state import Rollout, forget_cache
from .state import _known as _known
from .state import _remember as _remember
from .writes import _guarded as _guarded
from .writes import _what_changed as _what_changed

# Classes name their public home, where IPython's for_type_by_name (the magics' text views), reprs
# and pickles look for them.
Rollout.__module__ = __name__

# The `X as X` imports keep importable what was before, beside __all__: errors, annotation keys, and
# the helpers other modules and tests use.
__all__ = ["Rollout", "abort", "finish_interrupted", "forget_cache", "offered_routers", "promote", "read",
           "release", "set_mirror", "set_weight", "start", "steps"]
