"""Its old home: the diagnosis is pure code and lives in `jupyter_mldeploy.diagnosis` (outside kube/, the
room that talks to the API server); these names stay importable from here."""

from __future__ import annotations

from ..diagnosis import (
    KINDS,
    LOG_TAIL_LINES,
    Diagnosis,
    diagnose_deployment,
    diagnose_events,
    diagnose_pod,
    format_age,
    log_tail,
    most_relevant,
    parse_quantity,
    parse_scheduler_message,
    parse_time,
)

__all__ = [
    "KINDS",
    "LOG_TAIL_LINES",
    "Diagnosis",
    "diagnose_deployment",
    "diagnose_events",
    "diagnose_pod",
    "format_age",
    "log_tail",
    "most_relevant",
    "parse_quantity",
    "parse_scheduler_message",
    "parse_time",
]
