"""Knative models against the sandbox with Knative Serving's real controller, webhook, autoscaler and
activator: every Revision, split and condition asserted here was made by Knative itself.

Revisions here run on simulated nodes, so no request is sent: what is checked is what Knative's route
controller computed (`status.traffic`), which is what an ingress applies. Requests through Knative's
networking layer to revisions on the real node are in tests/dataplane/test_knative_traffic.py.
"""

from __future__ import annotations

import time

import pytest
from IPython.core.error import UsageError

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.errors import RolloutFailed
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.magics.display import MLDeployFailed, Overview
from jupyter_mldeploy.rollout import Rollout
from jupyter_mldeploy.spec import DeploySpec

pytestmark = [pytest.mark.sandbox, pytest.mark.knative]

V1, V2 = "ghcr.io/acme/fraud:1.0", "ghcr.io/acme/fraud:2.0"
KSVC = "/apis/serving.knative.dev/v1/namespaces/{ns}/services/{name}"


def get(kube: Kube, path: str) -> dict | None:
    from jupyter_mldeploy.errors import ClusterError

    try:
        return kube.request("GET", path)[1]
    except ClusterError as e:
        if e.status == 404:
            return None
        raise


def ksvc(kube: Kube, ns: str, name: str = "fraud") -> dict:
    return get(kube, KSVC.format(ns=ns, name=name))


def routed(kube: Kube, ns: str, name: str = "fraud", timeout: float = 30) -> dict[str, int]:
    """status.traffic as Knative's route controller computed it, once it has seen the newest spec."""
    deadline = time.monotonic() + timeout
    while True:
        svc = ksvc(kube, ns, name)
        st = svc.get("status", {})
        if st.get("observedGeneration") == svc["metadata"]["generation"] and st.get("traffic"):
            out: dict[str, int] = {}
            for t in st["traffic"]:
                out[t["revisionName"]] = out.get(t["revisionName"], 0) + t["percent"]
            def entries(block: list) -> list[tuple]:
                return sorted((t["revisionName"], t["percent"], t.get("tag")) for t in block)

            if entries(svc["spec"]["traffic"]) == entries(st["traffic"]):  # 0% tagged ones too
                return {k: v for k, v in out.items() if v}
        if time.monotonic() > deadline:
            raise AssertionError(f"the route never caught up: {st}")
        time.sleep(0.3)


def revisions(kube: Kube, ns: str, name: str = "fraud") -> dict[str, dict]:
    body = kube.request("GET", f"/apis/serving.knative.dev/v1/namespaces/{ns}/revisions",
                        query={"labelSelector": f"serving.knative.dev/service={name}"})[1]
    return {r["metadata"]["name"]: r for r in body["items"]}


def condition(obj: dict, ctype: str) -> dict:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == ctype), {})


def ready(kube: Kube, ns: str, name: str = "fraud", timeout: float = 30) -> None:
    """Wait until Knative says the Service is Ready: after a split moves, its networking layer
    reconciles the new Ingress and the Service reads IngressNotConfigured until it has."""
    deadline = time.monotonic() + timeout
    while condition(ksvc(kube, ns, name), "Ready").get("status") != "True":
        if time.monotonic() > deadline:
            raise AssertionError(f"never Ready: {ksvc(kube, ns, name).get('status')}")
        time.sleep(0.3)


def left_over(kube: Kube, ns: str) -> list[str]:
    """Everything Knative or we made in the namespace for the model (Knative's kinds included)."""
    found = []
    for path in (f"/apis/serving.knative.dev/v1/namespaces/{ns}/services",
                 f"/apis/serving.knative.dev/v1/namespaces/{ns}/configurations",
                 f"/apis/serving.knative.dev/v1/namespaces/{ns}/routes",
                 f"/apis/serving.knative.dev/v1/namespaces/{ns}/revisions",
                 f"/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/{ns}/podautoscalers",
                 f"/apis/networking.internal.knative.dev/v1alpha1/namespaces/{ns}/serverlessservices",
                 f"/apis/networking.internal.knative.dev/v1alpha1/namespaces/{ns}/ingresses",
                 f"/apis/apps/v1/namespaces/{ns}/deployments", f"/api/v1/namespaces/{ns}/services",
                 f"/api/v1/namespaces/{ns}/pods"):
        for item in kube.request("GET", path)[1]["items"]:
            found.append(f"{path.rsplit('/', 1)[-1]}/{item['metadata']['name']}")
    return found


def test_deploy_canary_slider_promote_rollback_undeploy_with_the_magics(ip, kube, namespace, capsys,
                                                                        networking):
    first = ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    assert isinstance(first, rk.KnativeModel)
    rev1 = first.revision
    assert rev1.startswith("fraud-1-0-")
    assert condition(revisions(kube, namespace)[rev1], "Ready")["status"] == "True"
    assert routed(kube, namespace) == {rev1: 100}
    assert "as a Knative Service in namespace" in capsys.readouterr().out

    # A second revision at 20%: the candidate's template, the split by named revisions.
    r = ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 20 --router knative")
    assert isinstance(r, Rollout) and (r.strategy, r.router, r.weight) == ("canary", "knative", 20)
    revs = revisions(kube, namespace)
    rev2 = next(n for n in revs if n != rev1)
    assert rev2.startswith("fraud-2-0-") and condition(revs[rev2], "Ready")["status"] == "True"
    assert routed(kube, namespace) == {rev1: 80, rev2: 20}
    tags = {t["revisionName"]: t.get("tag") for t in ksvc(kube, namespace)["status"]["traffic"]}
    assert tags == {rev1: "stable", rev2: "canary"}

    # The slider's write (the same call %canary makes), then %canary itself.
    ro.forget_cache()  # the slider reads the rollout from the cluster alone
    from jupyter_mldeploy.widgets.canary import CanarySlider

    slider = CanarySlider("fraud", namespace=namespace, kube=kube)
    assert slider.value == 20 and not slider.slider.disabled  # the candidate revision is Ready
    for percent in (30, 40, 45):
        slider.value = percent  # no event loop: nothing is written until flush()
    assert routed(kube, namespace) == {rev1: 80, rev2: 20}
    slider.flush()
    assert slider.writes == 1 and routed(kube, namespace) == {rev1: 55, rev2: 45}
    # The picture's pods are the revisions' (a Knative canary has no fraud-canary Deployment).
    assert slider.pods["stable"].desired == 1 and slider.pods["canary"].desired == 1
    moved = ip.run_line_magic("canary", "fraud 50")
    assert moved.weight == 50 and routed(kube, namespace) == {rev1: 50, rev2: 50}
    capsys.readouterr()
    ip.run_line_magic("canary", "fraud")  # headless: the split as text
    picture = capsys.readouterr().out
    assert "fraud: stable 50% / canary 50% via knative" in picture and "/1 ready" in picture
    assert ro.read("fraud", namespace=namespace, kube=kube).weight == 50  # from the cluster alone

    with pytest.raises(MLDeployFailed, match="fraud has a canary rollout in progress: promote it or roll it "
                                             "back first"):
        ip.run_line_magic("deploy", "fraud --image ghcr.io/acme/fraud:3.0 --router knative")

    if networking:
        ready(kube, namespace)
    view = ip.run_line_magic("rollout", "fraud")
    assert isinstance(view, rk.KnativeStatus)
    text = str(view)
    assert rev1 in text and rev2 in text and "50%" in text
    # Without a networking layer the view says why no request reaches the revisions; with one, not.
    assert ("IngressNotConfigured" in text) is not networking

    # Promote: the candidate revision takes all traffic and becomes the stable one; nothing restarts.
    change = ip.run_line_magic("promote", "fraud")
    assert "Promoted fraud: the revision of version 2.0 now answers every request" in str(change)
    assert routed(kube, namespace) == {rev2: 100}
    assert ro.read("fraud", namespace=namespace, kube=kube) is None
    assert set(revisions(kube, namespace)) == {rev1, rev2}

    # Roll back to the first revision: Knative reuses it (same name, same spec), no third revision.
    back = ip.run_line_magic("rollback", "fraud")
    assert isinstance(back, rk.KnativeModel) and back.revision == rev1
    assert routed(kube, namespace) == {rev1: 100}
    svc = ksvc(kube, namespace)
    assert svc["spec"]["template"]["metadata"]["name"] == rev1
    assert svc["status"]["latestCreatedRevisionName"] == rev1
    assert set(revisions(kube, namespace)) == {rev1, rev2}

    ip.run_line_magic("undeploy", "fraud")
    deadline = time.monotonic() + 90
    while (left := left_over(kube, namespace)) != ["services/kubernetes"] and left and \
            time.monotonic() < deadline:
        time.sleep(1)
    assert left_over(kube, namespace) in ([], ["services/kubernetes"])


def test_the_python_api_blue_green_and_abort(kube, knative, namespace):
    rk.deploy(DeploySpec(name="fraud", image=V1, namespace=namespace), kube=kube, timeout=120)
    stable = ksvc(kube, namespace)["spec"]["template"]["metadata"]["name"]
    r = ro.start(DeploySpec(name="fraud", image=V2, namespace=namespace), strategy="blue-green",
                 router="knative", kube=kube, timeout=120)
    preview = ksvc(kube, namespace)["metadata"]["annotations"]["mldeploy.io/candidate-revision"]
    assert r.weight == 0 and routed(kube, namespace) == {stable: 100}
    tags = {t["revisionName"]: t.get("tag") for t in ksvc(kube, namespace)["status"]["traffic"]}
    assert tags[preview] == "preview"  # a 0% revision Knative still routes by its tag's URL
    switched = ro.promote("fraud", namespace=namespace, kube=kube, timeout=120)
    assert switched.weight == 100 and routed(kube, namespace) == {preview: 100}
    ro.abort("fraud", namespace=namespace, kube=kube)  # switch back, the rollout ends
    assert routed(kube, namespace) == {stable: 100}
    assert ro.read("fraud", namespace=namespace, kube=kube) is None

    r = ro.start(DeploySpec(name="fraud", image=V2, namespace=namespace), strategy="canary",
                 router="knative", weight=10, kube=kube, timeout=120)
    r = ro.steps("fraud", [10, 30, 100], once=True, namespace=namespace, kube=kube)
    assert r.weight == 30 and routed(kube, namespace) == {stable: 70, preview: 30}
    assert ro.steps("fraud", [10, 30, 100], once=True, namespace=namespace, kube=kube) is None  # promoted
    assert routed(kube, namespace) == {preview: 100}


def test_min_scale_one_keeps_a_pod_and_the_scale_options_reach_the_revision(ip, kube, namespace):
    model = ip.run_line_magic("deploy", f"fraud --image {V1} --router knative --min-scale 1 --max-scale 3 "
                                        f"--concurrency 10")
    rev = revisions(kube, namespace)[model.revision]
    ann = rev["metadata"]["annotations"]
    assert (ann["autoscaling.knative.dev/min-scale"], ann["autoscaling.knative.dev/max-scale"],
            ann["autoscaling.knative.dev/target"]) == ("1", "3", "10")
    pa_path = (f"/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/{namespace}/podautoscalers/"
               f"{model.revision}")
    # The autoscaler reconciles the PodAutoscaler: it asks for one pod and keeps it (no request comes).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pa = get(kube, pa_path)
        assert pa["status"].get("desiredScale", 1) >= 1
        time.sleep(2)
    dep = get(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/{model.revision}-deployment")
    assert dep["spec"]["replicas"] == 1 and dep["status"].get("readyReplicas") == 1
    assert condition(get(kube, pa_path), "ScaleTargetInitialized")["status"] == "True"


def test_shadow_is_refused_before_anything_is_written(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")

    def ours(svc: dict) -> tuple:
        """What a write of ours would change. Not resourceVersion: Knative's controllers go on writing
        the status (its networking layer marks the ingress Ready after deploy returned)."""
        meta = svc["metadata"]
        return meta["generation"], meta.get("labels"), meta.get("annotations"), svc["spec"]

    before = ours(ksvc(kube, namespace))
    with pytest.raises(UsageError, match="Knative Serving's traffic block only splits by percent with no "
                                         "mirroring"):
        ip.run_line_magic("deploy", f"fraud --image {V2} --strategy shadow --router knative")
    with pytest.raises(Exception, match="cannot mirror|no mirroring"):
        ro.start(DeploySpec(name="fraud", image=V2, namespace=namespace), strategy="shadow",
                 router="knative", kube=kube)
    assert ours(ksvc(kube, namespace)) == before


def test_an_image_knative_cannot_resolve_is_said_in_plain_words(ip, kube, namespace):
    # registry.invalid is not in registries-skipping-tag-resolving: Knative asks it for a digest, and
    # from its network namespace (no route out) the lookup fails at once.
    with pytest.raises(MLDeployFailed, match=r"could not resolve image registry\.invalid/acme/fraud:1\.0 "
                                             r"to a digest"):
        ip.run_line_magic("deploy", "fraud --image registry.invalid/acme/fraud:1.0 --router knative")


def test_a_revision_that_never_becomes_ready_is_said_in_plain_words(kube, knative, namespace):
    spec = DeploySpec.from_dict({"name": "fraud", "image": V1, "namespace": namespace,
                                 "labels": {"sandbox.mldeploy.io/fail": "never-ready"},
                                 "annotations": {"serving.knative.dev/progress-deadline": "15s"}})
    with pytest.raises(RolloutFailed, match="never became ready: its pods did not turn Ready within its "
                                            r"progress deadline \(15s\)"):
        rk.deploy(spec, kube=kube, timeout=120)
    st = rk.status("fraud", namespace=namespace, kube=kube)
    assert st.revisions[0].ready == "False" and st.revisions[0].problem


def test_mldeploy_says_knative_is_driven_and_what_it_lacks(ip, kube, namespace, networking):
    ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    view = ip.run_line_magic("mldeploy", "")
    assert isinstance(view, Overview)
    text = str(view)
    assert "knative (Knative Service traffic split between named revisions, driven by %deploy --router " \
           "knative" in text
    assert "Knative Serving components running: controller, webhook, autoscaler, activator." in text
    lacks = "no networking layer makes a KIngress Ready, so routes stay IngressNotConfigured"
    assert (lacks in text) is not networking
    if networking:  # Traefik made the route's KIngress Ready: nothing is lacking
        assert "activator. Lacking" not in text
    assert "fraud: fraud-1-0-" in text and "100%" in text
    assert "fraud-1-0-" not in text.split("Knative Services")[0]  # its Deployment is not a model row


def test_steps_with_the_magic_and_names_knative_cannot_take(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1} --router knative")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router knative")
    step = ip.run_line_magic("steps", "fraud 10,40,100 --once")
    assert "now answers 40% of requests (step 2 of 3" in str(step)
    assert sorted(routed(kube, namespace).values()) == [40, 60]
    done = ip.run_line_magic("steps", "fraud 10,40,100 --once")
    assert "was promoted" in str(done) and list(routed(kube, namespace).values()) == [100]
    assert ro.read("fraud", namespace=namespace, kube=kube) is None

    # A model deployed without Knative holds the Service name Knative's route needs: refused, unwritten.
    ip.run_line_magic("deploy", f"plain --image {V1}")
    with pytest.raises(MLDeployFailed, match="A Service named plain already exists in namespace"):
        ip.run_line_magic("deploy", f"plain --image {V2} --router knative")
    assert ksvc(kube, namespace, "plain") is None


def test_a_knative_candidate_is_the_stable_revision_with_only_the_asked_changes(ip, kube, namespace):
    ip.run_line_magic("deploy", f"fraud --image {V1} --router knative --env LOG=debug --cpu 250m")
    ip.run_line_magic("deploy", f"fraud --image {V2} --strategy canary --weight 10 --router knative")
    svc = ksvc(kube, namespace)
    container = svc["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == V2  # the change asked
    assert {"name": "LOG", "value": "debug"} in container["env"]  # inherited from the stable revision
    assert container["resources"]["requests"]["cpu"] == "250m"
    cand = svc["metadata"]["annotations"]["mldeploy.io/candidate-revision"]
    assert cand.startswith("fraud-2-0-") and routed(kube, namespace)[cand] == 10
