"""Settings for the magics and widgets: the traitlets Configurable `MLDeploy`, pyproject and environment.

Precedence, highest first: an explicit flag on the magic > `%config MLDeploy.x = ...` (or an IPython
config file) > environment variables (MLDEPLOY_NAMESPACE, MLDEPLOY_CONTEXT, MLDEPLOY_TIMEOUT, and
$KUBECONFIG for the kubeconfig) > `[tool.jupyter-mldeploy]` in the nearest pyproject.toml above the
working directory > the kube context's own default (namespace) or the trait default (timeout 600 s).

The cluster (kubeconfig and context) is one choice, not two: a project file's `kubeconfig` and
`context` apply only when neither %config nor the environment ($KUBECONFIG, MLDEPLOY_CONTEXT) names
a cluster, so a pyproject.toml in some parent folder can never switch the cluster away from the one
the user chose, nor mix its context into the user's kubeconfig. The search for pyproject.toml stops at
the repository root (a folder holding .git) or the home folder, and a project file that picks the
cluster must be the user's own and writable by no one else (its kubeconfig too: an `exec` plugin in
it runs as the user). `describe_cluster` says where the cluster came from, for %mldeploy and the
first deploy in a kernel.

Pure: reads files and the environment, never the cluster; a bad value is one `SpecError` sentence
naming where it came from.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitlets import All, Dict, Enum, Float, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from .duration import parse_seconds  # the one duration rule, re-exported for the settings and magics
from .errors import SpecError
from .traffic import ROUTERS as _TRAFFIC_ROUTERS

__all__ = ["ENV_VARS", "ROUTERS", "MLDeploy", "Settings", "check_price_table", "current", "describe_cluster",
           "find_pyproject", "parse_seconds", "price_table", "read_pyproject", "set_current"]

# The traffic layers (traffic.ROUTERS, the one list) or auto: the rollout picks from what the cluster serves.
ROUTERS = ("auto", *_TRAFFIC_ROUTERS)
ENV_VARS = {"namespace": "MLDEPLOY_NAMESPACE", "context": "MLDEPLOY_CONTEXT", "timeout": "MLDEPLOY_TIMEOUT"}
PYPROJECT_TABLE = "jupyter-mldeploy"
CLUSTER = ("kubeconfig", "context")  # chosen together, from one source



class MLDeploy(Configurable):
    """jupyter-mldeploy's settings; change them with `%config MLDeploy.<name> = <value>`."""

    namespace = Unicode(None, allow_none=True, help=(
        "Namespace to deploy to when a magic has no --namespace. Unset: MLDEPLOY_NAMESPACE, then "
        "[tool.jupyter-mldeploy] namespace in pyproject.toml, then the kube context's namespace.")
    ).tag(config=True)
    context = Unicode(None, allow_none=True, help=(
        "Kube context to use when a magic has no --context. Unset: MLDEPLOY_CONTEXT, then "
        "pyproject.toml (only when KUBECONFIG is not set either), then the kubeconfig's current context.")
    ).tag(config=True)
    kubeconfig = Unicode(None, allow_none=True, help=(
        "Path of the kubeconfig file. Unset: KUBECONFIG, then pyproject.toml (relative to that file; only "
        "when neither KUBECONFIG nor MLDEPLOY_CONTEXT is set), then ~/.kube/config, then in-cluster "
        "configuration.")
    ).tag(config=True)
    timeout = Float(600.0, help=(
        "Seconds to wait for a rollout to become ready before giving up waiting (the rollout goes on). "
        "MLDEPLOY_TIMEOUT and pyproject.toml apply when this is not set with %config.")
    ).tag(config=True)
    router = Enum(ROUTERS, default_value="auto", help=(
        "Traffic layer for canary and shadow rollouts: auto picks the best one the cluster serves "
        "(Gateway API, then Istio, Knative, ingress-nginx, else plain replica ratios).")
    ).tag(config=True)
    price_table = Dict(help=(
        "Hourly prices for the widgets' cost estimate, for example {'cpu': 0.031, 'memory_gib': 0.004, "
        "'gpu': {'NVIDIA-A100-SXM4-80GB': 3.67, 'default': 2.5}}: per core, per GiB of memory, and per "
        "GPU (one price, or one per GPU type with a default). These numbers are an example, not real "
        "prices. Empty: pyproject.toml's price_table, else the widgets' example table.")
    ).tag(config=True)
    interactive = Enum(("auto", "yes", "no"), default_value="auto", help=(
        "Live widgets (yes) or text output (no); auto shows widgets only in a notebook frontend with "
        "widget support and prints text under papermill, nbconvert, nbval and plain IPython, where "
        "a failed deploy also fails the run.")
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        self._assigned: set[str] = set()
        super().__init__(**kwargs)

    @validate("namespace", "timeout", "price_table")
    def _valid(self, proposal: Mapping[str, Any]) -> Any:
        # %config reports a TraitError in one line, so a bad value never gets in.
        value, name = proposal["value"], proposal["trait"].name
        if value is None:
            return value
        try:
            return _checked(name, value, f"MLDeploy.{name}")
        except SpecError as e:
            raise TraitError(str(e)) from None

    @observe(All)
    def _remember(self, change: Mapping[str, Any]) -> None:
        # A trait assigned in Python counts as explicit, like one set by %config.
        self._assigned.add(change["name"])

    def is_set(self, name: str) -> bool:
        """Was `name` set explicitly (%config, a config file, or assignment), not just defaulted?"""
        if name in self._assigned:
            return True
        # %config MLDeploy.timeout = 600 changes nothing but is still explicit: look in the config too.
        section = type(self).__name__
        return section in self.config and name in self.config[section]

    def resolve(self, *, cwd: str | os.PathLike | None = None,
                environ: Mapping[str, str] | None = None) -> Settings:
        """The effective settings (without flags), with where each value came from."""
        environ = os.environ if environ is None else environ
        start = Path(cwd) if cwd is not None else Path.cwd()
        found = find_pyproject(start, home=environ.get("HOME"))
        project = read_pyproject(found) if found else {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        # The cluster is chosen whole: the project file's half of it counts only when nothing above
        # it (%config, $KUBECONFIG, MLDEPLOY_CONTEXT) names a cluster.
        chosen = [n for n in CLUSTER if self.is_set(n) and getattr(self, n) is not None]
        chosen += [f"${v}" if v == "KUBECONFIG" else v for v in ("KUBECONFIG", ENV_VARS["context"])
                   if environ.get(v, "") != ""]
        for name in ("namespace", "context", "kubeconfig", "timeout", "router", "price_table", "interactive"):
            default = getattr(self, name)
            if self.is_set(name) and default is not None:
                values[name], sources[name] = default, "%config"
            elif name in ENV_VARS and environ.get(ENV_VARS[name], "") != "":
                values[name] = _checked(name, environ[ENV_VARS[name]], ENV_VARS[name])
                sources[name] = ENV_VARS[name]
            elif name == "kubeconfig" and environ.get("KUBECONFIG", "") != "":
                # Passed on explicitly: the kubernetes client reads $KUBECONFIG once, at its import,
                # so a kernel's later `%env KUBECONFIG=...` would otherwise be missed.
                values[name], sources[name] = environ["KUBECONFIG"], "$KUBECONFIG"
            elif name in project and not (name in CLUSTER and chosen):
                values[name], sources[name] = project[name], str(found)
            else:
                values[name], sources[name] = default, "default"
        if found is not None and str(found) in {sources[n] for n in CLUSTER}:
            _check_trusted(found, project)
        return Settings(**values, sources=sources,
                        cluster_source=_cluster_source(sources, start, found, environ))


@dataclass(frozen=True)
class Settings:
    """MLDeploy's values after precedence; None means: the kube context decides."""

    namespace: str | None
    context: str | None
    kubeconfig: str | None
    timeout: float
    router: str
    price_table: Mapping[str, Any]
    interactive: str
    sources: Mapping[str, str] = field(default_factory=dict)
    # Where the cluster came from, in words: "from %config", "from $KUBECONFIG",
    # "from pyproject.toml two folders up (/path/pyproject.toml)", "from ~/.kube/config", ...
    cluster_source: str = "from the default kubeconfig"


def _cluster_source(sources: Mapping[str, str], start: Path, found: Path | None,
                    environ: Mapping[str, str]) -> str:
    picked = {sources.get(n) for n in CLUSTER}
    parts = []
    config = [f"MLDeploy.{n}" for n in CLUSTER if sources.get(n) == "%config"]
    if config:
        parts.append(f"%config ({' and '.join(config)})")
    parts += [v for v in ("MLDEPLOY_CONTEXT", "$KUBECONFIG") if v in picked]
    if found is not None and str(found) in picked:
        parts.append(f"pyproject.toml {_how_far(start, found)} ({found})")
    if parts:
        return "from " + " and ".join(parts)
    kubeconfig = Path(environ.get("HOME") or Path.home()) / ".kube" / "config"
    return f"from {kubeconfig}" if kubeconfig.is_file() else "from the in-cluster configuration, if any"


_NUMBERS = ("in this folder", "one folder up", "two folders up", "three folders up")


def _how_far(start: Path, found: Path) -> str:
    up = len(Path(os.path.abspath(start)).parts) - len(found.parent.parts)
    return _NUMBERS[up] if 0 <= up < len(_NUMBERS) else f"{up} folders up"


def describe_cluster(settings: Settings, context: str, *, flag: bool = False) -> str:
    """Where deploys go, in words: "context prod, from pyproject.toml two folders up (...)", "context
    mldeploy-sandbox: the sandbox, from $KUBECONFIG", "in-cluster (this pod's service account)".
    `context` is the one the connection chose (the kubeconfig's current one when none was asked);
    `flag`: it was asked for with --context."""
    if context == "in-cluster":
        return "in-cluster (this pod's service account)"
    path = (settings.kubeconfig or os.environ.get("KUBECONFIG", "")).split(os.pathsep)[0] or str(
        Path.home() / ".kube" / "config")
    source = "from --context" if flag else settings.cluster_source
    from .sandbox.folder import StateFolder

    if StateFolder(Path(path).parent).is_marked():
        return f"context {context}: the sandbox, {source}"
    return f"context {context}, {source}"


PRICE_KEYS = ("cpu", "memory_gib", "gpu")


def _price(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def check_price_table(value: object, where: str = "price_table") -> dict[str, Any]:
    """The one rule for a price table, wherever it comes from (%config, pyproject.toml, a widget):
    cpu (per core-hour) and memory_gib (per GiB-hour) are required, gpu is optional (one price per
    GPU-hour, or a table of GPU type to price with a 'default'); nothing else, so a misspelt key is
    an error and not a silent zero in the estimate."""
    example = "{cpu = 0.031, memory_gib = 0.004, gpu = 2.5}"
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a table of hourly prices, such as {example}.")
    unknown = [k for k in value if k not in PRICE_KEYS]
    if unknown:
        raise SpecError(f"{where} has an unknown key {unknown[0]!r}; the keys are cpu, memory_gib and gpu.")
    for key in ("cpu", "memory_gib"):
        if key not in value:
            raise SpecError(f"{where} needs a price for {key!r}, such as {example}.")
    for key, price in value.items():
        if key == "gpu" and isinstance(price, Mapping):
            if "default" not in price:
                raise SpecError(f"{where}: the gpu table needs a 'default' price for the GPU types it does "
                                f"not name, got {dict(price)!r}.")
            ok = all(_price(p) for p in price.values())
        else:
            ok = _price(price)
        if not ok:
            raise SpecError(f"{where}: the price for {key!r} must be a number of 0 or more (or, for gpu, "
                            f"a table of GPU type to price), got {price!r}.")
    return dict(value)


def _checked(name: str, value: object, where: str) -> Any:
    """Validate one setting from the environment or pyproject, returning its typed value."""
    if name == "timeout":
        return parse_seconds(value, where)
    if name == "price_table":
        return check_price_table(value, where)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where} must be a non-empty string, got {value!r}.")
    value = value.strip()
    if name == "namespace":
        from .spec import validate_namespace

        validate_namespace(value, where)
    choices = {"router": ROUTERS, "interactive": ("auto", "yes", "no")}.get(name)
    if choices and value not in choices:
        raise SpecError(f"{where} {value!r} is not one of {', '.join(choices)}.")
    return value


def find_pyproject(start: Path, home: str | os.PathLike | None = None) -> Path | None:
    """The nearest pyproject.toml in `start` or a parent folder, looking no higher than the repository
    root (a folder holding .git) or the home folder (`home`, default $HOME), whichever comes first."""
    start = Path(os.path.abspath(start))
    home_dir = Path(os.path.abspath(home)) if home else Path.home()
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if folder == home_dir or (folder / ".git").exists():
            return None
    return None


def _check_trusted(found: Path, project: Mapping[str, Any]) -> None:
    """A project file that picks the cluster, and the kubeconfig it names, must be the user's own (or
    root's) and writable by no one else: whoever can write them chooses where deploys go, and runs
    the kubeconfig's exec plugin as the user."""
    paths = [found] + ([Path(project["kubeconfig"])] if "kubeconfig" in project else [])
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # a kubeconfig that does not exist is the client's sentence to say
        if st.st_uid not in (os.geteuid(), 0):
            raise SpecError(f"{path} belongs to another user (uid {st.st_uid}), so its cluster setting is "
                            f"not used; set MLDeploy.kubeconfig / MLDeploy.context, or $KUBECONFIG.")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SpecError(f"{path} can be changed by other users (mode {stat.filemode(st.st_mode)}), so "
                            f"its cluster setting is not used; chmod go-w {path}.")


_cache: dict[Path, tuple[float, dict[str, Any]]] = {}


def read_pyproject(path: Path) -> dict[str, Any]:
    """The validated `[tool.jupyter-mldeploy]` table of `path` ({} when it has none); cached by mtime."""
    mtime = path.stat().st_mtime
    hit = _cache.get(path)
    if hit and hit[0] == mtime:
        return hit[1]
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise SpecError(f"{path} cannot be read for [tool.{PYPROJECT_TABLE}] on Python 3.10 without the "
                            f"tomli package: pip install tomli.") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"{path} could not be read as TOML: {e}.") from None
    table = data.get("tool", {}).get(PYPROJECT_TABLE, {})
    where = f"[tool.{PYPROJECT_TABLE}] in {path}"
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table.")
    allowed = ("namespace", "context", "kubeconfig", "timeout", "router", "price_table", "interactive")
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}" if close else ""
            raise SpecError(f"{where} has no setting {key!r}{hint} (settings: {', '.join(allowed)}).")
        out[key] = _checked(key, value, f"{key} in {where}")
    if "kubeconfig" in out:  # relative to the project, not to wherever the kernel was started
        out["kubeconfig"] = str((path.parent / Path(out["kubeconfig"]).expanduser()).resolve())
    _cache[path] = (mtime, out)
    return out


_current: MLDeploy | None = None


def current() -> MLDeploy:
    """The settings object registered by `%load_ext jupyter_mldeploy`, or a default one outside IPython."""
    global _current
    if _current is None:
        _current = MLDeploy()
    return _current


def set_current(settings: MLDeploy | None) -> None:
    global _current
    _current = settings


def price_table() -> dict[str, Any]:
    """The configured price table (%config, else pyproject.toml), {} when none: for the widgets."""
    settings = current()
    if settings.is_set("price_table") and settings.price_table:
        return dict(settings.price_table)
    found = find_pyproject(Path.cwd())
    return dict(read_pyproject(found).get("price_table", {})) if found else {}
