"""How the tests check a refusal: one sentence, no traceback, and the exact words returned for comparing."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError


def one_sentence(err: BaseException) -> str:
    """The error's message, checked to be one line with no traceback, ending as a sentence does."""
    text = str(err)
    assert text and "\n" not in text and "Traceback" not in text, text
    assert text.endswith((".", "?")), text
    return text


def usage_error(fn, *args, **kwargs) -> str:
    """Call `fn`, expect an IPython UsageError (a magic's refusal), return its one sentence."""
    with pytest.raises(UsageError) as e:
        fn(*args, **kwargs)
    return one_sentence(e.value)
