"""diagnosis: raw pod / event / Deployment JSON (shaped as the API server returns it) -> plain words."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyter_mldeploy.diagnosis import (
    KINDS,
    Diagnosis,
    diagnose_deployment,
    diagnose_events,
    diagnose_pod,
    format_age,
    log_tail,
    most_relevant,
    parse_scheduler_message,
    parse_time,
    reported_amount,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()
IMAGE = "ghcr.io/acme/churn:1.4"
POD = "churn-7d9f8c6b5-x2x4q"
RS = "churn-7d9f8c6b5"
NS = "ml"


def iso(offset: float = 0) -> str:
    return datetime.fromtimestamp(T0 + offset, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- factories: the fields the API server fills in, zero values omitted as it omits them


def make_container(name="model", image=IMAGE, cpu="2", memory="4Gi", gpu=None, readiness=True, liveness=False,
                   startup=None):
    limits = {"cpu": cpu, "memory": memory}
    if gpu is not None:
        limits["nvidia.com/gpu"] = str(gpu)
    c = {
        "name": name, "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {"limits": dict(limits), "requests": dict(limits)},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    probe = {"httpGet": {"path": "/v2/health/ready", "port": 8080, "scheme": "HTTP"},
             "initialDelaySeconds": 5, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
             "failureThreshold": 3}
    if readiness:
        c["readinessProbe"] = probe
    if liveness:
        c["livenessProbe"] = {**probe, "httpGet": {"path": "/v2/health/live", "port": 8080, "scheme": "HTTP"}}
    if startup:
        c["startupProbe"] = startup
    return c


def cstatus(name="model", *, state=None, last=None, ready=False, restarts=0, image=IMAGE):
    s = {"name": name, "state": state or {"waiting": {"reason": "ContainerCreating"}},
         "lastState": last or {}, "ready": ready, "restartCount": restarts, "image": image, "imageID": "",
         "started": False}
    if "running" in s["state"]:
        s["started"] = True
        s["imageID"] = "ghcr.io/acme/churn@sha256:" + "ab" * 32
        s["containerID"] = "containerd://" + "cd" * 32
    return s


def cond(ctype, status="True", reason=None, message=None, at=0):
    c = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": iso(at)}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def make_pod(name=POD, *, phase="Pending", node="worker-1", containers=None, statuses=None,
             init_statuses=None, init_containers=None, conditions=None, created=0, status_extra=None,
             node_selector=None, deleting=False):
    pod = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": name, "generateName": RS + "-", "namespace": NS, "uid": f"uid-{name}",
            "resourceVersion": "48213", "creationTimestamp": iso(created),
            "labels": {"app.kubernetes.io/name": "churn", "app.kubernetes.io/instance": "churn",
                       "app.kubernetes.io/version": "1.4", "pod-template-hash": "7d9f8c6b5"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": RS, "uid": "uid-rs",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": containers or [make_container()],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "schedulerName": "default-scheduler", "priority": 0,
            "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {"phase": phase, "qosClass": "Guaranteed"},
    }
    if init_containers:
        pod["spec"]["initContainers"] = init_containers
    if node:
        pod["spec"]["nodeName"] = node
        pod["status"].update(hostIP="10.0.0.5", podIP="10.244.1.7", startTime=iso(created + 1))
    if node_selector:
        pod["spec"]["nodeSelector"] = node_selector
    if conditions is not None:
        pod["status"]["conditions"] = conditions
    if statuses is not None:
        pod["status"]["containerStatuses"] = statuses
    if init_statuses is not None:
        pod["status"]["initContainerStatuses"] = init_statuses
    if status_extra:
        pod["status"].update(status_extra)
    if deleting:
        pod["metadata"]["deletionTimestamp"] = iso(created + 60)
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
    return pod


_ev_seq = iter(range(10**6))


def make_event(reason, message, *, kind="Pod", name=POD, type="Warning", count=1, at=10, field_path=None,
               component="kubelet"):
    n = next(_ev_seq)
    obj = {"kind": kind, "namespace": NS, "name": name, "uid": f"uid-{name}",
           "apiVersion": "v1" if kind == "Pod" else "apps/v1", "resourceVersion": "48000"}
    if field_path:
        obj["fieldPath"] = field_path
    return {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"{name}.17c9a0b1{n:06d}", "namespace": NS, "uid": f"ev-{n}",
                     "resourceVersion": str(50000 + n), "creationTimestamp": iso(at)},
        "involvedObject": obj, "reason": reason, "message": message,
        "source": {"component": component, "host": "worker-1"},
        "firstTimestamp": iso(at - 5 * (count - 1)), "lastTimestamp": iso(at), "count": count, "type": type,
        "eventTime": None, "reportingComponent": component, "reportingInstance": "worker-1",
    }


def make_deployment(*, generation=2, observed=2, replicas=3, updated=None, ready=None, available=None,
                    total=None, conditions=None, name="churn"):
    status = {"observedGeneration": observed}
    for key, value in (("replicas", total), ("updatedReplicas", updated), ("readyReplicas", ready),
                       ("availableReplicas", available)):
        if value:  # the API server omits zero counts
            status[key] = value
    if conditions is not None:
        status["conditions"] = conditions
    return {
        "kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": NS, "uid": "uid-dep", "generation": generation,
                     "resourceVersion": "48100", "creationTimestamp": iso(-3600),
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": replicas, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10,
                 "selector": {"matchLabels": {"app.kubernetes.io/name": "churn",
                                              "app.kubernetes.io/instance": name}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%",
                                                                         "maxSurge": "25%"}},
                 "template": {"metadata": {"labels": {"app.kubernetes.io/name": "churn"}},
                              "spec": {"containers": [make_container()]}}},
        "status": status,
    }


def waiting_pod(reason, message=None, *, restarts=0, last=None, containers=None):
    waiting = {"reason": reason}
    if message:
        waiting["message"] = message
    return make_pod(
        containers=containers,
        conditions=[cond("Initialized"), cond("Ready", "False", "ContainersNotReady",
                                              "containers with unready status: [model]"),
                    cond("ContainersReady", "False", "ContainersNotReady"), cond("PodScheduled")],
        statuses=[cstatus(state={"waiting": waiting}, last=last, restarts=restarts)],
    )


def unschedulable_pod(message, *, containers=None, node_selector=None):
    return make_pod(node=None, containers=containers, node_selector=node_selector,
                    conditions=[cond("PodScheduled", "False", "Unschedulable", message)])


def running_pod(*, ready=True, started=2, restarts=0, last=None, containers=None):
    conditions = [cond("Initialized"), cond("Ready", "True" if ready else "False"),
                  cond("ContainersReady", "True" if ready else "False"), cond("PodScheduled")]
    return make_pod(phase="Running", containers=containers, conditions=conditions,
                    statuses=[cstatus(state={"running": {"startedAt": iso(started)}}, ready=ready,
                                      restarts=restarts, last=last)])


# --- image pull

BACKOFF_MSG = f'Back-off pulling image "{IMAGE}"'
NOT_FOUND = (f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = failed to pull and '
             f'unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": {IMAGE}: not found')
UNAUTHORIZED = (f'Failed to pull image "{IMAGE}": rpc error: code = Unknown desc = failed to pull and '
                f'unpack image "{IMAGE}": failed to resolve reference "{IMAGE}": failed to authorize: '
                "failed to fetch anonymous token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Fchurn"
                "%3Apull&service=ghcr.io: 401 Unauthorized")
FIELD = "spec.containers{model}"


def test_image_pull_backoff_says_which_image_and_what_to_do():
    pod = waiting_pod("ImagePullBackOff", BACKOFF_MSG)
    pod["metadata"]["name"] = "churn-7d9-abc"
    d = diagnose_pod(pod)
    assert d.kind == "image-pull" and d.fatal and d.pod == "churn-7d9-abc"
    assert d.summary == ("The image ghcr.io/acme/churn:1.4 could not be pulled: the registry says it does "
                         "not exist or needs credentials (pod churn-7d9-abc, ImagePullBackOff).")
    assert d.hint == "check the tag, or add an image pull secret with --pull-secret"
    assert d.detail == BACKOFF_MSG
    assert str(d) == d.summary + " Hint: check the tag, or add an image pull secret with --pull-secret."


def test_first_err_image_pull_is_not_fatal_until_it_repeats():
    msg = NOT_FOUND.split(": ", 1)[1]
    pod = waiting_pod("ErrImagePull", msg)
    once = [make_event("Pulling", f'Pulling image "{IMAGE}"', type="Normal", at=3, field_path=FIELD),
            make_event("Failed", NOT_FOUND, at=4, field_path=FIELD),
            make_event("Failed", "Error: ErrImagePull", at=4, field_path=FIELD)]
    d = diagnose_pod(pod, once)
    assert d.kind == "image-pull" and not d.fatal
    assert "does not exist" in d.summary and "ErrImagePull" in d.summary
    assert "check the image name and tag" in d.hint
    assert NOT_FOUND in d.detail  # the kubelet's words, verbatim

    twice = [*once[:1], make_event("Failed", NOT_FOUND, at=20, count=2, field_path=FIELD)]
    assert diagnose_pod(pod, twice).fatal
    backoff = [*once, make_event("BackOff", BACKOFF_MSG, type="Normal", at=6, field_path=FIELD)]
    assert diagnose_pod(pod, backoff).fatal


def test_pull_events_of_another_pod_are_ignored():
    pod = waiting_pod("ErrImagePull", "rpc error")
    other = make_event("Failed", UNAUTHORIZED, name="churn-7d9f8c6b5-zzzzz", count=5, field_path=FIELD)
    d = diagnose_pod(pod, [other])
    assert not d.fatal and "credentials" not in d.hint


@pytest.mark.parametrize(("message", "words", "hint"), [
    (UNAUTHORIZED, "needs credentials", "--pull-secret"),
    (NOT_FOUND, "does not exist", "was it pushed"),
    (f'Failed to pull image "{IMAGE}": rpc error: code = Unknown desc = failed to pull and unpack image: '
     "dial tcp: lookup ghcr.io on 10.96.0.10:53: no such host",
     "could not reach the registry", "registry address"),
    (f'Failed to pull image "{IMAGE}": no match for platform in manifest: not found',
     "no build for the node's platform", "--platform"),
    ('Failed to pull image "docker.io/acme/churn:1.4": toomanyrequests: You have reached your pull rate '
     "limit.", "limiting how often", "wait"),
    # a digest that happens to contain 401 is not an HTTP status
    ('Failed to pull image "ghcr.io/acme/churn@sha256:4011aa": rpc error: code = NotFound desc = not found',
     "does not exist", "was it pushed"),
])
def test_pull_failure_causes_are_told_apart(message, words, hint):
    pod = waiting_pod("ImagePullBackOff", BACKOFF_MSG)
    d = diagnose_pod(pod, [make_event("Failed", message, field_path=FIELD)])
    assert words in d.summary and hint in d.hint
    assert message in d.detail and BACKOFF_MSG in d.detail


def test_invalid_image_name_fails_at_once():
    bad = "ghcr.io/Acme/churn:1.4"
    msg = (f'Failed to apply default image tag "{bad}": couldn\'t parse image reference "{bad}": '
           "invalid reference format")
    d = diagnose_pod(waiting_pod("InvalidImageName", msg, containers=[make_container(image=bad)]))
    assert d.fatal and d.kind == "image-pull"
    assert f'"{bad}" is not a valid image reference' in d.summary and "lower case" in d.hint


# --- crash loop and memory

LOG = "\n".join([f"INFO loading shard {i}" for i in range(1, 57)]
                + ["ModuleNotFoundError: No module named 'sklearn'"]) + "\n"


def crash_pod(exit_code=1, reason="Error", restarts=5, containers=None, message=None):
    term = {"exitCode": exit_code, "reason": reason, "startedAt": iso(100), "finishedAt": iso(104),
            "containerID": "containerd://" + "ef" * 32}
    if message:
        term["message"] = message
    return waiting_pod("CrashLoopBackOff",
                       f"back-off 2m40s restarting failed container=model pod={POD}_ml(uid-{POD})",
                       restarts=restarts, last={"terminated": term}, containers=containers)


def test_crash_loop_tells_exit_code_restarts_and_last_log_lines():
    d = diagnose_pod(crash_pod(), logs=LOG)
    assert d.kind == "crash-loop" and d.fatal
    assert "exit code 1" in d.summary and "restarted 5 times" in d.summary and "CrashLoopBackOff" in d.summary
    assert "ModuleNotFoundError: No module named 'sklearn'" in d.summary
    assert "Log (last 10 of 57 lines):" in d.detail
    tail = d.detail.split("Log (last 10 of 57 lines):\n", 1)[1].splitlines()
    assert tail == LOG.splitlines()[-10:]
    assert "INFO loading shard 47\n" not in d.detail  # line 47 is the 11th from the end
    assert "back-off 2m40s restarting failed container=model" in d.detail


def test_log_tail_never_truncates_silently():
    assert log_tail("a\nb\nc\n") == "Log (all 3 lines):\na\nb\nc"
    assert log_tail("one") == "Log (all 1 line):\none"
    assert log_tail("") == "The container wrote no log lines."
    assert log_tail(None) is None
    text = log_tail("\n".join(str(i) for i in range(25)), lines=10)
    assert text.splitlines()[0] == "Log (last 10 of 25 lines):" and text.splitlines()[1:] == [
        str(i) for i in range(15, 25)]


def test_crash_loop_exit_zero_and_missing_command_get_their_own_words():
    d = diagnose_pod(crash_pod(exit_code=0, reason="Completed"))
    assert "exited normally (exit code 0), but a model server must keep running" in d.summary
    assert "foreground" in d.hint
    d = diagnose_pod(crash_pod(exit_code=127))
    assert "could not find its command" in d.summary and "entrypoint" in d.hint


def test_crash_loop_from_failing_liveness_probe_blames_the_probe():
    pod = crash_pod(exit_code=137, containers=[make_container(liveness=True)])
    events = [make_event("Unhealthy", 'Liveness probe failed: Get "http://10.244.1.7:8080/v2/health/live": '
                         "context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                         count=3, field_path=FIELD),
              make_event("Killing", "Container model failed liveness probe, will be restarted", type="Normal",
                         at=12, field_path=FIELD)]
    d = diagnose_pod(pod, events)
    assert d.kind == "crash-loop" and d.fatal
    assert "liveness probe (GET /v2/health/live on port 8080)" in d.summary
    assert "startup probe" in d.hint


def test_oom_killed_names_the_memory_limit_and_suggests_more():
    d = diagnose_pod(crash_pod(exit_code=137, reason="OOMKilled", restarts=3), logs="loading model\n")
    assert d.kind == "oom-killed" and d.fatal
    assert "memory limit of 4Gi" in d.summary and "restarted 3 times" in d.summary
    assert "raise --memory (for example --memory 8Gi)" in d.hint
    assert "Log (all 1 line):\nloading model" in d.detail


def test_oom_killed_while_running_again_is_reported_but_not_fatal():
    last = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": iso(1),
                           "finishedAt": iso(30)}}
    d = diagnose_pod(running_pod(ready=True, restarts=1, last=last), now=T0 + 60)
    assert d.kind == "oom-killed" and not d.fatal and "running again" in d.summary


def test_init_container_crash_loop_says_init_container():
    init = make_container(name="fetch-model", readiness=False)
    pod = make_pod(init_containers=[init],
                   statuses=[cstatus(state={"waiting": {"reason": "PodInitializing"}})],
                   init_statuses=[cstatus("fetch-model", restarts=2,
                                          state={"waiting": {"reason": "CrashLoopBackOff"}},
                                          last={"terminated": {"exitCode": 2, "reason": "Error"}})])
    d = diagnose_pod(pod)
    assert d.kind == "crash-loop" and "init container fetch-model" in d.summary and d.fatal


def test_run_container_error_with_missing_executable_is_fatal():
    msg = ("failed to create containerd task: failed to create shim task: OCI runtime create failed: runc "
           'create failed: unable to start container process: exec: "serve": executable file not found in '
           "$PATH: unknown")
    d = diagnose_pod(waiting_pod("RunContainerError", msg))
    assert d.kind == "start-failed" and d.fatal and 'command "serve" is not in the image' in d.summary


def test_missing_secret_is_fatal_only_once_the_kubelet_retried():
    msg = 'secret "model-creds" not found'
    pod = waiting_pod("CreateContainerConfigError", msg)
    first = diagnose_pod(pod, [make_event("Failed", f"Error: {msg}", field_path=FIELD)])
    assert first.kind == "config-error" and not first.fatal
    assert 'Secret "model-creds"' in first.summary and "namespace ml" in first.summary
    again = diagnose_pod(pod, [make_event("Failed", f"Error: {msg}", count=3, field_path=FIELD)])
    assert again.fatal


def test_failed_mount_of_a_missing_secret_volume():
    pod = waiting_pod("ContainerCreating")
    ev = make_event("FailedMount",
                    'MountVolume.SetUp failed for volume "creds" : secret "hub-token" not found', count=4)
    d = diagnose_pod(pod, [ev])
    assert d.kind == "volume" and d.fatal and '"hub-token" it mounts does not exist' in d.summary


# --- scheduling

GPU_MSG = ("0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint "
           "{nvidia.com/gpu: present}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 1 No "
           "preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.")


def test_unschedulable_gpu_says_how_many_gpus_and_names_the_taint():
    d = diagnose_pod(unschedulable_pod(GPU_MSG, containers=[make_container(gpu=2)]))
    assert d.kind == "unschedulable" and d.fatal and d.pod == POD
    assert d.summary.startswith(f"No node can run pod {POD}: it asks for 2 GPUs (nvidia.com/gpu) and no node "
                                "has that many free;")
    assert "1 node carries the taint nvidia.com/gpu=present, which the pod does not tolerate" in d.summary
    assert "it asks for 2 CPUs and 2 of 3 nodes do not have that much CPU free" in d.summary
    assert "(3 nodes checked)" in d.summary and "preemption" not in d.summary
    assert d.hint.startswith("ask for fewer GPUs, or ask your platform team for a GPU node pool")
    assert d.detail == GPU_MSG


def test_untolerated_taint_on_every_node_is_fatal_and_named():
    msg = ("0/2 nodes are available: 2 node(s) had untolerated taint {dedicated: inference}. preemption: 0/2 "
           "nodes are available: 2 Preemption is not helpful for scheduling.")
    d = diagnose_pod(unschedulable_pod(msg))
    assert d.fatal and "2 nodes carry the taint dedicated=inference" in d.summary
    assert "add a toleration for dedicated" in d.hint


def test_selector_mismatch_names_the_selector():
    msg = ("0/3 nodes are available: 1 node(s) had untolerated taint "
           "{node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node affinity/selector. "
           "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    d = diagnose_pod(unschedulable_pod(msg, node_selector={"pool": "gpu-a100"}))
    assert d.fatal  # every node is ruled out for good
    assert "2 nodes do not match its node selector pool=gpu-a100" in d.summary
    assert "1 node is a control-plane node" in d.summary
    assert "fix its node selector pool=gpu-a100" in d.hint


def test_insufficient_cpu_or_memory_is_explained_but_may_resolve():
    msg = ("0/3 nodes are available: 1 node(s) had untolerated taint "
           "{node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes are "
           "available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for "
           "incoming pod.")
    d = diagnose_pod(unschedulable_pod(msg, containers=[make_container(memory="24Gi")]))
    assert not d.fatal
    assert "it asks for 24Gi of memory and 2 of 3 nodes do not have that much memory free" in d.summary
    assert "--memory" in d.hint
    d = diagnose_pod(unschedulable_pod("0/3 nodes are available: 3 Insufficient cpu.",
                                       containers=[make_container(cpu="500m")]))
    assert not d.fatal and "0.5 CPU and 3 of 3 nodes" in d.summary and "--cpu" in d.hint


def test_autoscaler_scale_up_keeps_a_gpu_pod_waiting():
    pod = unschedulable_pod(GPU_MSG, containers=[make_container(gpu=1)])
    ev = make_event("TriggeredScaleUp", "pod triggered scale-up: [{gpu-pool 0->1 (max: 4)}]", type="Normal",
                    component="cluster-autoscaler")
    d = diagnose_pod(pod, [ev])
    assert not d.fatal and "cluster autoscaler is adding a node" in d.summary
    assert "TriggeredScaleUp: pod triggered scale-up" in d.detail


def test_failed_scheduling_event_is_used_before_the_condition_shows():
    pod = make_pod(node=None)
    ev = make_event("FailedScheduling", "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: "
                    "0/1 nodes are available: 1 No preemption victims found for incoming pod.",
                    component="default-scheduler")
    d = diagnose_pod(pod, [ev])
    assert d.kind == "unschedulable" and d.fatal and "GPU" in d.summary


def test_unbound_claim_is_not_fatal():
    d = diagnose_pod(unschedulable_pod("0/3 nodes are available: pod has unbound immediate "
                                       "PersistentVolumeClaims. preemption: 0/3 nodes are available: 3 "
                                       "Preemption is not helpful for scheduling."))
    assert not d.fatal and "not bound" in d.summary


# --- failed pods, healthy and starting pods


def test_evicted_pod_explains_memory_pressure():
    msg = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 62748Ki. "
           "Container model was using 5321492Ki, request is 4Gi, has larger consumption of memory. ")
    pod = make_pod(phase="Failed", status_extra={"reason": "Evicted", "message": msg})
    d = diagnose_pod(pod)
    assert d.kind == "evicted" and not d.fatal
    assert "evicted from node worker-1: the node ran low on memory" in d.summary
    assert "used 5321492Ki while it asked for 4Gi" in d.summary and d.detail == msg
    assert "--memory" in d.hint


def test_evicted_for_disk_use_says_so():
    msg = ("The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 2Gi. "
           "Container model was using 12Gi, request is 0, has larger consumption of ephemeral-storage. ")
    d = diagnose_pod(make_pod(phase="Failed", status_extra={"reason": "Evicted", "message": msg}))
    assert "the node ran low on disk space, and its container model used 12Gi while it asked for nothing" in (
        d.summary)
    assert "volume" in d.hint


def test_crash_loop_without_fetched_logs_says_how_to_read_them():
    d = diagnose_pod(crash_pod())
    assert f"kubectl logs {POD} -c model --previous" in d.hint and "Log (" not in (d.detail or "")


def test_healthy_pod_has_no_diagnosis():
    assert diagnose_pod(running_pod(ready=True), now=T0 + 3600) is None


@pytest.mark.parametrize("pod", [
    make_pod(node=None),  # just created, no scheduler verdict yet
    make_pod(conditions=[cond("PodScheduled")], statuses=[cstatus()]),  # ContainerCreating
    running_pod(ready=False, started=0),  # running, still within its readiness probe's time
    make_pod(phase="Running", deleting=True, statuses=[cstatus(state={"running": {"startedAt": iso(0)}})]),
])
def test_starting_or_terminating_pods_have_no_diagnosis(pod):
    pulling = make_event("Pulling", f'Pulling image "{IMAGE}"', type="Normal")
    assert diagnose_pod(pod, [pulling], now=T0 + 20) is None


def test_never_ready_after_probe_window_is_a_diagnosis_but_not_fatal():
    pod = running_pod(ready=False, started=0)
    ev = make_event("Unhealthy", 'Readiness probe failed: Get "http://10.244.1.7:8080/v2/health/ready": '
                    "dial tcp 10.244.1.7:8080: connect: connection refused", count=12, at=120,
                    field_path=FIELD)
    # window = 5 + 10 * 3 = 35 s after start
    assert diagnose_pod(pod, [ev], now=T0 + 34) is None
    d = diagnose_pod(pod, [ev], now=T0 + 192)
    assert d.kind == "never-ready" and not d.fatal
    assert "not ready after 3m12s: nothing answers on port 8080 yet" in d.summary
    assert "0.0.0.0" in d.hint and d.detail == ev["message"]
    ev404 = make_event("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 404",
                       field_path=FIELD)
    d = diagnose_pod(pod, [ev404], now=T0 + 192)
    assert "404 Not Found to GET /v2/health/ready on port 8080" in d.summary and "/healthz" in d.hint


def test_startup_probe_extends_the_window():
    startup = {"httpGet": {"path": "/v2/health/live", "port": 8080}, "periodSeconds": 10,
               "failureThreshold": 30}
    pod = running_pod(ready=False, started=0, containers=[make_container(startup=startup)])
    assert diagnose_pod(pod, now=T0 + 200) is None  # 300 s startup + 35 s readiness
    assert diagnose_pod(pod, now=T0 + 400).kind == "never-ready"


# --- Deployments and ReplicaSets

PSA_MSG = ('Error creating: pods "churn-7d9f8c6b5-q8w2z" is forbidden: violates PodSecurity '
           '"restricted:latest": allowPrivilegeEscalation != false (container "model" must set '
           "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
           '"model" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or '
           'container "model" must set securityContext.runAsNonRoot=true), seccompProfile (pod or '
           'container "model" must set securityContext.seccompProfile.type to "RuntimeDefault" or '
           '"Localhost")')


def test_pod_security_rejection_on_a_replicaset_is_fatal_and_lists_the_violations():
    ev = make_event("FailedCreate", PSA_MSG, kind="ReplicaSet", name=RS, count=4,
                    component="replicaset-controller")
    d = diagnose_events([make_event("ScalingReplicaSet", "Scaled up replica set churn-7d9f8c6b5 to 3",
                                    kind="Deployment", name="churn", type="Normal"), ev])
    assert d.kind == "create-failed" and d.fatal and d.pod is None
    assert d.summary == ("Kubernetes refused to create the pods of churn: the namespace enforces the Pod "
                         'Security level "restricted:latest" and the pod breaks it: allowPrivilegeEscalation '
                         "!= false, unrestricted capabilities, runAsNonRoot != true, seccompProfile.")
    assert d.detail == PSA_MSG and "non-root" in d.hint


def test_quota_rejection_names_the_quota():
    msg = ('Error creating: pods "churn-7d9f8c6b5-k2j4d" is forbidden: exceeded quota: team-ml, requested: '
           "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, limited: requests.nvidia.com/gpu=4")
    d = diagnose_events([make_event("FailedCreate", msg, kind="ReplicaSet", name=RS)])
    assert d.fatal and 'resource quota "team-ml"' in d.summary
    assert "allowed requests.nvidia.com/gpu=4" in d.summary


def test_missing_service_account_waits_for_a_repeat():
    msg = ('Error creating: pods "churn-7d9f8c6b5-" is forbidden: error looking up service account '
           'ml/model-sa: serviceaccount "model-sa" not found')
    once = diagnose_events([make_event("FailedCreate", msg, kind="ReplicaSet", name=RS)])
    assert not once.fatal and 'ServiceAccount "model-sa" does not exist' in once.summary
    assert diagnose_events([make_event("FailedCreate", msg, kind="ReplicaSet", name=RS, count=2)]).fatal


def test_events_without_failed_create_give_nothing():
    assert diagnose_events([make_event("SuccessfulCreate", "Created pod: churn-7d9f8c6b5-q8w2z",
                                       kind="ReplicaSet", name=RS, type="Normal")]) is None


TIMED_OUT = f'ReplicaSet "{RS}" has timed out progressing.'


def test_progress_deadline_exceeded():
    dep = make_deployment(updated=1, total=3, ready=2, available=2, conditions=[
        cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
        cond("Progressing", "False", "ProgressDeadlineExceeded", TIMED_OUT)])
    d = diagnose_deployment(dep)
    assert d.kind == "progress-deadline" and d.fatal
    assert "made no progress for 600s" in d.summary and d.detail == TIMED_OUT


def test_stale_conditions_of_the_previous_spec_are_ignored():
    dep = make_deployment(generation=3, observed=2, conditions=[
        cond("Progressing", "False", "ProgressDeadlineExceeded", TIMED_OUT.replace(RS, "churn-old"))])
    assert diagnose_deployment(dep) is None


def test_replica_failure_condition_is_create_failed():
    dep = make_deployment(conditions=[
        cond("Progressing", "True", "NewReplicaSetCreated", f'Created new replica set "{RS}"'),
        cond("ReplicaFailure", "True", "FailedCreate", PSA_MSG.removeprefix("Error creating: "))])
    d = diagnose_deployment(dep)
    assert d.kind == "create-failed" and d.fatal and "Pod Security" in d.summary


def test_healthy_deployment_has_no_diagnosis():
    dep = make_deployment(updated=3, total=3, ready=3, available=3, conditions=[
        cond("Available", "True", "MinimumReplicasAvailable"),
        cond("Progressing", "True", "NewReplicaSetAvailable",
             f'ReplicaSet "{RS}" has successfully progressed.')])
    assert diagnose_deployment(dep) is None


# --- helpers


def test_most_relevant_prefers_fatal_then_kind_order():
    a = Diagnosis("never-ready", "p1", "a")
    b = Diagnosis("unschedulable", "p2", "b", fatal=True)
    c = Diagnosis("image-pull", "p3", "c")
    assert most_relevant([a, None, b, c]) is b
    assert most_relevant([a, c]) is c
    assert most_relevant([]) is None
    assert b.fatal and not a.fatal and not c.fatal
    assert set(KINDS) >= {"image-pull", "crash-loop", "oom-killed", "unschedulable", "never-ready",
                          "progress-deadline", "create-failed", "evicted"}


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (192, "3m12s"), (600, "10m"), (179 * 60, "179m"),
    # kubectl keeps minutes below 3 h: 2h5m prints as 125m
    (2 * 3600 + 5 * 60, "125m"), (3 * 3600 + 5 * 60, "3h5m"), (3 * 3600, "3h"), (9 * 3600, "9h"),
    (3 * 86400, "3d"), (3 * 86400 + 7200, "3d2h"),
    (30 * 86400, "30d"), (3 * 365 * 86400, "3y"), (-0.5, "0s"), (-5, "<invalid>"), (None, "<unknown>"),
])
def test_format_age_matches_kubectl(seconds, text):
    assert format_age(seconds) == text


@given(st.floats(min_value=0, max_value=20 * 365 * 86400, allow_nan=False))
def test_format_age_is_always_a_short_kubectl_duration(seconds):
    assert re.fullmatch(r"\d+(s|m|m\d+s|h|h\d+m|d|d\d+h|y|y\d+d)", format_age(seconds))


@pytest.mark.parametrize(("text", "value"), [
    ("500m", 0.5), ("2", 2.0), ("4Gi", 4 * 2**30), ("512Mi", 512 * 2**20), ("1G", 1e9), ("1e3", 1000.0),
    ("0.5", 0.5), (3, 3.0), ("abc", None), (None, None),
])
def test_reported_amount(text, value):
    assert reported_amount(text) == value


def test_parse_time_reads_rfc3339_and_microtime():
    assert parse_time("2024-05-01T10:00:00Z") == T0
    assert parse_time("2024-05-01T10:00:00.250000Z") == T0 + 0.25
    assert parse_time("2024-05-01T10:00:00.25Z") == T0 + 0.25  # Python 3.10 needs 3 or 6 digits
    assert parse_time("2024-05-01T12:00:00+02:00") == T0
    assert parse_time(None) is None and parse_time("yesterday") is None


_REASONS = st.sampled_from(["Insufficient cpu", "Insufficient nvidia.com/gpu", "Insufficient memory",
                            "node(s) had untolerated taint {nvidia.com/gpu: present}",
                            "node(s) didn't match Pod's node affinity/selector",
                            "node(s) were unschedulable"])


@given(st.lists(st.tuples(st.integers(1, 50), _REASONS), min_size=1, max_size=5, unique_by=lambda t: t[1]),
       st.integers(1, 200), st.booleans())
def test_scheduler_message_round_trips(items, total, with_preemption):
    msg = f"0/{total} nodes are available: " + ", ".join(f"{n} {r}" for n, r in items) + "."
    if with_preemption:
        msg += f" preemption: 0/{total} nodes are available: {total} No preemption victims found."
    assert parse_scheduler_message(msg) == (total, list(items))


@given(st.lists(st.tuples(st.integers(1, 5), _REASONS), min_size=1, max_size=5, unique_by=lambda t: t[1]))
def test_any_scheduler_message_gives_a_sentence_naming_the_pod(items):
    total = sum(n for n, _ in items)
    msg = f"0/{total} nodes are available: " + ", ".join(f"{n} {r}" for n, r in items) + "."
    d = diagnose_pod(unschedulable_pod(msg, containers=[make_container(gpu=1)]))
    assert d.kind == "unschedulable" and d.summary.startswith(f"No node can run pod {POD}: ")
    assert d.summary.endswith(".") and d.detail == msg
    # each permanent reason on its own rules out every node it counts; together they cover all nodes here
    permanent = all("Insufficient cpu" not in r and "Insufficient memory" not in r for _, r in items)
    if permanent or any("nvidia.com/gpu" in r and "Insufficient" in r for _, r in items):
        assert d.fatal


def test_scheduler_message_of_kubernetes_1_36_with_postscript():
    # Seen verbatim from the sandbox's kube-scheduler 1.36.1.
    msg = ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu. no new claims to deallocate, "
           "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
           "2 Preemption is not helpful for scheduling.")
    assert parse_scheduler_message(msg) == (3, [(3, "Insufficient nvidia.com/gpu")])
