"""ImageBuilder: registry, repository, tag and digest fields, validated as they are typed.

Validation is `ImageRef.build` itself, so the form and `%deploy --image` accept exactly the same
references; the sentence it raises is shown under the fields, the composed reference when valid.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import traitlets

from ..errors import SpecError
from ..spec import ImageRef
from .messages import TONES, as_sentence, note_html

__all__ = ["ImageBuilder"]

_FIELD_LAYOUT = {"width": "260px"}
_STYLE = {"description_width": "100px"}


class ImageBuilder(widgets.VBox):
    """Compose an image reference from its parts; `.image` is the ImageRef, or None while invalid."""

    value = traitlets.Unicode("", help="The composed reference, '' while the fields are not valid.")
    error = traitlets.Unicode("", help="Why the fields are not valid yet, one sentence; '' when valid.")

    def __init__(self, reference: str | ImageRef | None = None, **kwargs: Any) -> None:
        def field(label: str, placeholder: str) -> widgets.Text:
            return widgets.Text(description=label, placeholder=placeholder, continuous_update=True,
                                style=_STYLE, layout=_FIELD_LAYOUT)

        self.registry = field("Registry", "ghcr.io (empty: Docker Hub)")
        self.repository = field("Repository", "acme/churn")
        self.tag = field("Tag", "1.4")
        self.digest = field("Digest", "sha256:... (optional)")
        self.message = widgets.HTML()
        self.image: ImageRef | None = None
        super().__init__([widgets.HBox([self.registry, self.repository]),
                          widgets.HBox([self.tag, self.digest]), self.message], **kwargs)
        self.add_class("mldeploy-image-builder")
        if reference is not None:
            self.set_reference(reference)
        for w in self.fields:
            w.observe(self._validate, names="value")
        self._validate()

    @property
    def fields(self) -> tuple[widgets.Text, ...]:
        return self.registry, self.repository, self.tag, self.digest

    def set_reference(self, reference: str | ImageRef) -> None:
        """Fill the fields from a whole reference ('ghcr.io/acme/churn:1.4'); a bad one raises SpecError."""
        ref = reference if isinstance(reference, ImageRef) else ImageRef.parse(reference, allow_latest=True)
        with self.hold_trait_notifications():
            self.registry.value = ref.registry or ""
            self.repository.value = ref.repository
            self.tag.value = ref.tag or ""
            self.digest.value = ref.digest or ""
        self._validate()

    def _validate(self, _change: Any = None) -> None:
        parts = [w.value.strip() for w in self.fields]
        registry, repository, tag, digest = parts
        if not any(parts):
            self.image, self.value = None, ""
            self.error = "Enter the image: a repository and a tag or digest."
        else:
            try:
                self.image = ImageRef.build(registry, repository, tag, digest)
            except SpecError as e:
                self.image, self.error, self.value = None, as_sentence(str(e)), ""
            else:
                self.error, self.value = "", str(self.image)
        if self.image is not None:
            self.message.value = (f'<span style="color:{TONES["done"]}">&#10003; '
                                  f"<code>{html.escape(self.value)}</code></span>")
        else:
            self.message.value = note_html(self.error, "error")
