"""MLDeploy settings: traits, %config, environment, pyproject.toml, and their precedence."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from shells import fresh_shell
from traitlets import TraitError
from traitlets.config import Config

from jupyter_mldeploy import config, magics
from jupyter_mldeploy.config import MLDeploy, find_pyproject, parse_seconds, read_pyproject
from jupyter_mldeploy.errors import SpecError


def write_pyproject(folder, body: str):
    path = folder / "pyproject.toml"
    path.write_text("[project]\nname = 'demo'\n\n[tool.jupyter-mldeploy]\n" + body)
    return path


def test_defaults(tmp_path):
    s = MLDeploy().resolve(cwd=tmp_path, environ={})
    got = (s.namespace, s.context, s.kubeconfig, s.timeout, s.router, s.interactive, dict(s.price_table))
    assert got == (None, None, None, 600.0, "auto", "auto", {})
    assert set(s.sources.values()) == {"default"}


def test_precedence_config_over_env_over_pyproject_over_default(tmp_path):
    write_pyproject(tmp_path, "namespace = 'from-pyproject'\ncontext = 'pp-ctx'\ntimeout = 30\n"
                              "router = 'istio'\n")
    env = {"MLDEPLOY_NAMESPACE": "from-env", "MLDEPLOY_TIMEOUT": "5m"}
    cfg = MLDeploy()
    s = cfg.resolve(cwd=tmp_path, environ=env)
    assert (s.namespace, s.context, s.timeout, s.router) == ("from-env", "pp-ctx", 300.0, "istio")
    assert s.sources["namespace"] == "MLDEPLOY_NAMESPACE" and s.sources["context"].endswith("pyproject.toml")
    cfg.namespace = "from-config"
    s = cfg.resolve(cwd=tmp_path, environ=env)
    assert (s.namespace, s.sources["namespace"]) == ("from-config", "%config")
    # without the environment, pyproject wins over the defaults
    assert MLDeploy().resolve(cwd=tmp_path, environ={}).namespace == "from-pyproject"


def test_explicit_config_equal_to_the_default_still_wins(tmp_path):
    cfg = Config()
    cfg.MLDeploy.timeout = 600.0
    settings = MLDeploy(config=cfg)
    assert settings.resolve(cwd=tmp_path, environ={"MLDEPLOY_TIMEOUT": "30"}).timeout == 600.0
    assert MLDeploy().resolve(cwd=tmp_path, environ={"MLDEPLOY_TIMEOUT": "30"}).timeout == 30.0


def test_empty_environment_variable_means_unset(tmp_path):
    assert MLDeploy().resolve(cwd=tmp_path, environ={"MLDEPLOY_NAMESPACE": ""}).namespace is None


def test_nearest_pyproject_is_found_upward_and_kubeconfig_is_relative_to_it(tmp_path):
    outer = write_pyproject(tmp_path, "namespace = 'outer'\nkubeconfig = 'conf/kubeconfig'\n")
    deep = tmp_path / "notebooks" / "2024"
    deep.mkdir(parents=True)
    assert find_pyproject(deep) == outer
    s = MLDeploy().resolve(cwd=deep, environ={})
    assert s.namespace == "outer" and s.kubeconfig == str(tmp_path / "conf" / "kubeconfig")
    # a nearer project without the table shadows the outer one: settings belong to one project
    (tmp_path / "notebooks" / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
    assert MLDeploy().resolve(cwd=deep, environ={}).namespace is None


@pytest.mark.parametrize(("body", "words"), [
    ("namepsace = 'ml'", "has no setting 'namepsace'; did you mean 'namespace'"),
    ("timeout = 'soon'", "timeout in [tool.jupyter-mldeploy] in"),
    ("timeout = -5", "must be more than zero seconds"),
    ("timeout = true", "must be a number of seconds, got the boolean true"),
    ("namespace = 'Prod'", "is not a valid name"),
    ("router = 'traefik'", "'traefik' is not one of auto, gateway, istio, knative, nginx, replicas"),
    ("interactive = 'maybe'", "'maybe' is not one of auto, yes, no"),
    ("context = 3", "must be a non-empty string, got 3"),
    ("price_table = {cpu = 'cheap', memory_gib = 0.01}", "the price for 'cpu' must be a number of 0 or more"),
    ("price_table = {cpu = 0.05}", "needs a price for 'memory_gib'"),
    ("price_table = {cpu = 0.05, memory = 0.01}", "has an unknown key 'memory'; the keys are"),
    ("price_table = {cpu = 0.05, memory_gib = 0.01, gpu = {A100 = 3.0}}", "the gpu table needs a 'default'"),
    ("namespace = ", "could not be read as TOML"),
])
def test_bad_pyproject_value_is_one_sentence_naming_the_file(tmp_path, body, words):
    write_pyproject(tmp_path, body + "\n")
    with pytest.raises(SpecError) as e:
        MLDeploy().resolve(cwd=tmp_path, environ={})
    text = str(e.value)
    assert words in text and str(tmp_path / "pyproject.toml") in text and "\n" not in text


@pytest.mark.parametrize(("env", "words"), [
    ({"MLDEPLOY_TIMEOUT": "abc"}, "MLDEPLOY_TIMEOUT 'abc' is not a duration: write seconds such as 600"),
    ({"MLDEPLOY_TIMEOUT": "0"}, "MLDEPLOY_TIMEOUT must be more than zero seconds"),
    ({"MLDEPLOY_NAMESPACE": "My_NS"}, "MLDEPLOY_NAMESPACE 'My_NS' is not a valid name"),
])
def test_bad_environment_value_is_one_sentence(tmp_path, env, words):
    with pytest.raises(SpecError) as e:
        MLDeploy().resolve(cwd=tmp_path, environ=env)
    assert words in str(e.value)


def test_pyproject_is_reread_when_it_changes(tmp_path):
    path = write_pyproject(tmp_path, "namespace = 'one'\n")
    assert read_pyproject(path)["namespace"] == "one"
    import os

    path.write_text("[tool.jupyter-mldeploy]\nnamespace = 'two'\n")
    os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
    assert read_pyproject(path)["namespace"] == "two"


@pytest.mark.parametrize(("text", "seconds"), [(600, 600.0), (1.5, 1.5), ("90", 90.0), ("90s", 90.0),
                                               ("10m", 600.0), ("1.5h", 5400.0), (" 2m ", 120.0),
                                               ("500ms", 0.5)])
def test_parse_seconds(text, seconds):
    assert parse_seconds(text, "timeout") == seconds


@pytest.mark.parametrize("text", ["", "-1", "1d", "m", "ms", "0ms", "nan", float("inf"), None, [1]])
def test_parse_seconds_refuses(text):
    with pytest.raises(SpecError):
        parse_seconds(text, "timeout")


@pytest.mark.parametrize(("trait", "value"), [("timeout", -1), ("namespace", "Bad NS"), ("router", "x"),
                                              ("interactive", "sometimes"), ("price_table", {"cpu": "x"})])
def test_traits_refuse_bad_values(trait, value):
    with pytest.raises(TraitError):
        setattr(MLDeploy(), trait, value)


def test_price_table_accepts_the_widgets_shape():
    table = {"cpu": 0.031, "memory_gib": 0.004, "gpu": {"NVIDIA-A100-SXM4-80GB": 3.67, "default": 2.5}}
    assert MLDeploy(price_table=table).price_table == table


# ---------------------------------------------------------------------------------------------------
# %config in a real shell


@pytest.fixture
def shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("MLDEPLOY_NAMESPACE", "MLDEPLOY_CONTEXT", "MLDEPLOY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    with fresh_shell(via_extension=False) as ip:
        yield ip


def test_percent_config_sets_the_settings_the_magics_use(shell, capsys):
    shell.run_line_magic("config", "MLDeploy.namespace = 'ml'")
    shell.run_line_magic("config", "MLDeploy.timeout = 45")
    assert shell.run_line_magic("config", "MLDeploy.namespace") == "ml"
    s = config.current().resolve()
    assert (s.namespace, s.timeout, s.sources["namespace"]) == ("ml", 45.0, "%config")
    shell.run_line_magic("config", "")
    assert "MLDeploy" in capsys.readouterr().out  # listed among the configurables
    shell.run_line_magic("config", "MLDeploy")
    assert "MLDeploy.price_table" in capsys.readouterr().out  # the documented traits


def test_percent_config_refuses_a_bad_value_and_keeps_the_old_one(shell, caplog):
    shell.run_line_magic("config", "MLDeploy.namespace = 'ml'")
    shell.run_line_magic("config", "MLDeploy.namespace = 'Not Valid'")
    assert "MLDeploy.namespace 'Not Valid' is not a valid name" in caplog.text
    assert config.current().namespace == "ml"
    # %config also left the refused value in the shell's own config: loading again skips it
    magics.unload(shell)
    magics.forget_settings()
    with pytest.warns(UserWarning, match="Ignoring the configured MLDeploy.namespace"):
        magics.load(shell)
    assert config.current().namespace is None


def test_ipython_config_file_values_apply_at_load(tmp_path):
    ip = InteractiveShell.instance()
    saved = ip.config
    try:
        cfg = Config()
        cfg.MLDeploy.context = "from-ipython-config"
        ip.config = cfg
        magics.unload(ip)
        magics.forget_settings()
        magics.load(ip)
        assert config.current().resolve(cwd=tmp_path, environ={}).context == "from-ipython-config"
    finally:
        ip.config = saved
        magics.unload(ip)
        magics.forget_settings()


def test_price_table_for_the_widgets(shell, tmp_path):
    assert config.price_table() == {}
    write_pyproject(tmp_path, "price_table = {cpu = 0.05, memory_gib = 0.01}\n")
    assert config.price_table() == {"cpu": 0.05, "memory_gib": 0.01}
    shell.run_line_magic("config", "MLDeploy.price_table = {'cpu': 1.0, 'memory_gib': 0.5}")
    assert config.price_table() == {"cpu": 1.0, "memory_gib": 0.5}


# ---------------------------------------------------------------------------------------------------
# The cluster: the environment wins over a project file, whole; the search stops at the repository
# root or home; a project file that picks the cluster must be the user's own.


def _project_two_up(tmp_path, body="kubeconfig = 'conf/kubeconfig'\ncontext = 'prod'\nnamespace = 'ml'\n"):
    found = write_pyproject(tmp_path, body)
    cwd = tmp_path / "notebooks" / "2026"
    cwd.mkdir(parents=True)
    return found, cwd


def test_project_file_picks_the_cluster_only_when_nothing_else_does(tmp_path):
    found, cwd = _project_two_up(tmp_path)
    s = MLDeploy().resolve(cwd=cwd, environ={})
    assert (s.kubeconfig, s.context) == (str(tmp_path / "conf" / "kubeconfig"), "prod")
    assert s.cluster_source == f"from pyproject.toml two folders up ({found})"
    assert config.describe_cluster(s, "prod") == f"context prod, from pyproject.toml two folders up ({found})"


def test_kubeconfig_in_the_environment_beats_the_project_file_whole(tmp_path):
    _found, cwd = _project_two_up(tmp_path)
    s = MLDeploy().resolve(cwd=cwd, environ={"KUBECONFIG": "/home/me/.kube/dev"})
    # Neither half of the project's cluster is used: its context would switch clusters inside the
    # user's own kubeconfig just as well.
    assert (s.kubeconfig, s.context) == ("/home/me/.kube/dev", None)
    assert (s.sources["kubeconfig"], s.sources["context"]) == ("$KUBECONFIG", "default")
    assert s.cluster_source == "from $KUBECONFIG"
    assert s.namespace == "ml"  # the project's other settings still apply


def test_context_in_the_environment_beats_the_project_kubeconfig_too(tmp_path):
    _found, cwd = _project_two_up(tmp_path)
    s = MLDeploy().resolve(cwd=cwd, environ={"MLDEPLOY_CONTEXT": "dev"})
    assert (s.kubeconfig, s.context) == (None, "dev")
    assert s.cluster_source == "from MLDEPLOY_CONTEXT"
    both = MLDeploy().resolve(cwd=cwd, environ={"MLDEPLOY_CONTEXT": "dev", "KUBECONFIG": "/k"})
    assert both.cluster_source == "from MLDEPLOY_CONTEXT and $KUBECONFIG"


def test_percent_config_context_beats_the_project_kubeconfig(tmp_path):
    _found, cwd = _project_two_up(tmp_path)
    settings = MLDeploy()
    settings.context = "staging"
    s = settings.resolve(cwd=cwd, environ={})
    assert (s.kubeconfig, s.context) == (None, "staging")
    assert s.cluster_source == "from %config (MLDeploy.context)"
    s = settings.resolve(cwd=cwd, environ={"KUBECONFIG": "/k"})
    assert s.cluster_source == "from %config (MLDeploy.context) and $KUBECONFIG"
    assert s.kubeconfig == "/k"


def test_empty_kubeconfig_variable_means_unset(tmp_path):
    _found, cwd = _project_two_up(tmp_path)
    assert MLDeploy().resolve(cwd=cwd, environ={"KUBECONFIG": ""}).context == "prod"


def test_default_cluster_says_which_file(tmp_path):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    s = MLDeploy().resolve(cwd=home, environ={"HOME": str(home)})
    assert s.cluster_source == "from the in-cluster configuration, if any"
    (home / ".kube" / "config").write_text("apiVersion: v1\nkind: Config\n")
    s = MLDeploy().resolve(cwd=home, environ={"HOME": str(home)})
    assert s.cluster_source == f"from {home / '.kube' / 'config'}"
    assert config.describe_cluster(s, "in-cluster") == "in-cluster (this pod's service account)"


@pytest.mark.parametrize("git", ["folder", "file"])  # a worktree's .git is a file
def test_search_stops_at_the_repository_root(tmp_path, git):
    write_pyproject(tmp_path, "context = 'prod'\n")  # above the repository: not the project's
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    if git == "folder":
        (repo / ".git").mkdir()
    else:
        (repo / ".git").write_text("gitdir: /elsewhere\n")
    assert find_pyproject(repo / "notebooks") is None
    assert MLDeploy().resolve(cwd=repo / "notebooks", environ={}).context is None
    inside = write_pyproject(repo, "context = 'mine'\n")  # the repository's own root counts
    assert find_pyproject(repo / "notebooks") == inside


def test_search_stops_at_the_home_folder(tmp_path):
    write_pyproject(tmp_path, "context = 'prod'\n")
    home = tmp_path / "home" / "me"
    (home / "work").mkdir(parents=True)
    assert find_pyproject(home / "work", home=home) is None
    assert MLDeploy().resolve(cwd=home / "work", environ={"HOME": str(home)}).context is None
    assert find_pyproject(home / "work", home=tmp_path / "elsewhere") == tmp_path / "pyproject.toml"
    mine = write_pyproject(home, "context = 'mine'\n")
    assert MLDeploy().resolve(cwd=home / "work", environ={"HOME": str(home)}).context == "mine"
    assert find_pyproject(home / "work", home=home) == mine


def test_project_file_of_another_user_never_picks_the_cluster(tmp_path):
    import os

    found, cwd = _project_two_up(tmp_path)
    if os.geteuid() == 0:
        os.chown(found, 4242, 4242)
    else:
        pytest.skip("needs root to give the file away")
    with pytest.raises(SpecError) as e:
        MLDeploy().resolve(cwd=cwd, environ={})
    assert str(e.value) == (f"{found} belongs to another user (uid 4242), so its cluster setting is not "
                            f"used; set MLDeploy.kubeconfig / MLDeploy.context, or $KUBECONFIG.")
    # With the cluster chosen by the environment, the file's cluster is not used, so not refused.
    assert MLDeploy().resolve(cwd=cwd, environ={"KUBECONFIG": "/k"}).namespace == "ml"


@pytest.mark.parametrize("which", ["pyproject", "kubeconfig"])
def test_project_cluster_writable_by_others_is_refused(tmp_path, which):
    found, cwd = _project_two_up(tmp_path)
    kubeconfig = tmp_path / "conf" / "kubeconfig"
    kubeconfig.parent.mkdir()
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    target = found if which == "pyproject" else kubeconfig
    target.chmod(0o666)
    with pytest.raises(SpecError) as e:
        MLDeploy().resolve(cwd=cwd, environ={})
    assert str(e.value) == (f"{target} can be changed by other users (mode -rw-rw-rw-), so its cluster "
                            f"setting is not used; chmod go-w {target}.")
    target.chmod(0o644)
    assert MLDeploy().resolve(cwd=cwd, environ={}).context == "prod"


def test_project_file_without_cluster_settings_is_not_checked_for_the_cluster(tmp_path):
    found, cwd = _project_two_up(tmp_path, "namespace = 'ml'\n")
    found.chmod(0o666)
    s = MLDeploy().resolve(cwd=cwd, environ={})
    assert s.namespace == "ml" and s.kubeconfig is None


def test_a_kubeconfig_in_a_sandbox_folder_is_called_the_sandbox(tmp_path):
    from jupyter_mldeploy.sandbox.folder import StateFolder

    box = StateFolder(tmp_path / "box")
    box.claim()
    kc = box.write("kubeconfig", "apiVersion: v1\nkind: Config\n")
    settings = MLDeploy()
    settings.kubeconfig = str(kc)
    s = settings.resolve(cwd=tmp_path, environ={})
    assert config.describe_cluster(s, "mldeploy-sandbox") == (
        "context mldeploy-sandbox: the sandbox, from %config (MLDeploy.kubeconfig)")
    assert config.describe_cluster(s, "other", flag=True) == "context other: the sandbox, from --context"
    # A folder merely holding a file called kubeconfig is not the sandbox.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "kubeconfig").write_text("")
    settings.kubeconfig = str(plain / "kubeconfig")
    s = settings.resolve(cwd=tmp_path, environ={})
    assert config.describe_cluster(s, "x") == "context x, from %config (MLDeploy.kubeconfig)"
