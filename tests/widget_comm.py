"""The widgets' frontend side for tests without a browser: a comm that records what it would send.

Swapped in the way ipywidgets' own tests do it; everything on the cluster side stays real.
"""

from __future__ import annotations

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm that keeps what would go to the frontend."""

    def __init__(self, *args, **kwargs):
        self.messages: list[tuple[str, dict]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.messages.append((msg_type, data or {}))

    def updates(self) -> list[dict]:
        return [d["state"] for t, d in self.messages if t == "comm_msg" and d.get("method") == "update"]
