"""`python -m jupyter_mldeploy demo`: bring the sandbox up and run the quickstart notebook headless.

The executed notebook (every cell's output: progress lines, status tables, revisions) is written to
./quickstart-output.ipynb, or the path given; a failing cell makes the demo exit non-zero. While it runs,
the terminal gets the story, one line as each step finishes (deployed, ready in N s, the second
version, rolled back, removed: magics.story).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .story import Story

__all__ = ["find_quickstart", "run_demo"]

QUICKSTART = "01-quickstart.ipynb"


def find_quickstart() -> Path | None:
    """notebooks/01-quickstart.ipynb of the checked-out repository this package is imported from."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        candidate = folder / "notebooks" / QUICKSTART
        if candidate.is_file():
            return candidate
    return None


def _story_engine(tell: Callable[[Any], None]) -> str:
    """A papermill engine, registered under a name for this run, that hands each finished cell to `tell`."""
    from papermill.engines import NBClientEngine, papermill_engines

    class StoryEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            complete = nb_man.cell_complete

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                result = complete(cell, cell_index=cell_index, **kw)  # papermill's duration is set now
                tell(cell)
                return result

            nb_man.cell_complete = cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    name = f"mldeploy-story-{id(tell):x}"
    papermill_engines.register(name, StoryEngine)
    return name


def run_demo(output: str | os.PathLike | None = None, *, parameters: Mapping[str, Any] | None = None,
             progress: Callable[[str], None] = print) -> int:
    """Start (or reuse) the sandbox, run the quickstart under papermill, say where the result is.

    Returns 0 when every cell ran, 1 otherwise (the message says which cell failed and why).
    """
    notebook = find_quickstart()
    if notebook is None:
        progress(f"The quickstart notebook (notebooks/{QUICKSTART}) was not found next to this package; "
                 f"run the demo from a checkout of the repository.")
        return 1
    try:
        import papermill
    except ImportError:
        progress("The demo needs papermill: pip install 'jupyter-mldeploy[notebook]'.")
        return 1
    from ..errors import MLDeployError
    from ..sandbox.control_plane import Sandbox

    out = Path(output) if output is not None else Path.cwd() / "quickstart-output.ipynb"
    try:
        info = Sandbox().up(progress=progress)
    except MLDeployError as e:
        progress(f"The sandbox did not start: {e}")
        return 1
    # The notebook's kernel inherits this environment, so it talks to the sandbox.
    env_before = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(info["kubeconfig"])
    progress(f"Running {notebook} against the sandbox at {info['server']} ...")
    story = Story()

    def tell(cell: Any) -> None:
        line = story.line(cell)
        if line is not None:
            progress(f"  {line}")

    try:
        papermill.execute_notebook(str(notebook), str(out),
                                   parameters={"interactive": "no", **(parameters or {})},
                                   kernel_name="python3", progress_bar=False, cwd=str(notebook.parent),
                                   engine_name=_story_engine(tell))
    except papermill.PapermillExecutionError as e:
        progress(f"The quickstart failed in cell {e.exec_count}: {e.ename}: {e.evalue}")
        progress(f"The executed notebook, with the error, is {out}")
        return 1
    except Exception as e:  # noqa: BLE001 - no kernel, unreadable notebook...: say it, exit non-zero
        progress(f"The quickstart could not run: {type(e).__name__}: {e}")
        return 1
    finally:
        if env_before is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = env_before
    progress(f"The quickstart ran. The executed notebook is {out}")
    return 0
