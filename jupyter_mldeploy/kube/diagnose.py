"""Its old home: the diagnosis is pure code and lives in `jupyter_mldeploy.diagnosis` (outside kube/, the
room that talks to the API server); every public name stays importable from here."""

from __future__ import annotations

from ..diagnosis import *  # noqa: F403 - the old home re-exports every public name
from ..diagnosis import __all__  # noqa: F401 - the same public names
