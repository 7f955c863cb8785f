"""What a kernel pays for `%load_ext jupyter_mldeploy`, now against an earlier revision, in one run.

    python bench/bench_import.py [BASE_REVISION] [RUNS]

The house's restructure (issue 14) cut big modules into packages: more files to import. This times a
fresh interpreter that imports the package and registers its magics on an IPython shell, for this
checkout and for BASE_REVISION (default bb5d89d, before the restructure; checked out into a temporary
git worktree), alternately, RUNS times each (default 15). Printed: each one's median wall time and the
ratio HEAD / base, pair by pair (pairing keeps the ratio fair while the machine's speed drifts), and the
same for a yardstick that imports only the dependencies (IPython, ipywidgets, kubernetes), so the
package's own share is visible. No cluster, no network.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOAD = ("from IPython.testing.globalipapp import get_ipython; ip = get_ipython(); "
        "ip.run_line_magic('load_ext', 'jupyter_mldeploy')")
DEPS = "import IPython, ipywidgets, kubernetes.client"


def _time(code: str, tree: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=tree, check=True, capture_output=True,
                   env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    return time.perf_counter() - start


def main(base: str = "bb5d89d", runs: int = 15) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), base],
                       check=True, capture_output=True)
        try:
            for code in (LOAD, DEPS):  # warm the file cache for both trees
                _time(code, ROOT), _time(code, base_tree)
            head, old, deps, ratios = [], [], [], []
            for _ in range(runs):
                h, b, d = _time(LOAD, ROOT), _time(LOAD, base_tree), _time(DEPS, ROOT)
                head.append(h), old.append(b), deps.append(d), ratios.append(h / b)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                           capture_output=True)
    med = statistics.median
    print(f"%load_ext jupyter_mldeploy in a fresh interpreter, {runs} runs each, interleaved:")
    print(f"  HEAD         median {med(head) * 1000:7.1f} ms")
    print(f"  {base:<12} median {med(old) * 1000:7.1f} ms")
    print(f"  dependencies median {med(deps) * 1000:7.1f} ms (IPython, ipywidgets, kubernetes only)")
    print(f"  ratio HEAD/{base}: median {med(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"  the package's own share over the dependencies: HEAD {med(head) - med(deps):+.3f} s, "
          f"{base} {med(old) - med(deps):+.3f} s")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["bb5d89d"]), *(int(a) for a in sys.argv[2:3]))
