"""Widgets: thin views over `api`, `rollout`, `shadow` and `status`, updated only on the kernel's event loop.

`DeployPanel` (the form and its live status), and its parts: `ImageBuilder`, `ResourcePicker`,
`PodStatusView`; `CanarySlider` (the canary weight, debounced, with Promote and Roll back) and
`ShadowView` (primary and shadow answers side by side). Importing this package imports ipywidgets;
`import jupyter_mldeploy` does not.
"""

from __future__ import annotations

from .canary import CanarySlider
from .image import ImageBuilder
from .panel import DeployPanel
from .resources import ResourcePicker
from .shadow_view import ShadowView
from .status_view import PodStatusView

__all__ = ["CanarySlider", "DeployPanel", "ImageBuilder", "PodStatusView", "ResourcePicker", "ShadowView"]
