"""IPython magics for jupyter-mldeploy: `%load_ext jupyter_mldeploy` calls `load(ipython)`.

Loading imports neither the Kubernetes client nor the API: the first magic that needs a cluster does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["forget_settings", "load", "unload"]

# Results whose dataclass repr would be noise in a terminal or a papermill log: show their own text.
_PLAIN_TEXT = (("jupyter_mldeploy.api", "Deployment"), ("jupyter_mldeploy.api", "DryRun"),
               ("jupyter_mldeploy.api", "Revision"), ("jupyter_mldeploy.rollout", "Rollout"))

_loaded: dict[int, tuple[tuple[Any, ...], Any]] = {}  # id(shell) -> (the Magics objects, settings)
_kept: dict[int, Any] = {}  # id(shell) -> settings, so %reload_ext keeps what %config set


def forget_settings() -> None:
    """Forget the settings every shell kept for `%reload_ext`: the next load starts from IPython's own
    config, as a fresh kernel does (tests, and a notebook that wants a clean slate)."""
    _kept.clear()


def _as_text(obj: Any, p: Any, cycle: bool) -> None:
    p.text(str(obj))


def _new_settings(ipython: Any) -> Any:
    """MLDeploy with c.MLDeploy.* from IPython's config; a bad value there is skipped with a warning.

    (%config merges every assignment into the shell's own config too, so a refused value stays there
    and must not break a later %load_ext.)
    """
    import warnings

    from traitlets import TraitError

    from .. import config

    try:
        return config.MLDeploy(parent=ipython)
    except TraitError:
        settings = config.MLDeploy()
        section = ipython.config.get("MLDeploy", {})
        for name, value in section.items():
            try:
                setattr(settings, name, value)
            except (TraitError, AttributeError) as e:
                warnings.warn(f"Ignoring the configured MLDeploy.{name}: {e}", stacklevel=2)
        return settings


def load(ipython: Any) -> None:
    """Register the magics and the `MLDeploy` configurable with this shell."""
    from .. import config
    from .deploy import DeployMagics
    from .rollouts import RolloutMagics
    from .shadow import ShadowMagics

    unload(ipython)  # a reload replaces, never doubles
    settings = _kept.pop(id(ipython), None) or _new_settings(ipython)
    # One Magics class per concern, as IPython's own core/magics/, all sharing one MLDeploy.
    magics = tuple(cls(ipython, settings) for cls in (DeployMagics, RolloutMagics, ShadowMagics))
    for m in magics:
        ipython.register_magics(m)
    # %config lists and updates the configurables the shell knows, as jupysql's SqlMagic does.
    ipython.configurables.append(settings)
    plain = ipython.display_formatter.formatters["text/plain"]
    for module, name in _PLAIN_TEXT:
        plain.for_type_by_name(module, name, _as_text)
    config.set_current(settings)
    _loaded[id(ipython)] = (magics, settings)


def unload(ipython: Any) -> None:
    """Remove what `load` registered (for %unload_ext and %reload_ext)."""
    from .. import config

    found = _loaded.pop(id(ipython), None)
    if found is None:
        return
    magics, settings = found
    _kept[id(ipython)] = settings
    for m in magics:
        for kind, table in m.magics.items():
            for name in table:
                ipython.magics_manager.magics[kind].pop(name, None)
        ipython.magics_manager.registry.pop(type(m).__name__, None)
    if settings in ipython.configurables:
        ipython.configurables.remove(settings)
    plain = ipython.display_formatter.formatters["text/plain"]
    for module, name in _PLAIN_TEXT:
        plain.pop(f"{module}.{name}", None)
    if config.current() is settings:
        config.set_current(None)
