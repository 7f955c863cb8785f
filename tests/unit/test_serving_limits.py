"""The reference server against hostile or broken clients, on loopback: every resource a client can hold
is bounded (body length, time, workers, memory), ids are echoed only when safe, client errors are one
quiet line, and a model file is loaded only in the format it declares."""

from __future__ import annotations

import http.client
import json
import os
import pickle
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import models_for_tests as mft
import pytest

from jupyter_mldeploy.serving import ServingError, load_model, serve
from jupyter_mldeploy.serving.httpd import Limits

ROOT = Path(__file__).resolve().parents[2]
INFER = "/v2/models/churn/infer"
# Long enough that a test never fails on a slow machine; a test that waits this long has failed.
PATIENCE = 20.0


def body_of(rows: list, shape: list[int], datatype: str = "FP64", **extra) -> bytes:
    return json.dumps({**extra, "inputs": [{"name": "input-0", "shape": shape, "datatype": datatype,
                                            "data": rows}]}, separators=(",", ":")).encode()


@pytest.fixture
def notes():
    """The server's one-line client-error notes."""
    return []


@pytest.fixture
def lines():
    return []


def server(notes: list, lines: list | None = None, **limits):
    return serve(mft.primary, name="churn", log=None if lines is None else lines.append,
                 errors=notes.append, limits=Limits(**limits))


def connect(s) -> socket.socket:
    sock = socket.create_connection((s.host, s.port), timeout=PATIENCE)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response from a raw socket: (status, lower-case headers, body)."""
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    body = resp.read()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def raw(s, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], dict]:
    sock = connect(s)
    try:
        sock.sendall(head + body)
        status, headers, data = read_response(sock)
        return status, headers, json.loads(data) if data else {}
    finally:
        sock.close()


def closed_by_server(sock: socket.socket) -> bool:
    """True when the server closed the connection (EOF or reset) before PATIENCE."""
    sock.settimeout(PATIENCE)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def post_head(length: str | None = None, extra: str = "") -> bytes:
    cl = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{cl}{extra}\r\n"
            ).encode()


# --- lengths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["-1", "abc", "+5", "1e3", " ", "0x10", "99999999999999999999999"])
def test_a_content_length_that_is_not_plain_digits_is_400_and_nothing_is_read(notes, length):
    with server(notes) as s:
        sock = connect(s)
        try:
            # The connection stays open: a server that read "to the end of the stream" would hang here.
            sock.sendall(post_head(length))
            status, headers, data = read_response(sock)
            assert status == 400 and headers["connection"] == "close"
            assert "is not a number of bytes" in json.loads(data)["error"]
            assert closed_by_server(sock)
        finally:
            sock.close()


def test_conflicting_content_lengths_are_400(notes):
    with server(notes) as s:
        status, _, body = raw(s, post_head("5", "Content-Length: 6\r\n"), b"{}    ")
    assert status == 400 and "conflicting Content-Length" in body["error"]


def test_a_post_without_content_length_is_411(notes):
    with server(notes) as s:
        status, headers, body = raw(s, post_head(None))
    assert status == 411 and "needs a Content-Length" in body["error"]
    assert headers["connection"] == "close"


def test_a_chunked_body_is_refused_clearly_with_411(notes):
    with server(notes) as s:
        status, _, body = raw(s, post_head(None, "Transfer-Encoding: chunked\r\n"), b"2\r\n{}\r\n0\r\n\r\n")
    assert status == 411 and "Chunked" in body["error"] and "Content-Length" in body["error"]


def test_a_body_over_the_limit_is_413_before_it_is_sent(notes):
    with server(notes, max_body=1000, body_budget=4000) as s:
        sock = connect(s)
        try:
            sock.sendall(post_head(str(10**9)))  # a gigabyte announced, not a byte of it sent
            status, _, data = read_response(sock)
            assert status == 413 and "limit is 1000" in json.loads(data)["error"]
            assert closed_by_server(sock)
        finally:
            sock.close()
        # Expect: 100-continue gets the 413 instead of the invitation to send.
        status, _, body = raw(s, post_head("5000", "Expect: 100-continue\r\n"))
        assert status == 413
        ok = raw(s, post_head(str(len(b := body_of([1, 2], [1, 2])))), b)
        assert ok[0] == 200


def test_a_get_with_a_small_body_keeps_the_connection_usable(notes):
    with server(notes) as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE)
        conn.request("GET", "/v2/health/live", body=b"ignored", headers={"Content-Length": "7"})
        assert conn.getresponse().read() == b'{"live":true}'
        conn.request("GET", "/v2/health/ready")
        assert json.loads(conn.getresponse().read()) == {"ready": True}
        conn.close()


def test_json_nested_too_deeply_is_a_400_not_a_500(notes, lines):
    with server(notes, lines) as s:
        deep = b"[" * 100_000 + b"]" * 100_000
        status, _, body = raw(s, post_head(str(len(deep))), deep)
    assert status == 400 and "nested too deeply" in body["error"]
    assert lines == []


# --- time ------------------------------------------------------------------------------------------


def test_a_half_sent_head_is_cut_off(notes):
    with server(notes, header_timeout=0.5) as s:
        sock = connect(s)
        sock.sendall(b"POST /v2/models/churn/infer HTTP/1.1\r\nHost: x\r\n")  # never ends the head
        assert closed_by_server(sock)
        sock.close()


def test_a_client_dribbling_one_byte_at_a_time_is_cut_off_by_the_total_deadline(notes):
    # Each byte comes well within read_timeout; only a deadline on the whole head stops it.
    with server(notes, header_timeout=0.6, read_timeout=30.0) as s:
        sock = connect(s)
        head = post_head("2") * 100
        cut = False
        try:
            for i in range(len(head)):
                sock.sendall(head[i:i + 1])
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        assert cut or closed_by_server(sock)
        sock.close()


def test_a_body_that_stops_arriving_is_408(notes, lines):
    with server(notes, lines, body_timeout=0.5) as s:
        sock = connect(s)
        try:
            sock.sendall(post_head("100") + b'{"inputs":')
            status, headers, data = read_response(sock)
        finally:
            sock.close()
    assert status == 408 and "did not arrive in time" in json.loads(data)["error"]
    assert headers["connection"] == "close" and lines == []


def test_an_idle_keep_alive_connection_is_closed(notes):
    with server(notes, idle_timeout=0.3) as s:
        sock = connect(s)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock)[0] == 200
        assert closed_by_server(sock)
        sock.close()


# --- workers ---------------------------------------------------------------------------------------


def _wait(cond, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_workers_are_bounded_and_a_full_server_answers_503(notes):
    with server(notes, workers=2, backlog=1, body_timeout=PATIENCE) as s:
        threads_before = threading.active_count()
        holders = []
        for _ in range(2):  # two clients that send a head, then never finish the body, hold both workers
            sock = connect(s)
            sock.sendall(post_head("100") + b"{")
            holders.append(sock)
        _wait(lambda: s._server.busy == 2, "both workers never became busy")
        waiting = connect(s)  # the one place in the waiting line
        waiting.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        _wait(lambda: not s._server._waiting.empty(), "the third connection never queued")
        many = [raw(s, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(5)]
        assert [m[0] for m in many] == [503] * 5
        assert all(m[1]["connection"] == "close" and "busy" in m[2]["error"] for m in many)
        assert threading.active_count() == threads_before  # no thread per connection
        for sock in holders:
            sock.close()
        assert read_response(waiting)[0] == 200  # served once a worker was free
        waiting.close()
        assert raw(s, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_clients_slow_to_send_their_head_hold_no_worker(notes):
    # 50 connections with half a head each, one worker: a complete request is still answered at once.
    with server(notes, workers=1, backlog=2, header_timeout=PATIENCE) as s:
        slow = [connect(s) for _ in range(50)]
        for sock in slow:
            sock.sendall(b"POST /v2/models/churn/infer HTTP/1.1\r\nHost: x\r\n")
        for _ in range(3):
            assert raw(s, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
        _wait(lambda: s._server.busy == 0, "a slow client held the worker")
        for sock in slow:
            sock.close()


def test_connections_past_max_connections_are_closed(notes):
    with server(notes, max_connections=5, header_timeout=PATIENCE) as s:
        held = [connect(s) for _ in range(5)]
        _wait(lambda: s._server.parker.count == 5, "the parker never held five connections")
        extra = connect(s)
        assert closed_by_server(extra)
        extra.close()
        for sock in held:
            sock.close()
        _wait(lambda: s._server.parker.count == 0, "closed connections stayed parked")
        assert raw(s, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_an_idle_keep_alive_client_does_not_starve_a_waiting_one(notes):
    # One worker, a long idle timeout: the idle connection must give the worker up when another waits.
    with server(notes, workers=1, backlog=2, idle_timeout=PATIENCE * 3) as s:
        idle = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE)
        idle.request("GET", "/v2/health/live")
        assert idle.getresponse().read() == b'{"live":true}'  # kept alive, then left idle
        other = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE)
        other.request("POST", INFER, body=body_of([1, 2], [1, 2]),
                      headers={"Content-Type": "application/json"})
        resp = other.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["outputs"][0]["data"] == [3.0]
        other.close()
        idle.close()


def test_concurrent_clients_all_get_answers(notes, lines):
    with server(notes, lines, workers=4, backlog=64) as s:
        results: list[int] = []

        def client(i: int) -> None:
            conn = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE)
            for j in range(5):
                conn.request("POST", INFER, body=body_of([i, j], [1, 2]),
                             headers={"Content-Type": "application/json", "x-request-id": f"c{i}-{j}"})
                r = conn.getresponse()
                r.read()
                results.append(r.status)
            conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PATIENCE)
    assert sorted(set(results)) == [200] and len(results) == 80
    assert sorted(json.loads(x)["request_id"] for x in lines) == sorted(f"c{i}-{j}" for i in range(16)
                                                                        for j in range(5))


# --- ids -------------------------------------------------------------------------------------------


def test_a_crlf_in_the_body_id_never_reaches_a_header(notes, lines):
    with server(notes, lines) as s:
        evil = "x\r\nSet-Cookie: session=stolen\r\nX-Evil: 1"
        status, headers, body = raw(s, post_head(str(len(b := body_of([1, 2], [1, 2], id=evil)))), b)
    assert status == 200
    assert "set-cookie" not in headers and "x-evil" not in headers
    rid = headers["x-request-id"]
    assert len(rid) == 32 and rid == body["id"]  # a generated id instead
    assert json.loads(lines[0])["request_id"] == rid


@pytest.mark.parametrize("given", ["a b", "x" * 200, "ünïcode", "-starts-with-dash", "semi;colon"])
def test_an_unsafe_header_id_is_replaced(notes, lines, given):
    with server(notes, lines) as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE)
        conn.putrequest("POST", INFER)
        data = body_of([1, 2], [1, 2])
        conn.putheader("Content-Length", str(len(data)))
        conn.putheader("x-request-id", given.encode("utf-8"))
        conn.endheaders(data)
        resp = conn.getresponse()
        resp.read()
        conn.close()
    assert resp.status == 200 and resp.getheader("x-request-id") != given
    assert json.loads(lines[0])["request_id"] == resp.getheader("x-request-id")


@pytest.mark.parametrize("given", ["req-1", "0f8fad5b-d9cb-469f-a165-70867728950e", "a.b:c/d+e=f@g~h_i"])
def test_ordinary_ids_are_echoed(notes, lines, given):
    with server(notes, lines) as s:
        status, headers, body = raw(s, post_head(str(len(b := body_of([1, 2], [1, 2], id=given)))), b)
    assert (status, headers["x-request-id"], body["id"]) == (200, given, given)


# --- memory ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("nested", "limit"), [(False, 12), (True, 12)])
def test_memory_per_request_is_a_small_multiple_of_its_body(notes, nested, limit):
    rng = random.Random(7)
    n, width = 50_000, 8
    values = [round(rng.random(), 3) for _ in range(n * width)]
    data = [values[i:i + width] for i in range(0, len(values), width)] if nested else values
    body = body_of(data, [n, width])
    del data, values
    assert len(body) > 2_000_000
    with server(notes, max_body=8 * 1024 * 1024, body_budget=32 * 1024 * 1024) as s:
        conn = http.client.HTTPConnection(s.host, s.port, timeout=PATIENCE * 3)
        tracemalloc.start()
        try:
            conn.request("POST", INFER, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            conn.close()
    assert resp.status == 200 and len(json.loads(answer)["outputs"][0]["data"]) == n
    print(f"peak {peak} bytes for a {len(body)}-byte body: {peak / len(body):.1f}x")
    assert peak < limit * len(body), f"peak {peak} bytes for a {len(body)}-byte body"


def test_small_whole_numbers_share_their_float_objects():
    from jupyter_mldeploy.serving.server import decode_tensor

    rows = decode_tensor({"name": "x", "shape": [3, 2], "datatype": "FP64", "data": [1, 0, 1, 1, 0, 1]})
    assert rows == [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]] and all(type(v) is float for r in rows for v in r)
    assert rows[0][0] is rows[1][0]


# --- logs ------------------------------------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_client_errors_are_one_quiet_line_each_never_a_traceback(notes, capfd):
    with server(notes, body_timeout=0.3, header_timeout=0.3) as s:
        for _ in range(3):
            sock = connect(s)
            sock.sendall(post_head("1000") + b"{")  # then vanish mid-body
            _reset(sock)
        sock = connect(s)
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert read_response(sock)[0] == 400
        sock.close()
        sock = connect(s)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n")  # times out
        closed_by_server(sock)
        sock.close()
        _wait(lambda: len(notes) >= 2, "no note of the client errors")
        assert raw(s, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and not err.strip()
    assert notes and all("\n" not in n and n.startswith("jupyter-mldeploy-serving: ") for n in notes)
    assert not any("Traceback" in n for n in notes)


def test_the_command_line_server_prints_no_traceback_for_dropped_connections(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_mldeploy.serving", "--model",
                             "models_for_tests:primary", "--name", "churn", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stderr.readline()
        port = int(banner.rsplit(":", 1)[1])
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
            sock.sendall(post_head("500") + b'{"inputs"')
            _reset(sock)
        sock = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE)
        data = body_of([1, 2], [1, 2])
        sock.sendall(post_head(str(len(data)), "x-request-id: ok-1\r\n") + data)
        assert read_response(sock)[0] == 200
        sock.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=PATIENCE)
    assert proc.returncode == 0
    assert "Traceback" not in err and len(err.splitlines()) <= 5
    # stdout, which the shadow join reads, holds the prediction and nothing else.
    assert [json.loads(x)["request_id"] for x in out.splitlines()] == ["ok-1"]


# --- loading a model -------------------------------------------------------------------------------


def test_a_file_is_unpickled_only_when_its_name_declares_a_pickle(tmp_path):
    payload = pickle.dumps(mft.SumModel())
    for name in ("model.txt", "model.bin", "model", "mypkg.models:predict"):
        path = tmp_path / name
        path.write_bytes(payload)  # exists, and is a pickle: still not loaded
        with pytest.raises(ServingError, match="is neither a pickle file"):
            load_model(str(path))
    (tmp_path / "m.PKL").write_bytes(payload)
    assert hasattr(load_model(tmp_path / "m.PKL"), "predict")


def test_a_joblib_file_needs_joblib(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(mft.SumModel()))
    try:
        import joblib  # noqa: F401
    except ImportError:
        with pytest.raises(ServingError, match="joblib is not installed"):
            load_model(path)
    else:
        pytest.skip("joblib is installed here; the refusal is for images without it")


def test_a_missing_attribute_is_one_sentence():
    with pytest.raises(ServingError, match="Module models_for_tests has no attribute 'nope'"):
        load_model("models_for_tests:nope")
