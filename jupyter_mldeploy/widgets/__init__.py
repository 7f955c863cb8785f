"""Widgets: thin views over `api` and `status`, updated only on the kernel's event loop.

`DeployPanel` (the form and its live status), and its parts: `ImageBuilder`, `ResourcePicker`,
`PodStatusView`. Importing this package imports ipywidgets; `import jupyter_mldeploy` does not.
"""

from __future__ import annotations

from .image import ImageBuilder
from .panel import DeployPanel
from .resources import ResourcePicker
from .status_view import PodStatusView

__all__ = ["DeployPanel", "ImageBuilder", "PodStatusView", "ResourcePicker"]
