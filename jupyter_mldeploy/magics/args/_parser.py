"""The shared parsing: a line through argparse (IPython's `@magic_arguments` parsers), argparse's
complaints reworded as one `UsageError` sentence naming the magic, and the small flag checks every magic
uses. The rules themselves live where they belong (the spec's names and namespaces, config's durations);
these only turn their SpecError into a UsageError."""

from __future__ import annotations

import argparse
import difflib
import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from ...config import parse_seconds
from ...errors import SpecError
from ...spec import validate_model_name, validate_namespace
from ...traffic import check_percent
from ._vars import one_line, substitute

__all__ = ["count", "context", "model_name", "namespace", "parse", "percent", "sentence", "timeout",
           "where"]


def where(func: Callable) -> Callable:
    """--namespace and --context, shared by every magic."""
    func = argument("--context", metavar="CTX", help="kube context to use (default: MLDeploy.context, "
                    "MLDEPLOY_CONTEXT, pyproject.toml, then the kubeconfig's current context)")(func)
    return argument("-n", "--namespace", metavar="NS", help="namespace (default: MLDeploy.namespace, "
                    "MLDEPLOY_NAMESPACE, pyproject.toml, then the kube context's namespace)")(func)


def sentence(text: str) -> str:
    text = one_line(text)
    return text if text.endswith((".", "?", "!")) else text + "."


_ARGPARSE = (
    (re.compile(r"argument (\S+): expected one argument"), "{0} needs a value"),
    (re.compile(r"argument (\S+): expected at least one argument"), "{0} needs at least one value"),
    (re.compile(r"argument (\S+): invalid choice: '?(.*?)'? \(choose from (.+)\)"),
     "{0} {1!r} is not one of {2}"),
    (re.compile(r"argument (\S+): not allowed with argument (\S+)"), "{0} and {1} cannot be used together"),
    (re.compile(r"argument (\S+): ignored explicit argument '(.*)'"), "{0} takes no value, got {1!r}"),
)


def _argparse_error(magic: str, parser: argparse.ArgumentParser, message: str) -> UsageError:
    """argparse's complaint as one sentence that names the magic and, for a typo, the right option."""
    message = one_line(message)
    if message.startswith("unrecognized arguments: "):
        extra = message[len("unrecognized arguments: "):].split()
        flag = next((t for t in extra if t.startswith("-") and len(t) > 1 and not _is_number(t)), None)
        if flag is not None:
            flag = flag.split("=", 1)[0]
            options = [o for a in parser._actions for o in a.option_strings]  # noqa: SLF001
            close = difflib.get_close_matches(flag, options, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return UsageError(f"%{magic} has no option {flag}{hint}; %{magic}? lists the options.")
        return UsageError(f"%{magic} got an unexpected value {extra[0]!r}: quote a value that contains "
                          f"spaces, and see %{magic}? for the options.")
    if message.startswith("the following arguments are required"):
        return UsageError(f"%{magic} needs a model name first, such as %{magic} churn.")
    for pattern, words in _ARGPARSE:
        m = pattern.fullmatch(message)
        if m:
            return UsageError(f"%{magic}: " + sentence(words.format(*m.groups())))
    return UsageError(f"%{magic}: {sentence(message)}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse(func: Callable, line: str, user_ns: Mapping[str, Any]) -> argparse.Namespace:
    magic = func.__name__
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"%{magic}: the line has {one_line(e).lower().rstrip('.')}: close the quote or "
                         f"escape it with a backslash.") from None
    # A token that a {var} made start with "-" would read as an option: it goes to argparse as a
    # placeholder word and its value is put back afterwards, so a value always stays a value.
    nonce = secrets.token_hex(4)
    values: dict[str, str] = {}
    tokens = []
    for arg in argv:
        text = substitute(arg, user_ns, f"the %{magic} line")
        if text.startswith("-") and not arg.startswith("-"):
            word = f"mldeployvalue{nonce}x{len(values)}x"
            values[word] = text
            text = word
        tokens.append(text)
    parser = func.parser
    try:
        parsed = parser.parse_args(tokens)
    except UsageError as e:
        message = str(e)
        if message.startswith("unrecognized arguments: "):
            extra = next((w for w in message.split()[2:] if w in values), None)
            if extra is not None:
                raise UsageError(f"%{magic} got an unexpected value {values[extra]!r} from a {{variable}}: a "
                                 f"variable's value is never read as an option; see %{magic}? for the "
                                 f"options.") from None
        for word, text in values.items():
            message = message.replace(word, text)
        raise _argparse_error(magic, parser, message) from None
    def restore(value: Any) -> Any:
        if isinstance(value, str):
            return values.get(value, value)
        if isinstance(value, list):
            return [restore(v) for v in value]
        return value

    if values:
        for key, value in vars(parsed).items():
            setattr(parsed, key, restore(value))
    return parsed


def count(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        extra = " (a GPU cannot be split by a Kubernetes request)" if flag == "--gpu" else ""
        raise UsageError(f"{flag} {value!r} is not a whole number{extra}.")
    return int(text)


def model_name(name: str | None, magic: str) -> str:
    if name is None:
        raise UsageError(f"%{magic} needs a model name first, such as %{magic} churn.")
    try:
        return validate_model_name(name)  # the one model-name rule, the spec's
    except SpecError as e:
        raise UsageError(str(e)) from None


def namespace(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return validate_namespace(value)
    except SpecError as e:
        raise UsageError(str(e)) from None


def timeout(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_seconds(value, "--timeout")
    except SpecError as e:
        raise UsageError(str(e)) from None


def context(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise UsageError("--context is empty: give the name of a context in your kubeconfig.")
    return value


def percent(value: str | None, flag: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    try:  # digits only (no sign, no '1e2'), then the one percent rule
        return check_percent(int(text) if text.isascii() and text.isdigit() else None, flag)
    except SpecError:
        raise UsageError(f"{flag} {value!r} is not a whole percent from 0 to 100.") from None
