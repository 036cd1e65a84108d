"""The resumable grid runner and its report."""

from __future__ import annotations

import json

import pytest

from tf4ctr.errors import ConfigError
from tf4ctr.experiments import ResultStore, load_experiment, run_experiment
from tf4ctr.experiments.report import results_table

EXPERIMENT = """\
name: tiny_grid
base: run.yaml
seeds: [1, 2]
store: results/tiny_grid.jsonl
runs_dir: runs/tiny_grid
cells:
  - {label: DNN, model: {name: dnn, embedding_dim: 4, hidden_units: [8]}, loss.name: bce, train.epochs: 1}
  - {label: TF4CTR, train.epochs: 1, reference: {test_auc: 0.99}}
"""


def test_grid_runs_each_cell_once_and_resumes(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    assert [(c.label, c.seed) for c in exp.cells] == [
        ("DNN", 1),
        ("DNN", 2),
        ("TF4CTR", 1),
        ("TF4CTR", 2),
    ]
    assert len({c.key for c in exp.cells}) == 4

    from tf4ctr import run

    calls = []
    real_train = run.train

    def counting_train(config, **kwargs):
        calls.append(config.name)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the study is interrupted in its third cell
        return real_train(config, **kwargs)

    monkeypatch.setattr(run, "train", counting_train)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, progress=False)
    assert len(ResultStore(exp.store_path).records) == 2

    # a torn last line (killed mid-write) is ignored
    with exp.store_path.open("a") as fh:
        fh.write('{"key": "abc", "lab')
    calls.clear()
    store = run_experiment(load_experiment(tiny_project / "exp.yaml"), progress=False)
    assert len(calls) == 2  # only the two missing cells ran
    assert len(store.records) == 4
    rec = store.records[exp.cells[0].key]
    assert rec["label"] == "DNN" and rec["model"] == "dnn" and 0 < rec["test"]["auc"] <= 1

    table = results_table(exp, store)
    assert "| DNN | 2 |" in table and "±" in table and "0.9900" in table

    calls.clear()
    run_experiment(exp, progress=False)
    assert calls == []


def test_editing_a_cell_reruns_only_that_cell(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    before = {
        c.label: c.key for c in load_experiment(tiny_project / "exp.yaml").cells if c.seed == 1
    }
    (tiny_project / "exp.yaml").write_text(
        EXPERIMENT.replace("hidden_units: [8]", "hidden_units: [9]")
    )
    after = {
        c.label: c.key for c in load_experiment(tiny_project / "exp.yaml").cells if c.seed == 1
    }
    assert before["DNN"] != after["DNN"] and before["TF4CTR"] == after["TF4CTR"]


@pytest.mark.parametrize(
    "text,msg",
    [
        ("name: x\nbase: run.yaml\ncells: []\n", "cells: expected a non-empty list"),
        (
            "name: x\nbase: run.yaml\ncells:\n  - {label: A, model: {name: nonet}}\n",
            "unknown model",
        ),
        (
            "name: x\nbase: run.yaml\ncells:\n  - {label: A, loss.c: 3}\n",
            "loss.c: must be in [0, 1]",
        ),
        ("name: x\nbase: run.yaml\nbogus: 1\ncells:\n  - {label: A}\n", "bogus: unknown key"),
        ("name: x\nbase: run.yaml\ncells:\n  - {label: A}\n  - {label: B}\n", "duplicates"),
    ],
)
def test_bad_experiment_files(tiny_project, text, msg):
    (tiny_project / "exp.yaml").write_text(text)
    with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        load_experiment(tiny_project / "exp.yaml")


def test_store_round_trip(tmp_path):
    store = ResultStore(tmp_path / "s.jsonl")
    store.add({"key": "k1", "value": 1})
    again = ResultStore(tmp_path / "s.jsonl")
    assert "k1" in again and json.loads((tmp_path / "s.jsonl").read_text())["value"] == 1


def test_significance_by_hand(tmp_path):
    from scipy import stats

    from tf4ctr.experiments.report import significance
    from tf4ctr.experiments.runner import Cell, Experiment

    cells = [Cell("A", s, {}, f"a{s}") for s in range(3)] + [
        Cell("B", s, {}, f"b{s}") for s in range(3)
    ]
    store = ResultStore(tmp_path / "s.jsonl")
    for c, v in zip(cells, [0.90, 0.91, 0.92, 0.80, 0.82, 0.81], strict=True):
        store.add({"key": c.key, "test": {"auc": v}})
    exp = Experiment("x", cells, tmp_path / "s.jsonl", tmp_path, tmp_path / "e.yaml")
    res = significance(exp, store, "A", "B")
    want = stats.ttest_ind([0.90, 0.91, 0.92], [0.80, 0.82, 0.81], equal_var=False)
    assert res["pvalue"] == pytest.approx(want.pvalue) and res["mean_difference"] == pytest.approx(
        0.1
    )
