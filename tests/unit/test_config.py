"""MLDeploy settings: traits, %config, environment, pyproject.toml, and their precedence."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
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
    ("router = 'traefik'", "'traefik' is not one of auto, replicas, gateway, istio, nginx, knative"),
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
                                               ("10m", 600.0), ("1.5h", 5400.0), (" 2m ", 120.0)])
def test_parse_seconds(text, seconds):
    assert parse_seconds(text, "timeout") == seconds


@pytest.mark.parametrize("text", ["", "-1", "1d", "m", "nan", float("inf"), None, [1]])
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
    ip = InteractiveShell.instance()
    magics.unload(ip)
    magics._kept.clear()
    ip.config.pop("MLDeploy", None)  # %config writes into the shared shell's config too
    magics.load(ip)
    yield ip
    magics.unload(ip)
    magics._kept.clear()
    ip.config.pop("MLDeploy", None)


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
    magics._kept.clear()
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
        magics._kept.clear()
        magics.load(ip)
        assert config.current().resolve(cwd=tmp_path, environ={}).context == "from-ipython-config"
    finally:
        ip.config = saved
        magics.unload(ip)
        magics._kept.clear()


def test_price_table_for_the_widgets(shell, tmp_path):
    assert config.price_table() == {}
    write_pyproject(tmp_path, "price_table = {cpu = 0.05, memory_gib = 0.01}\n")
    assert config.price_table() == {"cpu": 0.05, "memory_gib": 0.01}
    shell.run_line_magic("config", "MLDeploy.price_table = {'cpu': 1.0, 'memory_gib': 0.5}")
    assert config.price_table() == {"cpu": 1.0, "memory_gib": 0.5}
