"""The pure parts of trustworthy rollouts: inheritance, promotion's spec, route annotations, redaction,
Secret references, and the sentences a refused write says (from the API server's clocks only)."""

from __future__ import annotations

import pytest

from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy import traffic
from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.render import redact, redact_pair, render
from jupyter_mldeploy.render.routers import route_for
from jupyter_mldeploy.spec import DeploySpec, changes_of, inherit

V1, V2 = "ghcr.io/acme/churn:1.4", "ghcr.io/acme/churn:1.5"
AUTH = {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check"}


def production(**kw) -> DeploySpec:
    return DeploySpec.from_dict({
        "name": "churn", "image": V1, "version": "1.4", "cpu": "2", "memory": "4Gi", "replicas": 3,
        "env": {"MODEL_STAGE": "prod"}, "env_from_secret": {"DB_PASSWORD": "db-creds:password"},
        "readiness": {"path": "/healthz", "period": 5}, "liveness": None,
        "image_pull_secrets": ["regcred"], "pod_security": "restricted", "pvc": "models:/models",
        "node_selector": {"pool": "inference"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
        "labels": {"team": "risk"}, "annotations": AUTH, **kw})


# ---------------------------------------------------------------------------------------------------
# the candidate inherits


def test_a_candidate_is_the_stable_spec_with_only_the_given_fields_changed():
    stable = production()
    cand = inherit(stable, {"image": V2})
    assert str(cand.image) == V2 and cand.effective_version == "1.5"  # the pinned 1.4 went with the image
    assert cand.with_(image=stable.image, version="1.4") == stable  # nothing else differs


def test_mappings_merge_key_by_key_and_a_moved_env_name_keeps_only_its_new_source():
    cand = inherit(production(), {"env": {"LOG": "debug"}, "annotations": {"team.io/owner": "ana"}})
    assert dict(cand.env) == {"MODEL_STAGE": "prod", "LOG": "debug"}
    assert dict(cand.annotations) == {**AUTH, "team.io/owner": "ana"}
    moved = inherit(production(), {"env_from_secret": {"MODEL_STAGE": "stage:name"}})
    assert dict(moved.env) == {} and moved.env_from_secret["MODEL_STAGE"] == "stage:name"


def test_a_change_that_contradicts_the_stable_replaces_the_contradicted_fields():
    autoscaled = inherit(production(), {"autoscale": "2:10:70"})
    assert autoscaled.replicas is None and autoscaled.autoscale.max == 10
    sized = inherit(production(autoscale="2:10", replicas=None), {"replicas": 1})
    assert sized.replicas == 1 and sized.autoscale is None


def test_changes_are_refused_in_one_sentence_before_anything_is_sent():
    with pytest.raises(SpecError, match="^name cannot be changed by a rollout"):
        inherit(production(), {"name": "other"})
    with pytest.raises(SpecError, match="unknown field 'imag' in the changes; did you mean 'image'"):
        inherit(production(), {"imag": V2})
    with pytest.raises(SpecError, match="replicas must be a whole number"):
        inherit(production(), {"replicas": "three"})


def test_a_deployspec_as_the_changes_means_its_fields_that_are_not_defaults():
    assert changes_of(DeploySpec("churn", V2)) == {"image": V2}
    assert changes_of(DeploySpec("churn", V2, namespace="ml", track="canary", env={"A": "1"})) == {
        "image": V2, "env": {"A": "1"}}
    assert changes_of(DeploySpec("churn", V2, readiness=None))["readiness"] is None  # probe turned off


def test_promotion_makes_the_stable_exactly_the_candidate_with_its_own_size_and_exposure():
    stable = production(expose="ingress", ingress_class="nginx", host="churn.example.com")
    # what the candidate's release record holds: another image and env, and (replicas router) one pod
    cand = inherit(stable, {"image": V2, "env": {"LOG": "debug"}}).with_(track="canary", replicas=1)
    promoted = ro._promoted(stable, cand)
    assert promoted.track == "stable" and str(promoted.image) == V2
    assert promoted.replicas == 3  # the stable's own count: a split's count never leaks in
    exposure = (promoted.expose, promoted.host, promoted.ingress_class)
    assert exposure == ("ingress", "churn.example.com", "nginx")
    assert promoted.with_(replicas=1, track="canary") == cand  # everything else is the candidate's


def test_the_dry_run_diff_shows_the_whole_candidate_with_changes_marked_and_values_hidden():
    stable = DeploySpec.from_dict({"name": "churn", "image": V1, "cpu": "500m",
                                   "env": {"MODEL_STAGE": "prod", "LOG": "info"}})
    cand = inherit(stable, {"image": V2, "env": {"LOG": "debug"}}).with_(track="canary")
    assert ro._spec_diff(stable, cand, show_values=False) == (
        "--- stable/churn\n+++ candidate/churn-canary\n@@ -1,6 +1,6 @@\n name: churn\n"
        f"-image: {V1}\n+image: {V2}\n cpu: 500m\n env:\n   MODEL_STAGE: <redacted>\n"
        "-  LOG: <redacted>\n+  LOG: <redacted, changed>\n")
    assert "+  LOG: debug\n" in ro._spec_diff(stable, cand, show_values=True)
    same = ro._spec_diff(stable, stable, show_values=False)
    assert same == "The candidate is the same spec as the stable churn.\n"


# ---------------------------------------------------------------------------------------------------
# routes keep the spec's own annotations


@pytest.mark.parametrize("router, extra", [
    ("gateway", {"gateway": "infra/public", "host": "churn.example.com"}),
    ("istio", {}), ("nginx", {"host": "churn.example.com"}), ("replicas", {}),
])
def test_every_route_object_carries_the_specs_annotations_under_the_rollout_state(router, extra):
    objects = route_for(router, "churn", "ml", stable_weight=90, candidate_weight=10, labels={},
                        state={"mldeploy.io/strategy": "canary"}, annotations=AUTH, **extra)
    assert objects
    for obj in objects:
        ann = obj["metadata"]["annotations"]
        assert ann.items() >= AUTH.items() and ann["mldeploy.io/router"] == router


def test_a_route_refuses_an_annotation_in_our_own_prefix():
    with pytest.raises(SpecError, match="the mldeploy.io/ prefix is jupyter-mldeploy's own"):
        route_for("istio", "churn", "ml", stable_weight=100, candidate_weight=0, candidate_track=None,
                  labels={}, annotations={"mldeploy.io/weight": "50"})


# ---------------------------------------------------------------------------------------------------
# secrets referenced, values redacted


def test_env_from_a_secret_renders_a_secret_key_ref_and_round_trips():
    spec = DeploySpec.from_dict({"name": "churn", "image": V1, "env": {"A": "1"},
                                 "env_from_secret": {"DB": {"secret": "db-creds", "key": "pass.word"}}})
    (dep, *_rest) = render(spec, "ml")
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"},
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "pass.word"}}}]
    assert DeploySpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["env_from_secret"] == {"DB": "db-creds:pass.word"}


@pytest.mark.parametrize("refs, words", [
    ({"DB": "db-creds"}, "env_from_secret 'DB' 'db-creds' is not a Secret reference: write SECRET:KEY"),
    ({"DB": "Bad_Name:k"}, "env_from_secret 'DB' Secret name 'Bad_Name' is not a valid name"),
    ({"DB": "db:a/b"}, "env_from_secret 'DB' key 'a/b' is not a valid Secret key"),
    ({"DB": {"secret": "db"}}, "env_from_secret 'DB' needs both secret and key"),
    ({"9DB": "db:k"}, "env name '9DB' is not valid"),
    (["DB=db:k"], "env_from_secret must be a mapping of env names to SECRET:KEY, got a list."),
])
def test_a_bad_secret_reference_is_one_sentence(refs, words):
    with pytest.raises(SpecError) as e:
        DeploySpec("churn", V1, env_from_secret=refs)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_literal_env_values_are_redacted_and_references_kept():
    spec = production()
    shown = redact(render(spec, "ml"))
    env = shown[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "MODEL_STAGE", "value": "<redacted>"}
    assert env[1]["valueFrom"]["secretKeyRef"] == {"name": "db-creds", "key": "password"}
    assert render(spec, "ml")[0]["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "prod"
    dev = spec.with_(env={"MODEL_STAGE": "dev"})
    before, after = redact_pair(render(spec, "ml")[0], render(dev, "ml")[0])
    values = [e.get("value") for o in (before, after)
              for e in o["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert values == ["<redacted>", None, "<redacted, changed>", None]


# ---------------------------------------------------------------------------------------------------
# what a refused write says, by the server's clocks


def route_obj(managed_at: str, **ann) -> dict:
    return {"metadata": {"name": "churn", "resourceVersion": "2", "uid": "u",
                         "annotations": {"mldeploy.io/router": "istio", **ann},
                         "managedFields": [
                             {"manager": "jupyter-mldeploy", "operation": "Apply", "time": managed_at},
                             {"manager": "pilot", "operation": "Update", "subresource": "status",
                              "time": "2030-01-01T00:00:00Z"}]},
            "spec": {}}


def test_ages_come_from_the_servers_clocks_never_this_kernels():
    obj = route_obj("2026-12-02T10:00:00Z")
    server_now = ro._http_date("Wed, 02 Dec 2026 10:00:20 GMT")
    assert ro._ago(obj, server_now) == "20 s ago"  # the status write (another manager) does not count
    assert ro._ago(obj, ro._http_date("Wed, 02 Dec 2026 10:30:00 GMT")) == "30 min ago"
    assert ro._ago(obj, None) == ""  # no Date header: no age, rather than a guess from this kernel


def seen_with(obj: dict | None, now: str = "Wed, 02 Dec 2026 10:00:20 GMT") -> ro._Seen:
    return ro._Seen({"virtualservice/churn": obj}, None, ro._http_date(now))


def cached(**kw) -> ro.Rollout:
    return ro.Rollout("churn", "ml", "canary", "istio", **{"weight": 10, "stable_version": "1.4",
                                                           "candidate_version": "1.5", **kw})


def test_a_refusal_names_what_changed_and_how_long_ago():
    r = cached()
    promoted = route_obj("2026-12-02T10:00:00Z", **{"mldeploy.io/ended": "promoted"})
    assert ro._what_changed(r, None, seen_with(promoted)) == (
        "churn was promoted from another kernel 20 s ago; nothing was written.")
    rolled = route_obj("2026-12-02T10:00:00Z", **{"mldeploy.io/ended": "rolled-back"})
    assert ro._what_changed(r, None, seen_with(rolled)).startswith("churn was rolled back from another")
    assert ro._what_changed(r, cached(weight=50), seen_with(route_obj("2026-12-02T10:00:18Z"))) == (
        "the canary weight of churn was moved from 10% to 50% from another kernel 2 s ago; nothing was "
        "written.")
    assert ro._what_changed(r, cached(phase="promoting"), seen_with(route_obj("2026-12-02T10:00:00Z"))) == (
        "churn is being promoted from another kernel (since 20 s ago); nothing was written; if that kernel "
        "stopped, %promote churn again carries the promotion on.")
    assert "a new canary rollout of churn (candidate 1.6)" in ro._what_changed(
        r, cached(candidate_version="1.6"), seen_with(route_obj("2026-12-02T10:00:00Z")))
    assert ro._what_changed(r, None, seen_with(None)) == (
        "churn's route virtualservice/churn was removed; nothing was written.")
    # the same state (only a controller's status moved): no refusal, the write is retried
    assert ro._what_changed(r, cached(), seen_with(route_obj("2026-12-02T10:00:00Z"))) is None


def test_a_guarded_write_names_the_version_and_the_uid_it_was_based_on():
    m = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "churn", "namespace": "ml"}}
    assert ro._guarded(m, ("41", "u-1"))["metadata"] == {"name": "churn", "namespace": "ml",
                                                         "resourceVersion": "41", "uid": "u-1"}
    assert ro._guarded(m, None) is m and "resourceVersion" not in m["metadata"]


def test_a_spec_printed_in_a_notebook_shows_no_env_value():
    spec = DeploySpec("churn", V1, env={"DB_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(spec) and "'DB_PASSWORD': '<redacted>'" in repr(spec)
    assert spec.env["DB_PASSWORD"] == "hunter2"


@pytest.mark.parametrize(("text", "seconds"), [(0, 0.0), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0),
                                               ("1h", 3600.0), ("2", 2.0), (1.5, 1.5)])
def test_every_is_the_one_duration_rule(text, seconds):
    assert ro.parse_every(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "1d", True, None])
def test_every_refuses(text):
    with pytest.raises(SpecError, match="^every "):
        ro.parse_every(text)


@pytest.mark.parametrize(("schedule", "weights"), [("10,25,50,100", (10, 25, 50, 100)),
                                                   ("10%, 50%", (10, 50)), ([10, 30, 100], (10, 30, 100)),
                                                   ((100,), (100,))])
def test_schedule_rule(schedule, weights):
    assert traffic.check_schedule(schedule) == weights


@pytest.mark.parametrize(("schedule", "message"), [
    ("10,x,100", "steps '10,x,100' is not a list of whole percents: write rising weights separated by "
                 "commas, such as 10,25,50,100."),
    ([10, 10, 100], "steps [10, 10, 100] must rise from 1 to at most 100, each weight once, such as "
                    "10,25,50,100."),
    ([50, 25], "steps [50, 25] must rise from 1 to at most 100, each weight once, such as 10,25,50,100."),
    ([0, 50], "steps [0, 50] must rise from 1 to at most 100, each weight once, such as 10,25,50,100."),
    ([], "steps [] must rise from 1 to at most 100, each weight once, such as 10,25,50,100."),
    ([10, True], "steps [10, True] is not a list of whole percents: give rising weights such as "
                 "[10, 25, 50, 100]."),
])
def test_schedule_refusals(schedule, message):
    with pytest.raises(SpecError) as e:
        traffic.check_schedule(schedule)
    assert str(e.value) == message
