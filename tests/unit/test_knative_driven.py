"""The pure parts of the Knative driver: revision names and templates, scale options, the Service, the
line parser's Knative options, and failures read from Revision conditions. No cluster."""

from __future__ import annotations

import json

import pytest

from jupyter_mldeploy import rollout_knative as rk
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.magics.args import parse_deploy
from jupyter_mldeploy.render.routers import knative as kn
from jupyter_mldeploy.sandbox import knative as sandbox_kn
from jupyter_mldeploy.spec import DeploySpec

V1 = "ghcr.io/acme/churn:1.4"


def spec(**kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "churn", "image": V1, "namespace": "ml", **kw})


def test_same_spec_same_revision_and_any_change_a_new_one():
    base = rk.template(spec(), "ml", rk.Scale())["metadata"]["name"]
    assert base.startswith("churn-1-4-") and len(base) == len("churn-1-4-") + 5
    assert rk.template(spec(), "ml", rk.Scale())["metadata"]["name"] == base  # stable: rollback reuses it
    changed = [rk.template(spec(image="ghcr.io/acme/churn:1.5"), "ml", rk.Scale()),
               rk.template(spec(cpu="2"), "ml", rk.Scale()),            # same version, other spec
               rk.template(spec(env={"A": "1"}), "ml", rk.Scale()),
               rk.template(spec(), "ml", rk.Scale(min=0)),             # the scale is in the template too
               rk.template(spec(labels={"team": "x"}), "ml", rk.Scale())]
    names = {t["metadata"]["name"] for t in changed}
    assert base not in names and len(names) == len(changed)


def test_a_template_carries_its_spec_and_scale_and_no_track():
    t = rk.template(spec(), "ml", rk.Scale(min=2, max=5, target=7))
    ann = t["metadata"]["annotations"]
    assert (ann[kn.MIN_SCALE], ann[kn.MAX_SCALE], ann[kn.TARGET]) == ("2", "5", "7")
    back, scale = rk.spec_of(t)
    assert back == spec() and scale == rk.Scale(min=2, max=5, target=7)
    assert "mldeploy.io/track" not in t["metadata"]["labels"]  # a revision changes role, not name
    probe = t["spec"]["containers"][0]["readinessProbe"]
    assert (probe["timeoutSeconds"], probe["successThreshold"]) == (1, 1)  # sent, or updates look changed
    assert json.loads(ann[kn.SPEC])["image"] == V1


@pytest.mark.parametrize("kw, words", [
    ({"min": -1}, "min-scale must be a whole number of at least 0, got -1."),
    ({"max": 0}, "max-scale must be a whole number of at least 1, got 0."),
    ({"target": 0}, "concurrency target must be a whole number of at least 1, got 0."),
    ({"min": 3, "max": 2}, "min-scale 3 is more than max-scale 2"),
    ({"min": True}, "min-scale must be a whole number"),
    ({"min": "1"}, "min-scale must be a whole number"),
])
def test_bad_scale_is_one_sentence(kw, words):
    with pytest.raises(SpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
        rk.Scale(**kw)


@pytest.mark.parametrize("kw, words", [
    ({"autoscale": "2:10:70", "cpu": "1"}, "Knative's own autoscaler sizes each revision"),
    ({"replicas": 3}, "Knative's autoscaler sets the number of pods"),
    ({"expose": "ingress", "host": "churn.example.com"}, "the model's address is its Knative route"),
    ({"strategy": "recreate"}, "Knative always starts a new revision before it retires the old one"),
])
def test_what_a_knative_service_cannot_carry_is_refused(kw, words):
    with pytest.raises(SpecError, match=words):
        rk.manifest(spec(**kw), "ml")


def test_the_service_names_revisions_and_refuses_a_bad_split():
    m = rk.manifest(spec(), "ml", rk.Scale(min=0))
    rev = m["spec"]["template"]["metadata"]["name"]
    assert m["spec"]["traffic"] == [{"revisionName": rev, "percent": 100, "tag": "stable"}]
    assert m["metadata"]["annotations"]["mldeploy.io/router"] == "knative"
    assert "resourceVersion" not in m["metadata"]
    with pytest.raises(SpecError, match="add up to 90, not 100"):
        kn.service("churn", "ml", template=m["spec"]["template"], labels={}, state={},
                   traffic=[{"revisionName": rev, "percent": 90, "tag": "stable"}])
    with_rv = kn.service("churn", "ml", template=m["spec"]["template"], labels={}, state={},
                         traffic=m["spec"]["traffic"], resource_version="42")
    assert with_rv["metadata"]["resourceVersion"] == "42"  # the read-modify-write precondition


def test_the_line_takes_knative_options_only_with_the_knative_router():
    r = parse_deploy(f"churn --image {V1} --router knative --min-scale 0 --max-scale 4 --concurrency 8")
    assert (r.router, r.rollout, r.knative_scale) == ("knative", None, {"min": 0, "max": 4, "target": 8})
    r = parse_deploy(f"churn --image {V1} --strategy canary --weight 20 --router knative")
    assert (r.router, r.rollout, r.weight, r.knative_scale) == ("knative", "canary", 20, None)


def _revision(conditions: list[dict], annotations: dict | None = None) -> dict:
    return {"metadata": {"name": "churn-1-4-abcde", "annotations": annotations or {}},
            "spec": {"containers": [{"image": "registry.invalid/acme/churn:1.4"}]},
            "status": {"conditions": conditions}}


def test_failures_are_read_from_the_revision_conditions():
    missing = _revision([
        {"type": "Ready", "status": "False", "reason": "ContainerMissing",
         "message": 'Unable to fetch image "registry.invalid/acme/churn:1.4": failed to resolve image to '
                    'digest: Get "https://registry.invalid/v2/": dial tcp: lookup registry.invalid: '
                    'no such host'},
        {"type": "ContainerHealthy", "status": "False", "reason": "ContainerMissing"}])
    words = rk.explain_revision(missing)
    assert words.startswith("Knative could not resolve image registry.invalid/acme/churn:1.4 to a digest")
    assert "no such host" in words and "registries-skipping-tag-resolving" in words
    deadline = "ProgressDeadlineExceeded"
    stuck = _revision([{"type": "Ready", "status": "False", "reason": deadline},
                       {"type": "ResourcesAvailable", "status": "False", "reason": deadline}],
                      {"serving.knative.dev/progress-deadline": "15s"})
    assert "never became ready" in rk.explain_revision(stuck) and "(15s)" in rk.explain_revision(stuck)
    starting = _revision([{"type": "Ready", "status": "Unknown", "reason": "Deploying"}])
    assert rk.explain_revision(starting) is None
    assert rk.explain_revision(_revision([{"type": "Ready", "status": "True"}])) is None


def test_the_route_split_is_what_the_controller_computed():
    ksvc = {"metadata": {"name": "churn", "namespace": "ml", "generation": 3},
            "spec": {"traffic": [{"revisionName": "a", "percent": 80}, {"revisionName": "b", "percent": 20}]},
            "status": {"observedGeneration": 2,
                       "traffic": [{"revisionName": "a", "percent": 100, "tag": "stable"}],
                       "conditions": [{"type": "Ready", "status": "Unknown",
                                       "reason": "IngressNotConfigured"}]}}
    st = rk._status_of(ksvc, [])
    assert st.routed == {"a": 100} and st.asked == {"a": 80, "b": 20} and not st.settled
    assert any("IngressNotConfigured" in n for n in st.notes)
    ksvc["status"].update(observedGeneration=3, traffic=[{"revisionName": "a", "percent": 80},
                                                         {"revisionName": "b", "percent": 20}])
    assert rk._status_of(ksvc, []).settled


def test_the_sandbox_network_plan_keeps_components_apart():
    net = sandbox_kn.Net(17500)
    ips = {net.ip(c) for c in sandbox_kn.COMPONENTS}
    assert len(ips) == 4 and net.host_ip not in ips and all(ip.startswith("10.251.") for ip in ips)
    assert all(len(net.veth(c)) <= 15 for c in sandbox_kn.COMPONENTS)  # Linux interface names
    assert len({net.veth(c) for c in sandbox_kn.COMPONENTS}) == 4


def test_the_status_view_lists_revisions_with_their_share_as_text_and_html():
    ksvc = {"metadata": {"name": "churn", "namespace": "ml", "generation": 2},
            "spec": {"traffic": [{"revisionName": "churn-1-4-aaaaa", "percent": 70, "tag": "stable"},
                                 {"revisionName": "churn-1-5-bbbbb", "percent": 30, "tag": "canary"}]},
            "status": {"observedGeneration": 2, "url": "http://churn.ml.svc.cluster.local",
                       "traffic": [{"revisionName": "churn-1-4-aaaaa", "percent": 70, "tag": "stable"},
                                   {"revisionName": "churn-1-5-bbbbb", "percent": 30, "tag": "canary"}],
                       "conditions": [{"type": "Ready", "status": "Unknown",
                                       "reason": "IngressNotConfigured"}]}}

    def rev(name: str, gen: int, version: str, ready: str) -> dict:
        return {"metadata": {"name": name, "labels": {"serving.knative.dev/configurationGeneration": str(gen),
                                                      "app.kubernetes.io/version": version}},
                "spec": {"containers": [{"image": f"ghcr.io/acme/churn:{version}"}]},
                "status": {"actualReplicas": 1, "desiredReplicas": 1,
                           "conditions": [{"type": "Ready", "status": ready}]}}

    st = rk._status_of(ksvc, [rev("churn-1-4-aaaaa", 1, "1.4", "True"),
                              rev("churn-1-5-bbbbb", 2, "1.5", "True")])
    text = str(st)
    assert "churn-1-4-aaaaa   1.4       70%       stable" in text
    assert "churn-1-5-bbbbb   1.5       30%       canary" in text and "IngressNotConfigured" in text
    page = st._repr_html_()
    assert "<td>churn-1-5-bbbbb</td><td>1.5</td><td>30%</td><td>canary</td>" in page
    assert st.settled and st.revision("churn-1-5-bbbbb").actual == 1
