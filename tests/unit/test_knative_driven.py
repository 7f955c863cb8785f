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


# -- the traffic block, a stale view, our intent, ownership, leases: pure parts of the driver ----------


@pytest.mark.parametrize("weight", [0, 1, 20, 50, 99, 100])
def test_the_traffic_block_names_both_revisions_tags_them_and_adds_up(weight):
    block = rk.traffic_block("canary", weight, "churn-1-4-aaaaa", "churn-1-5-bbbbb")
    assert block == [{"revisionName": "churn-1-4-aaaaa", "percent": 100 - weight, "tag": "stable"},
                     {"revisionName": "churn-1-5-bbbbb", "percent": weight, "tag": "canary"}]
    kn.service("churn", "ml", template={"metadata": {}, "spec": {}}, traffic=block, labels={}, state={})


def test_a_blue_green_preview_at_zero_keeps_its_tag_and_no_candidate_is_all_stable():
    assert rk.traffic_block("blue-green", 0, "a", "b")[1] == {"revisionName": "b", "percent": 0,
                                                             "tag": "preview"}
    alone = [{"revisionName": "a", "percent": 100, "tag": "stable"}]
    assert rk.traffic_block("canary", 0, "a", None) == alone


@pytest.mark.parametrize("args, words", [
    (("canary", 101, "a", "b"), "from 0 to 100, not 101"),
    (("canary", -1, "a", "b"), "from 0 to 100, not -1"),
    (("canary", True, "a", "b"), "not True"),
    (("canary", 2.5, "a", "b"), "not 2.5"),
    (("canary", 10, "a", "a"), "both a"),
    (("shadow", 10, "a", "b"), "has no candidate revision"),
])
def test_a_bad_traffic_block_is_one_sentence(args, words):
    with pytest.raises(SpecError, match=words):
        rk.traffic_block(*args)


def _rollout(**kw):
    from jupyter_mldeploy.rollout import Rollout

    return Rollout(**{"name": "churn", "namespace": "ml", "strategy": "canary", "router": "knative",
                      "weight": 20, "stable_version": "1.4", "candidate_version": "1.5", **kw})


def test_a_view_is_stale_when_the_rollout_it_shows_is_not_the_clusters():
    held = {"mldeploy.io/strategy": "canary", "mldeploy.io/stable-version": "1.4",
            "mldeploy.io/candidate-version": "1.5", "mldeploy.io/weight": "60"}
    assert rk.stale_view(_rollout(), held) is None  # another weight: moving it is what is asked
    promoted = {"mldeploy.io/stable-version": "1.5"}
    assert "no rollout in progress any more" in rk.stale_view(_rollout(), promoted)
    other = {**held, "mldeploy.io/stable-version": "1.5", "mldeploy.io/candidate-version": "1.6"}
    words = rk.stale_view(_rollout(), other)
    assert "now canary from 1.5 to 1.6, not canary from 1.4 to 1.5" in words
    assert "nothing was written" in words
    assert "now blue-green" in rk.stale_view(_rollout(), {**held, "mldeploy.io/strategy": "blue-green"})


def test_our_intent_is_read_back_without_the_webhooks_defaults_or_knatives_annotations():
    ours = rk.manifest(spec(), "ml", rk.Scale(min=0, max=3))
    live = json.loads(json.dumps(ours))
    live["metadata"].update(uid="u1", resourceVersion="7", generation=1)
    live["metadata"]["annotations"].update({"serving.knative.dev/creator": "admin",
                                            "serving.knative.dev/lastModifier": "admin"})
    c = live["spec"]["template"]["spec"]["containers"][0]
    c["readinessProbe"]["httpGet"]["port"] = 0  # what the webhook fills in
    c["resources"] = {"requests": {"cpu": "25m"}}
    live["spec"]["template"]["spec"].update(containerConcurrency=0, timeoutSeconds=300,
                                            enableServiceLinks=False)
    live["spec"]["traffic"][0]["latestRevision"] = False
    live["status"] = {"traffic": [{"revisionName": "x", "percent": 100}]}
    assert rk.intent_of(live) == ours


def test_revisions_are_ours_by_the_services_uid_and_a_hand_edited_generation_is_no_traceback():
    ksvc = {"metadata": {"uid": "u1"}}
    mine = {"metadata": {"name": "a", "labels": {"serving.knative.dev/serviceUID": "u1",
                                                 "serving.knative.dev/configurationGeneration": "2"}}}
    earlier = {"metadata": {"name": "b", "labels": {"serving.knative.dev/serviceUID": "u0"}}}
    unlabelled = {"metadata": {"name": "c", "labels": {}}}
    assert rk.revisions_of(ksvc, [mine, earlier, unlabelled]) == [mine]
    assert rk._generation(mine) == 2
    edited = {"metadata": {"labels": {"serving.knative.dev/configurationGeneration": "x1"}}}
    assert rk._generation(edited) == 0


def _anchor(*objects):
    from jupyter_mldeploy.kube import owner

    return owner.Anchor("ml", "churn", "anchor-uid", "1", objects={o.key: o for o in objects})


def _svc(owner_uid: str | None, manager: str = "kubectl-create") -> dict:
    refs = [{"uid": owner_uid}] if owner_uid else []
    return {"metadata": {"name": "churn", "ownerReferences": refs,
                         "managedFields": [{"manager": manager, "operation": "Update"}]}}


def test_the_name_is_free_only_when_no_service_and_no_plain_object_holds_it():
    from jupyter_mldeploy.kube.owner import Owned

    assert rk._plain_refusal("churn", "ml", None, _anchor()) is None
    ksvc_only = _anchor(Owned("serving.knative.dev/v1", "Service", "churn", "k1", None))
    assert rk._plain_refusal("churn", "ml", None, ksvc_only) is None
    foreign = rk._plain_refusal("churn", "ml", _svc(None), _anchor())
    assert "is not jupyter-mldeploy's (it is managed by kubectl-create)" in foreign
    assert "left as it was" in foreign
    plain = rk._plain_refusal("churn", "ml", _svc("anchor-uid"), _anchor())
    assert "is deployed without Knative" in plain and "%undeploy churn first" in plain
    half = _anchor(Owned("apps/v1", "Deployment", "churn", "d1", "stable"))  # its Service was removed
    assert "is deployed without Knative" in rk._plain_refusal("churn", "ml", None, half)


def test_a_component_runs_when_its_lease_is_fresh_by_the_servers_clock():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=timezone.utc)

    def lease(name, renewed, holder="x", duration=15):
        return {"metadata": {"name": name}, "spec": {"holderIdentity": holder, "renewTime": renewed,
                                                     "leaseDurationSeconds": duration}}
    leases = [lease("controller.knative.dev.serving.pkg.reconciler.route.reconciler.00-of-01",
                    "2026-12-02T11:59:50.000000Z"),
              lease("webhook.defaultingwebhook.00-of-01", "2026-12-02T11:50:00.000000Z"),  # 10 min old
              lease("autoscaler-bucket-00-of-01", "2026-12-02T11:59:59Z", holder=""),  # released
              lease("controller.other", "not a time", duration="15")]
    assert rk.lease_holders(leases, now) == {"controller": True, "webhook": False, "autoscaler": False}
    assert rk.lease_holders(leases, None)["webhook"] is True  # unknown server time: a held lease counts


def test_what_knative_lacks_is_said_per_component():
    everything = {"controller": True, "webhook": True, "autoscaler": True, "activator": True}
    assert rk.describe_components(everything, True) == ("Knative Serving components running: controller, "
                                                        "webhook, autoscaler, activator.")
    words = rk.describe_components({**everything, "autoscaler": False}, None)
    assert "Lacking: Knative's autoscaler does not run, so no PodAutoscaler is reconciled" in words
    assert "routes stay IngressNotConfigured" in words and "(no KIngress yet)" in words
    assert rk.describe_components(dict.fromkeys(everything, False), False).startswith(
        "Knative Serving's API is served but none of its components runs.")


def test_a_blue_green_split_is_settled_only_once_the_zero_percent_preview_is_routed_too():
    block = rk.traffic_block("blue-green", 0, "a", "b")
    ksvc = {"metadata": {"name": "churn", "namespace": "ml", "generation": 4},
            "spec": {"traffic": block},
            "status": {"observedGeneration": 4, "traffic": [{"revisionName": "a", "percent": 100,
                                                             "tag": "stable"}]}}
    assert not rk._status_of(ksvc, []).settled  # same shares, but the preview's tag is not routed yet
    ksvc["status"]["traffic"] = [dict(t) for t in block]
    assert rk._status_of(ksvc, []).settled


def test_a_status_update_by_knative_is_no_conflict_but_any_other_writer_is():
    before = {"metadata": {"uid": "u1", "generation": 3, "resourceVersion": "10", "labels": {"a": "1"},
                           "annotations": {"mldeploy.io/weight": "20", "serving.knative.dev/creator": "x"},
                           "ownerReferences": [{"uid": "anchor"}]},
              "spec": {"traffic": []}, "status": {"observedGeneration": 2}}
    status_only = json.loads(json.dumps(before))
    status_only["metadata"]["resourceVersion"] = "11"
    status_only["status"] = {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True"}]}
    assert rk.only_knative_wrote(before, status_only)
    for change in ({"generation": 4}, {"uid": "u2"}, {"labels": {}}, {"ownerReferences": []},
                   {"annotations": {"mldeploy.io/weight": "70", "serving.knative.dev/creator": "x"}}):
        other = json.loads(json.dumps(status_only))
        other["metadata"].update(change)
        assert not rk.only_knative_wrote(before, other), change
