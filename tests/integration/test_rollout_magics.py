"""The rollout magics and the CanarySlider against the sandbox's real API server: no mocks.

The shell has no kernel, so it is headless (text, and MLDeployFailed on failure) unless a test sets
MLDeploy.interactive = 'yes'. Route objects are read back through the API to check what was written.
The sandbox's pods are simulated, so the shadow comparison asks model servers on this machine.
"""

from __future__ import annotations

import asyncio

import models_for_tests as models
import pytest
from IPython.core.error import UsageError
from k8s_helpers import deployments, get

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.errors import ClusterError
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed, Overview, RolloutChange
from jupyter_mldeploy.rollout import Rollout
from jupyter_mldeploy.serving import serve
from jupyter_mldeploy.shadow import ShadowReport

pytestmark = pytest.mark.sandbox

V1, V2 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0"


def image(kube: Kube, namespace: str, name: str = "fraud") -> str:
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def vs_weights(kube: Kube, namespace: str) -> list[tuple[str, int]]:
    vs = get(kube, f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud")
    return [(r["destination"]["subset"], r["weight"]) for r in vs["spec"]["http"][0]["route"]]


def route_refs(kube: Kube, namespace: str) -> tuple[list[tuple[str, int]], list]:
    rule = get(kube, f"/apis/gateway.networking.k8s.io/v1/namespaces/{namespace}/httproutes/fraud")[
        "spec"]["rules"][0]
    return [(b["name"], b["weight"]) for b in rule["backendRefs"]], rule.get("filters", [])


def test_canary_with_the_magics_from_deploy_to_promote(ip, kube, namespace, capsys):
    ip.run_line_magic("deploy", f"fraud --image {V1} --replicas 2")
    r = ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router istio")
    assert isinstance(r, Rollout) and (r.strategy, r.router, r.weight) == ("canary", "istio", 10)
    out = capsys.readouterr().out
    assert f"Starting a canary rollout of fraud: {V2} beside the stable model in namespace {namespace}" in out
    # the candidate followed, as text; it inherits the stable spec, its two replicas included
    assert "fraud-canary  [##########] 2/2 ready  rolled out" in out
    assert vs_weights(kube, namespace) == [("stable", 90), ("canary", 10)]
    # the text form, not the dataclass repr
    assert ip.display_formatter.format(r)[0]["text/plain"] == (
        "fraud: canary via istio; stable 1.0 -> candidate 2.0; 10% to fraud-canary")

    r = ip.run_line_magic("canary", "fraud 30")
    assert r.weight == 30 and vs_weights(kube, namespace) == [("stable", 70), ("canary", 30)]
    ro.forget_cache()  # another kernel: %canary without a number reads the rollout back from the cluster
    assert ip.run_line_magic("canary", "fraud").weight == 30

    view = ip.run_line_magic("mldeploy", "")
    assert isinstance(view, Overview) and [x.weight for x in view.rollouts] == [30]
    line = "fraud: canary via istio; stable 1.0 -> candidate 2.0; 30% to fraud-canary"
    assert f"Rollouts in progress:\n  {line}" in str(view)

    step = ip.run_line_magic("steps", "fraud 50,100 --once")
    assert isinstance(step, RolloutChange) and step.rollout.weight == 50
    assert str(step).startswith("The canary of fraud now answers 50% of requests (step 1 of 2; 1 to go).")
    assert vs_weights(kube, namespace) == [("stable", 50), ("canary", 50)]

    done = ip.run_line_magic("promote", "fraud")
    assert str(done) == ("Promoted fraud: version 2.0 is now the stable model and answers every request; "
                         "fraud-canary was removed.")
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V2
    assert vs_weights(kube, namespace) == [("stable", 100)]
    assert "Rollouts in progress" not in str(ip.run_line_magic("mldeploy", ""))

    # no rollout any more: %rollback is the revision rollback again
    ip.run_line_magic("rollback", "fraud")
    assert image(kube, namespace) == V1


def test_shadow_with_the_magics_compare_and_roll_back(ip, kube, namespace, capsys):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    r = ip.run_line_magic("deploy", f"fraud --image {V2} --strategy shadow --mirror 50 --router gateway "
                                    f"--gateway infra/public")
    assert (r.strategy, r.router, r.mirror) == ("shadow", "gateway", 50)
    refs, filters = route_refs(kube, namespace)
    assert refs == [("fraud", 100)]  # answers come from stable only...
    assert filters[0]["requestMirror"]["backendRef"]["name"] == "fraud-shadow"  # ...the shadow gets copies
    assert filters[0]["requestMirror"]["percent"] == 50

    r = ip.run_line_magic("mirror", "fraud 100")
    assert r.mirror == 100
    refs, filters = route_refs(kube, namespace)
    assert refs == [("fraud", 100)] and filters[0]["requestMirror"]["percent"] == 100
    assert ip.run_line_magic("mirror", "fraud").mirror == 100  # without a percent: read back
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("mirror", "nothere 10")
    assert str(e.value) == (f"nothere has no rollout in progress in namespace {namespace}: start one with "
                            f"%deploy nothere --image ... --strategy canary (or blue-green, shadow).")

    ip.user_ns["rows"] = [[float(i), 1.0] for i in range(20)]
    with serve(models.primary, name="fraud", version="1.0") as p, serve(models.shadow, name="fraud",
                                                                        version="2.0") as s:
        ip.user_ns.update(p=p, s=s)
        capsys.readouterr()
        result = ip.run_cell("report = %shadow fraud --data rows --primary-url {p.url} --shadow-url {s.url}")
        assert result.success, result.error_in_exec
        report = ip.user_ns["report"]
        assert isinstance(report, ShadowReport) and report.summary.agreement_pct == 75.0
        text = ip.display_formatter.format(report)[0]["text/plain"]
        assert text.startswith("Shadow comparison of fraud (replay of 20 rows, mode numeric")
        assert "75.0% (15 of 20 rows both sides answered)" in text

        ip.run_line_magic("config", "MLDeploy.interactive = 'yes'")  # in a frontend: the ShadowView
        view = ip.run_line_magic("shadow", f"fraud --data rows --primary-url {p.url} --shadow-url {s.url} "
                                           f"--mode numeric --tolerance 1")
        assert type(view).__name__ == "ShadowView" and view.summary.agreement_pct == 100.0
        assert bytes(view.plot_image.value).startswith(b"\x89PNG")
        ip.run_line_magic("config", "MLDeploy.interactive = 'no'")

    back = ip.run_line_magic("rollback", "fraud")
    assert str(back) == ("Rolled back the shadow rollout of fraud: all traffic is on the stable model (1.0) "
                         "and fraud-shadow was removed.")
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V1
    refs, filters = route_refs(kube, namespace)
    assert refs == [("fraud", 100)] and filters == []


def test_shadow_without_urls_asks_the_services_and_says_why_nothing_answers(ip, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.user_ns["rows"] = [[1.0, 2.0]]
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("shadow", "fraud --data rows")
    # the sandbox's simulated pods do not listen, and the shadow Service does not exist at all
    assert "There is no Service fraud-shadow in namespace" in str(e.value) and "\n" not in str(e.value)


def test_blue_green_switch_back_then_switch_and_release(ip, kube, namespace):
    svc = f"/api/v1/namespaces/{namespace}/services/fraud"
    ip.run_line_magic("deploy", f"fraud --image {V1} --replicas 2")
    ip.run_line_magic("deploy", f"fraud --image {V2} --replicas 2 --strategy blue-green --router replicas")
    switched = ip.run_line_magic("promote", "fraud")
    assert str(switched).startswith("Switched fraud: all traffic now goes to fraud-preview (version 2.0); "
                                    "the old stable model keeps running until %release fraud")
    assert get(kube, svc)["spec"]["selector"]["mldeploy.io/track"] == "preview"
    back = ip.run_line_magic("rollback", "fraud")  # switch back at once
    assert "all traffic is back on the old stable model (1.0) and fraud-preview was removed" in str(back)
    assert get(kube, svc)["spec"]["selector"].get("mldeploy.io/track") != "preview"
    assert deployments(kube, namespace) == ["fraud"]

    ip.run_line_magic("deploy", f"fraud --image {V2} --replicas 2 --strategy blue-green --router replicas")
    ip.run_line_magic("promote", "fraud")
    done = ip.run_line_magic("release", "fraud")
    assert str(done).startswith("Promoted fraud: version 2.0 is now the stable model")
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V2
    assert get(kube, svc)["spec"]["selector"]["mldeploy.io/track"] == "stable"


def test_refusals_are_one_sentence_and_write_nothing(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    # The sandbox offers nginx (its IngressClass), which refuses a Gateway once it has read the stable
    # release; a cluster without ingress-nginx refuses the router itself.
    nginx_refusal = ("the nginx router routes through the ingress-nginx controller, so gateway cannot be set"
                     if "nginx" in ro.offered_routers(kube)
                     else "router 'nginx' is not offered by this cluster")
    cases = [
        (f"deploy fraud --image {V2} --strategy canary --router nginx --gateway infra/public", nginx_refusal),
        (f"deploy ghost --image {V2} --strategy canary",
         f"ghost has no stable release in namespace {namespace}"),
        ("canary fraud 20", f"fraud has no rollout in progress in namespace {namespace}: start one with "
                            f"%deploy fraud --image ... --strategy canary"),
        ("promote fraud", "fraud has no rollout in progress"),
        ("release fraud", "fraud has no rollout in progress"),
        ("steps fraud 10,100 --once", "fraud has no rollout in progress"),
    ]
    for line, words in cases:
        magic, _, rest = line.partition(" ")
        with pytest.raises(MLDeployFailed) as e:
            ip.run_line_magic(magic, rest)
        assert words in str(e.value) and "\n" not in str(e.value), line
        assert isinstance(e.value, UsageError)
    ip.run_line_magic("config", "MLDeploy.router = 'knative'")  # a Knative rollout needs a Knative model
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary")
    assert "fraud is not deployed as a Knative Service" in str(e.value)
    assert "deploy it first with %deploy fraud --image ... --router knative" in str(e.value)
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V1
    assert ro.read("fraud", namespace=namespace, kube=kube) is None


def test_a_failing_canary_steps_back_with_the_reason(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    with pytest.raises(MLDeployFailed) as e:
        ip.run_line_magic("deploy", "fraud --image ghcr.io/acme/fraud:9.9 --strategy canary --weight 5 "
                                    "--router istio --label sandbox.mldeploy.io/fail=image-pull")
    assert str(e.value).startswith("The rollout of fraud-canary failed: The image ghcr.io/acme/fraud:9.9 "
                                   "could not be pulled")
    # the failed candidate is a rollout in progress: %rollback removes it
    back = ip.run_line_magic("rollback", "fraud")
    assert "fraud-canary was removed" in str(back)
    assert deployments(kube, namespace) == ["fraud"] and vs_weights(kube, namespace) == [("stable", 100)]


# ---------------------------------------------------------------------------------------------------
# the CanarySlider on the real cluster


def test_the_slider_writes_the_settled_weight_to_the_virtual_service(ip, kube, namespace):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router istio")
    ro.forget_cache()
    slider = CanarySlider("fraud", namespace=namespace, kube=kube)
    assert slider.value == 10 and not slider.slider.disabled  # the canary pod is ready
    assert "stable 90% / canary 10%" in slider.split.value
    for percent in (12, 18, 25, 31, 35):  # no event loop here: nothing is written until flush()
        slider.value = percent
    assert vs_weights(kube, namespace) == [("stable", 90), ("canary", 10)]
    slider.flush()
    assert slider.writes == 1 and vs_weights(kube, namespace) == [("stable", 65), ("canary", 35)]
    assert "stable 65% / canary 35%" in slider.split.value  # read back from the VirtualService
    assert ro.read("fraud", namespace=namespace, kube=kube).weight == 35

    ip.run_line_magic("config", "MLDeploy.interactive = 'yes'")  # in a frontend %canary shows the slider
    shown = ip.run_line_magic("canary", "fraud")
    assert isinstance(shown, CanarySlider) and shown.value == 35

    slider.promote()
    assert slider.over and "Promoted fraud: version 2.0 is now the stable model" in slider.message.value
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V2


def test_the_slider_on_an_event_loop_moves_the_http_route_once(ip, kube, namespace):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 20 --router gateway "
                                f"--gateway infra/public")

    async def until(condition) -> None:
        for _ in range(200):  # results come back through the loop
            if condition():
                return
            await asyncio.sleep(0.05)

    async def drag() -> tuple[CanarySlider, list, str]:
        slider = CanarySlider("fraud", namespace=namespace, kube=kube, debounce=0.3)
        assert slider.live
        for percent in range(21, 41):
            slider.value = percent
            await asyncio.sleep(0.02)
        await until(lambda: slider.weights is not None and slider.weights.canary == 40)
        moved, shown = route_refs(kube, namespace)[0], slider.split.value
        slider.abort()  # roll back from the widget: off the loop, reported back on it
        await until(lambda: slider.over or slider.error)
        return slider, moved, shown

    slider, moved, shown = asyncio.run(drag())
    assert slider.writes == 1 and moved == [("fraud", 60), ("fraud-canary", 40)]
    assert "stable 60% / canary 40%" in shown
    assert slider.over and slider.error == "" and "Rolled back" in slider.message.value
    assert "stable 100% / canary 0%" in slider.split.value and slider.value == 0  # read back after it
    assert deployments(kube, namespace) == ["fraud"] and route_refs(kube, namespace)[0] == [("fraud", 100)]


def test_the_slider_is_disabled_until_a_canary_pod_is_ready(ip, kube, namespace):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    ip.run_line_magic("deploy", f"fraud --image {V1}")
    result = ip.run_cell(f"%%deploy fraud --strategy canary --weight 5 --router istio --no-wait\n"
                         f"image: {V2}\n"
                         f"annotations:\n"
                         f"  sandbox.mldeploy.io/ready-delay: 60s\n")
    assert result.success, result.error_in_exec
    slider = CanarySlider("fraud", namespace=namespace, kube=kube)
    assert slider.value == 5 and slider.slider.disabled and not slider.ready
    assert "waiting for a ready canary pod" in slider.message.value
    assert not slider.abort_button.disabled  # a stuck canary can still be rolled back
    slider.value = 50  # set from code: a disabled slider does not move the route, and shows so
    slider.flush()
    assert slider.value == 5 and slider.writes == 0
    assert vs_weights(kube, namespace) == [("stable", 95), ("canary", 5)]


def test_the_slider_says_a_refused_write_in_one_sentence(ip, kube, namespace):
    from jupyter_mldeploy.widgets.canary import CanarySlider

    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router istio")
    # someone else takes the VirtualService over: our next apply conflicts, and must say so
    vs = f"/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices/fraud"
    kube.request("PATCH", vs, body={"spec": {"http": [{"route": [
        {"destination": {"host": "fraud", "subset": "stable"}, "weight": 100}]}]}},
        content_type="application/merge-patch+json", query={"fieldManager": "someone-else"})
    slider = CanarySlider("fraud", namespace=namespace, kube=kube)
    slider.value = 30
    slider.flush()
    assert slider.error and "\n" not in slider.error and slider.error.endswith(".")
    assert "#c62828" in slider.message.value
    with pytest.raises(ClusterError):
        ro.set_weight("fraud", 30, namespace=namespace, kube=kube)


def test_steps_prints_each_step_then_promotes(ip, kube, namespace, capsys):
    ip.run_line_magic("deploy", f"fraud --image {V1}")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router istio")
    capsys.readouterr()
    done = ip.run_line_magic("steps", "fraud 40,70,100 --every 1")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("Stepping the canary of fraud through 40%, 70%, 100%, watching each step for 1 s; "
                      "an unhealthy canary is rolled back.")
    # one line per step written, as it happens (the time in front varies)
    steps = [line.split("  ", 2)[2] for line in out if line.startswith("  ") and "to the canary" in line]
    assert steps == [" 40% to the canary (step 1 of 3); the next step in 1 s if it stays healthy",
                     " 70% to the canary (step 2 of 3); the next step in 1 s if it stays healthy"]
    assert str(done) == ("The canary of fraud went through 40%, 70%, 100% and was promoted: it is now the "
                         "stable model.")
    assert deployments(kube, namespace) == ["fraud"] and image(kube, namespace) == V2
    assert vs_weights(kube, namespace) == [("stable", 100)]
