"""The live shadow join against logs that lie: repeated and crafted request ids, pairs whose inputs
differ, lines built to crash a parser, and pod logs larger than one read may bring back."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest
from stand_in_api import serving

from jupyter_mldeploy.errors import SpecError
from jupyter_mldeploy.shadow import MAX_DEPTH, live, live_from_pods

NOW = datetime.now(timezone.utc)


def record(rid: str, inputs: list, outputs: list, **extra) -> str:
    return json.dumps({"ts": NOW.isoformat().replace("+00:00", "Z"), "request_id": rid, "model": "m",
                       "version": "1", "inputs": inputs, "outputs": {"predictions": outputs},
                       "latency_ms": 1.0, **extra})


def total(rows: list) -> list[float]:
    return [float(sum(r)) for r in rows]


# --- ids -------------------------------------------------------------------------------------------


def test_five_requests_sharing_one_id_are_ambiguous_not_paired():
    # Both models agree on every request; a join that paired them by id would report disagreement.
    inputs = [[[i, i + 1]] for i in range(5)]
    primary = [record("same", x, total(x)) for x in inputs]
    shadow = [record("same", x, total(x)) for x in reversed(inputs)]  # mirrored: any order
    report = live("m", primary_log=primary, shadow_log=shadow)
    s = report.summary
    assert (s.n, s.compared, s.agreement_pct) == (0, 0, None)
    assert s.duplicate_ids == 1 and (s.unmatched_primary, s.unmatched_shadow) == (0, 0)
    assert "1 request ids on more than one line: ambiguous, not paired" in str(report)
    assert "no row was answered by both sides" in str(report)


def test_an_id_repeated_on_one_side_only_pairs_nothing_and_the_rest_still_join():
    good = [[[7, 7]], [[8, 8]]]
    primary = [record("g0", good[0], total(good[0])), record("g1", good[1], total(good[1])),
               record("dup", [[1, 1]], [2.0]), record("dup", [[5, 5]], [10.0])]
    shadow = [record("g0", good[0], total(good[0])), record("g1", good[1], total(good[1])),
              record("dup", [[5, 5]], [10.0])]
    s = live("m", primary_log=primary, shadow_log=shadow).summary
    assert (s.n, s.agreeing, s.agreement_pct) == (2, 2, 100.0)
    assert s.duplicate_ids == 1 and s.unmatched_shadow == 0


def test_a_crafted_id_pairing_different_inputs_is_counted_and_left_out_of_the_agreement():
    primary = [record(f"r{i}", [[i, 1]], [i + 1.0]) for i in range(4)] + [record("x", [[1, 2]], [3.0])]
    shadow = [record(f"r{i}", [[i, 1]], [i + 1.0]) for i in range(4)] + [record("x", [[9, 9]], [18.0])]
    report = live("m", primary_log=primary, shadow_log=shadow)
    s = report.summary
    assert (s.n, s.agreeing, s.agreement_pct) == (4, 4, 100.0)
    assert s.input_mismatches == 1 and "x" not in set(report.rows["request_id"])
    assert "1 pairs had different inputs on the two sides: left out of the agreement" in str(report)


# --- lines built to break the parser ---------------------------------------------------------------


def test_a_line_of_a_hundred_thousand_brackets_is_one_unreadable_line():
    ok = record("a", [[1]], [1.0])
    report = live("m", primary_log=["[" * 100_000, ok], shadow_log=[ok, "{" * 100_000 + '"'])
    s = report.summary
    assert (s.unparsed_primary, s.unparsed_shadow, s.agreeing) == (1, 1, 1)
    assert f"nested deeper than {MAX_DEPTH} levels" in report.unparsed[0][2]


def test_a_deep_but_valid_record_is_refused_before_it_reaches_the_comparison():
    nested: list = [1.0]
    for _ in range(MAX_DEPTH + 5):
        nested = [nested]
    deep = record("d", [nested], [1.0])
    assert json.loads(deep)  # valid JSON, just deep
    report = live("m", primary_log=[deep], shadow_log=[deep])
    assert report.summary.unparsed_primary == 1 and report.summary.n == 0


def test_brackets_inside_strings_are_not_nesting():
    line = record("s", [["[" * 500]], ["{" * 500])
    report = live("m", primary_log=[line], shadow_log=[line])
    assert (report.summary.unparsed_primary, report.summary.agreeing) == (0, 1)


@pytest.mark.parametrize("bad", [
    "not json at all", "{}", "[1, 2]", '{"request_id": 5, "inputs": [], "outputs": {}}',
    '{"request_id": "a", "inputs": "x", "outputs": {}}', '{"request_id": "a", "inputs": []}',
    "\x00\x01\x02", '{"request_id": "a", "inputs": [1e999999], "outputs": {"p": [1]}', "9" * 5000,
])
def test_malformed_lines_are_counted(bad):
    ok = record("a", [[1]], [1.0])
    report = live("m", primary_log=[bad, ok], shadow_log=[ok, bad])
    s = report.summary
    assert (s.unparsed_primary, s.unparsed_shadow, s.agreeing) == (1, 1, 1)


def test_a_line_too_long_to_be_a_record_is_counted_without_parsing():
    from jupyter_mldeploy.shadow import MAX_LINE_CHARS

    huge = record("h", [["x" * (MAX_LINE_CHARS + 10)]], [1.0])
    report = live("m", primary_log=[huge], shadow_log=[])
    assert report.summary.unparsed_primary == 1 and "longer than" in report.unparsed[0][2]


# --- bounded pod-log reads, against a stand-in API server that applies tailLines and limitBytes ----


class _Api(BaseHTTPRequestHandler):
    logs: dict[str, str] = {}
    seen: list[dict] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path.endswith("/pods"):
            track = query["labelSelector"].split("mldeploy.io/track=")[1]
            names = [n for n in self.logs if (n.endswith("-shadow")) == (track == "shadow")]
            body = json.dumps({"items": [{"metadata": {"name": n}, "spec": {"containers": [{"name": "m"}]}}
                                         for n in names]})
        else:
            type(self).seen.append(query)
            lines = self.logs[parts.path.split("/")[-2]].splitlines(keepends=True)
            # The kubelet's order: the last tailLines lines, then at most limitBytes of them.
            if "tailLines" in query:
                lines = lines[-int(query["tailLines"]):]
            data = "".join(lines).encode()
            if "limitBytes" in query:
                data = data[:int(query["limitBytes"])]
            body = data.decode(errors="replace")
        out = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def api(tmp_path):
    _Api.seen = []
    with serving(_Api, tmp_path) as kube:
        yield kube


def _log(ids: range) -> str:
    return "".join(record(f"r{i}", [[i]], [float(i)]) + "\n" for i in ids)


def test_pod_logs_are_read_with_tail_lines_and_limit_bytes_and_the_report_says_when_hit(api):
    _Api.logs = {"churn-a": _log(range(0, 100)), "churn-shadow": _log(range(0, 100))}
    report = live_from_pods("churn", namespace="ml", kube=api, tail_lines=30)
    assert all(q["tailLines"] == "30" and "limitBytes" in q for q in _Api.seen)
    assert report.summary.n == 30 and set(report.rows["request_id"]) == {f"r{i}" for i in range(70, 100)}
    assert report.primary == ("logs of 1 stable pod(s) in ml (bounded read: pod churn-a: only its last 30 "
                              "lines read)")
    assert report.shadow.endswith("(bounded read: pod churn-shadow: only its last 30 lines read)")

    unbounded = live_from_pods("churn", namespace="ml", kube=api, tail_lines=1000)
    assert unbounded.primary == "logs of 1 stable pod(s) in ml" and unbounded.summary.n == 100


def test_a_limit_bytes_cut_drops_the_cut_line_and_says_so(api):
    _Api.logs = {"churn-a": _log(range(0, 50)), "churn-shadow": _log(range(0, 50))}
    one = len(record("r0", [[0]], [0.0])) + 1
    report = live_from_pods("churn", namespace="ml", kube=api, limit_bytes=10 * one + one // 2)
    s = report.summary
    assert s.unparsed_primary == 0 and s.unparsed_shadow == 0  # the half line is not "malformed"
    assert s.n == 10
    assert "only the first" in report.primary and "bytes of its last" in report.primary


@pytest.mark.parametrize(("kw", "what"), [({"tail_lines": 0}, "tail_lines"),
                                          ({"limit_bytes": -1}, "limit_bytes"),
                                          ({"tail_lines": True}, "tail_lines")])
def test_bounds_must_be_positive_whole_numbers(api, kw, what):
    with pytest.raises(SpecError, match=f"{what} must be a positive whole number"):
        live_from_pods("churn", namespace="ml", kube=api, **kw)
