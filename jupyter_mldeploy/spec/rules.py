"""Shared rules of every spec field: names, strings, numbers, choices, string maps, and the small
parsers of command-line text (`K=V` pairs, env, PVC) that from_dict needs too. Pure.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from .. import labels as L
from ..errors import SpecError

# What dry runs and reprs show instead of a literal env value (a password is often one).
REDACTED = "<redacted>"

# Open Inference Protocol (KServe v2) health endpoints; images with other endpoints set the path.
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"

# The one model-name rule. Every object gets its name from labels.track_name, so `<name>-preview`
# (the longest suffix) must still be a 63-character DNS-1035 label: a Service name, which the canary,
# shadow and preview tracks each have. Knative revision names add their own suffix and are checked
# where they are made (render/routers/knative.revision_name).
TRACK_SUFFIX_MAX = max(len(f"-{t}") for t in L.TRACKS if t != "stable")  # "-preview"
NAME_MAX = 63 - TRACK_SUFFIX_MAX

Track = Literal["stable", "canary", "shadow", "preview"]
Expose = Literal["gateway", "ingress"]
Strategy = Literal["rolling", "recreate"]
IN_PLACE_STRATEGIES: tuple[Strategy, ...] = ("rolling", "recreate")  # a DeploySpec's own; see traffic
ServiceType = Literal["ClusterIP", "NodePort", "LoadBalancer"]
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
CLUSTER_ISSUER = "cert-manager.io/cluster-issuer"
ISSUER = "cert-manager.io/issuer"

# ---------------------------------------------------------------------------------------------------------
# Shared rules

_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_PERCENT = re.compile(r"[0-9]+%")

_DNS1123_LABEL_RULE = ("use lower-case letters, digits and '-', starting and ending with a letter or digit, "
                       "at most 63 characters (DNS-1123 label)")
_DNS1035_RULE = ("use lower-case letters, digits and '-', starting with a letter and ending with a letter "
                 "or digit, at most 63 characters (DNS-1035 label)")
_SUBDOMAIN_RULE = ("use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, "
                   "at most 253 characters (DNS-1123 subdomain)")
_LABEL_VALUE_RULE = ("use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or "
                     "digit (Kubernetes label value)")
_QUALIFIED_RULE = ("use an optional DNS subdomain prefix and '/', then a name of at most 63 letters, digits, "
                   "'-', '_' or '.', starting and ending with a letter or digit (Kubernetes qualified name)")

def _describe(value: object) -> str:
    """How a wrong value reads in a sentence; YAML users see their types, not Python's."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "a list"
    return f"a {type(value).__name__}"


def _str(value: object, field_: str, *, example: str = "") -> str:
    if isinstance(value, str):
        return value
    hint = ""
    if isinstance(value, (bool, int, float)):
        hint = " (quote it in YAML so it is not read as a number or boolean)"
    elif example:
        hint = f" such as {example!r}"
    raise SpecError(f"{field_} must be a string{hint}, got {_describe(value)}.")


def _int(value: object, field_: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{field_} must be a whole number, got {_describe(value)}.")
    if minimum is not None and value < minimum:
        rule = f"at least {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SpecError(f"{field_} {value} is out of range: it must be {rule}.")
    if maximum is not None and value > maximum:
        rule = f"at most {maximum}" if minimum is None else f"between {minimum} and {maximum}"
        raise SpecError(f"{field_} {value} is out of range: it must be {rule}.")
    return value


def _strings(value: object, field_: str) -> tuple[str, ...]:
    """A list of strings, kept as a tuple; a lone string is refused rather than split into characters."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise SpecError(f"{field_} must be a list of strings, got {_describe(value)}.")
    items = tuple(value)
    for i, item in enumerate(items):
        _str(item, f"{field_}[{i}]")
    return items


def _check(pattern: re.Pattern[str], value: str, max_len: int) -> bool:
    return len(value) <= max_len and pattern.fullmatch(value) is not None


def _dns1123_label(value: object, field_: str) -> str:
    text = _str(value, field_)
    if not _check(_DNS1123_LABEL, text, 63):
        raise SpecError(f"{field_} {text!r} is not a valid name: {_DNS1123_LABEL_RULE}.")
    return text


def validate_namespace(value: object, field: str = "namespace") -> str:
    """A namespace name (DNS-1123 label), returned unchanged."""
    return _dns1123_label(value, field)


def validate_model_name(value: object, field: str = "name") -> str:
    """A model name: a DNS-1035 label short enough that `<name>-preview` still is one."""
    name = _str(value, field, example="churn")
    if not _check(_DNS1035_LABEL, name, 63):
        raise SpecError(f"{field} {name!r} is not a valid name: {_DNS1035_RULE}.")
    if len(name) > NAME_MAX:
        raise SpecError(f"{field} {name!r} is {len(name)} characters, but at most {NAME_MAX} are allowed so "
                        f"that the longest derived object name, '{name}-preview', fits the 63-character "
                        f"DNS-1035 limit.")
    return name


def validate_gateway(value: object, field: str = "gateway") -> str:
    """A parent Gateway, 'namespace/name' or 'name' (in the model's namespace), returned unchanged."""
    text = _str(value, field, example="infra/public")
    ns, slash, name = text.rpartition("/")
    if (slash and not _check(_DNS1123_LABEL, ns, 63)) or not _check(_DNS1123_SUBDOMAIN, name, 253):
        raise SpecError(f"{field} {text!r} is not a Gateway: write namespace/name (or name, in the model's "
                        f"namespace), in lowercase letters, digits and '-' ('.' also in the name), such as "
                        f"infra/public.")
    return text


def validate_object_name(value: object, field: str = "object name") -> str:
    """Any object name we put in a URL path (DNS-1123 subdomain, the widest rule Kubernetes names follow)."""
    return _subdomain(value, field)


def _subdomain(value: object, field_: str) -> str:
    text = _str(value, field_)
    if not _check(_DNS1123_SUBDOMAIN, text, 253):
        raise SpecError(f"{field_} {text!r} is not a valid name: {_SUBDOMAIN_RULE}.")
    return text


def _qualified_name_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and not _check(_DNS1123_SUBDOMAIN, prefix, 253):
        return False
    return _check(_QUALIFIED_NAME, name, 63)


def _label_value(value: object, field_: str) -> str:
    text = _str(value, field_)
    if not _check(_LABEL_VALUE, text, 63):
        raise SpecError(f"{field_} {text!r} is not a valid label value: {_LABEL_VALUE_RULE}.")
    return text


def _suggest(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean {match[0]!r}?" if match else ""


def _choice(value: object, field_: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    text = _str(value, field_)
    if text not in options:
        listed = ", ".join(repr(c) for c in options)
        raise SpecError(f"{field_} {text!r} is not one of {listed}{_suggest(text, options) or '.'}")
    return text


class FrozenMap(Mapping[str, str]):
    """A read-only, hashable, insertion-ordered mapping, so a frozen DeploySpec is really immutable."""

    def __init__(self, data: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def _string_map(value: object, field_: str, *, key_rule: str) -> FrozenMap:
    if not isinstance(value, Mapping):
        raise SpecError(f"{field_} must be a mapping of names to strings, got {_describe(value)}.")
    for key, item in value.items():
        key = _str(key, f"{field_} key")
        if key_rule == "env" and not _ENV_NAME.fullmatch(key):
            raise SpecError(f"env name {key!r} is not valid: use letters, digits, '_', '-' and '.', "
                            f"not starting with a digit.")
        if key_rule == "qualified" and not _qualified_name_ok(key):
            raise SpecError(f"{field_} key {key!r} is not valid: {_QUALIFIED_RULE}.")
        _str(item, f"{field_} {key!r} value")
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


# ---------------------------------------------------------------------------------------------------------

# CLI helpers


def parse_pairs(items: Iterable[str], field_: str, key_word: str = "NAME") -> dict[str, str]:
    """['K=V', ...] -> {'K': 'V'}; the value may contain '='; a key given twice is refused."""
    out: dict[str, str] = {}
    for item in _strings(items, field_):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SpecError(f"{field_} {item!r} is not valid: write {key_word}=VALUE.")
        if key in out:
            raise SpecError(f"{field_} {key!r} is given twice: give each {key_word.lower()} once.")
        out[key] = value
    return out


def parse_env(items: Iterable[str]) -> dict[str, str]:
    """['K=V', ...] -> {'K': 'V'}; the value may contain '='; a name given twice is refused."""
    out = parse_pairs(items, "env")
    _string_map(out, "env", key_rule="env")
    return out


_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_SECRET_REF_RULE = "write SECRET:KEY, the name of a Secret in the model's namespace and the key in it"


def parse_secret_ref(value: object, field_: str) -> str:
    """'SECRET:KEY' (or {secret: S, key: K}) -> 'SECRET:KEY', both parts validated."""
    if isinstance(value, Mapping):
        _refuse_unknown(value, ("secret", "key"), field_)
        if "secret" not in value or "key" not in value:
            raise SpecError(f"{field_} needs both secret and key, such as {{secret: db-creds, key: "
                            f"password}}.")
        value = f"{_str(value['secret'], f'{field_} secret')}:{_str(value['key'], f'{field_} key')}"
    text = _str(value, field_, example="db-creds:password")
    secret, colon, key = text.partition(":")
    if not colon or not secret or not key:
        raise SpecError(f"{field_} {text!r} is not a Secret reference: {_SECRET_REF_RULE}, such as "
                        f"db-creds:password.")
    _subdomain(secret, f"{field_} Secret name")
    if not _check(_SECRET_KEY, key, 253):
        raise SpecError(f"{field_} key {key!r} is not a valid Secret key: use letters, digits, '-', '_' and "
                        f"'.', at most 253 characters.")
    return text


def parse_env_secrets(items: Iterable[str]) -> dict[str, str]:
    """['NAME=SECRET:KEY', ...] -> {'NAME': 'SECRET:KEY'}, each validated; a name given twice is refused."""
    out = parse_pairs(items, "env-secret", "NAME")
    _string_map(out, "env-secret", key_rule="env")
    return {name: parse_secret_ref(ref, f"env-secret {name!r}") for name, ref in out.items()}


def parse_pvc(text: str) -> tuple[str, str | None]:
    """'CLAIM:/path' -> (claim, '/path'); 'CLAIM' alone -> (claim, None) for the default mount path."""
    text = _str(text, "pvc", example="models:/mnt/models")
    claim, colon, path = text.partition(":")
    _subdomain(claim, "pvc claim name")
    if colon:
        _mount_path(path, "pvc mount path")
    return claim, (path if colon else None)


def _mount_path(value: object, field_: str) -> str:
    path = _str(value, field_)
    if not path.startswith("/") or ".." in path.split("/"):
        raise SpecError(f"{field_} {path!r} is not valid: it must be an absolute path without '..'.")
    return path


def _refuse_unknown(mapping: Mapping[Any, Any], allowed: Iterable[str], where: str) -> None:
    allowed = tuple(allowed)
    unknown = [k for k in mapping if k not in allowed]
    if not unknown:
        return
    listed = ", ".join(allowed)
    if len(unknown) == 1:
        key = unknown[0]
        shown = repr(key) if isinstance(key, str) else _describe(key)
        raise SpecError(f"unknown field {shown} in the {where}{_suggest(str(key), allowed)} "
                        f"(allowed fields: {listed}).")
    shown = ", ".join(repr(k) if isinstance(k, str) else _describe(k) for k in unknown)
    raise SpecError(f"unknown fields {shown} in the {where} (allowed fields: {listed}).")


# ---------------------------------------------------------------------------------------------------------
