"""Issue 34.4, end to end against a real server process: train -> export -> serve -> train
``--init-from`` on a new day with new ids -> export -> reload while clients keep sending;
no request is dropped, and after the swap the scores are the warm-started run's own."""

from __future__ import annotations

import csv
import os
import threading
import time
from pathlib import Path

import numpy as np

from tests.conftest import DATASET_YAML, RUN_YAML, write_csv
from tests.serve.conftest import rows_as_sent, start_server


def _predict(run_dir: Path, rows_csv: Path, out: Path) -> np.ndarray:
    from tf4ctr.cli import main

    args = ["predict", str(run_dir), "--input", str(rows_csv), "--output", str(out)]
    assert main([*args, "--no-progress"]) == 0
    return np.array([float(r["probability"]) for r in csv.DictReader(out.open())])


def test_a_warm_started_model_is_exported_and_swapped_in_without_dropping_a_request(tmp_path):
    from tf4ctr.cli import main

    write_csv(tmp_path / "train.csv", 2000, 0)
    write_csv(tmp_path / "valid.csv", 500, 1)
    write_csv(tmp_path / "test.csv", 300, 2)
    day2 = (tmp_path / "train.csv").read_text().replace(",u1,", ",unew1,")
    (tmp_path / "day2.csv").write_text(day2)
    (tmp_path / "dataset.yaml").write_text(DATASET_YAML)
    (tmp_path / "day2.yaml").write_text(
        DATASET_YAML.replace("train_data: train.csv", "train_data: day2.csv")
    )
    (tmp_path / "run.yaml").write_text(RUN_YAML)
    # the rows scored: test.csv with some users renamed to the id only day 2 knows
    probe = (tmp_path / "test.csv").read_text().replace(",u2,", ",unew1,")
    (tmp_path / "probe.csv").write_text(probe)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        train = ["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]
        assert main(train) == 0
        assert main(["export", "runs/tiny-run", "--format", "onnx", "--output", "day1.onnx"]) == 0
        assert main([*train, "dataset=day2.yaml", "name=day2", "--init-from", "runs/tiny-run"]) == 0
        assert main(["export", "runs/day2", "--format", "onnx", "--output", "day2.onnx"]) == 0
        before = _predict(tmp_path / "runs/tiny-run", tmp_path / "probe.csv", tmp_path / "a.csv")
        after = _predict(tmp_path / "runs/day2", tmp_path / "probe.csv", tmp_path / "b.csv")
    finally:
        os.chdir(cwd)
    rows = rows_as_sent(list(csv.DictReader((tmp_path / "probe.csv").open())))
    renamed = [i for i, r in enumerate(rows) if r["user"] == "unew1"]
    assert renamed and np.abs(after - before).max() > 1e-3  # the new day changed the scores

    with start_server([str(tmp_path / "day1.onnx")], tmp_path / "server.log") as server:
        old = server.request("GET", "/readyz")[2]["model"]["version"]
        answers: list[tuple[int, str, list[float]]] = []
        stop = threading.Event()

        def client() -> None:
            deadline = time.monotonic() + 60  # bounded in time and in count
            while not stop.is_set() and time.monotonic() < deadline and len(answers) < 2000:
                status, _, answer = server.request("POST", "/v1/predict", {"instances": rows})
                version = answer["model"]["version"] if status == 200 else ""
                answers.append((status, version, answer.get("predictions", [])))

        threads = [threading.Thread(target=client) for _ in range(2)]
        for t in threads:
            t.start()
        while len(answers) < 5:
            time.sleep(0.01)
        status, _, reloaded = server.request(
            "POST", "/admin/reload", {"path": str(tmp_path / "day2.onnx")}, timeout=60
        )
        assert status == 200, reloaded
        new = reloaded["model"]["version"]
        seen = len(answers)
        while len(answers) < seen + 5:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(timeout=70)
    assert all(status == 200 for status, _, _ in answers)  # not one request dropped
    versions = {version for _, version, _ in answers}
    assert versions == {old, new}
    for _, version, predictions in answers:
        expected = before if version == old else after
        assert np.abs(np.array(predictions) - expected).max() <= 1e-6
