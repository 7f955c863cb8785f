"""Watch events -> RolloutStatus / PodRow values that views render (widget HTML, headless text).

Pure: the kube layer feeds raw watch events into a StatusTracker; views ask it for snapshots. Nothing here
talks to the API server, so the live view and the papermill log say the same thing.

One module per layer: `rows` (the model of one pod and one event), `rollout` (RolloutStatus and the
fold of a Deployment's objects into it, with kubectl's completeness rule) and `tracker` (the watch
events kept between snapshots). Text and HTML live in views/status.py. Every name is importable from
`jupyter_mldeploy.status` as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..diagnosis import format_age
from .rollout import REVISION_ANNOTATION, RolloutStatus, rollout_complete, rollout_status
from .rows import EventRow, PodRow, activity_words, loading_words
from .tracker import StatusTracker

__all__ = [
    "REVISION_ANNOTATION",
    "EventRow",
    "PodRow",
    "RolloutStatus",
    "StatusTracker",
    "activity_words",
    "format_age",
    "format_progress_line",
    "format_status_table",
    "loading_words",
    "rollout_complete",
    "rollout_status",
    "status_html",
]

# Text and HTML: their one home is views/status.py (one palette for every face); still importable here.
_VIEWS = ("format_progress_line", "format_status_table", "status_html")
if TYPE_CHECKING:
    from ..views.status import format_progress_line, format_status_table, status_html


def __getattr__(name: str) -> Any:
    # Resolved on first use (PEP 562): views.status imports this package, so a plain import would loop.
    if name in _VIEWS:
        from ..views import status as views

        return getattr(views, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
