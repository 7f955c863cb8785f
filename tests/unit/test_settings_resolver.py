"""One settings resolver for every face: a DeployPanel or CanarySlider built directly honours
`%config MLDeploy` (kubeconfig, context, namespace) as the magics do. No cluster: a Kube reads its
kubeconfig when made and sends nothing until asked."""

from __future__ import annotations

import json

import pytest

from jupyter_mldeploy import config
from jupyter_mldeploy.capacity import Capacity
from jupyter_mldeploy.connection import resolve
from jupyter_mldeploy.kube.client import forget_connections
from jupyter_mldeploy.widgets import CanarySlider, DeployPanel


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Fresh MLDeploy settings and a kubeconfig with two contexts; its current one is "a"."""
    for var in ("KUBECONFIG", "MLDEPLOY_CONTEXT", "MLDEPLOY_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / ".git").mkdir()  # no pyproject.toml above this project is read
    monkeypatch.chdir(tmp_path)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.invalid:6443"}} for c in ("a", "b")],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": c, "context": {"cluster": c, "user": "u", "namespace": f"ns-{c}"}}
                     for c in ("a", "b")]}))
    previous = config.current()
    config.set_current(config.MLDeploy(kubeconfig=str(kubeconfig), context="b"))
    forget_connections()
    yield config.current()
    config.set_current(previous)
    forget_connections()


def _slider() -> CanarySlider:
    return CanarySlider("fraud", refresh=False, read_fn=lambda *_a, **_k: None, watch=False)


def test_the_resolver_takes_config_then_the_context(settings):
    kube, namespace = resolve()
    assert (kube.context, kube.server, namespace) == ("b", "https://b.invalid:6443", "ns-b")
    settings.namespace = "from-config"
    assert resolve()[1] == "from-config"
    assert resolve("given", context="a") == (resolve(context="a")[0], "given")
    assert resolve(context="a")[0].context == "a" and resolve(context="a")[1] == "from-config"


def test_a_slider_built_directly_honours_config(settings):
    s = _slider()
    assert (s.kube.context, s.namespace) == ("b", "ns-b")
    settings.namespace = "from-config"
    s = _slider()
    assert (s.kube.context, s.namespace) == ("b", "from-config")


def test_a_panel_built_directly_honours_config(settings):
    settings.namespace = "from-config"
    p = DeployPanel("churn", capacity=Capacity.unknown("no cluster in this test"), watch=False)
    assert p.kube.context == "b" and p.namespace.value == "from-config"
