"""duration.parse_seconds: the one duration rule (timeouts, startup windows, the wait between steps)."""

from __future__ import annotations

import pytest

from jupyter_mldeploy.duration import parse_seconds
from jupyter_mldeploy.errors import SpecError


@pytest.mark.parametrize(("text", "seconds"), [(600, 600.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0),
                                               ("500ms", 0.5), ("10m", 600.0), ("1.5h", 5400.0),
                                               (" 2m ", 120.0), (".5s", 0.5)])
def test_durations(text, seconds):
    assert parse_seconds(text, "timeout") == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("soon", "timeout 'soon' is not a duration: write seconds such as 600, or 90s, 10m, 1h."),
    ("1d", "timeout '1d' is not a duration: write seconds such as 600, or 90s, 10m, 1h."),
    (None, "timeout a NoneType is not a duration: write seconds such as 600, or 90s, 10m, 1h."),
    (True, "timeout must be a number of seconds, got the boolean true."),
    (0, "timeout must be more than zero seconds, got 0."),
    (-1, "timeout must be more than zero seconds, got -1."),
    (float("inf"), "timeout must be more than zero seconds, got inf."),
])
def test_refusals(text, message):
    with pytest.raises(SpecError) as e:
        parse_seconds(text, "timeout")
    assert str(e.value) == message


def test_zero_only_when_allowed():
    assert parse_seconds("0s", "every", allow_zero=True) == 0.0
    with pytest.raises(SpecError, match="^every must be zero seconds or more, got -1.$"):
        parse_seconds(-1, "every", allow_zero=True)
