"""The demo's story: one line in the terminal for each thing a finished notebook cell did.

Pure: a cell (its text outputs and papermill's duration) in, a sentence or None out. It reads what the
magics print headless ("Deploying NAME (IMAGE) to namespace NS, ...", "NAME: 2/2 ready, rollout
complete", "Rolling NAME ... back to ...", "Removed NAME from namespace NS: ..."), so the story is
the notebook's own output, told as it goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Story", "cell_text"]

_DEPLOYING = re.compile(r"^Deploying (?P<name>\S+) \((?P<image>[^)]+)\) to namespace (?P<ns>\S+), context ",
                        re.M)
_ROLLING = re.compile(r"^Rolling (?P<name>\S+) in namespace (?P<ns>\S+) back to (?P<target>.+)$", re.M)
_READY = re.compile(r"^(?P<name>\S+): (?P<ready>\d+/\d+) ready(?:, [^\n]*)?, rollout complete$", re.M)
_REMOVED = re.compile(r"^Removed (?P<name>\S+) from namespace (?P<ns>\S+): (?P<objects>.+)\.$", re.M)


def cell_text(cell: Mapping[str, Any]) -> str:
    """A cell's printed and displayed text, as a terminal would show it."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(out.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(p if p.endswith("\n") else p + "\n" for p in parts if p)


def _seconds(cell: Mapping[str, Any]) -> str:
    duration = (cell.get("metadata", {}).get("papermill") or {}).get("duration")
    return f" in {duration:.1f} s" if isinstance(duration, (int, float)) else ""


@dataclass
class Story:
    """Remembers what it told, so a second deploy of the same model is told as a new version."""

    deployed: dict[str, str] = field(default_factory=dict)  # name -> image

    def line(self, cell: Mapping[str, Any]) -> str | None:
        text = cell_text(cell)
        ready = {m["name"]: m["ready"] for m in _READY.finditer(text)}
        if (m := _DEPLOYING.search(text)) and m["name"] in ready:
            name, image = m["name"], m["image"]
            first = name not in self.deployed
            self.deployed[name] = image
            what = (f"Deployed {name} ({image}) to namespace {m['ns']}" if first else
                    f"Deployed a second version of {name} ({image})")
            return f"{what}: {ready[name]} ready{_seconds(cell)}."
        if (m := _ROLLING.search(text)) and m["name"] in ready:
            return f"Rolled {m['name']} back to {m['target']}: {ready[m['name']]} ready{_seconds(cell)}."
        if m := _REMOVED.search(text):
            count = len(m["objects"].split(", "))
            return f"Removed {m['name']} from namespace {m['ns']} ({count} objects)."
        return None
