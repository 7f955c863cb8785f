"""The reference model server: every endpoint, OIP shapes, /predict, errors, and the prediction log."""

from __future__ import annotations

import http.client
import io
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import models_for_tests as mft
import pytest

from jupyter_mldeploy.serving import ServingError, decode_inputs, encode_tensor, load_model, serve

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def call(url: str, method: str, path: str, body: object = None, headers: dict | None = None,
         raw: bytes | None = None) -> tuple[int, object, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        payload = resp.read()
        headers_ = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, json.loads(payload) if payload else None, headers_
    finally:
        conn.close()


def tensor(data, shape, datatype="FP64", name="input-0"):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


@pytest.fixture
def lines():
    return []


@pytest.fixture
def summing(lines):
    with serve(mft.primary, name="churn", version="3", log=lines.append) as server:
        yield server


def records(lines):
    return [json.loads(line) for line in lines]


# --- health and metadata ---------------------------------------------------------------------------


def test_health_endpoints(summing):
    assert call(summing.url, "GET", "/v2/health/live")[:2] == (200, {"live": True})
    assert call(summing.url, "GET", "/v2/health/ready")[:2] == (200, {"ready": True})
    status, body, _ = call(summing.url, "GET", "/healthz")
    assert status == 200 and body["status"] == "ok" and body["model"] == "churn"
    status, body, _ = call(summing.url, "GET", "/v2")
    assert status == 200 and body["name"] == "jupyter-mldeploy-serving" and body["extensions"] == []


def test_model_ready_and_unknown_model(summing):
    assert call(summing.url, "GET", "/v2/models/churn/ready")[:2] == (200, {"name": "churn", "ready": True})
    assert call(summing.url, "GET", "/v2/models/churn/versions/3/ready")[0] == 200
    status, body, _ = call(summing.url, "GET", "/v2/models/fraud/ready")
    assert status == 404 and "'fraud' is not served here" in body["error"]
    status, body, _ = call(summing.url, "GET", "/v2/models/churn/versions/9/ready")
    assert status == 404 and "no version '9'" in body["error"]


def test_metadata_of_a_callable_learns_output_types(summing):
    status, meta, _ = call(summing.url, "GET", "/v2/models/churn")
    assert status == 200
    assert meta["name"] == "churn" and meta["versions"] == ["3"] and meta["platform"] == "python"
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}]
    call(summing.url, "POST", "/v2/models/churn/infer", {"inputs": [tensor([1, 2], [1, 2])]})
    meta = call(summing.url, "GET", "/v2/models/churn/versions/3")[1]
    assert meta["outputs"] == [{"name": "predictions", "datatype": "FP64", "shape": [-1]}]


def test_metadata_of_a_predict_model():
    with serve(mft.SumModel(), name="clf") as server:
        meta = call(server.url, "GET", "/v2/models/clf")[1]
    assert meta["platform"] == "python-predict:models_for_tests"
    assert meta["inputs"][0]["shape"] == [-1, 2]  # from n_features_in_
    assert [o["name"] for o in meta["outputs"]] == ["predictions", "probabilities"]


# --- inference -------------------------------------------------------------------------------------


def test_infer_oip_request_and_response_shapes(summing):
    status, body, headers = call(summing.url, "POST", "/v2/models/churn/infer",
                                 {"id": "req-1", "inputs": [tensor([1, 2, 3, 4, 5, 6], [3, 2])]})
    assert status == 200
    assert body == {"model_name": "churn", "model_version": "3", "id": "req-1",
                    "outputs": [{"name": "predictions", "shape": [3], "datatype": "FP64",
                                 "data": [3.0, 7.0, 11.0]}]}
    assert headers["x-request-id"] == "req-1"
    assert headers["content-type"] == "application/json"


def test_infer_accepts_nested_data_and_versioned_path(summing):
    status, body, _ = call(summing.url, "POST", "/v2/models/churn/versions/3/infer",
                           {"inputs": [tensor([[1, 1], [2, 2]], [2, 2])]})
    assert status == 200 and body["outputs"][0]["data"] == [2.0, 4.0]


def test_infer_with_a_predict_model_has_two_outputs_and_honours_requested_outputs():
    with serve(mft.SumModel(threshold=10), name="clf") as server:
        req = {"inputs": [tensor([1, 2, 8, 9], [2, 2])]}
        body = call(server.url, "POST", "/v2/models/clf/infer", req)[1]
        by_name = {o["name"]: o for o in body["outputs"]}
        assert by_name["predictions"] == {"name": "predictions", "shape": [2], "datatype": "INT64",
                                          "data": [0, 1]}
        assert by_name["probabilities"]["shape"] == [2, 2]
        assert by_name["probabilities"]["datatype"] == "FP64"
        assert by_name["probabilities"]["data"] == pytest.approx([0.85, 0.15, 0.15, 0.85])
        only = call(server.url, "POST", "/v2/models/clf/infer",
                    {**req, "outputs": [{"name": "probabilities"}]})[1]
        assert [o["name"] for o in only["outputs"]] == ["probabilities"]
        status, err, _ = call(server.url, "POST", "/v2/models/clf/infer", {**req, "outputs": [{"name": "x"}]})
        assert status == 400 and "Unknown output(s) ['x']" in err["error"]


def test_several_inputs_reach_the_model_as_one_dict_per_row():
    seen = []

    def model(rows):
        seen.extend(rows)
        return [f"{r['city']}:{r['age']}" for r in rows]

    with serve(model, name="m") as server:
        body = call(server.url, "POST", "/v2/models/m/infer", {"inputs": [
            tensor([31, 45], [2], "INT64", name="age"),
            tensor(["Oslo", "Lima"], [2], "BYTES", name="city")]})[1]
    assert seen == [{"age": 31, "city": "Oslo"}, {"age": 45, "city": "Lima"}]
    assert body["outputs"][0] == {"name": "predictions", "shape": [2], "datatype": "BYTES",
                                  "data": ["Oslo:31", "Lima:45"]}


def test_predict_endpoint_for_images_without_oip(summing, lines):
    status, body, headers = call(summing.url, "POST", "/predict", {"instances": [[1, 2], [3, 4]]},
                                 headers={"x-request-id": "p-7"})
    assert status == 200 and body == {"predictions": [3.0, 7.0]}
    assert headers["x-request-id"] == "p-7"
    assert records(lines)[-1]["request_id"] == "p-7"
    status, body, _ = call(summing.url, "POST", "/predict", {"rows": [[1, 2]]})
    assert status == 400 and "instances" in body["error"]


def test_pickled_model_and_module_callable_specs(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(mft.SumModel(threshold=1)))
    with serve(str(path), name="clf") as server:
        body = call(server.url, "POST", "/predict", {"instances": [[0, 0], [1, 1]]})[1]
    assert body == {"predictions": [0, 1]}
    assert load_model("models_for_tests:primary") is mft.primary
    with pytest.raises(ServingError, match="is neither a pickle file .* nor MODULE:CALLABLE"):
        load_model("no-colon-here")
    with pytest.raises(ServingError, match="No model file"):
        load_model(tmp_path / "missing.pkl")


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "needs a JSON body"),
    (json.dumps({"inputs": []}).encode(), 400, "non-empty list of tensors"),
    (json.dumps({"inputs": [tensor([1, 2, 3], [2, 2])]}).encode(), 400, "has 3 values but its shape [2, 2]"),
    (json.dumps({"inputs": [tensor([1], [1], "FP128")]}).encode(), 400, "datatype 'FP128'"),
    (json.dumps({"inputs": [tensor(["a"], [1], "FP64")]}).encode(), 400, "not FP64"),
    (json.dumps({"inputs": [tensor([1, 2], [2], name="a"), tensor([1], [1], name="b")]}).encode(), 400,
     "same first (batch) dimension"),
    (json.dumps([1, 2]).encode(), 400, "JSON object with `inputs`"),
])
def test_bad_requests_are_oip_errors(summing, lines, body, status, fragment):
    got, payload, _ = call(summing.url, "POST", "/v2/models/churn/infer", raw=body)
    assert got == status
    assert set(payload) == {"error"} and fragment in payload["error"]
    assert lines == []  # a request that never reached the model is not a prediction


def test_unknown_route_and_wrong_method(summing):
    status, body, _ = call(summing.url, "GET", "/v1/models/churn:predict")
    assert status == 404 and "No route for GET" in body["error"]
    status, body, _ = call(summing.url, "GET", "/v2/models/churn/infer")
    assert status == 405 and "Use POST" in body["error"]


def test_a_failing_model_gives_500_and_is_logged_with_the_error(lines):
    with serve(mft.shadow, name="churn", log=lines.append) as server:
        status, body, _ = call(server.url, "POST", "/v2/models/churn/infer",
                               {"inputs": [tensor([-1, 2], [1, 2])]}, headers={"x-request-id": "bad-1"})
    assert status == 500 and "ValueError: negative first value -1.0" in body["error"]
    (rec,) = records(lines)
    assert rec["request_id"] == "bad-1" and rec["outputs"] is None and "ValueError" in rec["error"]


def test_a_model_answering_the_wrong_number_of_rows_is_a_500():
    with serve(lambda rows: [1], name="m") as server:
        status, body, _ = call(server.url, "POST", "/v2/models/m/infer", {"inputs": [tensor([1, 2], [2])]})
    assert status == 500 and "returned 1 predictions for 2 rows" in body["error"]


# --- the prediction log ----------------------------------------------------------------------------


def test_each_prediction_is_one_log_line_with_the_request_id(summing, lines):
    call(summing.url, "POST", "/v2/models/churn/infer", {"id": "oip-id", "inputs": [tensor([1, 2], [1, 2])]},
         headers={"x-request-id": "hdr-id"})
    call(summing.url, "POST", "/v2/models/churn/infer",
         {"id": "oip-id-2", "inputs": [tensor([5, 6], [1, 2])]})
    status, body, _ = call(summing.url, "POST", "/v2/models/churn/infer", {"inputs": [tensor([7], [1])]})
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    first, second, third = records(lines)
    assert first["request_id"] == "hdr-id"  # the header wins over the OIP id
    assert second["request_id"] == "oip-id-2"
    assert third["request_id"] == body["id"] and len(third["request_id"]) == 32  # generated
    assert set(first) == {"ts", "request_id", "model", "version", "inputs", "outputs", "latency_ms"}
    assert first["model"] == "churn" and first["version"] == "3"
    assert first["inputs"] == [[1.0, 2.0]] and first["outputs"] == {"predictions": [3.0]}
    assert first["latency_ms"] > 0 and first["ts"].endswith("Z")


def test_log_to_a_file(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with serve(mft.primary, name="churn", log=path) as server:
        for i in range(3):
            call(server.url, "POST", "/predict", {"instances": [[i, i]]}, headers={"x-request-id": f"r{i}"})
    assert [json.loads(x)["request_id"] for x in path.read_text().splitlines()] == ["r0", "r1", "r2"]


def test_log_to_a_text_stream():
    stream = io.StringIO()
    with serve(mft.primary, name="churn", log=stream) as server:
        call(server.url, "POST", "/predict", {"instances": [[1, 1]]}, headers={"x-request-id": "s1"})
    (line,) = stream.getvalue().splitlines(keepends=True)
    assert line.endswith("\n") and json.loads(line)["request_id"] == "s1"


def test_keep_alive_serves_several_requests_on_one_connection(summing):
    parts = urlsplit(summing.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        for i in range(3):
            conn.request("POST", "/v2/models/churn/infer",
                         body=json.dumps({"inputs": [tensor([i, 1], [1, 2])]}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["outputs"][0]["data"] == [i + 1.0]
    finally:
        conn.close()


def test_stop_releases_the_port():
    server = serve(mft.primary, name="churn")
    assert repr(server).endswith("(running)>")
    server.stop()
    with pytest.raises(OSError):
        call(server.url, "GET", "/v2/health/live")


def test_tensor_codec_round_trip():
    t = encode_tensor("p", [[0.1, 0.9], [0.8, 0.2]])
    assert t == {"name": "p", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.9, 0.8, 0.2]}
    assert decode_inputs([t]) == [[0.1, 0.9], [0.8, 0.2]]
    assert encode_tensor("b", [True, False])["datatype"] == "BOOL"
    ragged = encode_tensor("r", [[1], [1, 2]])
    assert ragged["datatype"] == "BYTES" and ragged["data"] == ["[1]", "[1, 2]"]


# --- the command line ------------------------------------------------------------------------------


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}


def test_command_line_server_logs_to_a_file_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "p.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_mldeploy.serving", "--model",
                             "models_for_tests:primary", "--name", "churn", "--version", "2", "--port", "0",
                             "--log-file", str(log)], env=_env(), stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        assert "model churn version 2 listening on http://127.0.0.1:" in banner
        url = banner.split("listening on ")[1].strip()
        status, body, _ = call(url, "POST", "/v2/models/churn/infer", {"inputs": [tensor([2, 3], [1, 2])]},
                               headers={"x-request-id": "cli-1"})
        assert status == 200 and body["outputs"][0]["data"] == [5.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    assert json.loads(log.read_text())["request_id"] == "cli-1"


def test_command_line_refuses_a_missing_model_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "jupyter_mldeploy.serving", "--model", "nope_module:f",
                           "--name", "m", "--port", "0"], env=_env(), capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("Cannot start the model server: ModuleNotFoundError: "
                                   "No module named 'nope_module'")
