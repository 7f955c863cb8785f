"""IPython's shell as a fresh kernel has it, for the tests of the magics: one rule for what "fresh" means
(no settings kept by an earlier %reload_ext, none in the shared shell's config, no rollout cached)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from IPython.core.interactiveshell import InteractiveShell

from jupyter_mldeploy import magics
from jupyter_mldeploy import rollout as ro


def _forget(shell: InteractiveShell) -> None:
    magics.unload(shell)
    magics.forget_settings()
    shell.config.pop("MLDeploy", None)  # %config writes into the shared shell's config too
    ro.forget_cache()


@contextlib.contextmanager
def fresh_shell(*, via_extension: bool = True, **settings: object) -> Iterator[InteractiveShell]:
    """The extension loaded (by `%reload_ext`, or `magics.load` when not `via_extension`), then each
    setting as `%config MLDeploy.NAME = value` in the order given (None ones skipped); afterwards the
    same clean slate again, whatever the test did."""
    shell = InteractiveShell.instance()
    _forget(shell)
    if via_extension:
        shell.run_line_magic("reload_ext", "jupyter_mldeploy")
    else:
        magics.load(shell)
    for name, value in settings.items():
        if value is not None:
            shell.run_line_magic("config", f"MLDeploy.{name} = {value!r}")
    try:
        yield shell
    finally:
        _forget(shell)
