"""Which Knative Serving components hold a fresh lease: read by `%deploy --router knative` (is anything
there to reconcile a Knative Service?) and by the sandbox while Knative starts, from raw Lease JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from .objects import parse_time

__all__ = ["lease_holders"]


def lease_holders(leases: Sequence[dict], now: datetime | None) -> dict[str, bool]:
    """Which of controller, webhook and autoscaler hold a lease renewed within twice its duration of
    `now` (the server's time; None: unknown, so a held lease counts)."""
    found = {"controller": False, "webhook": False, "autoscaler": False}
    for lease in leases:
        spec = lease.get("spec") or {}
        if not spec.get("holderIdentity"):
            continue
        renewed = parse_time(spec.get("renewTime"))
        duration = spec.get("leaseDurationSeconds")
        duration = duration if isinstance(duration, int) and duration > 0 else 60
        if now is not None and (renewed is None or now.timestamp() - renewed >= 2 * duration):
            continue
        lname = lease.get("metadata", {}).get("name", "")
        for c in found:
            if lname.startswith(c):
                found[c] = True
    return found
