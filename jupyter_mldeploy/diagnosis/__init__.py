"""Pod, event and Deployment status -> one plain-words reason, and whether waiting any longer is pointless.

Input is raw API JSON (the dicts the API server returns); nothing here does I/O, so the same rules serve the
live widget, the headless text and the tests. Messages from the kubelet and scheduler are kept verbatim in
`detail`: the translation may miss a case, the original never lies.

One module per concern: `model` (the Diagnosis and which one to show), `objects` (readers over raw JSON),
`pods` (one pod, in order), `scheduling`, `containers`, `readiness` and `workload` (Deployments and
ReplicaSets). Once in kube/diagnose.py, which still re-exports these names.
"""

from __future__ import annotations

from .containers import log_tail
from .model import KINDS, LOG_TAIL_LINES, Diagnosis, most_relevant
from .objects import format_age, parse_time, reported_amount
from .pods import diagnose_pod
from .scheduling import parse_scheduler_message
from .workload import diagnose_deployment, diagnose_events

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
    "parse_scheduler_message",
    "parse_time",
    "reported_amount",
]
