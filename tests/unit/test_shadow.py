"""shadow: replay to two real reference servers (separate processes), join their logs, the report views."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import models_for_tests as mft
import numpy as np
import pandas as pd
import pytest
from stand_in_api import serving

from jupyter_mldeploy.errors import MLDeployError, SpecError
from jupyter_mldeploy.serving import serve
from jupyter_mldeploy.shadow import ShadowReport, choose_mode, compare, compare_values, live, live_from_pods

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"

ROWS = [[i, i + 1] for i in range(20)] + [[-1, 2], [-2, 3]]  # the last two make the shadow fail


class Proc:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def records(self) -> list[dict]:
        return [json.loads(x) for x in self.log.read_text().splitlines()]


@pytest.fixture
def start(tmp_path):
    """Start a reference server as its own process on 127.0.0.1; all are stopped after the test."""
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}

    def _start(model: str, name: str = "churn", version: str = "1") -> Proc:
        log = tmp_path / f"{model.split(':')[1]}-{len(procs)}.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "jupyter_mldeploy.serving", "--model", model,
                                 "--name", name, "--version", version, "--port", "0", "--log-file", str(log)],
                                env=env, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        banner = proc.stderr.readline()
        assert "listening on" in banner, banner + proc.stderr.read()
        return Proc(proc, banner.split("listening on ")[1].strip(), log)

    yield _start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)
        proc.stderr.close()


@pytest.fixture
def pair(start):
    return start("models_for_tests:primary", version="1"), start("models_for_tests:shadow", version="2")


# --- replay against two processes ------------------------------------------------------------------


def test_replay_report_matches_the_known_differences(pair):
    primary, shadow = pair
    report = compare("churn", ROWS, primary_url=primary.url, shadow_url=shadow.url, concurrency=4)
    s = report.summary
    assert (s.n, s.compared, s.agreeing) == (22, 20, 15)
    assert s.agreement_pct == pytest.approx(75.0)
    assert s.mode == "numeric"  # float answers
    assert s.max_abs_diff == pytest.approx(mft.SHADOW_OFFSET)
    assert s.mean_abs_diff == pytest.approx(5 * mft.SHADOW_OFFSET / 20)
    assert (s.primary_errors, s.shadow_errors) == (0, 2)
    assert s.primary_p50_ms > 0 and s.shadow_p50_ms > 0 and s.primary_p95_ms >= s.primary_p50_ms
    assert s.wall_s > 0

    rows = report.rows
    assert list(rows.columns) == ["request_id", "input", "primary", "shadow", "agree", "abs_diff",
                                  "primary_ms", "shadow_ms", "primary_error", "shadow_error"]
    assert (rows["primary_ms"] > 0).all() and (rows["shadow_ms"] > 0).all()
    differing = rows[rows["agree"] == False]  # noqa: E712
    assert [r[0] for r in ROWS[15:20]] == [json.loads(x)[0] for x in differing["input"]]
    assert differing["abs_diff"].tolist() == pytest.approx([0.5] * 5)
    assert rows.loc[0, "primary"] == 1.0 and rows.loc[0, "shadow"] == 1.0
    failed = rows[rows["shadow_error"].notna()]
    assert len(failed) == 2 and failed["agree"].isna().all()
    assert all("HTTP 500" in e and "negative first value" in e for e in failed["shadow_error"])
    assert report.disagreements.shape[0] == 5 and report.errors.shape[0] == 2


def test_both_servers_logged_every_row_under_the_same_request_id(pair):
    primary, shadow = pair
    report = compare("churn", ROWS, primary_url=primary.url, shadow_url=shadow.url)
    ids = report.rows["request_id"].tolist()
    assert len(set(ids)) == len(ROWS)
    p = {r["request_id"]: r for r in primary.records()}
    s = {r["request_id"]: r for r in shadow.records()}
    assert set(p) == set(s) == set(ids)
    for rid, row in zip(ids, ROWS, strict=True):
        assert p[rid]["inputs"] == s[rid]["inputs"] == [[float(x) for x in row]]
    assert {r["version"] for r in p.values()} == {"1"} and {r["version"] for r in s.values()} == {"2"}


def test_log_join_of_the_lines_the_servers_wrote(pair):
    primary, shadow = pair
    replay = compare("churn", ROWS, primary_url=primary.url, shadow_url=shadow.url)
    # A request only the primary saw (not mirrored), and a line that is not a prediction record.
    compare("churn", [[1, 1]], primary_url=primary.url, shadow_url=primary.url)  # primary twice: same id
    with primary.log.open("a") as f:
        f.write("Traceback (most recent call last):\n")
    solo = {"ts": "2030-01-01T00:00:00.000Z", "request_id": "solo", "model": "churn", "version": "1",
            "inputs": [[3, 3]], "outputs": {"predictions": [6.0]}, "latency_ms": 0.2}
    with primary.log.open("a") as f:
        f.write(json.dumps(solo) + "\n")

    report = live("churn", primary_log=str(primary.log), shadow_log=shadow.log)
    s = report.summary
    assert (s.n, s.compared, s.agreeing) == (22, 20, 15)
    assert (s.primary_errors, s.shadow_errors) == (0, 2)
    assert s.max_abs_diff == pytest.approx(0.5)
    assert set(report.rows["request_id"]) == set(replay.rows["request_id"])
    # Not dropped silently: one duplicated id (the primary-twice request: ambiguous, so neither paired
    # nor unmatched), one unmatched, one unreadable.
    assert s.duplicate_ids == 1
    assert (s.unmatched_primary, s.unmatched_shadow) == (1, 0)
    assert ("primary", "solo") in report.unmatched
    assert s.unparsed_primary == 1 and report.unparsed[0][0] == "primary"
    assert "not JSON: Traceback" in report.unparsed[0][2]
    assert s.primary_p50_ms > 0 and s.latency_source.startswith("server-side")
    text = str(report)
    assert "1 primary and 0 shadow request ids have no partner" in text
    assert "1 request ids on more than one line: ambiguous, not paired" in text
    assert "1 primary and 0 shadow lines are not prediction records" in text
    assert "no partner: " in text and "primary solo" in text
    assert "Request ids with no partner: " in report._repr_html_()


def test_classifier_labels_and_probability_vectors(start):
    primary = start("models_for_tests:classify")
    shadow = start("models_for_tests:classify_shadow")
    rows = [[i / 2, i / 2] for i in range(25)]  # sums 0..24: thresholds 10 and 12 differ on sums 11, 12
    labels = compare("churn", rows, primary_url=primary.url, shadow_url=shadow.url)
    assert labels.summary.mode == "label"  # integer class ids
    assert labels.summary.agreeing == 23 and labels.summary.compared == 25
    assert sorted(json.loads(x)[0] * 2 for x in labels.disagreements["input"]) == [11, 12]
    probs = compare("churn", rows, primary_url=primary.url, shadow_url=shadow.url, output="probabilities")
    assert probs.summary.mode == "label"  # probability vectors: argmax
    assert probs.summary.agreeing == 23
    assert probs.summary.max_abs_diff == pytest.approx(20 / 20 - 20 / 24, abs=1e-5)  # largest at sum 20
    numeric = compare("churn", rows, primary_url=primary.url, shadow_url=shadow.url, output="probabilities",
                      mode="numeric", tolerance=0.04)
    assert numeric.summary.mode == "numeric"
    close = [abs(min(1, i / 20) - min(1, i / 24)) <= 0.04 for i in range(25)]
    assert numeric.summary.agreeing == sum(close) == 6  # sums 0..4 and 24


def test_images_with_only_predict_can_be_compared(pair):
    primary, shadow = pair
    report = compare(None, ROWS, primary_url=primary.url, shadow_url=shadow.url, protocol="predict")
    s = report.summary
    assert (s.compared, s.agreeing, s.shadow_errors) == (20, 15, 2)
    assert {r["request_id"] for r in shadow.records()} == set(report.rows["request_id"])  # x-request-id


def test_numpy_and_dataframe_data(pair):
    primary, shadow = pair
    arr = np.array([[1.0, 2.0], [16.0, 1.0], [3.0, 4.0]])
    report = compare("churn", arr, primary_url=primary.url, shadow_url=shadow.url)
    assert report.summary.agreeing == 2 and report.rows["primary"].tolist() == [3.0, 17.0, 7.0]
    frame = pd.DataFrame({"first": [16, 2], "second": [0.5, 0.25]})
    report = compare("churn", frame, primary_url=primary.url, shadow_url=shadow.url)
    assert report.rows["primary"].tolist() == [16.5, 2.25]
    assert report.rows["shadow"].tolist() == [17.0, 2.25]
    # A DataFrame travels as one tensor per column: the server logged one dict per row.
    assert primary.records()[-1]["inputs"][0] in ({"first": 16, "second": 0.5}, {"first": 2, "second": 0.25})


def test_both_sides_of_a_row_are_in_flight_together_and_concurrency_is_bounded():
    barrier = threading.Barrier(2, timeout=5)
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def model(rows):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            barrier.wait()  # only passes when the other side has the same row in flight
            return [sum(r) for r in rows]
        finally:
            with lock:
                state["now"] -= 1

    with serve(model, name="m") as p, serve(model, name="m") as s:
        report = compare("m", [[i] for i in range(12)], primary_url=p.url, shadow_url=s.url, concurrency=1)
    assert report.summary.primary_errors == report.summary.shadow_errors == 0
    assert report.summary.agreeing == 12
    assert state["max"] == 2  # one row, both sides; never a second row with concurrency=1


# --- clear failures --------------------------------------------------------------------------------


def test_nothing_listening_is_one_sentence(pair):
    primary, _ = pair
    with pytest.raises(MLDeployError) as err:
        compare("churn", ROWS, primary_url=primary.url, shadow_url="http://127.0.0.1:9")
    text = str(err.value)
    assert text.startswith("Nothing answered at http://127.0.0.1:9 for the shadow model")
    assert "\n" not in text and "Traceback" not in text


def test_a_wrong_model_name_is_one_sentence(pair):
    primary, shadow = pair
    with pytest.raises(MLDeployError, match=r"The primary server at http://127\.0\.0\.1:\d+ does not serve "
                                            r"a model named 'fraud'.*The shadow server"):
        compare("fraud", ROWS, primary_url=primary.url, shadow_url=shadow.url)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"data": []}, "no rows"),
    ({"data": None}, "needs data"),
    ({"data": {"a": 1}}, "not a dict"),
    ({"data": ROWS, "mode": "fuzzy"}, "Unknown comparison mode"),
    ({"data": ROWS, "concurrency": 0}, "concurrency"),
    ({"data": ROWS, "shadow_url": None}, "needs both primary_url and shadow_url"),
    ({"data": ROWS, "protocol": "predict", "output": "probabilities"}, "has only predictions"),
    ({"data": ROWS, "protocol": "grpc"}, "protocol must be"),
])
def test_bad_arguments_are_refused_before_any_request(kwargs, fragment):
    args = {"primary_url": "http://127.0.0.1:9", "shadow_url": "http://127.0.0.1:9", "via": "urls", **kwargs}
    with pytest.raises(SpecError, match=fragment):
        compare("churn", **args)


# --- comparison modes ------------------------------------------------------------------------------


def test_modes_one_pair_at_a_time():
    assert compare_values(1.0, 1.0000001, "numeric", tolerance=1e-6)[:2] == (True, pytest.approx(1e-7))
    assert compare_values(1.0, 1.1, "numeric", tolerance=1e-6)[0] is False
    assert compare_values("cat", "cat", "exact") == (True, None, None)
    assert compare_values([0.2, 0.8], [0.4, 0.6], "label") == (True, pytest.approx(0.2), None)
    assert compare_values([0.6, 0.4], [0.4, 0.6], "label")[0] is False
    agree, diff, overlap = compare_values([9, 8, 7, 1, 0], [9, 7, 8, 0, 1], "topk", k=3)
    assert (agree, diff, overlap) == (True, 1.0, 1.0)
    agree, _, overlap = compare_values([9, 8, 7, 1, 0], [9, 8, 0, 7, 1], "topk", k=3)
    assert agree is False and overlap == pytest.approx(2 / 3)
    with pytest.raises(SpecError):
        compare_values(1, 1, "fuzzy")


def test_auto_mode_picks_from_the_answer_types():
    assert choose_mode([(1.5, 1.25)]) == "numeric"
    assert choose_mode([(1, 0), (2, 2)]) == "label"
    assert choose_mode([("cat", "dog")]) == "label"
    assert choose_mode([([0.3, 0.7], [0.5, 0.5])]) == "label"
    assert choose_mode([([3.0, -1.0], [2.0, 0.5])]) == "numeric"
    assert choose_mode([([0.1] * 10, [0.1] * 10)], k=5) == "topk"
    assert choose_mode([({"a": 1}, {"a": 1})]) == "exact"


# --- views -----------------------------------------------------------------------------------------


def _small_report() -> ShadowReport:
    line = {"ts": "2030-01-01T00:00:00.000Z", "model": "m", "version": "1", "latency_ms": 1.5}
    p = [json.dumps({**line, "request_id": "a", "inputs": ["<script>alert(1)</script>"],
                     "outputs": {"predictions": [1.0]}}),
         json.dumps({**line, "request_id": "b", "inputs": [[2]], "outputs": {"predictions": [2.0]}}),
         json.dumps({**line, "request_id": "c", "inputs": [[3]], "outputs": {"predictions": [3.0]}})]
    s = [json.dumps({**line, "request_id": "a", "inputs": ["<script>alert(1)</script>"],
                     "outputs": {"predictions": [1.5]}, "latency_ms": 2.5}),
         json.dumps({**line, "request_id": "b", "inputs": [[2]], "outputs": {"predictions": [2.0]}}),
         json.dumps({**line, "request_id": "c", "inputs": [[3]], "outputs": None, "error": "boom <b>"})]
    return live("m<1>", primary_log="\n".join(p), shadow_log=io.StringIO("\n".join(s) + "\nnot json\n"))


def test_text_view():
    text = str(_small_report())
    assert text.splitlines()[0] == ("Shadow comparison of m<1> (3 mirrored rows joined from logs, "
                                    "mode numeric, tolerance 1e-06)")
    assert "agreement       50.0% (1 of 2 rows both sides answered)" in text
    assert "abs difference  mean 0.25, max 0.5" in text
    assert "errors          primary 0, shadow 1" in text
    assert "shadow error: boom <b>" in text
    assert repr(_small_report()) == text


def test_html_view_escapes_and_highlights():
    page = _small_report()._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "boom &lt;b&gt;" in page
    assert "m&lt;1&gt;" in page
    assert page.count('style="background-color:#f8d7da"') == 1  # the disagreeing row
    assert page.count('style="background-color:#fff3cd"') == 1  # the row the shadow failed
    assert "not json" in page  # the unreadable line is listed


def test_html_view_caps_rows_and_puts_disagreements_first():
    line = {"ts": "2030-01-01T00:00:00Z", "model": "m", "version": "1", "latency_ms": 1.0}
    p = [json.dumps({**line, "request_id": str(i), "inputs": [[i]], "outputs": {"predictions": [float(i)]}})
         for i in range(300)]
    s = [json.dumps({**line, "request_id": str(i), "inputs": [[i]],
                     "outputs": {"predictions": [float(i) + (i == 299)]}}) for i in range(300)]
    page = live("m", primary_log=p, shadow_log=s)._repr_html_()
    assert "First 200 of 300 rows" in page
    first_row = page.split("<tbody>")[1].split("</tr>")[0]
    assert "#f8d7da" in first_row and "<td>299</td>" in first_row


def test_plot_returns_a_figure_with_latency_and_differences(tmp_path):
    fig = _small_report().plot()
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    latency, diffs = fig.axes
    assert latency.get_title() == "Latency" and "latency, ms" in latency.get_xlabel()
    assert [t.get_text() for t in latency.get_legend().get_texts()][0].startswith("primary")
    assert diffs.get_title().startswith("Differences (max 0.5")
    fig.savefig(tmp_path / "shadow.png")
    assert (tmp_path / "shadow.png").stat().st_size > 1000


def test_plot_without_numeric_differences_shows_agreement_counts():
    line = {"ts": "2030-01-01T00:00:00Z", "model": "m", "version": "1", "latency_ms": 1.0}
    p = [json.dumps({**line, "request_id": "x", "inputs": [[1]], "outputs": {"predictions": ["cat"]}})]
    s = [json.dumps({**line, "request_id": "x", "inputs": [[1]], "outputs": {"predictions": ["dog"]}})]
    fig = live("m", primary_log=p, shadow_log=s).plot()
    assert fig.axes[1].get_title() == "Agreement (label)"
    assert [b.get_height() for b in fig.axes[1].patches] == [0, 1, 0, 0]


# --- live(): inputs and edge cases -----------------------------------------------------------------


def _line(rid: str, ts: datetime, value: float, inputs=None) -> str:
    return json.dumps({"ts": ts.isoformat().replace("+00:00", "Z"), "request_id": rid, "model": "m",
                       "version": "1", "inputs": inputs or [[1]], "outputs": {"predictions": [value]},
                       "latency_ms": 1.0})


def test_live_since_keeps_recent_lines_and_counts_the_rest():
    now = datetime.now(timezone.utc)
    old, new = now - timedelta(hours=2), now - timedelta(minutes=1)
    p = [_line("old", old, 1.0), _line("new", new, 1.0)]
    s = [_line("old", old, 1.0), _line("new", new, 2.0)]
    report = live("m", primary_log=p, shadow_log=s, since=timedelta(minutes=30))
    assert report.rows["request_id"].tolist() == ["new"]
    assert report.summary.before_since == 2
    assert live("m", primary_log=p, shadow_log=s, since=3600).summary.n == 1
    assert live("m", primary_log=p, shadow_log=s, since=(now - timedelta(hours=3)).isoformat()).summary.n == 2
    with pytest.raises(SpecError, match="since must be"):
        live("m", primary_log=p, shadow_log=s, since="yesterday")


def test_live_batched_lines_and_mismatched_inputs():
    now = datetime.now(timezone.utc)
    p = [json.dumps({"ts": now.isoformat(), "request_id": "b", "inputs": [[1], [2]],
                     "outputs": {"predictions": [1.0, 2.0]}, "latency_ms": 1})]
    s = [json.dumps({"ts": now.isoformat(), "request_id": "b", "inputs": [[1], [3]],
                     "outputs": {"predictions": [1.0, 3.0]}, "latency_ms": 1})]
    report = live("m", primary_log=p, shadow_log=s)
    assert report.rows["request_id"].tolist() == []  # not the same request: its answers are not compared
    assert report.summary.input_mismatches == 1 and report.summary.agreement_pct is None
    assert "1 pairs had different inputs on the two sides: left out of the agreement" in str(report)
    same = live("m", primary_log=p, shadow_log=[p[0]])
    assert same.rows["request_id"].tolist() == ["b#0", "b#1"] and same.summary.agreeing == 2


def test_live_reads_paths_and_refuses_a_missing_file(tmp_path):
    now = datetime.now(timezone.utc)
    path = tmp_path / "p.jsonl"
    path.write_text(_line("x", now, 1.0) + "\n")
    assert live("m", primary_log=str(path), shadow_log=path).summary.agreeing == 1
    with pytest.raises(SpecError, match="No log file at"):
        live("m", primary_log=str(tmp_path / "nope.jsonl"), shadow_log=path)


# --- live_from_pods against a stand-in API server on 127.0.0.1 ------------------------------------


class _FakeApi(BaseHTTPRequestHandler):
    """Just enough of the API server for live_from_pods: a pod list by label selector, and pod logs."""

    pods = {"stable": ["churn-a", "churn-b"], "shadow": ["churn-shadow-a"]}
    logs: dict[str, str] = {}
    seen: list[tuple[str, dict]] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        type(self).seen.append((parts.path, query))
        if parts.path == "/api/v1/namespaces/ml/pods":
            track = query["labelSelector"].split("mldeploy.io/track=")[1]
            items = [{"metadata": {"name": n}, "spec": {"containers": [{"name": "model"}, {"name": "proxy"}]}}
                     for n in self.pods.get(track, [])]
            self._reply(200, "application/json", json.dumps({"items": items}))
        elif parts.path.endswith("/log"):
            self._reply(200, "text/plain", self.logs[parts.path.split("/")[-2]])
        else:
            self._reply(404, "application/json", json.dumps({"kind": "Status", "message": "not found"}))

    def _reply(self, status, ctype, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_api(tmp_path):
    """(a Kube connected to the stand-in API server, the requests it saw)."""
    _FakeApi.seen = []
    pods = dict(_FakeApi.pods)
    with serving(_FakeApi, tmp_path) as kube:
        yield kube, _FakeApi.seen
    _FakeApi.pods = pods


def test_live_from_pods_reads_every_pod_log_through_the_api(fake_api):
    kube, seen = fake_api
    now = datetime.now(timezone.utc)
    # Long logs: more than Kube.request would keep of a non-JSON body.
    _FakeApi.logs = {
        "churn-a": "\n".join(_line(f"r{i}", now, float(i)) for i in range(0, 40)) + "\n",
        "churn-b": "\n".join(_line(f"r{i}", now, float(i)) for i in range(40, 60)) + "\nstarting up\n",
        "churn-shadow-a": "\n".join(_line(f"r{i}", now, float(i) + (i % 10 == 0)) for i in range(5, 60)),
    }
    report = live_from_pods("churn", namespace="ml", kube=kube, since=timedelta(minutes=5))
    s = report.summary
    assert (s.n, s.agreeing) == (55, 50)  # r5..r59 on both sides; r10, r20, ... differ
    assert (s.unmatched_primary, s.unmatched_shadow, s.unparsed_primary) == (5, 0, 1)
    assert report.primary == "logs of 2 stable pod(s) in ml"
    selectors = sorted(q["labelSelector"] for p, q in seen if p.endswith("/pods"))
    assert selectors == ["app.kubernetes.io/instance=churn,mldeploy.io/track=shadow",
                         "app.kubernetes.io/instance=churn,mldeploy.io/track=stable"]
    log_queries = [q for p, q in seen if p.endswith("/log")]
    assert len(log_queries) == 3
    assert all(q == {"container": "model", "sinceSeconds": "300", "tailLines": "50000",
                     "limitBytes": str(32 * 1024 * 1024)} for q in log_queries)


def test_live_from_pods_without_shadow_pods_says_so(fake_api):
    kube, _ = fake_api
    _FakeApi.pods = {"stable": ["churn-a"], "shadow": []}
    _FakeApi.logs = {"churn-a": ""}
    with pytest.raises(MLDeployError, match="No shadow pods of churn in namespace ml"):
        live_from_pods("churn", namespace="ml", kube=kube)
