"""status: watch events -> RolloutStatus / PodRow values, kubectl's completeness rule, text and HTML views."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_mldeploy.status import (
    EventRow,
    PodRow,
    RolloutStatus,
    StatusTracker,
    format_progress_line,
    format_status_table,
    rollout_complete,
    rollout_status,
    status_html,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()
NS = "ml"
OLD_RS, NEW_RS = "churn-5c7d8b9f4", "churn-7d9f8c6b5"
IMAGE = "ghcr.io/acme/churn:1.5"


def iso(offset: float = 0) -> str:
    return datetime.fromtimestamp(T0 + offset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- factories shaped like the API server's JSON (zero counts omitted, as it omits them)


def cond(ctype, status="True", reason=None, message=None):
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": iso(0)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def pod(suffix, *, rs=NEW_RS, deployment="churn", version="1.5", state="ready", created=0, node="worker-1",
        restarts=0, waiting=None, last=None, track="stable"):
    name = f"{rs}-{suffix}"
    container = {"name": "model", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                 "resources": {"limits": {"cpu": "1", "memory": "2Gi"},
                               "requests": {"cpu": "1", "memory": "2Gi"}},
                 "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080, "scheme": "HTTP"},
                                    "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
                                    "failureThreshold": 3}}
    p = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "generateName": rs + "-", "namespace": NS, "uid": f"uid-{name}",
                     "resourceVersion": "1000", "creationTimestamp": iso(created),
                     "labels": {"app.kubernetes.io/name": "churn", "app.kubernetes.io/instance": deployment,
                                "app.kubernetes.io/version": version, "mldeploy.io/track": track,
                                "pod-template-hash": rs.rsplit("-", 1)[1]},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                          "uid": f"uid-{rs}", "controller": True,
                                          "blockOwnerDeletion": True}]},
        "spec": {"containers": [container], "restartPolicy": "Always", "schedulerName": "default-scheduler",
                 "serviceAccountName": "default", "terminationGracePeriodSeconds": 30},
        "status": {"phase": "Pending", "qosClass": "Guaranteed"},
    }
    if state == "unschedulable":
        p["status"]["conditions"] = [cond("PodScheduled", "False", "Unschedulable", waiting)]
        return p
    p["spec"]["nodeName"] = node
    p["status"].update(hostIP="10.0.0.5", podIP="10.244.1.9", startTime=iso(created + 1))
    cs = {"name": "model", "image": IMAGE, "imageID": "", "ready": False, "restartCount": restarts,
          "started": False, "lastState": last or {}}
    if state in ("ready", "running", "terminating"):
        p["status"]["phase"] = "Running"
        cs.update(state={"running": {"startedAt": iso(created + 3)}}, started=True, ready=state != "running")
    else:  # waiting
        cs["state"] = {"waiting": {"reason": waiting or "ContainerCreating"}}
    ready = cs["ready"]
    p["status"]["conditions"] = [cond("Initialized"), cond("Ready", "True" if ready else "False"),
                                 cond("ContainersReady", "True" if ready else "False"), cond("PodScheduled")]
    p["status"]["containerStatuses"] = [cs]
    if state == "terminating":
        p["metadata"]["deletionTimestamp"] = iso(created + 100)
        p["metadata"]["deletionGracePeriodSeconds"] = 30
    return p


def deployment(*, generation=2, observed=2, replicas=2, total=0, updated=0, ready=0, available=0,
               progressing=("True", "ReplicaSetUpdated", f'ReplicaSet "{NEW_RS}" is progressing.'),
               extra_conditions=(), name="churn"):
    status = {"observedGeneration": observed}
    unavailable = max(0, replicas - available)
    for key, value in (("replicas", total), ("updatedReplicas", updated), ("readyReplicas", ready),
                       ("availableReplicas", available), ("unavailableReplicas", unavailable)):
        if value:
            status[key] = value
    conditions = [cond("Available", "True" if available >= replicas - 1 else "False",
                       "MinimumReplicasAvailable", "Deployment has minimum availability.")]
    if progressing:
        conditions.append(cond("Progressing", *progressing))
    status["conditions"] = conditions + list(extra_conditions)
    return {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation,
                     "resourceVersion": "2000", "creationTimestamp": iso(-86400),
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "churn",
                                              "app.kubernetes.io/instance": name}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "churn",
                                                      "app.kubernetes.io/instance": name}},
                              "spec": {"containers": [{"name": "model", "image": IMAGE}]}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
        "status": status,
    }


_seq = iter(range(10**6))


def event(reason, message, *, kind="Pod", name, type="Warning", count=1, at=10,
          field_path="spec.containers{model}"):
    n = next(_seq)
    obj = {"kind": kind, "namespace": NS, "name": name, "uid": f"uid-{name}", "apiVersion": "v1"}
    if kind == "Pod" and field_path:
        obj["fieldPath"] = field_path
    return {"kind": "Event", "apiVersion": "v1",
            "metadata": {"name": f"{name}.17c9{n:08d}", "namespace": NS, "uid": f"ev-{n}",
                         "resourceVersion": str(3000 + n), "creationTimestamp": iso(at)},
            "involvedObject": obj, "reason": reason, "message": message, "type": type, "count": count,
            "firstTimestamp": iso(at), "lastTimestamp": iso(at), "eventTime": None,
            "source": {"component": "kubelet", "host": "worker-1"}}


PULLING = f'Pulling image "{IMAGE}"'


def complete_deployment(replicas=2):
    return deployment(total=replicas, updated=replicas, ready=replicas, available=replicas,
                      progressing=("True", "NewReplicaSetAvailable",
                                   f'ReplicaSet "{NEW_RS}" has successfully progressed.'))


# --- rollout_complete: kubectl's DeploymentStatusViewer


def test_rollout_complete_when_every_replica_is_updated_and_available():
    assert rollout_complete(complete_deployment())


@pytest.mark.parametrize(("dep", "why"), [
    ({**complete_deployment(), "metadata": {**complete_deployment()["metadata"], "generation": 3}},
     "spec update not observed yet"),
    (deployment(total=2, updated=1, ready=2, available=2), "1 of 2 new replicas updated"),
    (deployment(total=3, updated=2, ready=3, available=3), "an old replica is pending termination"),
    (deployment(total=2, updated=2, ready=1, available=1), "1 of 2 updated replicas available"),
    (deployment(total=2, updated=2, ready=2, available=2,
                progressing=("False", "ProgressDeadlineExceeded", "timed out")),
     "progress deadline exceeded"),
])
def test_rollout_not_complete(dep, why):
    assert not rollout_complete(dep), why


def test_rollout_complete_uses_kubectls_inequalities():
    # scaling down 3 -> 2 with everything updated: kubectl reports success (updated >= spec.replicas)
    dep = deployment(replicas=2, total=3, updated=3, ready=3, available=3)
    assert rollout_complete(dep)
    dep["spec"].pop("replicas")  # kubectl skips the check when spec.replicas is absent
    assert rollout_complete(deployment(replicas=0))  # scaled to zero: nothing to wait for


@given(gen=st.integers(1, 5), obs=st.integers(0, 5), spec_replicas=st.integers(0, 5),
       replicas=st.integers(0, 7), updated=st.integers(0, 7), available=st.integers(0, 7),
       timed_out=st.booleans())
def test_rollout_complete_iff_kubectl_rules(gen, obs, spec_replicas, replicas, updated, available, timed_out):
    progressing = (("False", "ProgressDeadlineExceeded", "x") if timed_out
                   else ("True", "ReplicaSetUpdated", "x"))
    dep = deployment(generation=gen, observed=obs, replicas=spec_replicas, total=replicas, updated=updated,
                     available=available, ready=available, progressing=progressing)
    expected = (gen <= obs and not timed_out and updated >= spec_replicas and replicas <= updated
                and available >= updated)
    assert rollout_complete(dep) is expected


# --- PodRow


def test_pod_row_from_a_ready_pod():
    row = PodRow.from_pod(pod("x2x4q", restarts=1, created=0), now=T0 + 45)
    assert row.name == f"{NEW_RS}-x2x4q" and row.phase == "Running" and row.ready
    assert row.ready_containers == "1/1" and row.restarts == 1 and row.node == "worker-1"
    assert row.age_seconds == 45 and row.reason is None and row.status == "Running"
    assert row.version == "1.5" and row.track == "stable" and row.replica_set == NEW_RS
    assert row.diagnosis is None and row.activity is None and row.state == "ready"


def test_pod_row_reasons_like_kubectl():
    assert PodRow.from_pod(pod("a", state="waiting"), T0).reason == "ContainerCreating"
    assert PodRow.from_pod(pod("a", state="terminating"), T0).status == "Terminating"
    assert PodRow.from_pod(pod("a", state="unschedulable", waiting="0/1 nodes are available: "
                               "1 Insufficient cpu."), T0).status == "Unschedulable"
    crash = pod("a", state="waiting", waiting="CrashLoopBackOff", restarts=4,
                last={"terminated": {"exitCode": 1, "reason": "Error"}})
    row = PodRow.from_pod(crash, T0 + 300)
    assert row.status == "CrashLoopBackOff" and row.restarts == 4 and row.state == "failing"
    assert row.diagnosis.kind == "crash-loop" and row.activity == "crash-looping"


def test_pod_row_init_progress():
    p = pod("a", state="waiting", waiting="PodInitializing")
    p["spec"]["initContainers"] = [{"name": "fetch-model", "image": "busybox"}]
    p["status"]["initContainerStatuses"] = [{"name": "fetch-model", "ready": False, "restartCount": 0,
                                             "state": {"running": {"startedAt": iso(2)}}, "lastState": {}}]
    row = PodRow.from_pod(p, T0 + 5)
    assert row.status == "Init:0/1" and row.activity == "initializing"


# --- StatusTracker


def test_tracker_follows_a_rolling_update_to_completion():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(generation=2, observed=2, total=3, updated=1, ready=2, available=2))
    t.apply("ADDED", pod("old1a", rs=OLD_RS, version="1.4", created=-3600))
    t.apply("ADDED", pod("old1b", rs=OLD_RS, version="1.4", created=-3600))
    t.apply("ADDED", pod("new1a", state="waiting", created=0))
    t.apply("ADDED", event("Scheduled", f"Successfully assigned ml/{NEW_RS}-new1a to worker-1", type="Normal",
                           name=f"{NEW_RS}-new1a", at=1, field_path=None))
    t.apply("ADDED", event("Pulling", PULLING, type="Normal", name=f"{NEW_RS}-new1a", at=2))

    s = t.snapshot(now=T0 + 10)
    assert s.phase == "progressing" and not s.complete and s.diagnosis is None
    assert s.observed_generation_current and s.new_replica_set == NEW_RS
    assert [p.name for p in s.pods] == [f"{OLD_RS}-old1a", f"{OLD_RS}-old1b", f"{NEW_RS}-new1a"]
    assert s.pods[2].activity == "pulling image" and s.pods[2].age_seconds == 10
    assert s.progress == 0.5  # 1 of 2 updated, though 2 (old) pods are ready
    assert [e.reason for e in s.events] == ["Scheduled", "Pulling"]

    t.apply("ADDED", event("Pulled", f'Successfully pulled image "{IMAGE}" in 4.1s', type="Normal",
                           name=f"{NEW_RS}-new1a", at=6))
    t.apply("MODIFIED", pod("new1a", created=0))
    t.apply("ADDED", pod("new1b", created=12))
    t.apply("MODIFIED", pod("old1a", rs=OLD_RS, version="1.4", created=-3600, state="terminating"))
    s = t.snapshot(now=T0 + 20)
    assert s.pods[0].status == "Terminating" and s.pods[0].activity == "terminating"
    assert s.phase == "progressing"

    t.apply("DELETED", pod("old1a", rs=OLD_RS, version="1.4", created=-3600, state="terminating"))
    t.apply("DELETED", pod("old1b", rs=OLD_RS, version="1.4", created=-3600, state="terminating"))
    t.apply("MODIFIED", complete_deployment())
    s = t.snapshot(now=T0 + 40)
    assert s.complete and s.phase == "complete" and s.progress == 1.0 and s.diagnosis is None
    assert [p.name for p in s.pods] == [f"{NEW_RS}-new1a", f"{NEW_RS}-new1b"]
    assert all(p.ready and p.version == "1.5" for p in s.pods)
    assert (s.desired, s.updated, s.ready, s.available) == (2, 2, 2, 2)


def test_tracker_ignores_pods_and_events_of_other_deployments():
    t = StatusTracker("churn", NS)
    canary_rs = "churn-canary-6f5d4c3b2"
    t.apply("ADDED", pod("zzzzz", rs=canary_rs, deployment="churn-canary"))  # before the Deployment is known
    t.apply("ADDED", deployment(total=2, updated=2, ready=1, available=1))
    t.apply("ADDED", pod("aaaaa"))
    t.apply("ADDED", pod("bbbbb", rs=canary_rs, deployment="churn-canary", state="waiting",
                         waiting="ImagePullBackOff"))
    stray = pod("ccccc")  # our naming, but relabelled out of the selector (e.g. kept for debugging)
    stray["metadata"]["labels"]["app.kubernetes.io/instance"] = "debug"
    t.apply("ADDED", stray)
    t.apply("ADDED", event("BackOff", f'Back-off pulling image "{IMAGE}"', name=f"{canary_rs}-bbbbb"))
    t.apply("ADDED", pod("ddddd", state="waiting"))
    other_ns = pod("eeeee")
    other_ns["metadata"]["namespace"] = "prod"
    t.apply("ADDED", other_ns)
    s = t.snapshot(now=T0 + 5)
    assert [p.name for p in s.pods] == [f"{NEW_RS}-aaaaa", f"{NEW_RS}-ddddd"]
    assert s.events == () and s.diagnosis is None


def test_tracker_attaches_pod_events_to_the_diagnosis():
    t = StatusTracker("churn", NS, max_events=2)
    t.apply("ADDED", deployment(total=2, updated=2, ready=1, available=1))
    t.apply("ADDED", pod("aaaaa"))
    name = f"{NEW_RS}-bbbbb"
    t.apply("ADDED", event("Scheduled", f"Successfully assigned ml/{name} to worker-1", type="Normal",
                           name=name, at=0, field_path=None))
    t.apply("ADDED", event("Pulling", PULLING, type="Normal", name=name, at=1))
    failed = event("Failed", f'Failed to pull image "{IMAGE}": failed to authorize: failed to fetch '
                   "anonymous token: unexpected status: 401 Unauthorized", name=name, at=2)
    t.apply("ADDED", failed)
    t.apply("ADDED", pod("bbbbb", state="waiting", waiting="ErrImagePull"))
    s = t.snapshot(now=T0 + 5)
    assert s.diagnosis is not None and not s.diagnosis.fatal  # one failed pull: not yet
    assert s.pods[1].activity == "image pull failing"

    t.apply("MODIFIED", {**failed, "count": 3, "lastTimestamp": iso(30)})  # the kubelet retried
    s = t.snapshot(now=T0 + 31)
    assert s.phase == "failed" and s.diagnosis.kind == "image-pull" and s.diagnosis.pod == name
    assert "needs credentials" in s.diagnosis.summary and "--pull-secret" in s.diagnosis.hint
    # 3 events (the retried one updated in place, not added), the newest 2 kept, newest last
    assert [e.reason for e in s.events] == ["Pulling", "Failed"] and s.events_omitted == 1
    assert s.events[-1] == EventRow("Warning", "Failed", f"Pod/{name}", failed["message"], 3, T0 + 30)


def test_tracker_event_store_is_bounded_and_keeps_what_changed_last():
    t = StatusTracker("churn", NS, max_events=10, max_stored_events=3)
    t.apply("ADDED", deployment(replicas=1, total=1, updated=1))
    name = f"{NEW_RS}-aaaaa"
    evs = [event("BackOff", f"Back-off restarting failed container model in pod {name}", name=name, at=i)
           for i in range(4)]
    for ev in evs[:3]:
        t.apply("ADDED", ev)
    t.apply("MODIFIED", {**evs[0], "count": 7})  # the oldest event repeats: it is the newest news now
    t.apply("ADDED", evs[3])  # over the bound: the least recently changed (evs[1]) goes
    kept = t.snapshot(now=T0 + 10).events
    assert [(e.last_seen - T0, e.count) for e in kept] == [(0, 7), (2, 1), (3, 1)]
    t.apply("DELETED", evs[2])  # the API server's event TTL ran out
    assert [e.last_seen - T0 for e in t.snapshot(now=T0 + 10).events] == [0, 3]


def test_tracker_passes_logs_to_a_crash_loop():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(total=1, updated=1, replicas=1))
    crash = pod("aaaaa", state="waiting", waiting="CrashLoopBackOff", restarts=3,
                last={"terminated": {"exitCode": 1, "reason": "Error"}})
    t.apply("ADDED", crash)
    log = "\n".join(f"line {i}" for i in range(30)) + "\nValueError: bad model\n"
    t.set_logs(crash["metadata"]["name"], log)
    s = t.snapshot(now=T0 + 60)
    assert s.phase == "failed" and "ValueError: bad model" in s.diagnosis.summary
    assert "Log (last 10 of 31 lines):" in s.diagnosis.detail


def test_crash_looping_old_pod_does_not_fail_the_new_rollout():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(total=3, updated=1, ready=1, available=1))
    t.apply("ADDED", pod("old1a", rs=OLD_RS, state="waiting", waiting="CrashLoopBackOff", restarts=40,
                         last={"terminated": {"exitCode": 1, "reason": "Error"}}))
    t.apply("ADDED", pod("new1a"))
    s = t.snapshot(now=T0 + 60)
    assert s.pods[0].diagnosis.fatal  # still shown on its row
    assert s.diagnosis is None and s.phase == "progressing"


def test_unobserved_spec_gives_no_verdict_yet():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(generation=3, observed=2, total=2, updated=2, ready=2, available=2,
                                progressing=("False", "ProgressDeadlineExceeded", "old news")))
    t.apply("ADDED", pod("aaaaa", state="waiting", waiting="ImagePullBackOff"))
    s = t.snapshot(now=T0)
    assert not s.observed_generation_current and s.diagnosis is None and s.phase == "progressing"


def test_progress_deadline_carries_the_pods_reason():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(replicas=1, total=1, updated=1,
                                progressing=("False", "ProgressDeadlineExceeded",
                                             f'ReplicaSet "{NEW_RS}" has timed out progressing.')))
    t.apply("ADDED", pod("aaaaa", state="running"))
    t.apply("ADDED", event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404",
                           name=f"{NEW_RS}-aaaaa", count=60, at=600))
    s = t.snapshot(now=T0 + 610)
    d = s.diagnosis
    assert s.phase == "failed" and d.kind == "progress-deadline" and d.fatal and d.pod == f"{NEW_RS}-aaaaa"
    assert d.summary.startswith("The rollout of churn made no progress for 600s")
    assert "404 Not Found" in d.summary and "/healthz" in d.hint


def test_unschedulable_waits_while_one_of_our_pods_frees_its_gpu():
    msg = "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(total=3, updated=1, ready=2, available=2))
    t.apply("ADDED", pod("new1a", state="unschedulable", waiting=msg))
    t.apply("ADDED", pod("old1a", rs=OLD_RS, state="terminating"))
    s = t.snapshot(now=T0 + 5)
    assert s.diagnosis.kind == "unschedulable" and not s.diagnosis.fatal and s.phase == "progressing"
    t.apply("DELETED", pod("old1a", rs=OLD_RS, state="terminating"))
    assert t.snapshot(now=T0 + 40).phase == "failed"


def test_failed_create_counts_only_while_pods_are_missing():
    psa = (f'Error creating: pods "{NEW_RS}-q8w2z" is forbidden: violates PodSecurity "restricted:latest": '
           'runAsNonRoot != true (pod or container "model" must set securityContext.runAsNonRoot=true)')
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(total=0, updated=0))
    t.apply("ADDED", event("FailedCreate", psa, kind="ReplicaSet", name=NEW_RS, count=5))
    t.apply("ADDED", event("FailedCreate", psa, kind="ReplicaSet", name="churn-canary-6f5d4c3b2", count=5))
    s = t.snapshot(now=T0 + 20)
    assert s.phase == "failed" and s.diagnosis.kind == "create-failed"
    assert "runAsNonRoot" in s.diagnosis.summary
    assert [e.object for e in s.events] == [f"ReplicaSet/{NEW_RS}"]
    # the cause was fixed and the pods now exist: the hour-old event must not fail the rollout
    t.apply("ADDED", pod("aaaaa", state="waiting"))
    t.apply("ADDED", pod("bbbbb", state="waiting"))
    assert t.snapshot(now=T0 + 40).diagnosis is None


def test_replica_set_objects_name_the_new_template():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(progressing=None, total=2, updated=1))
    for rs, rev in ((OLD_RS, "1"), (NEW_RS, "2"), ("other-1234", "2")):
        owner = "churn" if rs != "other-1234" else "other"
        t.apply("ADDED", {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {
            "name": rs, "namespace": NS, "annotations": {"deployment.kubernetes.io/revision": rev},
            "ownerReferences": [{"kind": "Deployment", "name": owner, "apiVersion": "apps/v1"}]},
            "spec": {"replicas": 1, "template": {}}, "status": {"replicas": 1}})
    assert t.snapshot(now=T0).new_replica_set == NEW_RS
    t.apply("DELETED", {"kind": "ReplicaSet", "metadata": {
        "name": NEW_RS, "namespace": NS, "ownerReferences": [{"kind": "Deployment", "name": "churn"}]}})
    assert t.snapshot(now=T0).new_replica_set is None


def test_list_items_without_kind_and_bookmarks():
    t = StatusTracker("churn", NS)
    dep = deployment(total=1, updated=1, ready=1, available=1, replicas=1)
    p = pod("aaaaa")
    ev = event("Started", "Started container model", type="Normal", name=p["metadata"]["name"])
    for obj in (dep, p, ev):
        obj = dict(obj)
        obj.pop("kind")  # items of a LIST carry no kind
        t.apply("ADDED", obj)
    t.apply("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "9999"}})
    s = t.snapshot(now=T0 + 5)
    assert s.desired == 1 and len(s.pods) == 1 and s.events[0].reason == "Started"
    with pytest.raises(ValueError, match="ERROR"):
        t.apply("ERROR", {"kind": "Status", "code": 410})


def test_snapshot_before_the_deployment_arrives():
    s = StatusTracker("churn", NS).snapshot(now=T0)
    assert (s.name, s.desired, s.complete, s.phase, s.progress) == ("churn", 0, False, "progressing", 0.0)
    assert format_status_table(s).splitlines() == [
        "churn: waiting for the Deployment controller, rollout progressing", "(no pods yet)"]


def test_header_never_counts_old_pods_as_new_during_a_rolling_update():
    from jupyter_mldeploy.status import RolloutStatus

    s = RolloutStatus("churn", NS, desired=2, updated=1, ready=3, available=3,
                      observed_generation_current=True)
    line = format_status_table(s).splitlines()[0]
    assert line == "churn: 1/2 ready, 1/2 updated, 2 old still serving, rollout progressing"


_SUFFIXES = ["aaaaa", "bbbbb", "ccccc", "ddddd"]
_POD_VERSIONS = {
    "ready": lambda s: pod(s),
    "waiting": lambda s: pod(s, state="waiting"),
    "crash": lambda s: pod(s, state="waiting", waiting="CrashLoopBackOff", restarts=2,
                           last={"terminated": {"exitCode": 1, "reason": "Error"}}),
    "terminating": lambda s: pod(s, state="terminating"),
    "old": lambda s: pod(s, rs=OLD_RS, version="1.4"),
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ADDED", "MODIFIED", "DELETED"]), st.sampled_from(_SUFFIXES),
                          st.sampled_from(sorted(_POD_VERSIONS))), max_size=25))
def test_tracker_snapshot_equals_a_fresh_look_at_the_final_objects(ops):
    t = StatusTracker("churn", NS)
    dep = deployment(total=3, updated=2, ready=1, available=1)
    t.apply("ADDED", dep)
    final: dict[str, dict] = {}
    for etype, suffix, version in ops:
        obj = _POD_VERSIONS[version](suffix)
        t.apply(etype, obj)
        if etype == "DELETED":
            final.pop(obj["metadata"]["name"], None)
        else:
            final[obj["metadata"]["name"]] = obj
    assert t.snapshot(now=T0 + 100) == rollout_status(dep, final.values(), now=T0 + 100)


# --- text and HTML


def _status():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(replicas=3, total=3, updated=3, ready=2, available=2))
    t.apply("ADDED", pod("aaaaa", created=-45))
    t.apply("ADDED", pod("bbbbb", created=-192, restarts=2, node="gpu-node-a100-1"))
    t.apply("ADDED", pod("ccccc", state="waiting", created=-5))
    t.apply("ADDED", event("Pulling", PULLING, type="Normal", name=f"{NEW_RS}-ccccc", at=-3))
    return t.snapshot(now=T0)


def test_status_table_is_aligned_like_kubectl():
    text = format_status_table(_status())
    lines = text.splitlines()
    assert lines[0] == "churn: 2/3 ready, rollout progressing"
    header = lines[1]
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE"]
    starts = [header.index(col) for col in ("READY", "STATUS", "RESTARTS", "NODE", "AGE")]
    for line in lines[2:5]:
        for col in starts:  # every cell starts under its header
            assert line[col - 1] == " " and line[col] != " "
    assert re.search(rf"{NEW_RS}-aaaaa\s+1/1\s+Running\s+0\s+worker-1\s+45s$", lines[2])
    assert re.search(rf"{NEW_RS}-bbbbb\s+1/1\s+Running\s+2\s+gpu-node-a100-1\s+3m12s$", lines[3])
    assert re.search(rf"{NEW_RS}-ccccc\s+0/1\s+ContainerCreating\s+0\s+worker-1\s+5s$", lines[4])
    assert len(lines) == 5  # nothing failed: no diagnosis lines


def test_status_table_explains_a_failure():
    t = StatusTracker("churn", NS)
    t.apply("ADDED", deployment(replicas=1, total=1, updated=1))
    t.apply("ADDED", pod("aaaaa", state="unschedulable",
                         waiting="0/3 nodes are available: 3 Insufficient nvidia.com/gpu."))
    text = format_status_table(t.snapshot(now=T0 + 30), show_events=True)
    assert text.splitlines()[0] == "churn: 0/1 ready, rollout failed"
    assert re.search(rf"{NEW_RS}-aaaaa\s+0/1\s+Unschedulable\s+0\s+<none>\s+30s", text)
    assert f"FAILED: No node can run pod {NEW_RS}-aaaaa: it asks for" in text
    assert "  hint: ask for fewer GPUs" in text
    assert "  | 0/3 nodes are available: 3 Insufficient nvidia.com/gpu." in text


def test_status_table_lists_events_and_says_how_many_were_left_out():
    t = StatusTracker("churn", NS, max_events=1)
    t.apply("ADDED", deployment(replicas=1, total=1, updated=1))
    t.apply("ADDED", event("ScalingReplicaSet", f"Scaled up replica set {NEW_RS} to 1", kind="Deployment",
                           name="churn", type="Normal", at=1))
    t.apply("ADDED", event("SuccessfulCreate", f"Created pod: {NEW_RS}-aaaaa", kind="ReplicaSet", name=NEW_RS,
                           type="Normal", at=2))
    text = format_status_table(t.snapshot(now=T0 + 5), show_events=True)
    assert "Events (newest last, 1 older not shown):" in text
    assert f"ReplicaSet/{NEW_RS}  Created pod: {NEW_RS}-aaaaa" in text and "Scaled up" not in text


def test_progress_line():
    s = _status()
    assert format_progress_line(s) == "churn  [######----] 2/3 ready  (1 pulling image)"
    done = rollout_status(complete_deployment(), [pod("aaaaa"), pod("bbbbb")], now=T0)
    assert format_progress_line(done) == "churn  [##########] 2/2 ready  rolled out"
    failing = rollout_status(deployment(replicas=1, total=1, updated=1),
                             [pod("aaaaa", state="waiting", waiting="ImagePullBackOff")], now=T0)
    assert format_progress_line(failing) == "churn  [----------] 0/1 ready  (1 image pull failing)  FAILED"
    refused = rollout_status(deployment(replicas=1, generation=1, observed=1), [], [
        event("FailedCreate", 'Error creating: pods "x" is forbidden: violates PodSecurity '
              '"baseline:latest": privileged (container "model" must not set '
              "securityContext.privileged=true)",
              kind="ReplicaSet", name=NEW_RS, count=2)], now=T0)
    assert format_progress_line(refused) == "churn  [----------] 0/1 ready  FAILED: pods refused"


def test_progress_bar_is_never_full_before_completion():
    s = RolloutStatus("churn", NS, desired=3, updated=3, ready=3, available=3, complete=False)
    assert s.progress == 1.0 and "[#########-]" in format_progress_line(s)
    assert RolloutStatus("churn", NS, 0, 0, 0, 0, complete=True).progress == 1.0


def test_html_colours_rows_and_escapes_a_hostile_pod_name():
    hostile = pod("aaaaa", state="waiting", waiting="CrashLoopBackOff", restarts=3,
                  last={"terminated": {"exitCode": 1, "reason": "Error"}})
    evil = '<script>alert("x")</script>'
    hostile["metadata"]["name"] = evil
    hostile["spec"]["nodeName"] = "<b>node</b>"
    s = rollout_status(deployment(replicas=2, total=2, updated=2, ready=1, available=1),
                       [hostile, pod("bbbbb")], now=T0 + 60)
    out = status_html(s)
    assert "<script>" not in out and "<b>node</b>" not in out
    assert html_escaped(evil) in out and "&lt;b&gt;node&lt;/b&gt;" in out
    # one renderer (views.status): the widget's rows, colours from the one palette
    assert s.phase == "failed" and 'class="mldeploy-diagnosis" style="color:#c62828;' in out
    assert re.search(r'<tr class="mldeploy-pod mldeploy-failing" style="background:#fdecea" '
                     r'title="[^"]*&lt;script&gt;[^"]*"><td style="[^"]*#c62828"><code>&lt;script', out)
    assert re.search(r'<tr class="mldeploy-pod mldeploy-ready" style="background:#edf7ee"><td style="[^"]*">'
                     r"<code>churn-7d9f8c6b5-bbbbb</code></td>", out)
    assert 'color:#2e7d32">&#9679; Running' in out
    assert re.search(r'color:#c62828">The container model keeps crashing[^<]*CrashLoopBackOff', out)
    assert '<span style="color:#c62828">rollout failed</span>' in out


def test_html_marks_pending_pods_amber():
    out = status_html(_status())
    assert 'class="mldeploy-pod mldeploy-pending" style="background:#fff6e5"' in out
    assert 'color:#b26a00">&#9679; Pending' in out and 'color:#b26a00">ContainerCreating</td>' in out
    assert "mldeploy-diagnosis" not in out


def html_escaped(text):
    import html

    return html.escape(text)


def test_one_bar_for_every_face():
    from jupyter_mldeploy import status
    from jupyter_mldeploy.views import status as views

    # status.status_html stays importable, and is the one renderer
    assert status.status_html is views.status_html and status.format_status_table is views.format_status_table
    bar = views.progress_bar(_status())
    assert (bar.value, bar.max, bar.description, bar.style) == (2, 3, "2/3 ready", "info")
    # a rolling update: old ready pods do not fill the bar (ready 3, updated 1)
    rolling = views.progress_bar(rollout_status(deployment(replicas=3, total=4, updated=1, ready=3,
                                                           available=3)))
    assert (rolling.value, rolling.max) == (1, 3)
    # scaled to zero and complete: full, as LiveProgress always showed it
    scaled = deployment(replicas=0, total=0, updated=0, ready=0, available=0)
    zero = views.progress_bar(rollout_status(scaled))
    assert (zero.value, zero.max, zero.description, zero.style) == (1, 1, "0/0 ready", "success")
