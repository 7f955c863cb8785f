"""What to deploy: `DeploySpec` and its parts, parsed and validated with no I/O.

Every bad value raises `SpecError` with one sentence naming the field and the rule, before any request
leaves the machine. Nothing is truncated, rewritten or guessed: a value is either kept exactly as given
or refused with the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal, localcontext
from types import MappingProxyType
from typing import Any, Literal

from . import labels as L
from .errors import SpecError

__all__ = [
    "GPU_TYPE_LABELS", "LIVE_PATH", "READY_PATH", "SPEC_FIELDS", "Autoscale", "DeploySpec", "FrozenMap",
    "ImageRef", "NAME_MAX", "Probe", "REDACTED", "Resources", "Toleration", "changes_of", "inherit",
    "parse_env", "parse_env_secrets", "parse_pvc", "parse_quantity", "parse_secret_ref", "quantity_value",
    "validate_model_name", "validate_namespace", "validate_object_name",
]

# What dry runs and reprs show instead of a literal env value (a password is often one).
REDACTED = "<redacted>"

# Node label that carries the GPU model, per vendor extended resource. nvidia.com/gpu.product is set by
# NVIDIA GPU feature discovery (GPU operator), amd.com/gpu.product-name by the AMD GPU node labeller.
# Other vendors have no `gpu_type` shortcut: select their nodes with `node_selector` directly, which
# also overrides these keys when a cluster labels its GPU nodes differently.
GPU_TYPE_LABELS: Mapping[str, str] = MappingProxyType({
    "nvidia.com/gpu": "nvidia.com/gpu.product",
    "amd.com/gpu": "amd.com/gpu.product-name",
})

# Open Inference Protocol (KServe v2) health endpoints; images with other endpoints set the path.
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"

TRACK_SUFFIX_MAX = max(len(f"-{t}") for t in L.TRACKS if t != "stable")  # "-preview"
NAME_MAX = 63 - TRACK_SUFFIX_MAX

Track = Literal["stable", "canary", "shadow", "preview"]
Expose = Literal["gateway", "ingress"]
Strategy = Literal["rolling", "recreate"]
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
# Image references (the distribution reference grammar)

# `-+` instead of the grammar's `[-]*`: the same language, but unambiguous, so Python's backtracking
# engine cannot blow up on a long almost-valid name (the grammar was written for RE2).
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")

_REGISTRY_RULE = "use a host name or IP address with an optional :port, such as ghcr.io or localhost:5000"
_REPOSITORY_RULE = ("use '/'-separated path components of lower-case letters and digits, joined inside a "
                    "component by '.', '_', '__' or dashes")
_TAG_RULE = "use at most 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
_DIGEST_RULE = ("use 'sha256:' followed by 64 lower-case hexadecimal digits (or 'sha512:' followed by "
                "128)")
_LATEST_WHY = ("is not reproducible: the image behind it changes while the spec stays the same, so "
               "deploying again would not restart pods")


def _image_error(source: str | None, part: str, value: str, rule: str) -> SpecError:
    if source is not None:
        return SpecError(f"image {source!r} has an invalid {part} {value!r}: {rule}.")
    return SpecError(f"image {part} {value!r} is invalid: {rule}.")


def _validate_image_parts(registry: object, repository: object, tag: object, digest: object,
                          source: str | None) -> None:
    for part, value in (("registry", registry), ("tag", tag), ("digest", digest)):
        if value is not None:
            _str(value, f"image {part}")
    repository = _str(repository, "image repository")
    if isinstance(registry, str):
        if not _REGISTRY.fullmatch(registry):
            raise _image_error(source, "registry", registry, _REGISTRY_RULE)
        # Otherwise the composed reference would read it back as the first repository component.
        if "." not in registry and ":" not in registry and registry != "localhost":
            raise _image_error(source, "registry", registry,
                               "a registry must contain '.' or ':' or be 'localhost', otherwise it is read "
                               "as the first path component of a Docker Hub repository")
    if not repository or not all(_PATH_COMPONENT.fullmatch(c) for c in repository.split("/")):
        raise _image_error(source, "repository", repository, _REPOSITORY_RULE)
    full = f"{registry}/{repository}" if registry else repository
    if len(full) > 255:
        raise _image_error(source, "name", full, f"it is {len(full)} characters, the limit is 255")
    if isinstance(tag, str) and not _TAG.fullmatch(tag):
        raise _image_error(source, "tag", tag, _TAG_RULE)
    if isinstance(digest, str) and not _DIGEST.fullmatch(digest):
        raise _image_error(source, "digest", digest, _DIGEST_RULE)


@dataclass(frozen=True)
class ImageRef:
    """A container image reference, split into its parts and composed back exactly by `str()`.

    A stored ImageRef always has a tag or a digest. The ':latest' policy is applied by `parse` and
    `build` (which take `allow_latest`); constructing an ImageRef with tag 'latest' directly is taken as
    a deliberate choice.
    """

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        _validate_image_parts(self.registry, self.repository, self.tag, self.digest, None)
        if self.tag is None and self.digest is None:
            raise SpecError(f"image {str(self)!r} has neither a tag nor a digest: pin a version tag "
                            f"(':1.4') or a digest ('@sha256:...').")

    @classmethod
    def parse(cls, text: object, *, allow_latest: bool = False) -> ImageRef:
        """Parse `[registry/]repository[:tag][@digest]`; see the module rules for ':latest'."""
        if not isinstance(text, str):
            raise SpecError(f"image must be a string such as 'ghcr.io/acme/churn:1.4', "
                            f"got {_describe(text)}.")
        if not text:
            raise SpecError("image is empty: give a reference such as 'ghcr.io/acme/churn:1.4'.")
        name, digest = text, None
        if "@" in text:
            name, digest = text.split("@", 1)  # a second '@' stays in the digest and fails its rule
        tag = None
        colon, slash = name.rfind(":"), name.rfind("/")
        if colon > slash:  # a colon before the last '/' belongs to a registry port
            name, tag = name[:colon], name[colon + 1:]
        registry, repository = None, name
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, repository = first, rest
        return cls._checked(registry, repository, tag, digest, allow_latest, source=text)

    @classmethod
    def build(cls, registry: str | None, repository: str, tag: str | None = None, digest: str | None = None,
              *, allow_latest: bool = False) -> ImageRef:
        """Compose a reference from form fields, naming the part that is wrong; '' means an empty field."""
        return cls._checked(registry or None, repository, tag or None, digest or None, allow_latest,
                            source=None)

    @classmethod
    def _checked(cls, registry: Any, repository: Any, tag: Any, digest: Any, allow_latest: bool,
                 source: str | None) -> ImageRef:
        _validate_image_parts(registry, repository, tag, digest, source)
        shown = source if source is not None else _compose(registry, repository, tag, digest)
        if tag is None and digest is None:
            if not allow_latest:
                raise SpecError(f"image {shown!r} has no tag or digest, which means ':latest' and "
                                f"{_LATEST_WHY}; pin a version tag or a digest, or pass allow_latest=True.")
            tag = "latest"
        elif tag == "latest" and digest is None and not allow_latest:
            raise SpecError(f"image {shown!r} uses the tag 'latest', which {_LATEST_WHY}; pin a version tag "
                            f"or a digest, or pass allow_latest=True.")
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        """`registry/repository` without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def short_digest(self) -> str | None:
        """The first 12 hex digits of the digest (the usual short image id), or None."""
        return self.digest.split(":", 1)[1][:12] if self.digest else None

    @property
    def is_floating(self) -> bool:
        """True when the reference can point at different images over time (':latest' without digest)."""
        return self.digest is None and self.tag == "latest"

    def __str__(self) -> str:
        return _compose(self.registry, self.repository, self.tag, self.digest)


def _compose(registry: str | None, repository: str, tag: str | None, digest: str | None) -> str:
    text = f"{registry}/{repository}" if registry else repository
    if tag:
        text += f":{tag}"
    if digest:
        text += f"@{digest}"
    return text


# ---------------------------------------------------------------------------------------------------------
# Quantities

_QUANTITY = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:(?P<dot>\.)(?P<frac>[0-9]*))?"
    r"(?P<suffix>[KMGTPE]i|[eE][+-]?[0-9]+|[numkMGTPE])?"
)
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_QUANTITY_MAX = Decimal(2**63 - 1)  # Kubernetes silently caps larger quantities to this
_NANO = Decimal("1e-9")  # Kubernetes silently rounds finer quantities up to this
_QUANTITY_RULE = ("write a number with an optional suffix, such as 500m, 2, 1.5, 4Gi, 512Mi or 1e3 "
                  "(Kubernetes quantity)")


def _quantity_text(value: object, field_: str) -> str:
    # Numbers come from YAML (`cpu: 2`) and Python callers; their str() is kept as the quantity text.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SpecError(f"{field_} must be a quantity such as '2' or '4Gi', got {_describe(value)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{field_} {value!r} is not a Kubernetes quantity: {_QUANTITY_RULE}.")
    return value if isinstance(value, str) else str(value)


def _show(text: str) -> str:
    """Quote a value for a message; a very long one is shown by its ends and its length."""
    return repr(text) if len(text) <= 80 else f"{text[:30]!r}...{text[-10:]!r} ({len(text)} characters)"


def _suffix_hint(text: str) -> str:
    """Name the right spelling of a misspelt unit ('4GB', '1K', '2gi'), without applying it."""
    m = re.fullmatch(r"([+-]?[0-9.]+)([A-Za-z]{1,3})", text)
    if not m:
        return ""
    number, unit = m.groups()
    unit = unit[:-1] if len(unit) > 1 and unit[-1] in "Bb" else unit
    base = unit[:1].upper()
    if base not in "KMGTPE" or unit[1:] not in ("", "i", "I"):
        return ""
    decimal = "k" if base == "K" else base
    return f"; did you mean {number}{decimal} or {number}{base}i?"


def _quantity(value: object, field_: str) -> tuple[str, Decimal]:
    text = _quantity_text(value, field_)
    m = _QUANTITY.fullmatch(text)
    # The grammar needs digits on one side of the dot: '.', '' and '-' alone are not numbers.
    if m is None or not (m["int"] or m["frac"]):
        raise SpecError(f"{field_} {_show(text)} is not a Kubernetes quantity: {_QUANTITY_RULE}"
                        f"{_suffix_hint(text) or '.'}")
    suffix = m["suffix"] or ""
    exponent, factor = 0, 1
    if suffix in _BINARY:
        factor = 1024 ** _BINARY[suffix]
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        sign, digits = suffix[1:2].strip("0123456789"), suffix[1:].lstrip("+-").lstrip("0") or "0"
        # Kubernetes reads the exponent as an int32; the length test also keeps int() cheap.
        if len(digits) > 10 or int(digits) > 2**31 - 1:
            raise SpecError(f"{field_} {_show(text)} has an exponent out of range: Kubernetes accepts at "
                            f"most {2**31 - 1}.")
        exponent = int(sign + digits)
    else:
        exponent = _DECIMAL[suffix]
    number = Decimal(f"{m['sign']}{m['int'] or '0'}.{m['frac'] or '0'}E{exponent}")
    # An exact context: the default 28 digits would round long quantities before they are compared.
    with localcontext(Context(prec=len(text) + 60, Emax=MAX_EMAX, Emin=MIN_EMIN)):
        amount = number * factor
        if abs(amount) > _QUANTITY_MAX:
            raise SpecError(f"{field_} {_show(text)} is too large: Kubernetes quantities are at most "
                            f"{2**63 - 1} base units and larger ones are silently capped.")
        if amount != 0 and (amount / _NANO) % 1 != 0:
            raise SpecError(f"{field_} {_show(text)} is finer than 1n (one billionth), which Kubernetes "
                            f"would silently round up.")
    return text, amount


def parse_quantity(text: str | int | float, field: str = "quantity") -> str:
    """Validate a non-negative Kubernetes quantity and return its text unchanged.

    The grammar: optional sign, digits with an optional decimal part, then one suffix: a binary SI
    suffix (Ki Mi Gi Ti Pi Ei), a decimal SI suffix (n u m k M G T P E) or an exponent (e3, E-2).
    Values Kubernetes would silently change (above 2^63-1, or finer than 1n) are refused too.
    """
    out, amount = _quantity(text, field)
    if amount < 0:
        raise SpecError(f"{field} {out!r} is negative: resource quantities must be zero or more.")
    return out


def quantity_value(text: str | int | float) -> Decimal:
    """The exact value of a quantity in base units (cores for cpu, bytes for memory), for comparisons."""
    return _quantity(text, "quantity")[1]


# ---------------------------------------------------------------------------------------------------------
# Resources


def _gpu_count(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"gpu must be a whole number of GPUs such as 1 (a GPU cannot be split by a "
                        f"Kubernetes request), got {_describe(value)}.")
    if value < 0:
        raise SpecError(f"gpu {value} is negative: it must be 0 or more whole GPUs.")
    return value


@dataclass(frozen=True)
class Resources:
    """Requests and limits; every value given is kept, and none overwrites another.

    `cpu`/`memory` are requests. The memory limit defaults to the memory request, so a pod is killed
    predictably at the amount it was scheduled with instead of when its node runs short; the cpu limit
    stays unset unless given (CPU throttling hurts latency more than it protects neighbours). GPUs are
    whole devices, written to both requests and limits as an integer string.
    """

    cpu: str | None = None
    memory: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None
    gpu: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    gpu_type: str | None = None

    def __post_init__(self) -> None:
        values: dict[str, Decimal] = {}
        for name in ("cpu", "memory", "cpu_limit", "memory_limit"):
            raw = getattr(self, name)
            if raw is None:
                continue
            text = parse_quantity(raw, name)
            object.__setattr__(self, name, text)
            values[name] = amount = quantity_value(text)
            if name.startswith("cpu") and (amount * 1000) % 1 != 0:
                raise SpecError(f"{name} {text!r} is finer than 1m (0.001 cores), the smallest CPU amount "
                                f"Kubernetes allows.")
            if name.startswith("memory") and amount % 1 != 0:
                hint = " ('m' means milli; mebibytes are written 'Mi')" if text.endswith("m") else ""
                raise SpecError(f"{name} {text!r} is {amount.normalize():f} bytes, not a whole number of "
                                f"bytes{hint}.")
            if name.endswith("_limit") and amount == 0:
                raise SpecError(f"{name} {text!r} is zero: a limit must be more than zero (leave it unset "
                                f"for no limit).")
        for kind in ("cpu", "memory"):
            if kind in values and f"{kind}_limit" in values and values[kind] > values[f"{kind}_limit"]:
                raise SpecError(f"{kind} request {getattr(self, kind)!r} is more than {kind}_limit "
                                f"{getattr(self, kind + '_limit')!r}: a request must not exceed its limit.")
        object.__setattr__(self, "gpu", _gpu_count(self.gpu))
        resource = _str(self.gpu_resource, "gpu_resource", example="nvidia.com/gpu")
        domain, slash, _ = resource.partition("/")
        if not (slash and "." in domain and _qualified_name_ok(resource)):
            raise SpecError(f"gpu_resource {resource!r} is not a vendor extended resource: write "
                            f"'<vendor domain>/<name>', such as nvidia.com/gpu, amd.com/gpu or "
                            f"gpu.intel.com/i915.")
        if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
            raise SpecError(f"gpu_resource {resource!r} is in the kubernetes.io domain, which extended "
                            f"resources may not use.")
        if self.gpu_type is not None:
            _label_value(self.gpu_type, "gpu_type")
            if self.gpu == 0:
                raise SpecError(f"gpu_type {self.gpu_type!r} is set but gpu is 0: request at least one GPU "
                                f"(gpu=1) to choose its type.")
            if resource not in GPU_TYPE_LABELS:
                raise SpecError(f"gpu_type has no known node label for {resource!r} (known: "
                                f"{', '.join(GPU_TYPE_LABELS)}): select the GPU nodes with node_selector.")

    @property
    def gpu_node_label(self) -> tuple[str, str] | None:
        """The (node label key, value) that selects the requested GPU type, if one was asked for."""
        if self.gpu_type is None:
            return None
        return GPU_TYPE_LABELS[self.gpu_resource], self.gpu_type

    def requests(self) -> dict[str, str]:
        out = {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v is not None}
        if self.gpu:
            out[self.gpu_resource] = str(self.gpu)
        return out

    def limits(self) -> dict[str, str]:
        memory = self.memory_limit if self.memory_limit is not None else self.memory
        out = {k: v for k, v in (("cpu", self.cpu_limit), ("memory", memory)) if v is not None}
        if self.gpu:
            # Extended resources must have request == limit; never a milli-quantity.
            out[self.gpu_resource] = str(self.gpu)
        return out


# ---------------------------------------------------------------------------------------------------------
# Autoscale, probes, tolerations


@dataclass(frozen=True)
class Autoscale:
    """Horizontal autoscaling on CPU utilization, as a percentage of the cpu request."""

    min: int
    max: int
    cpu_percent: int = 80

    def __post_init__(self) -> None:
        _int(self.min, "autoscale min", minimum=1)
        _int(self.max, "autoscale max", minimum=1)
        _int(self.cpu_percent, "autoscale cpu percent", minimum=1, maximum=100)
        if self.min > self.max:
            raise SpecError(f"autoscale min {self.min} is more than max {self.max}: min must be at most max.")

    @classmethod
    def parse(cls, text: str) -> Autoscale:
        """Parse 'MIN:MAX' or 'MIN:MAX:CPU%' (the '%' is optional), e.g. '2:10:70'."""
        text = _str(text, "autoscale", example="2:10:70")
        parts = text.split(":")
        if parts and parts[-1].endswith("%"):
            parts[-1] = parts[-1][:-1]
        if len(parts) not in (2, 3) or not all(p.isascii() and p.isdigit() for p in parts):
            raise SpecError(f"autoscale {text!r} is not valid: write MIN:MAX or MIN:MAX:CPU_PERCENT with "
                            f"whole numbers, such as 2:10:70.")
        return cls(*(int(p) for p in parts))

    @classmethod
    def from_value(cls, value: object) -> Autoscale | None:
        """An Autoscale, a 'MIN:MAX[:CPU]' string, a mapping {min, max, cpu}, or None."""
        if value is None or isinstance(value, Autoscale):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            allowed = ("min", "max", "cpu", "cpu_percent")
            _refuse_unknown(value, allowed, "autoscale")
            if "min" not in value or "max" not in value:
                raise SpecError("autoscale needs both 'min' and 'max', such as {min: 2, max: 10, cpu: 70}.")
            cpu = value.get("cpu", value.get("cpu_percent", 80))
            return cls(value["min"], value["max"], cpu)
        raise SpecError(f"autoscale must be 'MIN:MAX[:CPU]' or a mapping with min, max and cpu, "
                        f"got {_describe(value)}.")

    def __str__(self) -> str:
        return f"{self.min}:{self.max}:{self.cpu_percent}"


@dataclass(frozen=True)
class Probe:
    """An HTTP GET probe on the container; `port` None means the container's 'http' port."""

    path: str = READY_PATH
    port: int | None = None
    initial_delay: int = 0
    period: int = 5
    failure_threshold: int = 3

    def __post_init__(self) -> None:
        path = _str(self.path, "probe path", example="/v2/health/ready")
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise SpecError(f"probe path {path!r} is not valid: it must start with '/' and contain no "
                            f"spaces.")
        if self.port is not None:
            _int(self.port, "probe port", minimum=1, maximum=65535)
        _int(self.initial_delay, "probe initial_delay", minimum=0)
        _int(self.period, "probe period", minimum=1)
        _int(self.failure_threshold, "probe failure_threshold", minimum=1)

    @classmethod
    def from_value(cls, value: object, default_path: str, field_: str) -> Probe | None:
        """A Probe, a path string, a mapping of Probe fields, or None (probe disabled)."""
        if value is None or isinstance(value, Probe):
            return value
        if isinstance(value, str):
            return cls(path=value)
        if isinstance(value, Mapping):
            allowed = tuple(f.name for f in dataclasses.fields(cls))
            _refuse_unknown(value, allowed, field_)
            return cls(**{"path": default_path, **value})
        raise SpecError(f"{field_} must be a path string, a mapping or null, got {_describe(value)}.")

    def to_value(self, default_path: str) -> str | dict[str, Any]:
        """The dict-form value: just the path when only the path differs, else a mapping."""
        if self == Probe(path=self.path):
            return self.path
        out: dict[str, Any] = {"path": self.path} if self.path != default_path else {}
        for f in dataclasses.fields(self):
            if f.name != "path" and getattr(self, f.name) != f.default:
                out[f.name] = getattr(self, f.name)
        return out


_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class Toleration:
    """A pod toleration; `key` None with operator Exists tolerates every taint."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.key is not None and not _qualified_name_ok(_str(self.key, "toleration key")):
            raise SpecError(f"toleration key {self.key!r} is not valid: {_QUALIFIED_RULE}.")
        _choice(self.operator, "toleration operator", ("Equal", "Exists"))
        if self.value is not None:
            _label_value(self.value, "toleration value")
        if self.operator == "Exists" and self.value:
            raise SpecError(f"toleration {self.key!r} has operator Exists and value {self.value!r}: Exists "
                            f"matches any value, so leave value empty.")
        if self.key is None and self.operator != "Exists":
            raise SpecError("a toleration without a key must use operator Exists (it then tolerates every "
                            "taint).")
        if self.effect is not None:
            _choice(self.effect, "toleration effect", _EFFECTS)
        if self.toleration_seconds is not None:
            _int(self.toleration_seconds, "toleration tolerationSeconds")
            if self.effect != "NoExecute":
                raise SpecError("toleration tolerationSeconds only applies to the NoExecute effect.")

    @classmethod
    def parse(cls, text: str) -> Toleration:
        """Parse kubectl's taint syntax: 'key=value:Effect' (Equal) or 'key:Effect' / 'key' (Exists)."""
        text = _str(text, "toleration", example="nvidia.com/gpu:NoSchedule")
        rest, colon, effect = text.rpartition(":")
        if not colon:
            rest, effect = text, ""
        key, eq, value = rest.partition("=")
        if not key:
            raise SpecError(f"toleration {text!r} is not valid: write key=value:Effect or key:Effect, "
                            f"such as nvidia.com/gpu:NoSchedule.")
        return cls(key, "Equal" if eq else "Exists", value if eq else None, effect or None)

    @classmethod
    def from_value(cls, value: object) -> Toleration:
        """A Toleration, a kubectl-style string, or a mapping with Kubernetes or snake_case keys."""
        if isinstance(value, Toleration):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        if isinstance(value, Mapping):
            _refuse_unknown(value, ("key", "operator", "value", "effect", "tolerationSeconds",
                                    "toleration_seconds"), "toleration")
            seconds = value.get("tolerationSeconds", value.get("toleration_seconds"))
            return cls(value.get("key"), value.get("operator", "Equal"), value.get("value"),
                       value.get("effect"), seconds)
        raise SpecError(f"a toleration must be a mapping or 'key=value:Effect', got {_describe(value)}.")

    def to_manifest(self) -> dict[str, Any]:
        out = {"key": self.key, "operator": self.operator, "value": self.value, "effect": self.effect,
               "tolerationSeconds": self.toleration_seconds}
        return {k: v for k, v in out.items() if v is not None}


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
# DeploySpec

# The keys of a YAML/dict spec, in the order `to_dict` writes them.
SPEC_FIELDS = (
    "name", "image", "allow_latest", "version", "namespace", "track",
    "cpu", "memory", "cpu_limit", "memory_limit", "gpu", "gpu_type", "gpu_resource",
    "replicas", "autoscale", "strategy", "max_surge", "max_unavailable",
    "port", "command", "args", "env", "env_from_secret", "readiness", "liveness", "startup",
    "startup_timeout", "pvc", "model_path",
    "node_selector", "tolerations", "image_pull_secrets", "service_account", "pod_security",
    "labels", "annotations", "expose", "host", "gateway", "ingress_class", "tls_secret", "cert_issuer",
    "ingress_annotations", "service_type",
)


STARTUP_TIMEOUT = 600.0  # seconds a startup probe allows when no startup_timeout is given
STARTUP_MAX = 24 * 3600
STARTUP_PERIOD = 10  # seconds between startup probes unless the probe says otherwise


def startup_probe(value: object) -> Probe:
    """The startup probe from a path or a mapping of Probe fields; probed every STARTUP_PERIOD s."""
    if isinstance(value, Probe):
        return value
    if isinstance(value, str):
        return Probe(path=value, period=STARTUP_PERIOD)
    if isinstance(value, Mapping):
        return Probe.from_value({"period": STARTUP_PERIOD, **value}, READY_PATH, "startup")
    raise SpecError(f"startup must be a path string such as /v2/health/ready, or a mapping, got "
                    f"{_describe(value)}.")


def _startup_value(probe: Probe) -> str | dict[str, Any]:
    if probe == Probe(path=probe.path, period=STARTUP_PERIOD):
        return probe.path
    value = probe.to_value(READY_PATH)
    out = {"path": probe.path} if isinstance(value, str) else {"path": probe.path, **value}
    out["period"] = probe.period
    return out


def _whole(seconds: float | None) -> float | int | None:
    return int(seconds) if seconds is not None and seconds == int(seconds) else seconds


def _surge(value: object, field_: str) -> int | str:
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value) or int(value[:-1]) > 100:
            raise SpecError(f"{field_} {value!r} is not valid: use a whole number of pods or a percentage "
                            f"from 0% to 100%, such as 1 or 25%.")
        return value
    return _int(value, field_, minimum=0)


def _is_zero(value: int | str) -> bool:
    return value in (0, "0%") or (isinstance(value, str) and int(value[:-1]) == 0)


def _host(value: object) -> str:
    host = _str(value, "host", example="churn.example.com")
    bare = host[2:] if host.startswith("*.") else host
    if not _check(_DNS1123_SUBDOMAIN, bare, 253):
        raise SpecError(f"host {host!r} is not a valid host name: use lower-case letters, digits, '-' and "
                        f"'.' (DNS subdomain), optionally starting with '*.'.")
    return host


@dataclass(frozen=True)
class DeploySpec:
    """Everything needed to render one track of one model. Validated on construction and on replace().

    `replicas` None means 1, or "owned by the HorizontalPodAutoscaler" when `autoscale` is set; giving
    both is refused. `version` None means: the image tag, else the first 12 hex digits of its digest
    (read the result from `effective_version`). `max_surge`/`max_unavailable` None mean 25% and 0 with
    the rolling strategy, so ready capacity never drops during an update.
    """

    name: str
    image: ImageRef
    namespace: str | None = None
    resources: Resources = Resources()
    replicas: int | None = None
    autoscale: Autoscale | None = None
    port: int = 8080
    env: Mapping[str, str] = field(default_factory=FrozenMap)
    env_from_secret: Mapping[str, str] = field(default_factory=FrozenMap)  # NAME -> "SECRET:KEY"
    args: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    readiness: Probe | None = Probe(READY_PATH)
    liveness: Probe | None = Probe(LIVE_PATH)
    startup: Probe | None = None  # for models that load for minutes: readiness and liveness wait for it
    startup_timeout: float | None = None  # seconds the startup probe allows; None: STARTUP_TIMEOUT
    model_pvc: str | None = None
    model_path: str = "/mnt/models"
    node_selector: Mapping[str, str] = field(default_factory=FrozenMap)
    tolerations: tuple[Toleration, ...] = ()
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None
    labels: Mapping[str, str] = field(default_factory=FrozenMap)
    annotations: Mapping[str, str] = field(default_factory=FrozenMap)
    version: str | None = None
    expose: Expose | None = None
    host: str | None = None
    gateway: str | None = None
    ingress_class: str | None = None  # None: no ingressClassName, the cluster's default IngressClass
    tls_secret: str | None = None  # the Ingress's spec.tls Secret (with cert_issuer: cert-manager writes it)
    cert_issuer: str | None = None  # cert-manager ClusterIssuer NAME, or Issuer/NAME in the namespace
    ingress_annotations: Mapping[str, str] = field(default_factory=FrozenMap)  # on the Ingress only
    service_type: ServiceType = "ClusterIP"
    pod_security: Literal["restricted"] | None = None
    strategy: Strategy = "rolling"
    max_surge: int | str | None = None
    max_unavailable: int | str | None = None
    track: Track = "stable"

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise containers once, here

        validate_model_name(self.name)

        if isinstance(self.image, str):
            set_(self, "image", ImageRef.parse(self.image))
        elif not isinstance(self.image, ImageRef):
            raise SpecError(f"image must be an image reference string or an ImageRef, got "
                            f"{_describe(self.image)}.")
        if self.namespace is not None:
            _dns1123_label(self.namespace, "namespace")
        _choice(self.track, "track", L.TRACKS)

        if not isinstance(self.resources, Resources):
            raise SpecError(f"resources must be a Resources value, got {_describe(self.resources)}.")
        if self.replicas is not None:
            _int(self.replicas, "replicas", minimum=0)
        if self.autoscale is not None:
            if not isinstance(self.autoscale, Autoscale):
                set_(self, "autoscale", Autoscale.from_value(self.autoscale))
            if self.replicas is not None:
                raise SpecError("replicas and autoscale are exclusive: with autoscale the "
                                "HorizontalPodAutoscaler sets the replica count between min and max.")
            if self.resources.cpu is None and self.resources.cpu_limit is None:
                raise SpecError("autoscale needs a cpu request (cpu=...), because the "
                                "HorizontalPodAutoscaler measures CPU utilization as a percentage of the "
                                "request.")

        _choice(self.strategy, "strategy", ("rolling", "recreate"))
        for knob in ("max_surge", "max_unavailable"):
            value = getattr(self, knob)
            if value is not None:
                if self.strategy == "recreate":
                    raise SpecError(f"{knob} only applies to the rolling strategy, not recreate.")
                _surge(value, knob)
        if self.strategy == "rolling" and _is_zero(self.surge) and _is_zero(self.unavailable):
            raise SpecError("max_surge and max_unavailable are both zero: a rolling update could never "
                            "replace a pod, so allow at least one of them.")

        _int(self.port, "port", minimum=1, maximum=65535)
        set_(self, "env", _string_map(self.env, "env", key_rule="env"))
        refs = self.env_from_secret
        if not isinstance(refs, Mapping):
            raise SpecError(f"env_from_secret must be a mapping of env names to SECRET:KEY, got "
                            f"{_describe(refs)}.")
        refs = {k: parse_secret_ref(v, f"env_from_secret {k!r}" if isinstance(k, str) else "env_from_secret")
                for k, v in refs.items()}
        set_(self, "env_from_secret", _string_map(refs, "env_from_secret", key_rule="env"))
        both = [k for k in self.env_from_secret if k in self.env]
        if both:
            raise SpecError(f"env {both[0]!r} is given both as a value (env) and from a Secret "
                            f"(env_from_secret); give it in one place.")
        set_(self, "args", _strings(self.args, "args"))
        if self.command is not None:
            set_(self, "command", _strings(self.command, "command"))
        for probe in ("readiness", "liveness"):
            value = getattr(self, probe)
            if value is not None and not isinstance(value, Probe):
                default = READY_PATH if probe == "readiness" else LIVE_PATH
                set_(self, probe, Probe.from_value(value, default, probe))

        self._check_startup()

        if self.model_pvc is not None:
            _subdomain(self.model_pvc, "model_pvc")
        _mount_path(self.model_path, "model_path")

        set_(self, "node_selector", _string_map(self.node_selector, "node_selector", key_rule="qualified"))
        for key, value in self.node_selector.items():
            _label_value(value, f"node_selector {key!r} value")
        gpu_label = self.resources.gpu_node_label
        if gpu_label and self.node_selector.get(gpu_label[0], gpu_label[1]) != gpu_label[1]:
            raise SpecError(f"gpu_type {gpu_label[1]!r} contradicts node_selector {gpu_label[0]!r}="
                            f"{self.node_selector[gpu_label[0]]!r}: give the GPU type in one place.")
        if isinstance(self.tolerations, (str, Mapping)) or not isinstance(self.tolerations, Iterable):
            raise SpecError(f"tolerations must be a list, got {_describe(self.tolerations)}.")
        set_(self, "tolerations", tuple(Toleration.from_value(t) for t in self.tolerations))
        set_(self, "image_pull_secrets", _strings(self.image_pull_secrets, "image_pull_secrets"))
        for secret in self.image_pull_secrets:
            _subdomain(secret, "image_pull_secrets name")
        if self.service_account is not None:
            _subdomain(self.service_account, "service_account")
        if self.pod_security is not None:
            _choice(self.pod_security, "pod_security", ("restricted",))

        set_(self, "labels", _string_map(self.labels, "labels", key_rule="qualified"))
        for key, value in self.labels.items():
            if key in L.RESERVED_LABELS:
                raise SpecError(f"label {key!r} is set by jupyter-mldeploy itself (from the name, version "
                                f"and track), so it cannot be given in labels.")
            _label_value(value, f"label {key!r} value")
        set_(self, "annotations", _string_map(self.annotations, "annotations", key_rule="qualified"))
        for kind, mapping in (("label", self.labels), ("annotation", self.annotations)):
            for key in mapping:
                if key.startswith(L.PREFIX):
                    raise SpecError(f"{kind} {key!r} uses the {L.PREFIX} prefix, which jupyter-mldeploy "
                                    f"reserves for its own track and rollout state.")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
        if size > 256 * 1024:
            raise SpecError(f"annotations total {size} bytes: Kubernetes allows at most 262144 per object.")

        if self.version is not None:
            if _label_value(self.version, "version") == "":
                raise SpecError("version is empty: give a version such as '1.4', or leave it unset to use "
                                "the image tag.")
        elif not _check(_LABEL_VALUE, self.effective_version, 63):
            raise SpecError(f"version: the image tag {self.image.tag!r} is not a valid label value "
                            f"({_LABEL_VALUE_RULE}), so set version explicitly.")

        if self.expose is not None:
            _choice(self.expose, "expose", ("gateway", "ingress"))
        if self.host is not None:
            _host(self.host)
            if self.expose is None:
                raise SpecError("host is set but expose is not: host only applies with expose='gateway' or "
                                "expose='ingress'.")
        if self.gateway is not None:
            gw = _str(self.gateway, "gateway", example="infra/public")
            ns, slash, gname = gw.rpartition("/")
            if slash:
                _dns1123_label(ns, "gateway namespace")
            _subdomain(gname, "gateway name")
            if self.expose != "gateway":
                raise SpecError("gateway is set but expose is not 'gateway': the parent Gateway only applies "
                                "to an HTTPRoute.")
        elif self.expose == "gateway":
            raise SpecError("expose='gateway' needs gateway, the parent Gateway as 'namespace/name' (or "
                            "'name' in the model's namespace).")
        if self.ingress_class is not None:
            _subdomain(self.ingress_class, "ingress_class")
            if self.expose != "ingress":
                raise SpecError("ingress_class is set but expose is not 'ingress': the IngressClass only "
                                "applies to an Ingress.")
        self._check_ingress_extras()
        _choice(self.service_type, "service_type", SERVICE_TYPES)

    def _check_ingress_extras(self) -> None:
        """tls_secret, cert_issuer and ingress_annotations: an Ingress's, so they need expose='ingress'."""
        set_ = object.__setattr__
        set_(self, "ingress_annotations", _string_map(self.ingress_annotations, "ingress_annotations",
                                                      key_rule="qualified"))
        given = [f for f in ("tls_secret", "cert_issuer") if getattr(self, f) is not None]
        given += ["ingress_annotations"] if self.ingress_annotations else []
        if not given:
            return
        if self.expose == "gateway":
            where = ("load-balancer settings live on the Gateway" if given[0] == "ingress_annotations"
                     else "TLS lives on the Gateway's listener (its certificateRefs)")
            raise SpecError(f"{given[0]} applies to an Ingress; with expose='gateway' {where}, so set it on "
                            f"the Gateway {self.gateway} and drop {given[0]}.")
        if self.expose != "ingress":
            raise SpecError(f"{given[0]} is set but expose is not 'ingress': it only applies to the model's "
                            f"Ingress (expose='ingress').")
        if self.tls_secret is not None:
            _subdomain(self.tls_secret, "tls_secret")
        if self.cert_issuer is not None:
            kind, slash, name = _str(self.cert_issuer, "cert_issuer", example="letsencrypt").rpartition("/")
            if slash and kind != "Issuer":
                raise SpecError(f"cert_issuer {self.cert_issuer!r} is not valid: write the name of a "
                                f"ClusterIssuer (letsencrypt), or Issuer/NAME for an Issuer in the model's "
                                f"namespace.")
            _subdomain(name, "cert_issuer name")
        if (self.tls_secret is not None or self.cert_issuer is not None) and self.host is None:
            raise SpecError(f"{given[0]} needs host: a TLS certificate is for a host name, such as "
                            f"host='churn.example.com'.")
        for key, value in self.ingress_annotations.items():
            if key.startswith(L.PREFIX):
                raise SpecError(f"ingress annotation {key!r} uses the {L.PREFIX} prefix, which "
                                f"jupyter-mldeploy reserves for its own track and rollout state.")
            if key in (CLUSTER_ISSUER, ISSUER) and self.cert_issuer is not None:
                raise SpecError(f"ingress annotation {key!r} and cert_issuer both name the cert-manager "
                                f"issuer; give it in one place.")
            if key in self.annotations and self.annotations[key] != value:
                raise SpecError(f"annotation {key!r} is {self.annotations[key]!r} in annotations but "
                                f"{value!r} in ingress_annotations; give it in one place.")

    @property
    def ingress_extras(self) -> tuple[str, ...]:
        """The Ingress-only fields this spec sets (tls_secret, cert_issuer, ingress_annotations)."""
        return tuple(f for f in ("tls_secret", "cert_issuer", "ingress_annotations") if getattr(self, f))

    @property
    def ingress_tls_secret(self) -> str | None:
        """The Secret the Ingress's TLS uses: tls_secret, else `<name>-tls` for cert-manager to write."""
        if self.tls_secret is not None:
            return self.tls_secret
        return f"{self.name}-tls" if self.cert_issuer is not None else None

    def _check_startup(self) -> None:
        set_ = object.__setattr__
        if self.startup is not None and not isinstance(self.startup, Probe):
            set_(self, "startup", startup_probe(self.startup))
        if self.startup_timeout is not None:
            from .config import parse_seconds

            if self.startup is None:
                raise SpecError("startup_timeout is set but startup is not: give the startup probe's path "
                                "too (--startup /v2/health/ready), the endpoint that answers once the model "
                                "has loaded.")
            seconds = parse_seconds(self.startup_timeout, "startup_timeout")
            if seconds > STARTUP_MAX:
                raise SpecError(f"startup_timeout {self.startup_timeout!r} is more than the "
                                f"{STARTUP_MAX // 3600} hours a startup window may last.")
            set_(self, "startup_timeout", seconds)
        if self.startup is not None and self.startup.failure_threshold != Probe.failure_threshold:
            raise SpecError("startup failure_threshold comes from startup_timeout (the window the probe "
                            "allows): give startup_timeout instead.")

    def __repr__(self) -> str:
        """The dataclass form with literal env values redacted: a password printed in a notebook stays in
        its output. The values themselves are in `env`."""
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "env" and value:
                value = FrozenMap(dict.fromkeys(value, REDACTED))
            parts.append(f"{f.name}={value!r}")
        return f"DeploySpec({', '.join(parts)})"

    # Derived values -------------------------------------------------------------------------------------

    @property
    def startup_window(self) -> float | None:
        """Seconds the startup probe allows before the kubelet restarts the container; None: no probe."""
        if self.startup is None:
            return None
        return self.startup_timeout if self.startup_timeout is not None else STARTUP_TIMEOUT

    @property
    def effective_version(self) -> str:
        """The version label: `version`, else the image tag, else the short digest."""
        if self.version is not None:
            return self.version
        return self.image.tag or self.image.short_digest or ""

    @property
    def object_name(self) -> str:
        """`name` for the stable track, `<name>-<track>` for the others."""
        return L.track_name(self.name, self.track)

    @property
    def surge(self) -> int | str:
        return self.max_surge if self.max_surge is not None else "25%"

    @property
    def unavailable(self) -> int | str:
        return self.max_unavailable if self.max_unavailable is not None else 0

    def with_(self, **changes: Any) -> DeploySpec:
        """A copy with some fields changed; the whole spec is validated again.

        Resources fields (cpu, memory, gpu, ...) may be given directly and change `resources`.
        """
        res_names = [f.name for f in dataclasses.fields(Resources)]
        names = [f.name for f in dataclasses.fields(self)]
        _refuse_unknown(changes, names + res_names, "changes")
        res = {k: changes.pop(k) for k in res_names if k in changes}
        if res:
            base = changes.get("resources", self.resources)
            changes["resources"] = dataclasses.replace(base, **res)
        return dataclasses.replace(self, **changes)

    # Dict form ------------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploySpec:
        """Build from a YAML/JSON body with the keys in SPEC_FIELDS; `null` means the default."""
        if not isinstance(data, Mapping):
            raise SpecError(f"the spec must be a mapping of fields such as name and image, got "
                            f"{_describe(data)}.")
        _refuse_unknown(data, SPEC_FIELDS, "spec")
        for required in ("name", "image"):
            if data.get(required) is None:
                raise SpecError(f"the spec has no {required!r}: it is required.")
        d = {k: v for k, v in data.items() if v is not None or k in ("readiness", "liveness")}

        allow_latest = d.get("allow_latest", False)
        if not isinstance(allow_latest, bool):
            raise SpecError(f"allow_latest must be true or false, got {_describe(allow_latest)}.")
        image = d["image"] if isinstance(d["image"], ImageRef) else ImageRef.parse(d["image"],
                                                                                  allow_latest=allow_latest)
        resources = Resources(**{k: d[k] for k in ("cpu", "memory", "cpu_limit", "memory_limit", "gpu",
                                                   "gpu_type", "gpu_resource") if k in d})
        kwargs: dict[str, Any] = {k: d[k] for k in (
            "namespace", "track", "replicas", "strategy", "max_surge", "max_unavailable", "port",
            "node_selector", "service_account", "pod_security", "labels", "annotations", "version",
            "expose", "host", "gateway", "ingress_class", "model_path", "tls_secret", "cert_issuer",
            "ingress_annotations", "service_type") if k in d}
        if "autoscale" in d:
            kwargs["autoscale"] = Autoscale.from_value(d["autoscale"])
        if "env" in d:
            env = d["env"]
            kwargs["env"] = env if isinstance(env, Mapping) else parse_env(env)
        if "env_from_secret" in d:
            refs = d["env_from_secret"]
            kwargs["env_from_secret"] = refs if isinstance(refs, Mapping) else parse_env_secrets(refs)
        for key in ("args", "command", "image_pull_secrets"):
            if key in d:
                kwargs[key] = _strings(d[key], key)
        for key, default in (("readiness", READY_PATH), ("liveness", LIVE_PATH)):
            if key in d:
                kwargs[key] = Probe.from_value(d[key], default, key)
        if "startup" in d:
            kwargs["startup"] = startup_probe(d["startup"])
        if "startup_timeout" in d:
            kwargs["startup_timeout"] = d["startup_timeout"]
        if "tolerations" in d:
            items = d["tolerations"]
            if isinstance(items, (str, Mapping)) or not isinstance(items, Iterable):
                raise SpecError(f"tolerations must be a list, got {_describe(items)}.")
            kwargs["tolerations"] = tuple(Toleration.from_value(t) for t in items)
        if "pvc" in d:
            claim, path = parse_pvc(d["pvc"])
            if path is not None and "model_path" in d and d["model_path"] != path:
                raise SpecError(f"pvc mounts at {path!r} but model_path is {d['model_path']!r}: give the "
                                f"mount path in one place.")
            kwargs["model_pvc"] = claim
            if path is not None:
                kwargs["model_path"] = path
        return cls(d["name"], image, resources=resources, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The dict form, leaving out defaults; `DeploySpec.from_dict(spec.to_dict()) == spec`."""
        r = self.resources
        values: dict[str, Any] = {
            "name": self.name, "image": str(self.image), "allow_latest": self.image.is_floating or None,
            "version": self.version, "namespace": self.namespace,
            "track": None if self.track == "stable" else self.track,
            "cpu": r.cpu, "memory": r.memory, "cpu_limit": r.cpu_limit, "memory_limit": r.memory_limit,
            "gpu": r.gpu or None, "gpu_type": r.gpu_type,
            "gpu_resource": None if r.gpu_resource == "nvidia.com/gpu" else r.gpu_resource,
            "replicas": self.replicas, "autoscale": str(self.autoscale) if self.autoscale else None,
            "strategy": None if self.strategy == "rolling" else self.strategy,
            "max_surge": self.max_surge, "max_unavailable": self.max_unavailable,
            "port": None if self.port == 8080 else self.port,
            "startup": None if self.startup is None else _startup_value(self.startup),
            "startup_timeout": _whole(self.startup_timeout),
            "command": list(self.command) if self.command is not None else None,
            "args": list(self.args) or None, "env": dict(self.env) or None,
            "env_from_secret": dict(self.env_from_secret) or None,
            "pvc": f"{self.model_pvc}:{self.model_path}" if self.model_pvc else None,
            "model_path": None if self.model_pvc or self.model_path == "/mnt/models" else self.model_path,
            "node_selector": dict(self.node_selector) or None,
            "tolerations": [t.to_manifest() for t in self.tolerations] or None,
            "image_pull_secrets": list(self.image_pull_secrets) or None,
            "service_account": self.service_account, "pod_security": self.pod_security,
            "labels": dict(self.labels) or None, "annotations": dict(self.annotations) or None,
            "expose": self.expose, "host": self.host, "gateway": self.gateway,
            "ingress_class": self.ingress_class, "tls_secret": self.tls_secret,
            "cert_issuer": self.cert_issuer,
            "ingress_annotations": dict(self.ingress_annotations) or None,
            "service_type": None if self.service_type == "ClusterIP" else self.service_type,
        }
        out = {k: values[k] for k in SPEC_FIELDS if values.get(k) is not None}
        for key, default in (("readiness", READY_PATH), ("liveness", LIVE_PATH)):
            probe = getattr(self, key)
            if probe is None:
                out[key] = None  # an explicit null disables the probe; a missing key means the default
            elif probe != Probe(default):
                out[key] = probe.to_value(default)
        return {k: out[k] for k in SPEC_FIELDS if k in out}


# ---------------------------------------------------------------------------------------------------------
# Rollout candidates: the stable spec with some fields changed

# Fields that say where and which track, never "what runs": a change never carries them.
_PLACE = ("name", "namespace", "track")
# Mappings merge key by key: `--env LOG=debug` on a canary adds LOG and keeps the stable's other vars.
_MERGED_MAPS = ("env", "env_from_secret", "labels", "annotations", "node_selector")
# Giving the first field drops the stable's value of the others (they would contradict it).
_REPLACES = {
    "image": ("version", "allow_latest"),
    "autoscale": ("replicas",),
    "replicas": ("autoscale",),
    "pvc": ("model_path",),
    "model_path": ("pvc",),
    "expose": ("host", "gateway", "ingress_class"),
}


def changes_of(spec: DeploySpec) -> dict[str, Any]:
    """The fields of `spec` that differ from DeploySpec's defaults, as `from_dict` keys (without name,
    namespace and track): what a DeploySpec means when it is given as the changes of a rollout."""
    return {k: v for k, v in spec.to_dict().items() if k not in _PLACE}


def inherit(stable: DeploySpec, changes: Mapping[str, Any]) -> DeploySpec:
    """The stable spec with only `changes` (from_dict keys) changed, validated as a whole.

    Mappings (env, env_from_secret, labels, annotations, node_selector) merge key by key; a field that
    contradicts others drops the stable's value of those (a new image drops a pinned version, replicas
    drops autoscale, and the other way round); name, namespace and track are not changes and are refused.
    """
    if not isinstance(changes, Mapping):
        raise SpecError(f"the changes must be a mapping of fields such as image and env, got "
                        f"{_describe(changes)}.")
    _refuse_unknown(changes, SPEC_FIELDS, "changes")
    place = [k for k in _PLACE if k in changes and changes[k] != getattr(stable, k)]
    if place:
        raise SpecError(f"{place[0]} cannot be changed by a rollout: the candidate runs beside "
                        f"{stable.name}'s stable model, in its namespace.")
    base = stable.to_dict()
    for key, value in changes.items():
        if key in _PLACE:
            continue
        for dropped in _REPLACES.get(key, ()):
            if dropped not in changes:
                base.pop(dropped, None)
        if key in _MERGED_MAPS and isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    if "env" in changes or "env_from_secret" in changes:
        # A name moved from a value to a Secret (or back) keeps only its new source.
        for key, other in (("env", "env_from_secret"), ("env_from_secret", "env")):
            if key in changes and isinstance(changes[key], Mapping) and isinstance(base.get(other), Mapping):
                base[other] = {k: v for k, v in base[other].items() if k not in changes[key]}
    return DeploySpec.from_dict(base)
