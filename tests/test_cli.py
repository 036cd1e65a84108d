"""End to end through the CLI: train → evaluate → predict, the demo, and every user error."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tf4ctr.cli import main
from tf4ctr.train.metrics import auc


def run_cli(*args: str) -> int:
    return main(list(args))


def test_train_evaluate_predict_round_trip(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml") == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    for name in ("config.yaml", "preprocessor.json", "model.pt", "metrics.json", "train.log"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(metrics["epochs"]) >= 1 and metrics["test"]["auc"] > 0.7
    assert {"auc", "gauc", "logloss"} <= set(metrics["test"])
    # the checkpoint is a plain state_dict that the safe loader accepts
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert not list((tiny_project / "runs").glob(".*partial*"))

    capsys.readouterr()
    assert run_cli("evaluate", str(run_dir), "--json") == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test"]["auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-9)
    assert evaluated["valid"]["gauc"] == pytest.approx(metrics["valid"]["gauc"], abs=1e-9)

    # predict from the run directory alone: raw rows, no label column
    rows = list(csv.reader((tiny_project / "test.csv").read_text().splitlines()))
    unlabelled = tiny_project / "score_me.csv"
    unlabelled.write_text("\n".join(",".join(r[1:]) for r in rows) + "\n")
    (tiny_project / "train.csv").unlink()  # not needed any more
    out = tiny_project / "scores.csv"
    assert run_cli("predict", str(run_dir), "--input", str(unlabelled), "--output", str(out)) == 0
    probs = np.array(
        [float(r["probability"]) for r in csv.DictReader(out.read_text().splitlines())]
    )
    labels = np.array([int(r[0]) for r in rows[1:]])
    assert probs.shape == labels.shape and ((probs > 0) & (probs < 1)).all()
    assert auc(labels, probs) == pytest.approx(metrics["test"]["auc"], abs=1e-6)


def test_existing_run_dir_needs_overwrite(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    capsys.readouterr()
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 2
    assert "already exists" in capsys.readouterr().err
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "--overwrite") == 0


def test_overrides_reach_the_model(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    assert (
        run_cli(
            "train",
            "--config",
            "run.yaml",
            "train.epochs=1",
            "name=dual",
            "model.name=dualmlp",
            "loss.name=bce",
            "model.simple_hidden_units=[8]",
        )
        == 0
    )
    cfg = (tiny_project / "runs" / "dual" / "config.yaml").read_text()
    assert "dualmlp" in cfg and "- 8" in cfg


def _error(capsys, *args):
    capsys.readouterr()
    code = run_cli(*args)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize(
    "mutate,overrides,expect",
    [
        (None, ["loss.c=1.5"], "loss.c: must be in [0, 1], got 1.5"),
        (None, ["train.bogus=1"], "train.bogus: unknown key"),
        (None, ["model.hidden=3"], "model.hidden: unknown key"),
        (None, ["model.name=nosuchnet"], "unknown model 'nosuchnet'"),
        (None, ["loss.gamma=-1"], "loss.gamma: must be >= 0"),
        (lambda p: (p / "test.csv").unlink(), [], "test.csv: file not found"),
        (lambda p: (p / "valid.csv").write_text(""), [], "valid.csv: file is empty"),
        (
            lambda p: _rewrite(p / "test.csv", 5, "1,u1,i2,3"),
            [],
            "test.csv: line 5: expected 5 fields, found 4",
        ),
        (lambda p: _rewrite(p / "test.csv", 7, "2,u1,i2,3,0.5"), [], "line 7"),
        (lambda p: _drop_column(p / "valid.csv", "ctx"), [], "missing column 'ctx'"),
        (
            lambda p: (p / "dataset.yaml").write_text(
                (p / "dataset.yaml").read_text().replace("min_categr_count", "min_cat_count")
            ),
            [],
            "min_cat_count",
        ),
    ],
    ids=[
        "c>1",
        "unknown-train-key",
        "unknown-model-key",
        "unknown-model",
        "gamma<0",
        "missing-file",
        "empty-file",
        "ragged-row",
        "label-not-binary",
        "missing-column",
        "unknown-dataset-key",
    ],
)
def test_user_errors_exit_2_with_one_line_and_leave_nothing(
    tiny_project, monkeypatch, capsys, mutate, overrides, expect
):
    monkeypatch.chdir(tiny_project)
    if mutate:
        mutate(tiny_project)
    code, err = _error(capsys, "train", "--config", "run.yaml", *overrides)
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert expect in err
    assert "Traceback" not in err
    assert not (tiny_project / "runs").exists() or not any((tiny_project / "runs").iterdir())
    cache = tiny_project / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def _rewrite(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _drop_column(path: Path, column: str) -> None:
    rows = list(csv.reader(path.read_text().splitlines()))
    idx = rows[0].index(column)
    path.write_text("\n".join(",".join(r[:idx] + r[idx + 1 :]) for r in rows) + "\n")


def test_missing_config_and_bad_yaml(tmp_path, capsys):
    code, err = _error(capsys, "train", "--config", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: file not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: [unclosed\n")
    code, err = _error(capsys, "train", "--config", str(bad))
    assert code == 2 and "bad.yaml" in err and "invalid YAML" in err


def test_evaluate_and_predict_errors(tmp_path, capsys):
    code, err = _error(capsys, "evaluate", str(tmp_path / "norun"))
    assert code == 2 and "run directory not found" in err
    code, err = _error(capsys, "predict", str(tmp_path), "--input", "x.csv", "--output", "y.csv")
    assert code == 2 and "config.yaml: missing" in err


def test_help_on_every_command():
    for cmd in (
        [],
        ["train"],
        ["evaluate"],
        ["predict"],
        ["demo"],
        ["models"],
        ["grid"],
        ["report"],
        ["data"],
        ["data", "list"],
        ["data", "info"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "tf4ctr.cli", *cmd, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0 and "usage: tf4ctr" in proc.stdout


def test_demo_end_to_end(tmp_path):
    """`tf4ctr demo` as a user runs it (one epoch to keep the suite fast)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tf4ctr.cli",
            "demo",
            "--epochs",
            "1",
            "--no-progress",
            "--output-dir",
            str(tmp_path / "runs"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SYNTHETIC" in proc.stdout
    for line in ("tf4ctr valid", "tf4ctr test", "dualmlp valid", "dualmlp test"):
        row = next(r for r in proc.stdout.splitlines() if r.startswith(line))
        auc_value, gauc_value, logloss_value = map(float, row.split()[2:5])
        assert 0.6 < auc_value <= 1 and 0.5 < gauc_value <= 1 and 0 < logloss_value < 1
    assert (tmp_path / "runs" / "demo-tf4ctr" / "model.pt").is_file()
    # what synthetic data can and cannot show is said on screen, with the real results' place
    assert "cannot show: which model is better" in proc.stdout
    assert "docs/REPRODUCTION.md" in proc.stdout


def test_train_records_difficulty_and_logit_gradients(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    code = run_cli(
        "train", "--config", "run.yaml", "train.epochs=2", "train.record_difficulty=true",
        "train.record_logit_grads=true", "model.name=tf4ctr", "loss.name=tf", "--no-progress",
    )  # fmt: skip
    assert code == 0
    (run_dir,) = [p for p in (tiny_project / "runs").iterdir() if p.is_dir()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    sizes = {"train": 3000, "valid": 800, "test": 800}
    for epoch in metrics["epochs"]:
        for split, n in sizes.items():
            counts = epoch["difficulty"][split]
            assert sum(sum(c.values()) for c in counts.values()) == n
    assert len(metrics["epochs"][0]["logit_grad_norms"]["z_s"]) > 0
    assert "logit_grad_norms" not in metrics["epochs"][1]


def test_predict_streams_blocks_to_csv_parquet_or_stdout(tiny_project, monkeypatch, capsys):
    import pyarrow.parquet as pq

    from tf4ctr import run

    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    whole = tiny_project / "whole.csv"
    assert run.predict(run_dir, "test.csv", whole) == 800
    # tiny blocks: the file is read and scored in many pieces, written as they come
    pieces = tiny_project / "pieces.parquet"
    assert run.predict(run_dir, "test.csv", pieces, block_bytes=2_000) == 800
    a = np.array([float(r["probability"]) for r in csv.DictReader(whole.read_text().splitlines())])
    b = pq.read_table(pieces)["probability"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)  # float32 sums over other batch shapes
    capsys.readouterr()
    assert run_cli("predict", str(run_dir), "--input", "test.csv", "--output", "-") == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == '"probability"' and len(out.splitlines()) == 801
    assert "wrote 800 predictions" in err and not (tiny_project / "-").exists()
    # evaluate reads in blocks too; its metrics equal the whole-file ones
    metrics = json.loads((run_dir / "metrics.json").read_text())
    blocked = run.evaluate(run_dir, block_bytes=2_000)
    for k in ("auc", "gauc", "logloss"):
        assert blocked["test"][k] == pytest.approx(metrics["test"][k], abs=1e-6)


def test_the_command_line_parser_loads_without_torch():
    """tf4ctr --help must not import torch (seconds); checked by what is imported, not by time."""
    code = (
        "import sys\n"
        "from tf4ctr.cli import build_parser\n"
        "build_parser()\n"
        "import tf4ctr, tf4ctr.data, tf4ctr.experiments\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_every_command_has_help_text_and_the_main_ones_examples():
    import argparse

    from tf4ctr.cli import build_parser

    missing, with_examples = [], set()

    def walk(parser, path):
        if parser.epilog and "examples:" in parser.epilog:
            with_examples.add(" ".join(path))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*path, name])
            elif not action.help and action.dest != "help":
                missing.append((" ".join(path), action.dest))

    walk(build_parser(), ["tf4ctr"])
    assert not missing, missing
    wanted = {"train", "evaluate", "predict", "grid", "reproduce", "report", "runs list"}
    assert {f"tf4ctr {c}" for c in wanted} <= with_examples


def test_a_duplicate_key_is_refused_with_its_file_and_line(tiny_project, capsys):
    """Last-wins would train with one of two values silently: run, dataset and experiment
    files all refuse it, naming the second occurrence."""
    run = tiny_project / "run.yaml"
    good = run.read_text()
    run.write_text(good.replace("output_dir: runs", "output_dir: runs\nname: again"))
    line = run.read_text().splitlines().index("name: again") + 1
    code, err = _error(capsys, "train", "--config", str(run))
    assert code == 2 and "Traceback" not in err
    assert f"run.yaml: line {line}: duplicate key 'name'" in err and len(err.splitlines()) == 1

    nested = tiny_project / "nested.yaml"
    nested.write_text("dataset: dataset.yaml\nmodel: dnn\ntrain:\n  lr: 0.01\n  lr: 0.1\n")
    code, err = _error(capsys, "train", "--config", str(nested))
    assert code == 2 and "nested.yaml: line 5: duplicate key 'lr'" in err

    run.write_text(good)
    dataset = tiny_project / "dataset.yaml"
    text = dataset.read_text().replace(
        "  group_col: user", "  group_col: user\n  min_categr_count: 2"
    )
    dataset.write_text(text)
    line = dataset.read_text().splitlines().index("  min_categr_count: 2") + 1
    code, err = _error(capsys, "train", "--config", str(tiny_project / "run.yaml"), "name=ok")
    assert code == 2 and f"dataset.yaml: line {line}: duplicate key 'min_categr_count'" in err


def test_a_duplicate_key_in_an_experiment_file_is_refused(tiny_project):
    from tf4ctr.errors import ConfigError
    from tf4ctr.experiments import load_experiment

    exp = tiny_project / "exp.yaml"
    exp.write_text("name: x\nbase: run.yaml\ncells:\n  - {label: A, label: B}\n")
    with pytest.raises(ConfigError, match=r"exp.yaml: line 4: duplicate key 'label'"):
        load_experiment(exp)
