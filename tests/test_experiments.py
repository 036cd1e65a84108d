"""The resumable grid runner and its report."""

from __future__ import annotations

import json
import re

import pytest

from tf4ctr.errors import ConfigError
from tf4ctr.experiments import ResultStore, load_experiment, run_experiment
from tf4ctr.experiments.reports.table import results_table

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
    # a record spells out the settings whose default changed since keys began, as run
    # and the dataset as the mapping its key reads, not a path that exists on this machine only
    for line in exp.store_path.read_text().splitlines():
        if line.startswith("{") and line.endswith("}"):
            kept = json.loads(line)["config"]
            assert kept["train"]["fast_dropout"] is True
            assert isinstance(kept["dataset"], dict) and "train_data" in kept["dataset"]
            assert "/" not in kept["dataset"]["train_data"]
    rec = store.records[exp.cells[0].key]
    assert rec["label"] == "DNN" and rec["model"] == "dnn" and 0 < rec["test"]["auc"] <= 1
    # what produced it: a key names the config, not the code or the thread count
    import re

    import torch

    sw = rec["software"]
    assert (
        sw["torch"] == torch.__version__ and isinstance(sw["threads"], int) and sw["threads"] >= 1
    )
    assert sw["commit"] is None or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", sw["commit"])

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
        (
            "name: x\nbase: run.yaml\nreport: {equivalence: {pairs: [[A, B]], margn: 1}}\n"
            "cells:\n  - {label: A}\n",
            "report.equivalence.margn: unknown key",
        ),
        (
            "name: x\nbase: run.yaml\nreport: {equivalence: {pairs: [[A, Z]], margin: 0.01}}\n"
            "cells:\n  - {label: A}\n",
            "report.equivalence.pairs[1]: no cell is labelled 'Z'",
        ),
        (
            "name: x\nbase: run.yaml\nreport: {equivalence: {pairs: [[A, A]], margin: 0}}\n"
            "cells:\n  - {label: A}\n",
            "report.equivalence.margin: expected a number > 0",
        ),
        (
            "name: x\nbase: run.yaml\nreport: {equivalence: {pairs: [], margin: 0.1}}\n"
            "cells:\n  - {label: A}\n",
            "report.equivalence.pairs: expected pairs of cell labels",
        ),
        (
            "name: x\nbase: run.yaml\nreport: {equivalence: {pairs: [[A, A]], margin: 0.1, "
            "alpha: 0.9}}\ncells:\n  - {label: A}\n",
            "report.equivalence.alpha: expected a number above 0 and below 0.5",
        ),
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


def test_equivalence_by_hand(tmp_path):
    """TOST against the textbook formulas: Welch's se and df, the two one-sided t tails."""
    import math

    from scipy import stats

    from tf4ctr.experiments.reports.table import equivalence
    from tf4ctr.experiments.runner import Cell, Experiment

    a, b = [0.9870, 0.9872, 0.9866, 0.9869], [0.9868, 0.9861, 0.9866]
    cells = [Cell("A", s, {}, f"a{s}") for s in range(4)] + [
        Cell("B", s, {}, f"b{s}") for s in range(3)
    ]
    store = ResultStore(tmp_path / "s.jsonl")
    for c, v in zip(cells, a + b, strict=True):
        store.add({"key": c.key, "test": {"auc": v}})
    exp = Experiment("x", cells, tmp_path / "s.jsonl", tmp_path, tmp_path / "e.yaml")

    def by_hand(margin, alpha):
        va, vb = stats.tvar(a) / 4, stats.tvar(b) / 3
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
        d = sum(a) / 4 - sum(b) / 3
        p = max(stats.t.sf((d + margin) / se, df), stats.t.cdf((d - margin) / se, df))
        half = stats.t.ppf(1 - alpha, df) * se
        return d, (d - half, d + half), p

    # 0.00105 lies between the 90 % and the 95 % interval's reach: alpha decides it
    for margin, alpha, verdict in (
        (0.002, 0.05, True),
        (0.0001, 0.05, False),
        (0.00105, 0.05, True),
        (0.00105, 0.025, False),
    ):
        got = equivalence(exp, store, "A", "B", margin, alpha)
        d, ci, p = by_hand(margin, alpha)
        assert got.mean_difference == pytest.approx(d)
        assert got.ci == pytest.approx(ci) and got.pvalue == pytest.approx(p)
        assert got.equivalent is verdict
        # equivalent exactly when the 1 - 2 alpha interval lies inside the margin
        assert bool(-margin < ci[0] and ci[1] < margin) is verdict
    assert equivalence(exp, store, "A", "missing", 0.1).equivalent is None


def test_store_keeps_metrics_json_epoch_records(tiny_project, monkeypatch):
    """One per-epoch record format: the store's history is metrics.json's epochs, key for key."""
    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    store = run_experiment(exp, progress=False, only=["DNN"])
    rec = next(iter(store.records.values()))
    metrics = json.loads((tiny_project / "runs" / rec["run_dir"] / "metrics.json").read_text())
    assert rec["history"] == metrics["epochs"]
    assert "train_total_loss" in rec["history"][0]


def test_store_reads_records_of_the_older_epoch_format(tmp_path):
    old = {"key": "k1", "history": [{"epoch": 1, "valid": {}, "train_loss": 0.5}]}
    (tmp_path / "s.jsonl").write_text(json.dumps(old) + "\n")
    (epoch,) = ResultStore(tmp_path / "s.jsonl").records["k1"]["history"]
    assert epoch == {"epoch": 1, "valid": {}, "train_total_loss": 0.5}


def test_significance_by_hand(tmp_path):
    from scipy import stats

    from tf4ctr.experiments.reports.table import significance
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
    assert res.pvalue == pytest.approx(want.pvalue) and res.mean_difference == pytest.approx(0.1)
    assert res.statistic == pytest.approx(want.statistic) and res.n == (3, 3)


def test_keys_ignore_spelled_out_defaults_and_the_checkout_location(tiny_project, monkeypatch):
    from tf4ctr.experiments.keys import config_key

    monkeypatch.chdir(tiny_project)
    import yaml

    base = yaml.safe_load((tiny_project / "run.yaml").read_text())
    base["dataset"] = str(tiny_project / "dataset.yaml")
    spelled = json.loads(json.dumps(base))
    spelled["train"]["clip_grad_norm"] = 10.0  # the default, written out
    spelled["model"]["ssem"] = "ser"  # tf4ctr's default
    spelled["name"] = "another-name"
    assert config_key(base) == config_key(spelled)
    changed = json.loads(json.dumps(base))
    changed["loss"]["gamma"] = 2.0
    assert config_key(changed) != config_key(base)
    # the same dataset in another folder: same key
    other = tiny_project / "elsewhere"
    other.mkdir()
    for name in ("dataset.yaml", "train.csv", "valid.csv", "test.csv"):
        (other / name).write_bytes((tiny_project / name).read_bytes())
    moved = json.loads(json.dumps(base))
    moved["dataset"] = str(other / "dataset.yaml")
    assert config_key(moved) == config_key(base)


def test_key_defaults_are_frozen_so_a_changed_default_gets_new_keys(tiny_project, monkeypatch):
    """Keys leave out a setting at the value it had when keys began (KEYED_AGAINST), not at
    today's default: train.fast_dropout's default turned true, so a config that omits it must
    not be answered by the torch-dropout records, and one that pins false must still be."""
    import dataclasses

    import yaml

    from tf4ctr import config as config_module
    from tf4ctr.experiments.keys import _NOT_RESULTS, KEYED_AGAINST, config_key

    # every setting that changes a result is listed, at its current default but for the
    # defaults that changed since keys began
    changed = {
        "train": {"fast_dropout": (False, True), "fold_embeddings": (False, True)},
        "loss": {},
    }
    for section, cls in (("train", config_module.TrainConfig), ("loss", config_module.LossConfig)):
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        listed = {k: v for k, v in fields.items() if k not in _NOT_RESULTS}
        for name, (then, now) in changed[section].items():
            assert (KEYED_AGAINST[section][name], listed[name]) == (then, now)
            listed[name] = then
        assert KEYED_AGAINST[section] == listed, section

    monkeypatch.chdir(tiny_project)
    base = yaml.safe_load((tiny_project / "run.yaml").read_text())
    base["dataset"] = str(tiny_project / "dataset.yaml")
    pinned_false, pinned_true = (json.loads(json.dumps(base)) for _ in range(2))
    pinned_false["train"]["fast_dropout"] = False
    pinned_true["train"]["fast_dropout"] = True
    # today: omitting it means the fast mask
    assert config_module.parse_run_config(base).train.fast_dropout is True
    today = {name: config_key(c) for name, c in (("omitted", base), ("false", pinned_false))}
    assert today["omitted"] == config_key(pinned_true) != today["false"]

    # before the flip (the old default put back): omitting it meant torch's mask, and that
    # record's key is the one pinning false has today
    unflipped = dataclasses.make_dataclass(
        "TrainConfig",
        [("fast_dropout", bool, dataclasses.field(default=False))],
        bases=(config_module.TrainConfig,),
        frozen=True,
    )
    monkeypatch.setattr(config_module, "TrainConfig", unflipped)
    assert config_module.parse_run_config(base).train.fast_dropout is False
    assert config_key(base) == today["false"] != today["omitted"]


def test_a_stored_record_answers_the_config_it_ran_across_a_default_change(
    tiny_project, monkeypatch
):
    """A record written before train.fast_dropout's and train.fold_embeddings' defaults turned
    true leaves them out of its config: it ran torch's dropout and unfolded evaluation, so it
    answers a config pinning both false, not one omitting them. A record written now spells
    the settings out, so it keeps answering the config it ran."""
    import yaml

    from tf4ctr.experiments.keys import config_key, record_config

    monkeypatch.chdir(tiny_project)
    base = yaml.safe_load((tiny_project / "run.yaml").read_text())
    base["dataset"] = str(tiny_project / "dataset.yaml")
    changed = ("fast_dropout", "fold_embeddings")
    assert not set(changed) & set(base.get("train", {}))
    pinned_false = json.loads(json.dumps(base))
    pinned_false.setdefault("train", {}).update(dict.fromkeys(changed, False))

    def store_with(config):
        path = tiny_project / f"store-{len(list(tiny_project.glob('store-*')))}.jsonl"
        path.write_text(json.dumps({"key": "as-written-then", "config": config}) + "\n")
        return ResultStore(path)

    old = store_with(base)  # as written before the change: the setting left out
    assert config_key(pinned_false) in old and config_key(base) not in old

    written = record_config(base)  # as written now
    assert all(written["train"][name] is True for name in changed)
    assert all(record_config(pinned_false)["train"][name] is False for name in changed)
    new = store_with(written)
    assert config_key(base) in new and config_key(pinned_false) not in new
    # pinning only one of them is a third run, answered by neither
    half = json.loads(json.dumps(base))
    half.setdefault("train", {})["fast_dropout"] = False
    assert config_key(half) not in old and config_key(half) not in new


def test_cell_seeds_the_seeds_option_and_reuse(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    run_experiment(exp, progress=False)
    other = EXPERIMENT.replace("name: tiny_grid", "name: other").replace(
        "results/tiny_grid.jsonl", "results/other.jsonl"
    )
    other = other.replace("seeds: [1, 2]", "seeds: [1]\nreuse: [results/tiny_grid.jsonl]")
    other = other.replace("train.epochs: 1, reference", "train.epochs: 1, seeds: [2, 5], reference")
    (tiny_project / "other.yaml").write_text(other)
    exp2 = load_experiment(tiny_project / "other.yaml")
    assert [(c.label, c.seed) for c in exp2.cells] == [("DNN", 1), ("TF4CTR", 2), ("TF4CTR", 5)]
    # the report already shows the cells it would reuse, before the grid runs
    from tf4ctr.cli import main as cli_main

    assert cli_main(["report", str(tiny_project / "other.yaml"), "--output", "o.md"]) == 0
    dnn_row = next(ln for ln in (tiny_project / "o.md").read_text().splitlines() if "| DNN |" in ln)
    assert "| 1 |" in dnn_row and "0." in dnn_row
    assert not (tiny_project / "results/other.jsonl").exists()

    from tf4ctr import run

    calls = []
    real_train = run.train
    monkeypatch.setattr(
        run, "train", lambda config, **kw: calls.append(config.name) or real_train(config, **kw)
    )
    store = run_experiment(exp2, progress=False)
    assert calls == ["tf4ctr-s5"]  # DNN seed 1 and TF4CTR seed 2 were copied from tiny_grid
    assert sum("reused_from" in r for r in store.records.values()) == 2
    three = load_experiment(tiny_project / "exp.yaml", seeds=3)
    assert [c.seed for c in three.cells] == [2023, 2024, 2025, 2023, 2024, 2025]
    with pytest.raises(ConfigError, match="--seeds"):
        load_experiment(tiny_project / "exp.yaml", seeds=0)


def test_repeat_best_adds_seeds_for_the_best_and_reports_a_t_test(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    text = EXPERIMENT.replace("seeds: [1, 2]", "seeds: [1]") + (
        "  - {label: DNN wide, model: {name: dnn, embedding_dim: 4, hidden_units: [16]}, "
        "loss.name: bce, train.epochs: 1}\n"
        "report: {repeat_best: {among: [DNN, DNN wide], with: [TF4CTR], seeds: 2}}\n"
    )
    (tiny_project / "exp.yaml").write_text(text)
    exp = load_experiment(tiny_project / "exp.yaml")
    store = run_experiment(exp, progress=False)
    labels = [(c.label, c.seed) for c in exp.cells]
    best = max(("DNN", "DNN wide"), key=lambda lab: next(
        r["test"]["auc"] for r in store.records.values() if r["label"] == lab))  # fmt: skip
    assert (best, 2024) in labels and ("TF4CTR", 2023) in labels and ("TF4CTR", 2024) in labels
    from tf4ctr.experiments.reports import render_report

    text = render_report(load_experiment(tiny_project / "exp.yaml"), ResultStore(exp.store_path))
    assert f"TF4CTR vs best baseline {best}, test AUC" in text and "two-tailed Welch" in text
    # the best is judged on the grid's own seed: a poor repeat seed does not hand the title
    # (and five new runs) to the runner-up, in the runner or in the report
    other = "DNN" if best == "DNN wide" else "DNN wide"
    store = ResultStore(exp.store_path)
    for rec in store.records.values():
        if rec["label"] == best and rec["seed"] == 2024:
            rec["test"] = dict(rec["test"], auc=0.0)
    again = load_experiment(tiny_project / "exp.yaml")
    assert all(c.label != other for c in again.repeat_cells(store))
    text = render_report(load_experiment(tiny_project / "exp.yaml"), store)
    assert f"TF4CTR vs best baseline {best}, test AUC" in text


def test_repeat_seeds_of_a_with_cell_are_copied_from_a_reused_store(tiny_project, monkeypatch):
    # Table IV's TF4CTR seeds answer for the TF4CTR of a later study that compares against it:
    # the extra seeds repeat_best adds must be looked up in the reused stores, not retrained
    monkeypatch.chdir(tiny_project)
    first = EXPERIMENT.replace("seeds: [1, 2]", "seeds: [2023, 2024]")
    (tiny_project / "first.yaml").write_text(first)
    run_experiment(load_experiment(tiny_project / "first.yaml"), only=["TF4CTR"], progress=False)
    text = (
        EXPERIMENT.replace("name: tiny_grid", "name: later")
        .replace("results/tiny_grid.jsonl", "results/later.jsonl")
        .replace("seeds: [1, 2]", "seeds: [1]\nreuse: [results/tiny_grid.jsonl]")
        + "report: {repeat_best: {among: [DNN], with: [TF4CTR], seeds: 2}}\n"
    )
    (tiny_project / "later.yaml").write_text(text)
    from tf4ctr import run
    from tf4ctr.experiments.runner import known_results

    calls = []
    real_train = run.train
    monkeypatch.setattr(
        run, "train", lambda config, **kw: calls.append(config.name) or real_train(config, **kw)
    )
    # the grid as written (no repeats with --only)
    run_experiment(load_experiment(tiny_project / "later.yaml"), only=["DNN", "TF4CTR"],
                   progress=False)  # fmt: skip
    assert sorted(calls) == ["dnn-s1", "tf4ctr-s1"]
    # what the report sees: TF4CTR's two repeat seeds already, copied from the reused store
    exp = load_experiment(tiny_project / "later.yaml")
    known = known_results(exp)
    assert sorted((r["label"], r["seed"]) for r in known.records.values()) == [
        ("DNN", 1), ("TF4CTR", 1), ("TF4CTR", 2023), ("TF4CTR", 2024)
    ]  # fmt: skip
    assert len(exp.cells) == 6  # DNN's two repeat seeds are still to run
    calls.clear()
    store = run_experiment(load_experiment(tiny_project / "later.yaml"), progress=False)
    assert sorted(calls) == ["dnn-s2023", "dnn-s2024"]  # TF4CTR's repeats were not retrained
    reused = sorted(r["seed"] for r in store.records.values() if "reused_from" in r)
    assert reused == [2023, 2024] and len(store.records) == 6


def test_a_cell_another_grid_process_finished_is_not_trained_again(tiny_project, monkeypatch):
    """One grid process per core on the same experiment: each reads the store again before a
    cell, so a cell the other process finished meanwhile is collected, not retrained."""
    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    from tf4ctr import run

    calls = []
    real_train = run.train

    def train(config, **kw):
        calls.append(config.name)
        result = real_train(config, **kw)
        if len(calls) == 1:  # meanwhile, the other process finishes DNN seed 2
            other = ResultStore(exp.store_path)
            cell = next(c for c in exp.cells if (c.label, c.seed) == ("DNN", 2))
            other.add({"key": cell.key, "label": "DNN", "seed": 2, "by": "the other process"})
        return result

    monkeypatch.setattr(run, "train", train)
    store = run_experiment(exp, progress=False, only=["DNN"])
    assert calls == ["dnn-s1"]
    assert sorted(r["seed"] for r in store.records.values()) == [1, 2]


def _fake_record(label, auc, **extra):
    return {"key": label, "label": label, "test": {"auc": auc, "gauc": auc - 0.01, "logloss": 0.3},
            "valid": {"auc": auc}, "best_epoch": 1, "seconds_per_epoch": 1.0, "parameters": 10,
            **extra}  # fmt: skip


def test_timing_and_sweep_reports_by_hand(tiny_project, monkeypatch, tmp_path):
    import dataclasses

    from tf4ctr.experiments.reports import sweep, timing

    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    store = ResultStore(tmp_path / "s.jsonl")
    dnn, tf = exp.cells[0], exp.cells[2]
    store.records[dnn.key] = _fake_record("DNN", 0.8, first_epoch_seconds=10.0, valid_seconds=2.0,
                                          config={"loss": {"gamma": 1.0}})  # fmt: skip
    store.records[tf.key] = _fake_record("TF4CTR", 0.9, first_epoch_seconds=13.0, valid_seconds=2.2,
                                         config={"loss": {"gamma": 3.0}})  # fmt: skip
    exp.report = dataclasses.replace(exp.report, kind="timing", baseline="DNN")
    rows = {r.label: r for r in timing.compute(exp, store)}
    assert rows["DNN"].train_ratio == 1.0 and rows["DNN"].infer_ratio == 1.0
    assert rows["TF4CTR"].train_ratio == pytest.approx(13.0 / 10.0)
    assert rows["TF4CTR"].infer_ratio == pytest.approx(2.2 / 2.0)
    assert "| TF4CTR | 13.0 | 1.30 | 2.20 | 1.10 |" in timing.render(exp, store)
    # the paper's ratios (Table VI) go beside ours when a cell gives them
    exp.cells[2] = dataclasses.replace(tf, reference={"train_ratio": 1.3, "inference_ratio": 1.0})
    table = timing.render(exp, store)
    assert "| TF4CTR | 13.0 | 1.30 | 2.20 | 1.10 | 1.30 | 1.00 |" in table
    assert "| DNN | 10.0 | 1.00 | 2.00 | 1.00 | – | – |" in table
    exp.cells[2].raw_config["loss"]["gamma"] = 3.0  # the sweep reads the value off the cell
    points, numeric = sweep.sweep_points(exp, store, "loss.gamma")
    assert numeric and [p.value for p in points] == [1.0, 3.0]
    assert [p.mean_test_auc for p in points] == [0.8, 0.9]
    assert points[1].test_gauc == pytest.approx(0.89)


def test_reproduce_cli(tiny_project, monkeypatch, capsys):
    from tf4ctr.cli import main

    monkeypatch.chdir(tiny_project)
    assert main(["reproduce", "fig4", "--output-dir", "out"]) == 0
    assert (tiny_project / "out" / "fig4_tf_loss.png").stat().st_size > 10_000
    assert main(["reproduce", "table9"]) == 2
    assert "unknown experiment 'table9'" in capsys.readouterr().err
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    assert main(["reproduce", "exp.yaml", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("todo") == 4
    # status: one row per paper experiment, counting the cells of the shipped grids found
    (tiny_project / "configs" / "experiments").mkdir(parents=True)
    shipped = EXPERIMENT.replace("base: run.yaml", "base: ../../run.yaml").replace(
        "store: results/", "store: ../../results/"
    )
    (tiny_project / "configs" / "experiments" / "tiny_table6.yaml").write_text(shipped)
    (tiny_project / "configs" / "experiments" / "tiny_table5.yaml").write_text("name: [broken")
    # a grid beyond the paper's experiments is listed too, and `reproduce NAME` finds it
    beyond = "# Beyond the paper: tiny.\n" + shipped
    (tiny_project / "configs" / "experiments" / "tiny_beyond_x.yaml").write_text(beyond)
    assert main(["reproduce", "status", "--dataset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "| table6 | 0 / 4 | 0.00 |" in out
    assert "| beyond_x | 0 / 4 | 0.00 | Beyond the paper: tiny. |" in out
    assert "| table2 | (no grid for tiny) |" in out and "| fig4 | (no training) |" in out
    assert "| table5 | (error: " in out
    run_experiment(load_experiment(tiny_project / "exp.yaml"), progress=False)
    assert main(["reproduce", "status", "--dataset", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "| table6 | 4 / 4 |" in out and "| beyond_x | 4 / 4 |" in out
    assert main(["reproduce", "beyond_x", "--dataset", "tiny", "--dry-run"]) == 0
    assert capsys.readouterr().out.count("done") == 4
    assert main(["reproduce", "beyond_y", "--dataset", "tiny"]) == 2
    assert "shipped for tiny: beyond_x" in capsys.readouterr().err


def test_difficulty_and_gradient_figures(tiny_project, monkeypatch, tmp_path):
    from tf4ctr.experiments.reports import render_report

    monkeypatch.chdir(tiny_project)
    counts = {s: {"positive": {"well": 5, "poor": 2, "mis": 1}, "negative": {"well": 9, "poor": 1, "mis": 0}}
              for s in ("train", "valid", "test")}  # fmt: skip
    history = [{"epoch": e, "valid": {"auc": 0.8}, "difficulty": counts} for e in (1, 2)]
    for kind in ("difficulty", "grad_norms"):
        (tiny_project / "exp.yaml").write_text(EXPERIMENT + f"report: {{kind: {kind}}}\n")
        exp = load_experiment(tiny_project / "exp.yaml")
        store = ResultStore(tmp_path / f"{kind}.jsonl")
        for cell in exp.cells:
            store.records[cell.key] = _fake_record(
                cell.label,
                0.8,
                history=history,
                logit_grad_norms={"z_s": [1.0, 0.5], "z_c": [1.0, 2.0]},
            )
        text = render_report(exp, store, figures_dir=tmp_path / "fig")
        assert "![tiny_grid](tiny_grid.png)" in text
        assert (tmp_path / "fig" / "tiny_grid.png").stat().st_size > 5_000
        (tmp_path / "fig" / "tiny_grid.png").unlink()


def test_report_compare_pairs_by_hand(tiny_project, monkeypatch, tmp_path):
    from scipy import stats

    from tf4ctr.experiments.reports import render_report

    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT + "report: {compare: [[TF4CTR, DNN]]}\n")
    exp = load_experiment(tiny_project / "exp.yaml")
    store = ResultStore(tmp_path / "s.jsonl")
    aucs = {("DNN", 1): 0.80, ("DNN", 2): 0.82, ("TF4CTR", 1): 0.90, ("TF4CTR", 2): 0.93}
    for cell in exp.cells:
        store.records[cell.key] = _fake_record(cell.label, aucs[cell.label, cell.seed])
    text = render_report(exp, store)
    want = stats.ttest_ind([0.90, 0.93], [0.80, 0.82], equal_var=False)
    assert "- TF4CTR vs DNN, test AUC: difference +0.1050 (means over 2 and 2 seeds)" in text
    assert f"p = {want.pvalue:.3g}" in text
    (tiny_project / "bad.yaml").write_text(EXPERIMENT + "report: {compare: [TF4CTR]}\n")
    with pytest.raises(ConfigError, match="report.compare: expected pairs"):
        render_report(load_experiment(tiny_project / "bad.yaml"), store)


MATRIX = """\
name: tiny_matrix
base: run.yaml
seeds: [1]
store: results/tiny_matrix.jsonl
report: {matrix: {rows: model.ssem, columns: model.fusion, baseline: Share + SUM}}
cells:
  - {label: SER + WSF, model.ssem: ser, model.fusion: wsf, reference: {test_auc: 0.95, test_gauc: 0.91}}
  - {label: SER + SUM, model.ssem: ser, model.fusion: sum, reference: {test_auc: 0.93, test_gauc: 0.90}}
  - {label: Share + WSF, model.ssem: share, model.fusion: wsf, reference: {test_auc: 0.92}}
  - {label: Share + SUM, model.ssem: share, model.fusion: sum, reference: {test_auc: 0.94, test_gauc: 0.88}}
"""


def test_matrix_report_by_hand(tiny_project, monkeypatch, tmp_path):
    """Table III's SSEM x DFM layout: ours (paper's) per pair, row and column means, and
    the pairs above the Share + Sum baseline, checked against hand arithmetic."""
    from tf4ctr.experiments.reports import render_report

    monkeypatch.chdir(tiny_project)
    (tiny_project / "m.yaml").write_text(MATRIX)
    exp = load_experiment(tiny_project / "m.yaml")
    store = ResultStore(tmp_path / "s.jsonl")
    for cell, auc in zip(exp.cells, (0.90, 0.80, 0.70, 0.75), strict=True):
        store.records[cell.key] = _fake_record(cell.label, auc)  # gAUC = AUC - 0.01
    text = render_report(exp, store)
    assert "| model | seeds | test AUC | test gAUC |" in text and "paper gAUC |" in text
    assert "| SER + WSF | 1 | 0.9000 | 0.8900 |" in text and "| 0.9500 | 0.9100 |" in text
    assert "| Share + WSF | 1 | 0.7000 | 0.6900 |" in text and "| 0.9200 | – |" in text
    # rows ser / share, columns wsf / sum; row mean of ser = (0.90 + 0.80) / 2 = 0.85,
    # paper's (0.95 + 0.93) / 2 = 0.94; column mean of sum = (0.80 + 0.75) / 2 = 0.775
    assert "| model.ssem \\ model.fusion | wsf | sum | row mean |" in text
    assert "| ser | 0.9000 (0.9500) | 0.8000 (0.9300) | 0.8500 (0.9400) |" in text
    assert "| column mean | 0.8000 (0.9350) | 0.7750 (0.9350) | |" in text
    # the paper gives no gAUC for Share + WSF: its mean stays blank rather than skip it;
    # ours is (0.69 + 0.74) / 2
    assert "| share | 0.6900 (–) | 0.7400 (0.8800) | 0.7150 (–) |" in text
    # ours: two of three pairs above Share + SUM (0.90, 0.80 > 0.75); best - baseline = 0.15
    assert (
        "- ours: best pair on validation AUC SER + WSF (0.9000 test AUC; 4 of 4 pairs); 2 of 3 other pairs above "
        "Share + SUM (0.7500); best minus Share + SUM: +0.1500 AUC, +0.1500 gAUC" in text
    )
    # paper: only SER + WSF (0.95) beats 0.94; gAUC gain 0.91 - 0.88
    assert (
        "- paper: best pair SER + WSF (0.9500 test AUC; 4 of 4 pairs); 1 of 3 other pairs above "
        "Share + SUM (0.9400); best minus Share + SUM: +0.0100 AUC, +0.0300 gAUC" in text
    )

    # rows and columns against the baseline's, paired over the other factor: ser - share
    # = (0.90 - 0.70, 0.80 - 0.75), mean 0.125, t = 0.125 / (0.1061 / sqrt 2) = 1.667 on one
    # degree of freedom (Cauchy): p = 1 - 2 atan(1.667) / pi = 0.34
    assert (
        "- row ser minus share, test AUC paired over columns: ours +0.1250 (2 of 2 higher, "
        "t-test p = 0.34); paper +0.0100 (1 of 2 higher, t-test p = 0.7)" in text
    )
    assert (
        "- column wsf minus sum, test AUC paired over rows: ours +0.0250 (1 of 2 higher, " in text
    )
    assert "paper +0.0000 (1 of 2 higher, t-test p = 1)" in text

    # Table II's variant: columns only, no best pair, ranks within each row (ser: wsf then
    # sum; share: sum then wsf — ours and the paper's alike)
    (tiny_project / "m.yaml").write_text(
        MATRIX.replace("baseline: Share + SUM}", "baseline: Share + SUM, compare: columns, "
                       "ranks: true, best_pair: false}")
    )  # fmt: skip
    text = render_report(load_experiment(tiny_project / "m.yaml"), store)
    assert "best pair" not in text and "- row " not in text and "- column wsf minus sum" in text
    assert (
        "- ours: times best / second best in a row, of 2 complete rows: wsf 1 / 1, "
        "sum 1 / 1" in text
    )
    # a study beyond the paper cites no paper figure: ours alone, no "(–)" or "paper" parts
    bare = re.sub(r", reference: \{[^}]*\}", "", MATRIX).replace(
        "baseline: Share + SUM}", "baseline: Share + SUM, ranks: true}"
    )
    (tiny_project / "m.yaml").write_text(bare)
    text = render_report(load_experiment(tiny_project / "m.yaml"), store)
    assert "Test AUC:" in text and "paper" not in text and "(–)" not in text
    assert "| ser | 0.9000 | 0.8000 | 0.8500 |" in text
    assert "| column mean | 0.8000 | 0.7750 | |" in text
    assert text.count("- ours: times best / second best") == 1
    assert (
        "- row ser minus share, test AUC paired over columns: ours +0.1250 (2 of 2 higher, "
        "t-test p = 0.34)\n" in text
    )
    (tiny_project / "m.yaml").write_text(
        MATRIX.replace("}}\ncells", ", compare: diagonal}}\ncells")
    )
    # a wrong report section fails when the file is read, before any training
    with pytest.raises(ConfigError, match="report.matrix.compare: expected both, rows or columns"):
        load_experiment(tiny_project / "m.yaml")

    (tiny_project / "m.yaml").write_text(MATRIX.replace("rows: model.ssem, ", ""))
    with pytest.raises(ConfigError, match="report.matrix.rows: missing required key"):
        load_experiment(tiny_project / "m.yaml")


def _alpha_sweep(project, name, seeds, alphas, report_extra=""):
    """Write and load a sweep of loss.alpha over ``alphas``, one cell per value."""
    cells = "".join(f"  - {{label: alpha {a}, loss.alpha: {a}}}\n" for a in alphas)
    (project / f"{name}.yaml").write_text(
        f"name: {name}\nbase: run.yaml\nseeds: {seeds}\nstore: results/{name}.jsonl\n"
        f"report: {{kind: sweep, param: loss.alpha{report_extra}}}\ncells:\n{cells}"
    )
    return load_experiment(project / f"{name}.yaml")


def test_sweep_summary_by_hand(tiny_project, monkeypatch, tmp_path):
    """Best point, the paper's optimum with our value there, spread, and Spearman's rho
    (a strictly falling sweep has rho = -1)."""
    from tf4ctr.experiments.reports import render_report

    monkeypatch.chdir(tiny_project)
    exp = _alpha_sweep(
        tiny_project, "tiny_sweep", [1], [0.25, 0.35, 0.45, 0.55], ", paper_best: 0.45"
    )
    store = ResultStore(tmp_path / "s.jsonl")
    for cell, auc in zip(exp.cells, (0.90, 0.88, 0.87, 0.80), strict=True):
        # a reused record need not spell the swept value out: it is read from the cell
        store.records[cell.key] = _fake_record(cell.label, auc, config={"loss": {}})
    from tf4ctr.experiments.reports import sweep

    result = sweep.compute(exp, store)
    assert result.best.label == "alpha 0.25" and result.best.mean_test_auc == 0.90
    assert result.at_paper_best.mean_test_auc == 0.87
    assert result.spread == pytest.approx(0.10) and result.spearman[0] == pytest.approx(-1.0)
    text = render_report(exp, store)
    assert "| 0.45 | alpha 0.45 | 0.8700 | 0.8600 |" in text
    assert "- the paper's best on this dataset: 0.45 (ours there: 0.8700)" in text
    assert "Spearman rho = -1.00" in text


def test_sweep_with_two_seeds_by_hand(tiny_project, monkeypatch, tmp_path):
    """Two seeds per point: seed count and std in the table, Spearman over all six runs,
    and a one-way ANOVA across the points (hand arithmetic in the comments)."""
    from tf4ctr.experiments.reports import render_report

    monkeypatch.chdir(tiny_project)
    exp = _alpha_sweep(tiny_project, "tiny_sweep2", [1, 2], [0.25, 0.35, 0.45])
    aucs = {("alpha 0.25", 1): 0.90, ("alpha 0.25", 2): 0.92, ("alpha 0.35", 1): 0.88,
            ("alpha 0.35", 2): 0.86, ("alpha 0.45", 1): 0.80, ("alpha 0.45", 2): 0.82}  # fmt: skip
    assert len(exp.cells) == 6
    store = ResultStore(tmp_path / "s2.jsonl")
    for cell in exp.cells:
        store.records[cell.key] = _fake_record(cell.label, aucs[cell.label, cell.seed])
    text = render_report(exp, store, figures_dir=tmp_path)
    assert (tmp_path / "tiny_sweep2.png").stat().st_size > 10_000  # mean line + seed dots
    # means 0.91 / 0.87 / 0.81; every std sqrt(0.0002) = 0.0141
    assert "| 0.25 | alpha 0.25 | 2 | 0.9100 ± 0.0141 | 0.9000 |" in text
    assert (
        "- best point on validation AUC: alpha 0.25 (valid 0.9100, test 0.9100), of 3 points, 6 runs"
        in text
    )
    assert "- spread of test AUC across the sweep: 0.1000" in text
    # ranks of x 1.5 1.5 3.5 3.5 5.5 5.5, of AUC 5 6 4 3 1 2: rho = -16 / sqrt(16 * 17.5)
    assert "(over the 6 runs): Spearman rho = -0.96" in text
    # between points: 2 * (0.04667^2 + 0.00667^2 + 0.05333^2) / 2 = 0.0050667;
    # within: 3 * 0.0002 / 3 = 0.0002; F = 25.33
    assert "one-way ANOVA F = 25.33" in text
    assert "(mean std between seeds at a point: 0.0141)" in text


def test_sweep_best_point_is_chosen_on_validation(tiny_project, monkeypatch, tmp_path):
    """A point that wins on test but not on validation is not the reported best."""
    from tf4ctr.experiments.reports import sweep

    monkeypatch.chdir(tiny_project)
    exp = _alpha_sweep(tiny_project, "tiny_valid", [1], [0.25, 0.35])
    store = ResultStore(tmp_path / "s.jsonl")
    for cell, (valid, test) in zip(exp.cells, ((0.95, 0.80), (0.90, 0.85)), strict=True):
        rec = _fake_record(cell.label, test)
        rec["valid"] = {"auc": valid}
        store.records[cell.key] = rec
    best = sweep.compute(exp, store).best
    assert best.label == "alpha 0.25" and best.mean_test_auc == 0.80


def test_table4_best_baseline_is_chosen_on_validation(tiny_project, monkeypatch, tmp_path):
    from tf4ctr.experiments.reports import table

    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(
        EXPERIMENT.replace("seeds: [1, 2]", "seeds: [1]")
        + "report: {repeat_best: {among: [DNN, DualMLP], with: [TF4CTR], seeds: 2}}\n"
        + "  - {label: DualMLP, model: {name: dualmlp, embedding_dim: 4}, loss.name: bce}\n"
    ).replace("report: {repeat", "cells_end: 0\nreport: {repeat") if False else None
    text = EXPERIMENT.replace("seeds: [1, 2]", "seeds: [1]") + (
        "  - {label: DualMLP, model: {name: dualmlp, embedding_dim: 4}, loss.name: bce}\n"
        "report: {repeat_best: {among: [DNN, DualMLP], with: [TF4CTR], seeds: 2}}\n"
    )
    (tiny_project / "exp.yaml").write_text(text)
    exp = load_experiment(tiny_project / "exp.yaml")
    store = ResultStore(tmp_path / "s.jsonl")
    by_label = {c.label: c for c in exp.cells}
    for label, valid, test in (("DNN", 0.70, 0.90), ("DualMLP", 0.80, 0.85), ("TF4CTR", 0.9, 0.9)):
        rec = _fake_record(label, test)
        rec["valid"] = {"auc": valid}
        store.records[by_label[label].key] = rec
    assert exp.best_baseline(store) == "DualMLP"  # DNN is better on test, not on validation
    result = table.compute(exp, store)
    assert result.best_baseline == "DualMLP"
    assert {(t.first, t.second) for t, _ in result.tests} == {("TF4CTR", "DualMLP")}


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("{repeat_bst: {among: [DNN]}}", "report.repeat_bst: unknown key"),
        (
            "{repeat_best: {among: [DNN], with: [Nope]}}",
            "report.repeat_best.with: no cell is labelled 'Nope'",
        ),
        ("{kind: swept}", "report.kind: expected one of table"),
        ("{kind: sweep}", "report.param: a sweep report needs"),
        ("{matrix: {rows: model.name}}", "report.matrix.columns: missing required key"),
        ("{compare: [[DNN]]}", "report.compare: expected pairs of cell labels"),
        (
            "{matrix: {rows: a, columns: b, ranks: 1}}",
            "report.matrix.ranks: expected true or false",
        ),
    ],
)
def test_report_section_is_checked_key_by_key(tiny_project, report, message):
    (tiny_project / "exp.yaml").write_text(EXPERIMENT + f"report: {report}\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(tiny_project / "exp.yaml")
    assert str(err.value).startswith(str(tiny_project / "exp.yaml")) and message in str(err.value)


def test_only_names_real_labels_and_dry_run_lists_just_them(tiny_project, monkeypatch, capsys):
    from tf4ctr.cli import main

    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    assert main(["grid", "exp.yaml", "--only", "Nope", "--no-progress"]) == 2
    assert "--only: 'Nope': no such cell label" in capsys.readouterr().err
    assert main(["grid", "exp.yaml", "--only", "DNN", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("DNN (seed" in line for line in lines)


def test_version_flag(capsys):
    from tf4ctr import __version__
    from tf4ctr.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"tf4ctr {__version__}"


def test_two_grids_share_the_cells_a_locked_cell_is_skipped(tiny_project, monkeypatch, capsys):
    from tf4ctr.rundir import RunLock, RunPaths

    monkeypatch.chdir(tiny_project)
    (tiny_project / "exp.yaml").write_text(EXPERIMENT)
    exp = load_experiment(tiny_project / "exp.yaml")
    first = exp.cells[0]
    busy = exp.runs_dir / f"{first.raw_config['name']}-{first.key}"
    lock = RunLock(RunPaths.for_run_dir(busy)).acquire()  # "another grid" trains this cell
    try:
        store = run_experiment(exp, progress=False)
    finally:
        lock.release()
    assert first.key not in store and len(store.records) == 3
    assert "1 cell(s) were being trained by another process" in capsys.readouterr().out
    store = run_experiment(load_experiment(tiny_project / "exp.yaml"), progress=False)
    assert len(store.records) == 4


def test_training_seconds_counts_the_epochs_of_a_resumed_cell():
    from tf4ctr.experiments.exp_cli import training_seconds

    epochs = [{"train_seconds": 100.0, "valid": {"seconds": 10.0}}] * 3
    # resumed: the last process ran one epoch (and the test), but the cell trained three
    assert training_seconds({"wall_seconds": 130.0, "history": epochs}) == 330.0
    # not resumed: the wall time (setup, test) is the larger
    assert training_seconds({"wall_seconds": 345.0, "history": epochs}) == 345.0
    assert training_seconds({"wall_seconds": 12.5}) == 12.5
