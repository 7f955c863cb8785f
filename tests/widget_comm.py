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


def frontend_sets(widget, **state) -> None:
    """What the browser sends when the user edits a field (or drags a slider: continuous_update)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
                        "buffers": []})
    for key, value in state.items():  # ipywidgets logs (not raises) a failing handler: check it landed
        assert getattr(widget, key) == value


def frontend_clicks(button) -> None:
    """What the browser sends when the user clicks a button."""
    button._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "click"}}},
                        "buffers": []})
