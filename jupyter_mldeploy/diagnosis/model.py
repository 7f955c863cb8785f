"""What a diagnosis is: one plain-words reason, its kind, and which of several to show."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Obj = Mapping[str, Any]


# Every kind we produce, most telling first: when several things are wrong, the earlier one is the cause
# the user should hear about (a crash loop explains a progress deadline, not the other way round).
KINDS = (
    "create-failed",
    "image-pull",
    "oom-killed",
    "crash-loop",
    "start-failed",
    "config-error",
    "unschedulable",
    "volume",
    "progress-deadline",
    "never-ready",
    "evicted",
    "pod-failed",
    "sandbox",
)
LOG_TAIL_LINES = 10


@dataclass(frozen=True)
class Diagnosis:
    """Why a pod or rollout is stuck, in words a data scientist understands."""

    kind: str
    pod: str | None
    summary: str
    detail: str | None = None  # the kubelet's / scheduler's / controller's message, verbatim
    hint: str | None = None  # what to do about it, as a lower-case phrase
    fatal: bool = False  # a waiting deploy should stop now: this will not resolve by itself

    def __str__(self) -> str:
        if not self.hint:
            return self.summary
        return f"{self.summary} Hint: {self.hint.rstrip('.')}."


def most_relevant(diagnoses: Iterable[Diagnosis | None]) -> Diagnosis | None:
    """The one to show: fatal before non-fatal, then by the order of KINDS."""
    found = [d for d in diagnoses if d is not None]
    if not found:
        return None
    return min(found, key=lambda d: (not d.fatal, _rank(d.kind)))


def _rank(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)
