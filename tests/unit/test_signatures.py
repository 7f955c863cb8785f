"""One signature style across the public API: every function of `api`, `rollout`, `rollout_knative` and
`shadow` that reaches the cluster takes `namespace=`, `kube=`, `kubeconfig=` and `context=` as keywords,
and honours `kubeconfig=` (chosen through connection.cluster, the one rule). No cluster: a kubeconfig
that does not exist fails at the connection, before any request."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from jupyter_mldeploy import api, rollout, rollout_knative, shadow
from jupyter_mldeploy.errors import MLDeployError
from jupyter_mldeploy.spec import DeploySpec

IMAGE = "ghcr.io/acme/churn:1.4"
MODULES = (api, rollout, rollout_knative, shadow)


def _public_functions_taking_kube() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module in MODULES:
        for name in module.__all__:
            fn = getattr(module, name)
            kube = inspect.signature(fn).parameters.get("kube") if inspect.isfunction(fn) else None
            # Helpers that are handed a connection (kube required: offered_routers, ours, ...) are not
            # entry points; the ones that may connect by themselves take kube=None.
            if kube is not None and kube.default is None:
                found.append((f"{module.__name__}.{name}", fn))
    return found


def test_the_public_functions_that_reach_the_cluster_are_found():
    names = {n for n, _ in _public_functions_taking_kube()}
    # A floor, so the structural test below cannot pass by finding nothing.
    assert {"jupyter_mldeploy.api.deploy", "jupyter_mldeploy.rollout.promote",
            "jupyter_mldeploy.rollout_knative.status", "jupyter_mldeploy.shadow.live_from_pods"} <= names
    assert len(names) >= 20


@pytest.mark.parametrize(("name", "fn"), _public_functions_taking_kube(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_one_takes_kube_kubeconfig_and_context_as_keywords(name, fn):
    params = inspect.signature(fn).parameters
    for key in ("kube", "kubeconfig", "context"):
        assert key in params, f"{name} has no {key}="
        assert params[key].default is None, f"{name}: {key} should default to None"
    # capacity(kube) keeps its one positional argument from before; every other one is keyword-only.
    if name != "jupyter_mldeploy.api.capacity":
        assert params["kube"].kind is inspect.Parameter.KEYWORD_ONLY, f"{name}: kube= is positional"
    assert params["kubeconfig"].kind is params["context"].kind is inspect.Parameter.KEYWORD_ONLY
    if "namespace" in params:
        assert params["namespace"].kind is inspect.Parameter.KEYWORD_ONLY


SPEC = DeploySpec("churn", IMAGE)
CALLS: dict[str, Callable[..., Any]] = {
    "api.deploy": lambda **kw: api.deploy(SPEC, **kw),
    "api.deploy_many": lambda **kw: api.deploy_many([SPEC], **kw),
    "api.get": lambda **kw: api.get("churn", **kw),
    "api.history": lambda **kw: api.history("churn", **kw),
    "api.rollback": lambda **kw: api.rollback("churn", **kw),
    "api.undeploy": lambda **kw: api.undeploy("churn", **kw),
    "rollout.read": lambda **kw: rollout.read("churn", **kw),
    "rollout.start": lambda **kw: rollout.start({"name": "churn", "image": IMAGE}, strategy="canary", **kw),
    "rollout.set_weight": lambda **kw: rollout.set_weight("churn", 10, **kw),
    "rollout.set_mirror": lambda **kw: rollout.set_mirror("churn", 10, **kw),
    "rollout.steps": lambda **kw: rollout.steps("churn", [10, 100], **kw),
    "rollout.promote": lambda **kw: rollout.promote("churn", **kw),
    "rollout.release": lambda **kw: rollout.release("churn", **kw),
    "rollout.abort": lambda **kw: rollout.abort("churn", **kw),
    "rollout.finish_interrupted": lambda **kw: rollout.finish_interrupted("churn", **kw),
    "rollout_knative.deploy": lambda **kw: rollout_knative.deploy(SPEC, **kw),
    "rollout_knative.status": lambda **kw: rollout_knative.status("churn", **kw),
    "rollout_knative.history": lambda **kw: rollout_knative.history("churn", **kw),
    "rollout_knative.rollback": lambda **kw: rollout_knative.rollback("churn", **kw),
    "rollout_knative.start": lambda **kw: rollout_knative.start({"name": "churn", "image": IMAGE},
                                                                strategy="canary", weight=10, **kw),
    "shadow.compare": lambda **kw: shadow.compare("churn", [[1.0]], via="proxy", **kw),
    "shadow.live_from_pods": lambda **kw: shadow.live_from_pods("churn", **kw),
}


def test_the_calls_below_cover_every_function_found():
    found = {n.removeprefix("jupyter_mldeploy.") for n, _ in _public_functions_taking_kube()}
    assert found - {"api.capacity"} == set(CALLS)


@pytest.mark.parametrize("name", sorted(CALLS))
def test_kubeconfig_is_the_one_used(name, tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    with pytest.raises(MLDeployError) as e:
        CALLS[name](kubeconfig=str(missing))
    assert str(missing) in str(e.value)


def test_capacity_says_the_kubeconfig_it_could_not_load(tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    cap = api.capacity(kubeconfig=str(missing))
    assert not cap.known and str(missing) in cap.reason
