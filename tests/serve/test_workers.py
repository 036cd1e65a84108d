"""``tf4ctr serve RUN_DIR --workers 2 --no-batching``: a run directory exported once on start,
two worker processes on one port, each request scored alone; the CLI's own errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import Server, Trained, copy_export, rows_as_sent, start_server
from tf4ctr.cli import main


@pytest.fixture(scope="module")
def server(trained: Trained, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve-workers") / "server.log"
    with start_server([str(trained.run_dir), "--workers", "2", "--no-batching"], log) as server:
        yield server


def _children(pid: int) -> list[str]:
    """Command lines of the processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # a process that ended while we looked
    return found


def test_two_workers_score_like_tf4ctr_predict_from_the_run_directory(
    server: Server, trained: Trained
):
    workers = [c for c in _children(server.proc.pid) if "spawn_main" in c]
    assert len(workers) == 2, _children(server.proc.pid)
    rows = rows_as_sent(trained.rows)
    for start in range(0, len(rows), 150):  # four requests: new connections, either worker
        answer = server.predict({"instances": rows[start : start + 150]})
        got = np.array(answer["predictions"])
        assert np.abs(got - trained.expected[start : start + 150]).max() <= 1e-6
        assert answer["model"]["name"] == "tiny-run"


def test_without_batching_every_call_holds_one_request(server: Server, trained: Trained):
    server.predict({"instances": rows_as_sent(trained.rows, 4)})
    page = server.scrape()  # one worker's numbers, read at once
    calls = server.metric("tf4ctr_batch_requests_count", page)
    assert calls >= 1 and server.metric("tf4ctr_batch_requests_bucket", page, le="1.0") == calls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["absent.onnx"], "absent.onnx: no such run directory or ONNX file"),
        (["m.onnx", "--workers", "0"], "--workers: must be positive"),
        (["m.onnx", "--max-rows", "100", "--max-queue-rows", "10"], "--max-rows must not exceed"),
    ],
)
def test_serve_refuses_bad_arguments_in_one_line_with_exit_2(
    args, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"")
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_serve_help_shows_examples(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "tf4ctr serve runs/my-first-run" in out and "--no-batching" in out


def test_a_field_the_row_encoder_cannot_encode_is_one_error_line(
    trained: Trained, tmp_path, capsys
):
    """A field with a text preprocessor (RowEncoder refuses it; bucketed numbers it encodes):
    exit 2 and one line naming the field, before any port is opened."""
    export = copy_export(trained.onnx, tmp_path / "text_preprocess.onnx")
    sidecar = export.with_name(export.name + ".preprocessor.json")
    state = json.loads(sidecar.read_text())
    price = next(f for f in state["config"]["feature_cols"] if f["name"] == "price")
    price["preprocess"] = "extract_country_code"
    sidecar.write_text(json.dumps(state))
    assert main(["serve", str(export)]) == 2
    err = capsys.readouterr().err
    assert "'price'" in err and len(err.strip().splitlines()) == 1
