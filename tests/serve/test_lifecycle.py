"""Model lifecycle and overload against real server processes: reload (admin endpoint and
SIGHUP) with a request in flight, a failed reload that keeps the old model, 503 + Retry-After
from a full queue, and SIGTERM draining a request in flight before exiting 0.

A request is held in flight by sending its body in two parts (``HeldRequest``), so each
moment is exact without guessing how long scoring takes.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import (
    HOST,
    HeldRequest,
    Server,
    Trained,
    copy_export,
    rows_as_sent,
    start_server,
)

QUEUE_ROWS = 10
MAX_ROWS = 8


@pytest.fixture(scope="module")
def served(trained: Trained, tmp_path_factory: pytest.TempPathFactory):
    """A server on a copy of the export (so SIGHUP can be shown a changed file), with a
    10-row queue and a 3 s batching wait (only ever waited while another request is read)."""
    folder = tmp_path_factory.mktemp("serve-lifecycle")
    source = copy_export(trained.onnx, folder / "served.onnx")
    args = [str(source), "--max-queue-rows", str(QUEUE_ROWS), "--max-rows", str(MAX_ROWS),
            "--max-wait-ms", "3000"]  # fmt: skip
    with start_server(args, folder / "server.log") as server:
        yield server, source


def _version(server: Server) -> str:
    return server.request("GET", "/readyz")[2]["model"]["version"]


def _reload(server: Server, path: Path | None = None) -> tuple[int, dict]:
    body = {} if path is None else {"path": str(path)}
    status, _, answer = server.request("POST", "/admin/reload", body, timeout=60)
    return status, answer


def test_reload_swaps_the_model_and_a_request_in_flight_finishes_on_the_old_one(
    served, trained: Trained
):
    server, source = served
    rows = rows_as_sent(trained.rows, 5)
    old = _version(server)
    in_flight = server.metric("tf4ctr_requests_in_flight")
    try:
        held = HeldRequest(server.port, {"instances": rows})
        server.wait_metric("tf4ctr_requests_in_flight", in_flight + 1)
        status, answer = _reload(server, trained.other_onnx)
        assert status == 200 and answer["previous"]["version"] == old
        new = answer["model"]["version"]
        assert new != old and _version(server) == new
        status, late = held.finish()  # begun before the swap: scored by the model it started on
        assert status == 200 and late["model"]["version"] == old
        assert np.abs(np.array(late["predictions"]) - trained.expected[:5]).max() <= 1e-6
        fresh = server.predict({"instances": rows})
        assert fresh["model"]["version"] == new
        assert np.abs(np.array(fresh["predictions"]) - trained.expected[:5]).max() > 1e-3
    finally:
        status, answer = _reload(server, source)  # back to the module's model
        assert status == 200 and answer["model"]["version"] == old
    assert server.metric("tf4ctr_model_reloads_total", outcome="ok") >= 2


def test_a_failed_reload_keeps_the_old_model_and_says_why(served, trained: Trained, tmp_path: Path):
    server, _ = served
    old = _version(server)
    broken = copy_export(trained.onnx, tmp_path / "broken.onnx")
    broken.write_bytes(b"not an onnx graph")
    for path, why in [(tmp_path / "absent.onnx", "no such run directory or ONNX file"),
                      (broken, "not a loadable ONNX model")]:  # fmt: skip
        status, answer = _reload(server, path)
        assert status == 409 and answer["error"]["kind"] == "reload_failed"
        assert why in answer["error"]["message"] and str(path) in answer["error"]["message"]
        assert answer["model"]["version"] == old and _version(server) == old
    assert server.predict({"instances": rows_as_sent(trained.rows, 2)})["model"]["version"] == old
    assert server.metric("tf4ctr_model_reloads_total", outcome="failed") >= 2


def test_sighup_reloads_the_changed_source_file(served, trained: Trained):
    server, source = served
    old = _version(server)
    original = source.read_bytes()
    try:
        tmp = source.with_name("incoming.onnx")
        tmp.write_bytes(trained.other_onnx.read_bytes())
        os.replace(tmp, source)  # how a deploy should swap it: atomically
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while _version(server) == old and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _version(server) != old
    finally:
        source.write_bytes(original)
        assert _reload(server)[0] == 200 and _version(server) == old


def test_a_full_queue_answers_503_with_retry_after(served, trained: Trained):
    server, _ = served
    rows = rows_as_sent(trained.rows, MAX_ROWS)
    queued = server.metric("tf4ctr_queued_rows")
    assert queued == 0
    # a request being read makes the batcher wait (3 s at most) for it: meanwhile 8 rows queue
    held = HeldRequest(server.port, {"instances": rows[:1]})
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(server.predict, {"instances": rows})
        server.wait_metric("tf4ctr_queued_rows", MAX_ROWS)
        status, headers, answer = server.request("POST", "/v1/predict", {"instances": rows[:3]})
        assert status == 503 and answer["error"]["kind"] == "overloaded"
        assert int(headers["retry-after"]) >= 1
        status, late = held.finish()  # 8 + 1 rows fit: admitted, and the wait ends
        assert status == 200 and len(late["predictions"]) == 1
        assert len(first.result(timeout=30)["predictions"]) == MAX_ROWS
    assert server.metric("tf4ctr_errors_total", kind="overloaded") >= 1
    assert server.metric("tf4ctr_queued_rows") == 0


def test_sigterm_drains_a_request_in_flight_and_exits_0(trained: Trained, tmp_path: Path):
    server = Server([str(trained.onnx)], tmp_path / "server.log")
    try:
        server.wait_ready()
        held = HeldRequest(server.port, {"instances": rows_as_sent(trained.rows, 3)})
        server.wait_metric("tf4ctr_requests_in_flight", 1)
        server.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _accepts(server.port):
            time.sleep(0.05)
        assert not _accepts(server.port), "still accepting connections after SIGTERM"
        assert server.proc.poll() is None, "exited with a request in flight"
        status, answer = held.finish()
        assert status == 200
        assert np.abs(np.array(answer["predictions"]) - trained.expected[:3]).max() <= 1e-6
        assert server.proc.wait(timeout=30) == 0, server.log_text()
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True
