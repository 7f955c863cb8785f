"""Pod logs read by the real API server from kwok's kubelet endpoint: the crash-loop diagnosis quotes
them, and live_from_pods joins prediction logs the reference server wrote (see sandbox/pod_logs.py)."""

from __future__ import annotations

import http.client
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import models_for_tests as mft
import pytest

import jupyter_mldeploy as mld
from jupyter_mldeploy import labels as L
from jupyter_mldeploy import rollout as ro
from jupyter_mldeploy.errors import RolloutFailed
from jupyter_mldeploy.kube.client import Kube
from jupyter_mldeploy.sandbox import pod_logs
from jupyter_mldeploy.serving import serve
from jupyter_mldeploy.shadow import ShadowReport, live, live_from_pods
from jupyter_mldeploy.spec import DeploySpec

pytestmark = pytest.mark.sandbox


@pytest.fixture(autouse=True)
def sandbox_only(cluster):
    if not cluster.is_sandbox:
        pytest.skip("kwok's simulated pods serve these logs; a real cluster's pods write their own")


def spec(image: str, **kw) -> DeploySpec:
    return DeploySpec.from_dict({"name": "churn", "image": image, **kw})


def pod_names(kube: Kube, namespace: str, track: str) -> list[str]:
    selector = f"{L.APP_INSTANCE}=churn,{L.TRACK}={track}"
    _, body = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})
    return sorted(p["metadata"]["name"] for p in body["items"] if not p["metadata"].get("deletionTimestamp"))


def read_log(kube: Kube, namespace: str, pod: str) -> str:
    return kube.text(f"/api/v1/namespaces/{namespace}/pods/{pod}/log")


def test_crash_loop_diagnosis_quotes_the_log_the_api_server_reads_from_kwok(kube, namespace):
    with pytest.raises(RolloutFailed) as err:
        mld.deploy(spec("ghcr.io/acme/churn:1.4", labels={"sandbox.mldeploy.io/fail": "crash-loop"}),
                   namespace=namespace, kube=kube, timeout=120)
    d = err.value.diagnosis
    assert d.kind == "crash-loop" and d.fatal
    crash = [line for _stream, line in pod_logs.CRASH_LOG]
    assert f'last saying "{crash[-1]}"' in d.summary
    assert d.detail.endswith(f"Log (all {len(crash)} lines):\n" + "\n".join(crash))
    assert d.hint.startswith("read the log below")
    assert "FileNotFoundError" in str(err.value)
    # The same lines, straight from the API server: the previous container's log.
    text = kube.text(f"/api/v1/namespaces/{namespace}/pods/{d.pod}/log", query={"previous": "true"})
    assert text.splitlines() == crash


def _infer(url: str, request_id: str, row: list[float]) -> None:
    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body = {"inputs": [{"name": "input-0", "shape": [1, len(row)], "datatype": "FP64", "data": row}]}
    conn.request("POST", "/v2/models/churn/infer", body=json.dumps(body),
                 headers={"Content-Type": "application/json", "x-request-id": request_id})
    conn.getresponse().read()
    conn.close()


def shadow_with_prediction_logs(kube: Kube, namespace: str, folder: Path) -> tuple[list[str], list[str]]:
    """A stable track of 2 pods and a shadow of 1 whose kwok logs hold what the reference server wrote
    for mirrored traffic: 20 pairs (15 agreeing), one shadow error, one unmirrored request, one line that
    is not a record, and a pair stamped an hour ago. Returns the recent lines (primary, shadow)."""
    mld.deploy(spec("ghcr.io/acme/churn:1.0", replicas=2), namespace=namespace, kube=kube, timeout=120)
    # The candidate inherits the stable's two replicas unless told otherwise: one shadow pod here.
    ro.start({"name": "churn", "image": "ghcr.io/acme/churn:2.0", "replicas": 1}, strategy="shadow",
             mirror=100, router="istio",
             namespace=namespace, kube=kube, timeout=120)
    stable, shadow = pod_names(kube, namespace, "stable"), pod_names(kube, namespace, "shadow")
    assert len(stable) == 2 and len(shadow) == 1

    # What the reference server logs for mirrored traffic: the same request id on both sides.
    p_lines: list[str] = []
    s_lines: list[str] = []
    with serve(mft.primary, name="churn", version="1", log=p_lines.append) as p, \
            serve(mft.shadow, name="churn", version="2", log=s_lines.append) as s:
        for i in range(20):
            _infer(p.url, f"r{i}", [i, 1])
            _infer(s.url, f"r{i}", [i, 1])
        _infer(p.url, "neg", [-1, 1])  # the shadow fails on a negative first value
        _infer(s.url, "neg", [-1, 1])
        _infer(p.url, "solo", [3, 3])  # not mirrored
        _infer(p.url, "old", [1, 1])  # logged an hour ago: sinceSeconds leaves it out
        _infer(s.url, "old", [1, 1])
    old_p, old_s = p_lines.pop(), s_lines.pop()
    assert (len(p_lines), len(s_lines)) == (22, 21)

    hour_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    files = {
        stable[0]: [("INFO serving: listening on :8080", None), *[(x, None) for x in p_lines[:11]]],
        stable[1]: [(old_p, hour_ago), *[(x, None) for x in p_lines[11:]]],
        shadow[0]: [(old_s, hour_ago), *[(x, None) for x in s_lines]],
    }
    for pod, lines in files.items():
        path = folder / f"{pod}.log"
        for line, when in lines:
            pod_logs.write_log(path, [line], when)
        kube.request("POST", f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{namespace}/logs",
                     body=pod_logs.logs_object(namespace, pod, path))
    # kwok learns of a Logs object through its watch; until then the pod has the empty default log.
    deadline = time.monotonic() + 30
    for pod, lines in files.items():
        while read_log(kube, namespace, pod).splitlines() != [line for line, _ in lines]:
            assert time.monotonic() < deadline, f"kwok never served the log of {pod}"
            time.sleep(0.2)
    return p_lines, s_lines


def check_prediction_log_report(report: ShadowReport, namespace: str) -> None:
    """The figures of the last five minutes of the logs shadow_with_prediction_logs wrote."""
    sm = report.summary
    assert (sm.n, sm.compared, sm.agreeing) == (21, 20, 15)  # r15..r19 differ by SHADOW_OFFSET
    assert (sm.primary_errors, sm.shadow_errors) == (0, 1)
    assert sm.max_abs_diff == pytest.approx(mft.SHADOW_OFFSET)
    assert (sm.unmatched_primary, sm.unmatched_shadow, sm.unparsed_primary) == (1, 0, 1)
    assert ("primary", "solo") in report.unmatched
    assert "old" not in set(report.rows["request_id"])
    assert report.primary == f"logs of 2 stable pod(s) in {namespace}"
    assert report.shadow == f"logs of 1 shadow pod(s) in {namespace}"


def test_live_from_pods_joins_the_prediction_logs_kwok_serves(kube, namespace, tmp_path: Path):
    p_lines, s_lines = shadow_with_prediction_logs(kube, namespace, tmp_path)
    report = live_from_pods("churn", namespace=namespace, kube=kube, since=timedelta(minutes=5))
    check_prediction_log_report(report, namespace)
    # The same join as live() over the lines as the servers wrote them, minus the hour-old ones.
    local = live("churn", primary_log=["INFO serving: listening on :8080", *p_lines], shadow_log=s_lines)
    assert report.rows.equals(local.rows)


def test_shadow_magic_live_reads_the_same_logs_without_sending_a_row(ip, kube, namespace, tmp_path: Path):
    shadow_with_prediction_logs(kube, namespace, tmp_path)
    report = ip.run_line_magic("shadow", "churn --live --since 5m")
    assert isinstance(report, ShadowReport) and report.source == "live"
    check_prediction_log_report(report, namespace)
    # Without --since the whole log is read: the hour-old pair joins too.
    whole = ip.run_line_magic("shadow", "churn --live --mode exact")
    assert (whole.summary.n, whole.summary.mode) == (22, "exact")
    assert "old" in set(whole.rows["request_id"])
    # A live frontend shows the report in the ShadowView, whose Refresh (it would send rows) stays off.
    ip.run_line_magic("config", "MLDeploy.interactive = 'yes'")
    view = ip.run_line_magic("shadow", "churn --live --since 5m")
    assert type(view).__name__ == "ShadowView" and view.refresh_button.disabled
    check_prediction_log_report(view.report, namespace)


def test_live_from_pods_bounds_each_read_and_says_so(kube, namespace, tmp_path: Path):
    shadow_with_prediction_logs(kube, namespace, tmp_path)
    # The newest 5 lines of each pod: stable r6..r10 and r17, r18, r19, neg, solo; shadow r16..r19, neg.
    report = live_from_pods("churn", namespace=namespace, kube=kube, tail_lines=5)
    assert sorted(report.rows["request_id"]) == ["neg", "r17", "r18", "r19"]
    assert report.primary.endswith("only its last 5 lines read)") and "(bounded read: pod " in report.primary
    assert report.shadow == (f"logs of 1 shadow pod(s) in {namespace} (bounded read: pod "
                             f"{pod_names(kube, namespace, 'shadow')[0]}: only its last 5 lines read)")
    # limitBytes cuts a line in two: the cut line is dropped, not counted as unreadable.
    first = len(read_log(kube, namespace, pod_names(kube, namespace, "shadow")[0]).splitlines()[0]) + 1
    cut = live_from_pods("churn", namespace=namespace, kube=kube, limit_bytes=first + 40)
    assert cut.summary.unparsed_shadow == 0 and "only the first" in cut.shadow
