"""How widgets word what went wrong: one sentence, errors from worker threads carried back, and the one
palette of the line a widget shows under its controls."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from ..errors import MLDeployError


def one_line(text: str) -> str:
    """The text on one line, ending like a sentence."""
    text = " ".join(str(text).split())
    return text if text.endswith((".", "?", "!")) else text + "."


def as_sentence(text: str) -> str:
    """A SpecError message (it starts with a field name) shown on its own under a form field."""
    text = one_line(text)
    return text[:1].upper() + text[1:]


def error_sentence(error: BaseException) -> str:
    """Our errors are already written for people (and may start with a model's name, kept as is);
    anything else is named by its type."""
    if isinstance(error, MLDeployError):
        return one_line(str(error))
    return one_line(f"{type(error).__name__}: {error}")


def capture(job: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run `job`; return (result, None) or (None, error), so a worker thread never loses an error."""
    try:
        return job(), None
    except Exception as e:  # shown in the widget as one sentence
        return None, e


# The one palette of a widget's message line: an error, a finished operation, a quiet state.
TONES = {"error": "#c62828", "done": "#2e7d32", "quiet": "#757575"}


def note_html(text: str, tone: str) -> str:
    """`text`, escaped, as one coloured line in one of the TONES."""
    return f'<span style="color:{TONES[tone]}">{html.escape(text)}</span>'
