"""The continual-training study runner on tiny synthetic data in time order: every strategy
at every step, resumable, and a report rendered from the store alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATASET_YAML, RUN_YAML, write_csv
from tf4ctr.experiments import continual


@pytest.fixture
def study(tmp_path: Path) -> Path:
    write_csv(tmp_path / "rows.csv", 3000, 4)
    lines = (tmp_path / "rows.csv").read_text().splitlines()
    rng = np.random.default_rng(0)
    stamps = rng.permutation(len(lines) - 1)  # out of order on purpose: the runner sorts
    body = [f"{line},{t}" for line, t in zip(lines[1:], stamps, strict=True)]
    (tmp_path / "rows.csv").write_text("\n".join([lines[0] + ",timestamp", *body]) + "\n")
    (tmp_path / "dataset.yaml").write_text(DATASET_YAML)
    (tmp_path / "run.yaml").write_text(RUN_YAML)
    (tmp_path / "study.yaml").write_text(
        "name: tiny_continual\ndata: rows.csv\nperiods: 3\nstore: out/store.jsonl\n"
        "report: out/report.md\nworkdir: work\nseeds: [1]\nmodels: {TF4CTR: run.yaml}\n"
        "overrides: [train.epochs=1]\n"
    )
    return tmp_path / "study.yaml"


def test_every_strategy_is_stored_once_and_the_study_resumes(study, capsys):
    assert continual.main(["run", str(study)]) == 0
    store = study.parent / "out" / "store.jsonl"
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert [(r["step"], r["strategy"]) for r in records] == [
        (1, "scratch"),
        (2, "frozen"),
        (2, "scratch"),
        (2, "warm"),
        (2, "replay"),
    ]
    by = {(r["step"], r["strategy"]): r for r in records}
    assert by[(2, "scratch")]["train_rows"] == 1800  # periods 1 and 2, less 10 % for valid
    assert by[(2, "warm")]["train_rows"] == 900  # period 2 alone
    assert by[(2, "replay")]["train_rows"] == 1900  # period 1 replayed + period 2 (its valid out)
    assert 0.5 < by[(2, "frozen")]["test"]["auc"] < 1
    warm = json.loads(
        (study.parent / "work/runs/tiny_continual-tf4ctr-s1-warm-2/metrics.json").read_text()
    )
    assert warm["init_from"]["name"] == "tiny_continual-tf4ctr-s1-scratch-1"
    capsys.readouterr()
    assert continual.main(["run", str(study)]) == 0  # all done: nothing trains again
    assert store.read_text().count("\n") == 5
    report = (study.parent / "out" / "report.md").read_text()
    assert "| 2 (P2 → P3) | warm |" in report and (study.parent / "out/report.png").is_file()
    assert continual.main(["report", str(study)]) == 0
    assert (study.parent / "out" / "report.md").read_text() == report  # from the store alone


def test_a_bad_study_file_is_one_line(study, capsys):
    study.write_text(study.read_text().replace("periods: 3", "periods: 2"))
    assert continual.main(["run", str(study)]) == 2
    assert "periods: expected an integer >= 3" in capsys.readouterr().err


def test_replay_windows_replay_the_last_k_periods(study, capsys):
    """replay_windows: [1, 2] over four periods: replay-2 trains on up to two periods before
    the new one (one at step 2, where only one exists), chained on its own previous model."""
    text = study.read_text().replace("periods: 3", "periods: 4")
    study.write_text(text + "replay_windows: [2, 1]\n")
    assert continual.main(["run", str(study)]) == 0
    store = study.parent / "out" / "store.jsonl"
    by = {(r["step"], r["strategy"]): r for r in map(json.loads, store.read_text().splitlines())}
    # periods of 750 rows; the new period's last 10 % validate
    assert by[(2, "replay")]["train_rows"] == by[(2, "replay-2")]["train_rows"] == 750 + 675
    assert by[(3, "replay")]["train_rows"] == 750 + 675
    assert by[(3, "replay-2")]["train_rows"] == 750 + 750 + 675
    assert by[(3, "warm")]["train_rows"] == 675
    runs = study.parent / "work" / "runs"
    parent = json.loads((runs / "tiny_continual-tf4ctr-s1-replay-2-3" / "metrics.json").read_text())
    assert parent["init_from"]["name"] == "tiny_continual-tf4ctr-s1-replay-2-2"
    report = (study.parent / "out" / "report.md").read_text()
    assert "| 3 (P3 → P4) | replay-2 |" in report and "- replay-2: mean test AUC" in report


@pytest.mark.parametrize("windows", ["[0]", "[3]", "[1, 1]", "[]", "two"])
def test_bad_replay_windows_are_one_line(study, capsys, windows):
    study.write_text(
        study.read_text().replace("periods: 3", "periods: 4") + f"replay_windows: {windows}\n"
    )
    assert continual.main(["run", str(study)]) == 2
    err = capsys.readouterr().err
    assert (
        "replay_windows: expected distinct integers from 1 to 2" in err and "\n" not in err.strip()
    )


REPO = Path(__file__).resolve().parents[1]


def test_the_committed_study_report_regenerates_from_its_store(tmp_path):
    study = continual.load_study(REPO / "configs" / "continual" / "ml_100k.yaml")
    if not study.store.is_file() or not study.report.is_file():
        pytest.skip("the ML-100K continual study has no committed store yet")
    records = continual.read_store(study.store)
    text = continual.render(study, records, tmp_path / study.report.with_suffix(".png").name)
    assert text == study.report.read_text(encoding="utf-8")
