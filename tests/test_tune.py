"""tf4ctr tune: FuxiCTR's tuner format expanded as FuxiCTR would, bad tuner files as one line
before anything trains, and Optuna searches that survive SIGKILL and share a study between
processes without training anything twice. All on tiny data, one or two epochs a run."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, write_csv
from tf4ctr.cli import main

SRC = REPO / "src"

TINY_DATASET = """\
tiny:
  data_root: ./data/
  data_format: csv
  train_data: data/train.csv
  valid_data: data/valid.csv
  test_data: data/test.csv
  min_categr_count: 1
  feature_cols:
    - {name: [user, item, ctx], type: categorical, dtype: str}
  label_col: {name: label, dtype: float}
  group_col: user
"""

#: a base experiment written the way FuxiCTR's model_zoo configs are (Base + a template)
FUXICTR_MODEL_CONFIG = """\
Base:
    model_root: './checkpoints/'
    num_workers: 3
    verbose: 1
    early_stop_patience: 2
    pickle_feature_encoder: True
    save_best_only: True
    eval_steps: null
    debug_mode: False
    group_id: null
    use_features: null
    feature_specs: null
    feature_config: null

DNN_default:
    model: DNN
    dataset_id: TBD
    loss: 'binary_crossentropy'
    metrics: ['logloss', 'AUC']
    task: binary_classification
    optimizer: adam
    learning_rate: 1.0e-3
    embedding_regularizer: 0
    net_regularizer: 0
    batch_size: 512
    embedding_dim: 8
    hidden_units: [16]
    hidden_activations: relu
    net_dropout: 0
    batch_norm: False
    epochs: 1
    shuffle: True
    seed: 2023
    monitor: 'AUC'
    monitor_mode: 'max'
"""

#: a tuner file as FuxiCTR's documentation writes one (experiment/config/*_tuner_config.yaml)
FUXICTR_TUNER = """\
base_config: ./dnn_config/
base_expid: DNN_default
dataset_id: tiny

tuner_space:
    model_root: './checkpoints/'
    embedding_dim: 8
    hidden_units: [[16], [16, 16]]
    embedding_regularizer: [0, 1.e-4]
    net_dropout: [0, 0.1]
    learning_rate: 1.e-2
"""


@pytest.fixture
def fuxictr_project(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for name, n, seed in (("train", 1500, 0), ("valid", 500, 1), ("test", 500, 2)):
        write_csv(data / f"{name}.csv", n, seed)
    config = tmp_path / "dnn_config"
    config.mkdir()
    (config / "model_config.yaml").write_text(FUXICTR_MODEL_CONFIG)
    (config / "dataset_config.yaml").write_text(TINY_DATASET)
    (tmp_path / "tuner.yaml").write_text(FUXICTR_TUNER)
    return tmp_path


def _fuxictr_hash(settings: dict) -> str:
    # FuxiCTR: md5("".join(sorted(print_to_json(d)))) with print_to_json = json.dumps of the
    # values as strings, keys sorted, indent 4; the first 8 hex digits
    text = json.dumps({k: str(v) for k, v in sorted(settings.items())}, indent=4)
    return hashlib.md5("".join(sorted(text)).encode()).hexdigest()[:8]


def test_fuxictr_tuner_expands_to_fuxictrs_grid(fuxictr_project, monkeypatch):
    from tf4ctr.fileio import read_yaml
    from tf4ctr.tune.fuxictr import expand_tuner, to_run_config

    monkeypatch.chdir(fuxictr_project)
    path = fuxictr_project / "tuner.yaml"
    grid = expand_tuner(path, read_yaml(path))

    # By hand: the three listed settings in the order the merged model config lists them
    # (Base's keys, then DNN_default's: embedding_regularizer, hidden_units, net_dropout), the
    # last one varying fastest; scalars are one-value lists; learning_rate set to 1e-2.
    combos = [
        (0, [16], 0), (0, [16], 0.1), (0, [16, 16], 0), (0, [16, 16], 0.1),
        (1e-4, [16], 0), (1e-4, [16], 0.1), (1e-4, [16, 16], 0), (1e-4, [16, 16], 0.1),
    ]  # fmt: skip
    # a csv dataset gets a hashed id from its settings as written
    dataset_settings = read_yaml(fuxictr_project / "dnn_config" / "dataset_config.yaml")["tiny"]
    dataset_id = f"tiny_{_fuxictr_hash(dataset_settings)}"
    import yaml

    base = yaml.safe_load(FUXICTR_MODEL_CONFIG)
    expected = {}
    for i, (reg, units, dropout) in enumerate(combos, start=1):
        settings = {**base["Base"], **base["DNN_default"]}
        settings.update(embedding_regularizer=reg, hidden_units=units, net_dropout=dropout,
                        learning_rate=1e-2, dataset_id=dataset_id)  # fmt: skip
        # the template's dataset_id was TBD: it is renamed <model>_<dataset_id>
        expected[f"DNN_tiny_{i:03d}_{_fuxictr_hash(settings)}"] = settings
    assert list(grid) == list(expected)
    for expid, settings in expected.items():
        got = {k: v for k, v in grid[expid].items() if not k.startswith("_")}
        assert got == settings, expid

    run = to_run_config(path, "DNN_tiny_004", grid[list(grid)[3]])
    assert run["model"] == {"name": "dnn", "embedding_dim": 8, "hidden_units": [16, 16],
                            "activation": "relu", "dropout": 0.1, "batch_norm": False}  # fmt: skip
    assert run["train"] == {"monitor": "auc", "lr": 1e-2, "batch_size": 512, "epochs": 1,
                            "patience": 2, "seed": 2023}  # fmt: skip
    assert run["loss"] == {"name": "bce", "embedding_l2": 0}
    (data,) = run["dataset"].values()
    assert Path(data["train_data"]) == fuxictr_project / "data" / "train.csv"


@pytest.mark.parametrize(
    ("monitor", "mode", "expected"),
    [
        ("'AUC'", "'max'", "auc"),
        ("{'AUC': 1, 'gAUC': 1}", "'max'", "auc+gauc"),
        ("{'AUC': 1, 'logloss': -1}", "'max'", "auc-logloss"),  # FuxiCTR's Criteo configs
        ("'logloss'", "'min'", "logloss"),
        ("{'AUC': 1, 'logloss': -1}", "'min'", None),
        ("{'AUC': 2, 'logloss': -1}", "'max'", None),
    ],
)
def test_fuxictr_monitors_map_to_tf4ctrs(fuxictr_project, monkeypatch, capsys, monitor, mode,
                                         expected):  # fmt: skip
    from tf4ctr.fileio import read_yaml
    from tf4ctr.train import monitor_value
    from tf4ctr.tune.fuxictr import expand_tuner, to_run_config

    monkeypatch.chdir(fuxictr_project)
    model_config = fuxictr_project / "dnn_config" / "model_config.yaml"
    model_config.write_text(FUXICTR_MODEL_CONFIG.replace("monitor: 'AUC'", f"monitor: {monitor}")
                            .replace("monitor_mode: 'max'", f"monitor_mode: {mode}"))  # fmt: skip
    path = fuxictr_project / "tuner.yaml"
    if expected is None:
        assert main(["tune", str(path), "--dry-run", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "has no tf4ctr counterpart" in err, err
        return
    grid = expand_tuner(path, read_yaml(path))
    run = to_run_config(path, "DNN_tiny_001", grid[list(grid)[0]])
    assert run["train"]["monitor"] == expected
    # what FuxiCTR maximises, by hand, for AUC 0.8, gAUC 0.7, logloss 0.4
    by_hand = {"auc": 0.8, "auc+gauc": 1.5, "auc-logloss": 0.4, "logloss": -0.4}[expected]
    metrics = {"auc": 0.8, "gauc": 0.7, "logloss": 0.4}
    assert monitor_value(metrics, expected) == pytest.approx(by_hand)


def test_fuxictr_grid_runs_and_is_not_trained_twice(fuxictr_project, monkeypatch, capsys):
    monkeypatch.chdir(fuxictr_project)
    tuner = fuxictr_project / "small.yaml"
    tuner.write_text(FUXICTR_TUNER.replace("[[16], [16, 16]]", "[[16]]").replace(
        "[0, 1.e-4]", "0"))  # fmt: skip
    assert main(["tune", str(tuner), "--seeds", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    store = fuxictr_project / "small" / "results.jsonl"
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 2 and {r["label"][:12] for r in records} == {"DNN_tiny_001",
                                                                        "DNN_tiny_002"}  # fmt: skip
    assert "DNN_tiny_001" in out
    assert main(["tune", str(tuner), "--seeds", "0", "--no-progress"]) == 0
    assert len(store.read_text().splitlines()) == 2  # the second tune trained nothing


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("net_dropout: [0, 0.1]", "net_dropuot: [0, 0.1]"),
         r"tuner_space\.net_dropuot: not a setting of the base experiment 'DNN_default'"),
        (("net_dropout: [0, 0.1]", "net_dropout: []"),
         r"tuner_space\.net_dropout: an empty list leaves no experiment"),
        (("learning_rate: 1.e-2", "learning_rate: -1"), r"train\.lr: must be > 0"),
        (("dataset_id: tiny\n", "dataset_id: tiny\nsearch_space: {}\n"),
         r"search_space: unknown key"),
        (("base_expid: DNN_default", "base_expid: DNN_nope"),
         r"base_expid: no experiment 'DNN_nope'"),
        (("embedding_dim: 8", "embedding_dim: 8\n    optimizer: [sgd]"),
         r"optimizer: 'sgd' is not supported \(tf4ctr runs Adam\)"),
    ],
)  # fmt: skip
def test_bad_fuxictr_tuner_is_one_line_before_training(fuxictr_project, monkeypatch, capsys,
                                                       edit, message):  # fmt: skip
    monkeypatch.chdir(fuxictr_project)
    tuner = fuxictr_project / "tuner.yaml"
    assert edit[0] in FUXICTR_TUNER
    tuner.write_text(FUXICTR_TUNER.replace(*edit))
    assert main(["tune", str(tuner), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("tf4ctr: error: ") and "tuner.yaml" in err
    assert __import__("re").search(message, err), err
    assert not (fuxictr_project / "tuner").exists()  # nothing trained, no store, no runs


# -- searches --------------------------------------------------------------------------

SEARCH_RUN = """\
name: tiny-run
dataset: dataset.yaml
model: {name: dnn, embedding_dim: 8, hidden_units: [16], dropout: 0.1, batch_norm: false}
loss: {name: bce}
train: {batch_size: 1024, epochs: 2, lr: 1.0e-2, patience: 5, progress: false}
output_dir: runs
cache_dir: cache
"""

SEARCH = """\
name: tiny-search
base: run.yaml
n_trials: {n_trials}
seeds: 0
sampler: random
pruner: none
heartbeat_seconds: 1
space:
  train.lr: {{low: 1.0e-3, high: 3.0e-2, log: true}}
  model.dropout: {{low: 0.0, high: 0.3}}
  model.hidden_units: {{choices: [[16], [16, 16]]}}
"""


@pytest.fixture
def search_project(tiny_project: Path) -> Path:
    (tiny_project / "run.yaml").write_text(SEARCH_RUN)
    (tiny_project / "search.yaml").write_text(SEARCH.format(n_trials=3))
    # the encoded cache built once, before processes race to build it
    from tf4ctr.data import load_dataset_config, prepare_dataset

    prepare_dataset(load_dataset_config(tiny_project / "dataset.yaml"), tiny_project / "cache",
                    progress=False)  # fmt: skip
    return tiny_project


def _tune(project: Path, *args: str, helper: str | None = None, env: dict | None = None):
    command = [sys.executable, *(
        [str(REPO / "tests" / "helpers" / helper)] if helper else ["-m", "tf4ctr"]
    ), "tune", "search.yaml", "--no-progress", *args]  # fmt: skip
    environ = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.Popen(command, cwd=project, env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip


def _trials(project: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="tiny-search",
                              storage=f"sqlite:///{project / 'search' / 'study.db'}")  # fmt: skip
    return study.get_trials()


def _store_lines(project: Path) -> list[dict]:
    path = project / "search" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_killed_tune_resumes_without_rerunning_finished_trials(search_project):
    pytest.importorskip("optuna")
    # two epochs a trial: the third checkpoint is the second trial's first epoch
    killed = _tune(search_project, helper="kill_after_checkpoints.py",
                   env={"KILL_AFTER_CHECKPOINTS": "3"})  # fmt: skip
    out, _ = killed.communicate(timeout=120)
    assert killed.returncode == -9, out
    trials = _trials(search_project)
    assert [t.state.name for t in trials] == ["COMPLETE", "RUNNING"]
    first = _store_lines(search_project)
    assert len(first) == 1 and first[0]["key"] == trials[0].user_attrs["key"]
    first_metrics = search_project / "search" / first[0]["run_dir"] / "metrics.json"
    stamp = first_metrics.stat().st_mtime_ns

    again = _tune(search_project)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 0, out
    trials = _trials(search_project)
    ended = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(ended) == 3  # the budget, complete
    # the killed trial went stale, failed, and its settings were tried again, resuming its run
    assert trials[1].state.name == "FAIL"
    (retry,) = [t for t in ended if t.system_attrs.get("failed_trial") == 1]  # Optuna's mark
    assert retry.params == trials[1].params
    records = _store_lines(search_project)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == 3  # no trial trained twice
    assert first_metrics.stat().st_mtime_ns == stamp  # the finished trial was left alone
    resumed = next(r for r in records if r["key"] == retry.user_attrs["key"])
    metrics = json.loads(
        (search_project / "search" / resumed["run_dir"] / "metrics.json").read_text()
    )
    assert metrics["resumed_after_epoch"] == [1] and len(metrics["epochs"]) == 2


def test_two_processes_share_one_study_with_disjoint_trials(search_project):
    pytest.importorskip("optuna")
    (search_project / "search.yaml").write_text(SEARCH.format(n_trials=4))
    procs = [_tune(search_project) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    trials = [t for t in _trials(search_project) if t.state.name == "COMPLETE"]
    assert len(trials) == 4  # the budget over both processes, not 4 each
    by_worker: dict[str, list] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t)
    assert len(by_worker) == 2, by_worker  # both worked
    numbers = [{t.number for t in ts} for ts in by_worker.values()]
    assert not numbers[0] & numbers[1]
    trained = [{t.user_attrs["key"] for t in ts if not t.user_attrs["reused"]}
               for ts in by_worker.values()]  # fmt: skip
    assert not trained[0] & trained[1]  # no config trained by both
    keys = [r["key"] for r in _store_lines(search_project)]
    assert len(keys) == len(set(keys))


def test_trial_already_in_a_store_is_reused_and_report_is_written(search_project, monkeypatch):
    pytest.importorskip("optuna")
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(search_project)
    # a grid trained the base config already: the search's first trial (the base) reuses it
    (search_project / "grid.yaml").write_text(
        "name: grid\nbase: run.yaml\nstore: grid.jsonl\ncells:\n  - {label: base}\n"
    )
    assert main(["grid", "grid.yaml", "--no-progress"]) == 0
    text = SEARCH.format(n_trials=2).replace("seeds: 0", "seeds: 2\nreuse: [grid.jsonl]")
    (search_project / "search.yaml").write_text(text)
    assert main(["tune", "search.yaml", "--no-progress"]) == 0
    trials = _trials(search_project)
    assert trials[0].user_attrs["reused"] is True
    assert trials[0].params["train.lr"] == pytest.approx(1e-2)  # started from the base
    from tf4ctr.tune.search import closing_cells, load_tuner, open_study

    tune = load_tuner(search_project / "search.yaml")
    closing = closing_cells(tune, open_study(tune, create=False))
    assert sorted({c.label for c in closing}) == ["start", "tuned"] and len(closing) == 4
    keys = [r["key"] for r in _store_lines(search_project)]
    # every closing seed is stored, once; seed 2023 of each is a trial already (and when the
    # best trial is the base itself, the start's seeds are the tuned ones)
    assert {c.key for c in closing} <= set(keys) and len(keys) == len(set(keys))
    assert trials[0].user_attrs["key"] in keys
    assert main(["tune", "report", "search.yaml", "--output-dir", "rep"]) == 0
    report = (search_project / "rep" / "tiny-search.md").read_text()
    assert "| starting config | 2 / 2 |" in report and "Welch's t-test p = " in report
    for png in ("tiny-search_history.png", "tiny-search_importances.png"):
        assert (search_project / "rep" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # compare: the entry is the closing pair's higher mean validation AUC, by hand
    records = {r["key"]: r for r in _store_lines(search_project)}
    by = {
        label: [records[c.key] for c in closing if c.label == label] for label in ("start", "tuned")
    }
    valid = {k: sum(r["valid"]["auc"] for r in v) / 2 for k, v in by.items()}
    entry = "tuned" if valid["tuned"] > valid["start"] else "start"
    test_mean = sum(r["test"]["auc"] for r in by[entry]) / 2
    assert main(["tune", "compare", "search.yaml", "search.yaml", "--output", "cmp.md"]) == 0
    table = (search_project / "cmp.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| dnn |"))
    assert f"| {entry} | {test_mean:.4f} ± " in row
    assert "2 trials, random, none" in row
    (search_project / "none.yaml").write_text(text.replace("seeds: 2", "seeds: 0"))
    assert main(["tune", "compare", "search.yaml", "none.yaml"]) == 2
    assert main(["tune", "compare", "search.yaml"]) == 2


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("n_trials: 3", "n_trials: 0"), r"n_trials: expected an integer >= 1"),
        (("space:\n", "spaec: {}\nspace:\n"), r"spaec: unknown key"),
        (("space:\n  train.lr", "space: {}\nx:\n  train.lr"), r"x: unknown key"),
        (("model.dropout: {low: 0.0, high: 0.3}", "loss.alpha: {low: 0.1, high: 1.5}"),
         r"space\.loss\.alpha: 1\.5 is rejected: loss\.alpha: must be in \[0, 1\]"),
        (("model.dropout: {low: 0.0, high: 0.3}", "model.dropuot: {low: 0.0, high: 0.3}"),
         r"space\.model\.dropuot: 0\.0 is rejected: .*dropuot"),
        (("{low: 1.0e-3, high: 3.0e-2, log: true}", "{low: 0, high: 3.0e-2, log: true}"),
         r"space\.train\.lr\.log: a log scale needs low > 0"),
        (("{low: 0.0, high: 0.3}", "{low: 0.3, high: 0.3}"), r"space\.model\.dropout: expected low < high"),
        (("{choices: [[16], [16, 16]]}", "{choices: []}"),
         r"space\.model\.hidden_units\.choices: expected a non-empty list"),
        (("{low: 0.0, high: 0.3}", "{low: 0.0, hihg: 0.3}"), r"space\.model\.dropout\.hihg: unknown key"),
        (("pruner: none", "pruner: hyperband"), r"pruner: expected one of median, halving, none"),
    ],
)  # fmt: skip
def test_bad_search_file_is_one_line_before_training(search_project, monkeypatch, capsys,
                                                     edit, message):  # fmt: skip
    monkeypatch.chdir(search_project)
    text = SEARCH.format(n_trials=3)
    assert edit[0] in text
    (search_project / "search.yaml").write_text(text.replace(*edit))
    assert main(["tune", "search.yaml", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("tf4ctr: error: ") and "search.yaml" in err
    assert __import__("re").search(message, err), err
    assert not (search_project / "search").exists()  # no study, no store, no runs


def test_tuner_file_of_neither_kind_and_dry_run(search_project, monkeypatch, capsys):
    monkeypatch.chdir(search_project)
    (search_project / "odd.yaml").write_text("name: x\nbase: run.yaml\n")
    assert main(["tune", "odd.yaml"]) == 2
    assert "expected tuner_space (FuxiCTR's grid) or space (a search)" in capsys.readouterr().err
    assert main(["tune", "search.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 trials (random, pruner none) over 3 settings" in out
    assert "train.lr: 0.001 to 0.03 (log)" in out
    assert not (search_project / "search").exists()


def test_pruner_sees_each_epochs_validation_monitor(search_project, monkeypatch):
    """The pruner is asked after every epoch with that epoch's validation monitor; a pruned
    trial counts toward the budget, keeps its partial run resumable, and stores no result."""
    optuna = pytest.importorskip("optuna")
    from tf4ctr.rundir import RunPaths

    # a pruner that prunes everything it is asked about, in place of the file's (none)
    monkeypatch.setattr(optuna.pruners, "NopPruner", lambda: optuna.pruners.ThresholdPruner(
        lower=10.0))  # fmt: skip
    monkeypatch.chdir(search_project)
    (search_project / "search.yaml").write_text(SEARCH.format(n_trials=2))
    assert main(["tune", "search.yaml", "--no-progress", "--seeds", "2"]) == 0
    trials = _trials(search_project)
    assert [t.state.name for t in trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [1] for t in trials)  # stopped after epoch 1
    assert not _store_lines(search_project)  # no finished cell, and no closing seeds
    run_dir = search_project / "search" / "runs"
    partial = [p for p in run_dir.iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 2
    paths = RunPaths.for_run_dir(run_dir / partial[0].name[1 : -len(".partial")])
    assert paths.latest_checkpoint() is not None
    metrics = json.loads((partial[0] / "metrics.json").read_text())
    first = metrics["epochs"][0]["valid"]
    trial = next(t for t in trials if t.user_attrs["key"] in partial[0].name)
    assert trial.intermediate_values[1] == pytest.approx(first["auc"] + first["gauc"])


def test_the_studys_tuner_files_share_one_budget_and_start_from_stored_runs():
    """configs/tune/: the same budget, pruner and seeds for TF4CTR, CL4CTR and FinalMLP; each
    first trial is a config whose seed-2023 run a committed store already holds."""
    from tf4ctr.experiments.store import ResultStore
    from tf4ctr.tune.search import START, TRIAL, load_tuner, make_cell
    from tf4ctr.tune.spec import apply_params, base_params

    tunes = [load_tuner(REPO / "configs" / "tune" / f"frappe_x1_{m}.yaml")
             for m in ("tf4ctr", "cl4ctr", "finalmlp")]  # fmt: skip
    assert {(t.spec.n_trials, t.spec.pruner, t.spec.sampler, t.spec.seeds) for t in tunes} == {
        (60, "median", "tpe", 5)
    }
    shared = {"train.lr", "train.batch_size", "model.embedding_dim", "loss.embedding_l2"}
    for tune in tunes:
        keys = {d.key for d in tune.spec.space}
        assert shared <= keys and any("dropout" in k for k in keys)
        assert any("hidden_units" in k for k in keys)
        assert ({"loss.alpha", "loss.c", "loss.gamma"} <= keys) == ("tf4ctr" in tune.spec.name)
        assert set(base_params(tune.spec)) == keys  # the start lies in the space
        start = make_cell(START, 2023, tune.spec.base_raw, tune.spec.path)
        assert any(start.key in ResultStore(p) for p in tune.spec.reuse), tune.spec.name
        first = apply_params(tune.spec.base_raw, base_params(tune.spec))
        assert make_cell(TRIAL, 2023, first, tune.spec.path).key == start.key


def test_threads_per_trial_follow_the_flag_then_the_workers(search_project, monkeypatch, capsys):
    """--threads sets the torch threads of runs whose config leaves train.num_threads unset,
    for this process and the workers it starts (by the environment they inherit); with
    --workers N and no --threads, each process takes its share of the cores."""
    import argparse

    import torch

    from tf4ctr.run.setup import THREADS_ENV, configure_threads
    from tf4ctr.tune.tune_cli import _set_threads

    monkeypatch.delenv(THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    try:
        _set_threads(argparse.Namespace(threads=None, workers=1))
        assert THREADS_ENV not in os.environ
        cores = len(os.sched_getaffinity(0))
        _set_threads(argparse.Namespace(threads=None, workers=2))
        assert os.environ[THREADS_ENV] == str(max(1, cores // 2))
        _set_threads(argparse.Namespace(threads=1, workers=2))
        assert os.environ[THREADS_ENV] == "1"
        configure_threads(None)
        assert torch.get_num_threads() == 1
        configure_threads(2)  # a config's own train.num_threads wins
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        os.environ.pop(THREADS_ENV, None)
    monkeypatch.chdir(search_project)
    assert main(["tune", "search.yaml", "--threads", "0", "--dry-run"]) == 2
    assert "--threads: expected at least 1, got 0" in capsys.readouterr().err
