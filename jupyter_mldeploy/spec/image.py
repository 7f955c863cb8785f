"""Image references: the distribution reference grammar, validated part by part. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .rules import _describe, _str

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
