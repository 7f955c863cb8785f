"""`{name}` and `{name.attr}` in a magic line or a `%%deploy` body, replaced with values from the notebook's
namespace (`{{name}}` keeps the braces). Nothing else is evaluated; a YAML body can never be restructured
by a value, and anchors and aliases are refused."""

from __future__ import annotations

import numbers
import re
import secrets
from collections.abc import Mapping
from typing import Any

from IPython.core.error import UsageError

__all__ = ["IDENT", "load_body", "lookup", "one_line", "substitute"]

IDENT = r"[^\W\d]\w*(?:\.[^\W\d]\w*)*"
_VAR = re.compile(rf"\{{\{{({IDENT})\}}\}}|\{{({IDENT})\}}")


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def lookup(path: str, user_ns: Mapping[str, Any], where: str) -> Any:
    first, *attrs = path.split(".")
    if first not in user_ns:
        raise UsageError(f"{{{path}}} in {where}: there is no variable {first!r} in the notebook.")
    value = user_ns[first]
    for i, attr in enumerate(attrs):
        here = ".".join([first, *attrs[:i]])
        if isinstance(value, Mapping) and attr in value:
            value = value[attr]
            continue
        try:
            value = getattr(value, attr)
        except AttributeError:
            raise UsageError(f"{{{path}}} in {where}: {here} has no attribute {attr!r}.") from None
        except Exception as e:  # noqa: BLE001 - a property of the user's object failed; say so in one line
            raise UsageError(f"{{{path}}} in {where}: reading {here}.{attr} failed: "
                             f"{one_line(e)}.") from None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def substitute(text: str, user_ns: Mapping[str, Any], where: str) -> str:
    """Replace {name} / {name.attr} in text with the variables' str(); {{name}} keeps literal braces."""
    def repl(m: re.Match[str]) -> str:
        if m[1] is not None:
            return "{" + m[1] + "}"
        return _text(lookup(m[2], user_ns, where))
    return _VAR.sub(repl, text)


def _yaml_value(value: Any) -> Any:
    """A variable's value as the YAML loader would have produced it (so from_dict sees familiar types)."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {_text(k): _yaml_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_value(v) for v in value]
    return str(value)


def load_body(body: str, user_ns: Mapping[str, Any]) -> dict[str, Any]:
    """Parse the YAML body, replacing {var} with the variable's value.

    Each {var} becomes a unique plain word before parsing, so a value can never change the YAML's
    structure; afterwards a word that is a whole value becomes the variable itself (a number stays
    a number, a dict a mapping), one inside a longer string its str(). Variables only mentioned in
    comments are never looked up.
    """
    import yaml

    nonce = secrets.token_hex(4)
    words: dict[str, str] = {}

    def mark(m: re.Match[str]) -> str:
        if m[1] is not None:
            return "{" + m[1] + "}"
        word = f"mldeployvar{nonce}x{len(words)}x"
        words[word] = m[2]
        return word

    marked = _VAR.sub(mark, body)
    try:
        data = _safe_yaml(marked)
    except _AliasRefused as e:
        raise UsageError(f"The %%deploy body uses a YAML {e.what} (line {e.line}): write the value out "
                         f"instead; anchors and aliases are refused, so a few lines cannot expand into "
                         f"a huge spec.") from None
    except yaml.MarkedYAMLError as e:
        pos = e.problem_mark
        where = f" (line {pos.line + 1}, column {pos.column + 1})" if pos else ""
        problem = one_line(e.problem or e.context or "unreadable")
        raise UsageError(f"The %%deploy body is not valid YAML: {_unmark(problem, words)}{where}.") from None
    except yaml.YAMLError as e:
        raise UsageError(f"The %%deploy body is not valid YAML: {_unmark(one_line(e), words)}.") from None
    except RecursionError:
        raise UsageError("The %%deploy body is nested too deeply to be a spec.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"The %%deploy body must be a YAML mapping of fields such as image and cpu, got "
                         f"{'a list' if isinstance(data, list) else 'a single value'}.")

    pattern = re.compile("|".join(map(re.escape, words))) if words else None

    def text(node: str) -> str:
        if pattern is None:
            return node
        return pattern.sub(lambda m: _text(lookup(words[m[0]], user_ns, "the %%deploy body")), node)

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            if node in words:
                return _yaml_value(lookup(words[node], user_ns, "the %%deploy body"))
            return text(node)
        if isinstance(node, dict):  # keys stay strings: a field name is never a whole value
            return {text(k) if isinstance(k, str) else k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    try:
        return fill(data)
    except RecursionError:
        raise UsageError("A variable in the %%deploy body refers to itself; give a plain value.") from None


class _AliasRefused(Exception):
    def __init__(self, what: str, line: int) -> None:
        super().__init__(what)
        self.what = what
        self.line = line


def _safe_yaml(text: str) -> Any:
    """yaml.safe_load, refusing any anchor (&a) or alias (*a) as the parser meets it: before a node is
    composed, so an alias bomb never expands (nor does a merge key `<<: *a`, which needs an alias)."""
    import yaml

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent):
                raise _AliasRefused(f"alias *{event.anchor}", event.start_mark.line + 1)
            if getattr(event, "anchor", None) is not None:
                raise _AliasRefused(f"anchor &{event.anchor}", event.start_mark.line + 1)
            return super().compose_node(parent, index)

    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _unmark(text: str, words: Mapping[str, str]) -> str:
    for word, path in words.items():
        text = text.replace(word, "{" + path + "}")
    return text
