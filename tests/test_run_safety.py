"""Runs you can trust: confined run directories, one writer, exact resume, no silent NaN.

Each case of issue 13 has a test here. The signal tests send the signal from inside the
training process right after epoch K's checkpoint (tests/helpers/stop_after_epoch.py), so
none of them depends on timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tf4ctr.cli import main
from tf4ctr.rundir import MARKER, RunLock, RunPaths, clean_partial_runs, list_runs

REPO = Path(__file__).resolve().parents[1]
STOPPER = REPO / "tests" / "helpers" / "stop_after_epoch.py"


def run_cli(*args: str) -> int:
    return main(list(args))


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _sigint(disposition):
    """For the child before exec: SIGINT at ``disposition``, whatever this process inherited.
    A suite started with `&` or nohup from a non-interactive shell inherits SIGINT ignored,
    and exec keeps an ignored signal ignored."""
    return lambda: signal.signal(signal.SIGINT, disposition)


def _subprocess(
    cwd: Path,
    *args: str,
    stop_after: int | None = None,
    sig: str = "KILL",
    sigint=signal.SIG_DFL,
):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if stop_after is None:
        cmd = [sys.executable, "-m", "tf4ctr", *args]
    else:
        cmd = [sys.executable, str(STOPPER), *args]
        env.update(STOP_AFTER_EPOCH=str(stop_after), STOP_SIGNAL=sig)
    return subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_sigint(sigint),
    )


def _test_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())["test"]


LONGER = ["train.epochs=6", "train.patience=3", "train.num_threads=1", "--no-progress"]


# -- run names and removal -------------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../escape", ""])
def test_a_run_name_is_one_folder_name(tiny_project, monkeypatch, capsys, name):
    monkeypatch.chdir(tiny_project)
    before = _tree(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "--overwrite", f"name={name}") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"command line (name={name})" in err
    assert _tree(tiny_project) == before  # nothing written, nothing removed, no cache built


def test_name_in_the_file_is_blamed_on_the_file(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    text = (tiny_project / "run.yaml").read_text().replace("name: tiny-run", "name: ..")
    (tiny_project / "run.yaml").write_text(text)
    assert run_cli("train", "--config", "run.yaml") == 2
    assert f"{tiny_project / 'run.yaml'}: name:" in capsys.readouterr().err


def test_absolute_output_dir_and_dotdot_removes_nothing(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    y = tiny_project / "x" / "y"
    (y / "runs").mkdir(parents=True)
    (y / "precious.txt").write_text("keep me")
    text = (tiny_project / "run.yaml").read_text()
    (tiny_project / "run.yaml").write_text(
        text.replace("output_dir: runs", f"output_dir: {y}/runs")
    )
    assert run_cli("train", "--config", "run.yaml", "--overwrite", "name=..") == 2
    assert (y / "precious.txt").read_text() == "keep me"


def test_overwrite_refuses_a_folder_tf4ctr_did_not_mark(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    mine = tiny_project / "runs" / "tiny-run"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("my own notes")
    assert run_cli("train", "--config", "run.yaml", "--overwrite", "train.epochs=1") == 2
    err = capsys.readouterr().err
    assert "not a tf4ctr run directory" in err and "refusing to remove" in err
    assert (mine / "notes.txt").read_text() == "my own notes"


def test_overwrite_replaces_marked_and_old_style_runs(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    assert (run_dir / MARKER).is_file()
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "--overwrite") == 0
    # a run written before the marker existed holds only a run's files: recognised as one
    # (and no optimizer.pt, born 2026-12-07 with the marker long in place)
    (run_dir / MARKER).unlink()
    (run_dir / "optimizer.pt").unlink()
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "--overwrite") == 0
    assert (run_dir / MARKER).is_file()


def test_a_link_at_the_run_name_is_refused(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    victim = tiny_project / "elsewhere"
    victim.mkdir()
    (victim / "data.txt").write_text("x")
    (tiny_project / "runs").mkdir()
    (tiny_project / "runs" / "tiny-run").symlink_to(victim)
    assert run_cli("train", "--config", "run.yaml", "--overwrite") == 2
    assert "symbolic link" in capsys.readouterr().err
    assert (victim / "data.txt").exists()


# -- one writer per run ----------------------------------------------------------------


def test_second_writer_is_refused_with_the_holders_pid(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    lock = RunLock(RunPaths.create("runs", "tiny-run")).acquire()
    try:
        assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 2
        err = capsys.readouterr().err
        assert f"run tiny-run is being written by process {os.getpid()}" in err
    finally:
        lock.release()
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    assert not (tiny_project / "runs" / ".tiny-run.lock").exists()  # released and removed


def test_a_dead_writers_lock_is_free(tmp_path):
    code = (
        "import os, signal, sys\n"
        "from tf4ctr.rundir import RunLock, RunPaths\n"
        f"RunLock(RunPaths.create({str(tmp_path)!r}, 'r')).acquire()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / ".r.lock").exists()  # the file stays, the lock does not
    with RunLock(RunPaths.create(tmp_path, "r")):
        pass


# -- checkpoints and resume ------------------------------------------------------------


@pytest.fixture
def uninterrupted(tiny_project) -> dict:
    """Test metrics of the run that the resume tests interrupt, trained in one go."""
    proc = _subprocess(tiny_project, "train", "--config", "run.yaml", "name=whole", *LONGER)
    assert proc.returncode == 0, proc.stderr
    return _test_metrics(tiny_project / "runs" / "whole")


def test_train_stops_on_sigint_even_when_it_inherits_sigint_ignored(tiny_project):
    """`tf4ctr train` says what SIGINT means (stop, keep the checkpoints, exit 130) instead of
    inheriting "ignored" from a background job's shell."""
    proc = _subprocess(
        tiny_project,
        *("train", "--config", "run.yaml", *LONGER),
        stop_after=1,
        sig="INT",
        sigint=signal.SIG_IGN,
    )
    assert proc.returncode == 130, proc.stderr
    assert "stopped during epoch 2" in proc.stderr and "--resume" in proc.stderr


@pytest.mark.parametrize(("sig", "code"), [("KILL", -signal.SIGKILL), ("INT", 130), ("TERM", 143)])
def test_killed_run_resumes_to_identical_metrics(tiny_project, uninterrupted, sig, code):
    proc = _subprocess(
        tiny_project, "train", "--config", "run.yaml", *LONGER, stop_after=2, sig=sig
    )
    assert proc.returncode == code, proc.stderr
    partial = tiny_project / "runs" / ".tiny-run.partial"
    assert (partial / "checkpoint-epoch2.pt").is_file()
    assert not (tiny_project / "runs" / "tiny-run").exists()
    if sig != "KILL":
        err = proc.stderr
        assert "stopped during epoch 3; epochs 1-2 are kept" in err
        assert "resume with: tf4ctr train --config run.yaml" in err and "--resume" in err
    # a plain rerun does not silently start over
    again = _subprocess(tiny_project, "train", "--config", "run.yaml", *LONGER)
    assert again.returncode == 2 and "continue it with --resume" in again.stderr
    resumed = _subprocess(tiny_project, "train", "--config", "run.yaml", *LONGER, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    run_dir = tiny_project / "runs" / "tiny-run"
    assert _test_metrics(run_dir) | {"seconds": 0} == uninterrupted | {"seconds": 0}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["resumed_after_epoch"] == [2] and len(metrics["epochs"]) >= 3
    assert not partial.exists() and not list(run_dir.glob("checkpoint*"))


def test_resume_refuses_a_changed_config_naming_the_key(tiny_project, monkeypatch, capsys):
    proc = _subprocess(tiny_project, "train", "--config", "run.yaml", *LONGER, stop_after=1)
    assert proc.returncode == -signal.SIGKILL
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", *LONGER, "train.lr=0.5", "--resume") == 2
    err = capsys.readouterr().err
    assert err.startswith("tf4ctr: error: train.lr: 0.01 in the interrupted run tiny-run, 0.5")
    # the same data through another path (here a link) is the same data
    (tiny_project / "link").symlink_to(tiny_project, target_is_directory=True)
    dataset = tiny_project / "dataset.yaml"
    dataset.write_text(
        dataset.read_text().replace("train_data: train.csv", "train_data: link/train.csv")
    )
    # threads and progress bars change nothing a run computes
    assert run_cli("train", "--config", "run.yaml", *LONGER[:-2], "--resume") == 0


def test_resume_with_nothing_to_resume(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "--resume") == 2
    assert "no interrupted run tiny-run to resume" in capsys.readouterr().err
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "--resume") == 2
    assert "is finished; nothing to resume" in capsys.readouterr().err
    assert run_cli("train", "--config", "run.yaml", "--resume", "--overwrite") == 2


def test_resume_in_process_equals_one_fit(tiny_project, monkeypatch):
    """The Trainer alone: fit 2 epochs, checkpoint, fit on from a fresh trainer == fit 4.

    With sparse_embedding, so the lazy row-wise Adam's state is part of the round trip.
    """
    import copy

    from tf4ctr import run
    from tf4ctr.config import load_run_config
    from tf4ctr.data import BatchLoader, prepare_dataset
    from tf4ctr.models import build_model
    from tf4ctr.train.trainer import Trainer

    monkeypatch.chdir(tiny_project)
    cfg = load_run_config("run.yaml", ["train.sparse_embedding=true", "train.patience=5"])
    data = prepare_dataset(run.resolve_dataset(cfg), Path(cfg.cache_dir), progress=False)

    def trainer() -> Trainer:
        run.seed_everything(cfg.train.seed)
        options = run.layer_options(cfg.train)
        model = build_model(cfg.model_name, data.schema, layer_options=options, **cfg.model_hparams)
        return Trainer(model, run.build_objective(cfg.loss), cfg.train)

    def loaders():
        return BatchLoader(data.train, 256, shuffle=True, seed=1), BatchLoader(data.valid, 4096)

    whole = trainer().fit(*loaders())
    saved = {}

    def keep(ck):
        if ck["fit"]["epoch"] == 2:
            saved.update(copy.deepcopy(ck))

    first = trainer()
    first.fit(*loaders(), on_checkpoint=keep)
    second = trainer()
    state = second.load_checkpoint(saved)
    assert len(second.optimizers) == 2 and state.epoch == 2
    resumed = second.fit(*loaders(), state=state)
    losses = [r["train_total_loss"] for r in whole.history]
    assert [r["train_total_loss"] for r in resumed.history] == losses
    assert resumed.best_epoch == whole.best_epoch


def test_grid_cell_resumes_from_its_checkpoint(tiny_project):
    experiment = """\
name: resume_grid
base: run.yaml
seeds: [1]
store: results/resume_grid.jsonl
runs_dir: runs/resume_grid
cells:
  - {label: TF4CTR, train.epochs: 5, train.patience: 3, train.num_threads: 1}
"""
    (tiny_project / "exp.yaml").write_text(experiment)
    whole = tiny_project / "whole.yaml"
    whole.write_text(experiment.replace("resume_grid", "whole_grid"))
    proc = _subprocess(tiny_project, "grid", "whole.yaml", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    proc = _subprocess(tiny_project, "grid", "exp.yaml", "--no-progress", stop_after=2, sig="TERM")
    assert proc.returncode == 143
    assert "resume with: tf4ctr grid exp.yaml --no-progress" in proc.stderr
    proc = _subprocess(tiny_project, "grid", "exp.yaml", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "resuming its interrupted run" in proc.stdout + proc.stderr

    def test_metrics(name):
        lines = (tiny_project / "results" / f"{name}.jsonl").read_text().splitlines()
        return {k: v for k, v in json.loads(lines[-1])["test"].items() if k != "seconds"}

    assert test_metrics("resume_grid") == test_metrics("whole_grid")


def test_runs_list_and_clean(tiny_project, monkeypatch, capsys):
    proc = _subprocess(tiny_project, "train", "--config", "run.yaml", *LONGER, stop_after=1)
    assert proc.returncode == -signal.SIGKILL
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "name=done", "train.epochs=1") == 0
    runs = tiny_project / "runs"
    stale = runs / ".old.partial-999999999"  # tf4ctr 0.1 left these behind; that pid is dead
    stale.mkdir()
    (stale / "train.log").write_text("")
    foreign = runs / ".mine.partial"  # not marked by tf4ctr: never touched
    foreign.mkdir()
    (foreign / "x").write_text("")
    capsys.readouterr()
    assert run_cli("runs", "list") == 0
    out = capsys.readouterr().out
    assert "partial   tiny-run" in out and "1 epoch(s) saved" in out
    assert "finished  done" in out and "stale     old" in out and "mine" not in out

    states = {s.name: s.state for s in list_runs(runs)}
    lock = RunLock(RunPaths.create(runs, "tiny-run")).acquire()
    try:
        assert {s.name: s.state for s in list_runs(runs)}["tiny-run"] == "writing"
        assert clean_partial_runs(runs) == [stale]  # a run being written is not removed
    finally:
        lock.release()
    assert states == {"done": "finished", "old": "stale", "tiny-run": "partial"}
    assert run_cli("runs", "clean") == 0
    assert not (runs / ".tiny-run.partial").exists() and (runs / "done").is_dir()
    assert (foreign / "x").exists()


# -- non-finite numbers ----------------------------------------------------------------


def _put(path: Path, row: int, column: str, value: str) -> int:
    """Write ``value`` into ``column`` of data row ``row``; returns its line number."""
    lines = path.read_text().splitlines()
    j = lines[0].split(",").index(column)
    cells = lines[row].split(",")
    cells[j] = value
    lines[row] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return row + 1


@pytest.mark.parametrize("value", ["inf", "-inf", "1e308", "-Infinity"])
@pytest.mark.parametrize("split", ["train", "valid"])
def test_non_finite_input_is_an_error_naming_file_line_column(
    tiny_project, monkeypatch, capsys, value, split
):
    monkeypatch.chdir(tiny_project)
    line = _put(tiny_project / f"{split}.csv", 7, "price", value)
    assert run_cli("train", "--config", "run.yaml") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{split}.csv: line {line}: column 'price' holds" in err and "non_finite" in err
    assert not (tiny_project / "runs").exists()
    assert not [p for p in (tiny_project / "cache").iterdir()]  # no half-built cache


def test_non_finite_missing_and_clip_are_applied_and_counted(tiny_project, monkeypatch, caplog):
    monkeypatch.chdir(tiny_project)
    _put(tiny_project / "train.csv", 7, "price", "inf")
    _put(tiny_project / "train.csv", 9, "price", "-1e300")
    text = (
        (tiny_project / "dataset.yaml")
        .read_text()
        .replace("tiny:\n", "tiny:\n  non_finite: missing\n")
    )
    (tiny_project / "dataset.yaml").write_text(text)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    assert "2 value(s) of column 'price' were infinite" in caplog.text
    assert "treated as missing" in caplog.text


def test_predict_on_non_finite_input_is_an_error(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    _put(tiny_project / "test.csv", 3, "price", "inf")
    capsys.readouterr()
    out = tiny_project / "scores.csv"
    assert run_cli("predict", "runs/tiny-run", "--input", "test.csv", "--output", str(out)) == 2
    assert "test.csv: line 4: column 'price' holds inf" in capsys.readouterr().err
    assert not out.exists()
    assert run_cli("evaluate", "runs/tiny-run", "--data", "test.csv") == 2


def test_huge_but_finite_input_stops_training_with_a_clear_error(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    _put(tiny_project / "train.csv", 7, "price", "1e38")
    assert run_cli("train", "--config", "run.yaml") == 2
    err = capsys.readouterr().err
    # the loss, a gradient, or (batch norm hides the value from the loss) a running variance
    assert "tf4ctr: error: training diverged:" in err and "epoch 1" in err
    assert "numeric columns" in err
    runs = tiny_project / "runs"
    assert not (runs / "tiny-run").exists() and not list(runs.glob(".*partial*"))


def test_a_diverged_but_finite_model_is_flagged(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    code = run_cli("train", "--config", "run.yaml", "train.lr=100", "train.epochs=2")
    err = capsys.readouterr().err
    if code == 2:  # the loss or a gradient left float32's range
        assert "tf4ctr: error: training diverged:" in err
    else:
        metrics = json.loads((tiny_project / "runs" / "tiny-run" / "metrics.json").read_text())
        assert any("diverged" in w or "chance" in w for w in metrics["warnings"])
        assert "warning:" in err


def _epochs(*losses: float) -> list[dict]:
    return [
        {"epoch": i, "train_ctr_loss": x, "train_total_loss": x + 0.01}
        for i, x in enumerate(losses, 1)
    ]


def test_overfitting_is_not_called_divergence():
    """Issue 30.6: a DNN on MovieLens-100K, training log loss falling to 0.53, valid 0.73."""
    from tf4ctr.run.training import quality_warnings

    labels = np.array([1] * 55 + [0] * 45)  # base rate 0.55: log loss 0.6881 (by hand)
    metrics = {"valid": {"auc": 0.68, "logloss": 0.73}, "epochs": _epochs(0.66, 0.58, 0.53)}
    (warning,) = quality_warnings(metrics, labels, 1e-3, train_labels=labels, steps_per_epoch=8)
    assert "0.73 is worse than always predicting the click rate (0.6881)" in warning
    assert "fell to 0.53, below the training click rate's 0.6881" in warning
    assert "still ranks (valid AUC 0.6800)" in warning and "overfitting" in warning
    assert "not divergence" in warning and "(8 steps an epoch now)" in warning
    assert "lower train.lr" not in warning
    metrics["valid"]["auc"] = 0.52  # memorised, ranks no better than a coin on valid
    (warning,) = quality_warnings(metrics, labels, 1e-3, train_labels=labels)
    assert "nothing that carries over: overfitting" in warning


@pytest.mark.parametrize(
    ("losses", "trend"),
    [
        ((0.69, 0.9, 3.2), "the training log loss rose from 0.69 to 3.2"),
        ((0.70, 0.695), "never fell below the click rate's 0.6881"),
    ],
)
def test_a_run_that_did_not_learn_is_called_diverged(losses, trend):
    from tf4ctr.run.training import quality_warnings

    labels = np.array([1] * 55 + [0] * 45)
    metrics = {"valid": {"auc": 0.5, "logloss": 0.9}, "epochs": _epochs(*losses)}
    warnings = quality_warnings(metrics, labels, 0.5, train_labels=labels)
    assert (
        trend in warnings[0]
        and "training probably diverged; try a lower train.lr (now 0.5)" in warnings[0]
    )
    assert warnings[1] == "valid AUC 0.5000 is no better than chance"


def test_trainer_names_epoch_and_step_of_a_non_finite_loss():
    import torch

    from tf4ctr.config import TrainConfig
    from tf4ctr.framework import Objective
    from tf4ctr.nn import ModelOutput
    from tf4ctr.train.trainer import Trainer, TrainingDiverged

    class Blows(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            scale = float("inf") if self.calls == 3 else 1.0
            return ModelOutput(self.w * x.numeric[:, 0] * scale)

    class Batch:
        categorical = torch.zeros(4, 0, dtype=torch.long)
        numeric = torch.ones(4, 1)
        label = torch.tensor([0.0, 1.0, 0.0, 1.0])

    model = Blows()
    trainer = Trainer(model, Objective(), TrainConfig(progress=False, clip_grad_norm=0.0))
    with pytest.raises(TrainingDiverged, match="at epoch 1, step 3"):
        trainer.train_epoch([Batch()] * 5)
    assert torch.isfinite(model.w).all()  # the step that saw inf was not applied


# -- the config is checked before any data is touched ----------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.simple_hidden_units=[0]",
            "model.simple_hidden_units: expected a list of layer sizes",
        ),
        ("train.lr=1e300", "train.lr: expected a finite number"),
        ("train.lr=.inf", "train.lr: expected a finite number"),
        ("train.lr=1e38", "train.lr: 1e+38 is too large: adam's first step"),
        (
            "model.complex_hidden_units=[1000000,1000000]",
            "model (tf4ctr): 1,000,039,000,480 parameters need about 14,901.7 gb to train",
        ),
        ("model.embedding_dim=0", "model.embedding_dim: expected an integer >= 1"),
        ("model.dropout=1.5", "model.dropout: must be in [0, 1)"),
        ("model.ssem=nope", "model (tf4ctr): unknown ssem"),
        ("model.batch_norm=3", "model.batch_norm: expected true or false"),
        ("train.num_threads=0", "train.num_threads: must be > 0"),
        ("train.bogus=1", "train.bogus: unknown key"),
    ],
)
def test_config_errors_name_key_and_origin_before_data(
    tiny_project, monkeypatch, capsys, override, message
):
    monkeypatch.chdir(tiny_project)
    # the data files are not even read: the check comes first
    for split in ("train", "valid", "test"):
        (tiny_project / f"{split}.csv").write_text("garbage\n")
    assert run_cli("train", "--config", "run.yaml", override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.lower() in err.lower(), err
    assert f"command line ({override})" in err
    assert not (tiny_project / "cache").exists() and not (tiny_project / "runs").exists()


@pytest.mark.parametrize("key", ["output_dir", "cache_dir"])
def test_a_file_where_a_folder_must_be_is_one_line(tiny_project, monkeypatch, capsys, key):
    monkeypatch.chdir(tiny_project)
    (tiny_project / "taken").write_text("a file of the user's\n")
    for value in ("taken", "taken/below"):
        assert run_cli("train", "--config", "run.yaml", f"{key}={value}", "--no-progress") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"tf4ctr: error: {key}: "), err
        assert "taken is a file, expected a folder" in err, err
    assert (tiny_project / "taken").read_text() == "a file of the user's\n"


def test_a_model_is_refused_by_its_size_before_a_byte_is_allocated():
    from tests.models.conftest import TINY
    from tf4ctr.errors import ConfigError
    from tf4ctr.models import build_model
    from tf4ctr.run.capacity import BYTES_PER_PARAMETER, require_fits

    def build():
        return build_model("dnn", TINY, embedding_dim=4, hidden_units=[8])

    real = sum(p.numel() for p in build().parameters())
    needed = real * BYTES_PER_PARAMETER
    assert require_fits(build, what="model (dnn)", free=needed) == real  # just fits
    with pytest.raises(ConfigError, match=rf"model \(dnn\): {real:,} parameters need"):
        require_fits(build, what="model (dnn)", free=needed - 1)


def test_config_error_in_the_file_names_the_file(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    text = (tiny_project / "run.yaml").read_text().replace("embedding_dim: 8", "embedding_dim: 0")
    (tiny_project / "run.yaml").write_text(text)
    assert run_cli("train", "--config", "run.yaml") == 2
    err = capsys.readouterr().err
    assert f"{tiny_project / 'run.yaml'}: model.embedding_dim: expected an integer >= 1" in err


# -- caches heal -----------------------------------------------------------------------


def test_cache_without_meta_is_rebuilt(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    (meta,) = (tiny_project / "cache").glob("*/meta.json")
    meta.unlink()
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "name=again") == 0
    assert meta.is_file()


def test_cache_folder_with_foreign_files_is_not_removed(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    (folder,) = (tiny_project / "cache").glob("tiny-*")
    (folder / "meta.json").unlink()
    (folder / "mine.txt").write_text("mine")
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "name=b") == 2
    assert "is not a tf4ctr cache" in capsys.readouterr().err
    assert (folder / "mine.txt").exists()


def test_builds_of_dead_processes_are_removed_live_ones_kept(tiny_project, monkeypatch):
    import fcntl

    monkeypatch.chdir(tiny_project)
    cache = tiny_project / "cache"
    dead, alive, old_style = (cache / f".tmp-tiny-{n}" for n in ("dead", "alive", "old"))
    for d in (dead, alive, old_style):
        d.mkdir(parents=True)
        (d / "train").mkdir()
    (dead / ".build.lock").write_text("")
    (alive / ".build.lock").write_text("")
    fd = os.open(alive / ".build.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a build in progress in "another process"
    try:
        assert run_cli("data", "prepare", "dataset.yaml", "--cache-dir", "cache") == 0
    finally:
        os.close(fd)
    assert not dead.exists() and alive.exists()
    assert old_style.exists()  # no lock: removed by age only (a day), as before
    assert not list(cache.glob("tiny-*/.build.lock"))


def test_killed_prepare_leaves_a_folder_the_next_prepare_removes(tiny_project):
    from tests.conftest import write_csv

    write_csv(tiny_project / "train.csv", 200_000, 0)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "tf4ctr", "data", "prepare", "dataset.yaml", "--cache-dir", "c"]
    code = (
        "import os, signal, sys\n"
        "import tf4ctr.data.cache_files as cache_files\n"
        "real = cache_files.SplitWriter.append\n"
        "def append(self, split):\n"
        "    real(self, split)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "cache_files.SplitWriter.append = append\n"
        "from tf4ctr.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code, *cmd[3:]], cwd=tiny_project, env=env, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(list((tiny_project / "c").glob(".tmp-*"))) == 1
    done = subprocess.run(cmd, cwd=tiny_project, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0
    assert list((tiny_project / "c").glob(".tmp-*")) == []


# -- every reader error is one line ----------------------------------------------------

BAD_INPUTS = {
    "cr_in_header": lambda h, rows: (h + "\r,extra", [r + ",x" for r in rows]),
    "missing_column": lambda h, rows: (h.replace("price", "cost"), rows),
    "ragged": lambda h, rows: (h, [rows[0] + ",1,2", *rows[1:]]),
    "text_in_number": lambda h, rows: (h, [rows[0].rsplit(",", 1)[0] + ",cheap", *rows[1:]]),
    "unclosed_quote": lambda h, rows: (h, ['"' + rows[0], *rows[1:]]),
    "duplicate_column": lambda h, rows: (h + ",price", [r + ",1" for r in rows]),
    "header_only": lambda h, rows: (h, []),
    "bad_label": lambda h, rows: (h, ["7" + rows[0][1:], *rows[1:]]),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_every_reader_error_is_one_line_exit_2(tiny_project, monkeypatch, capsys, case):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    header, *rows = (tiny_project / "test.csv").read_text().splitlines()
    header, rows = BAD_INPUTS[case](header, rows[:50])
    (tiny_project / "bad.csv").write_text("\n".join([header, *rows]) + "\n")
    (tiny_project / "empty.csv").write_bytes(b"")
    (tiny_project / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (tiny_project / "binary.csv.gz").write_bytes(bytes(range(256)) * 4)
    (tiny_project / "binary.parquet").write_bytes(bytes(range(256)) * 4)
    inputs = ["bad.csv", "empty.csv", "binary.csv", "binary.csv.gz", "binary.parquet", "nope.csv"]
    for path in inputs:
        capsys.readouterr()
        for args in (
            ("predict", "runs/tiny-run", "--input", path, "--output", "out.csv"),
            ("evaluate", "runs/tiny-run", "--data", path),
        ):
            code = run_cli(*args)
            err = capsys.readouterr().err
            if code == 0:  # a label-free input scores fine; a labelled one must be valid
                assert args[0] == "predict" and case in ("bad_label", "missing_column"), case
                continue
            assert code == 2, (case, path, args[0], err)
            assert err.count("\n") == 1 and err.startswith("tf4ctr: error:"), err
    assert not list(tiny_project.glob(".out.csv.tmp-*"))


def test_single_class_split_is_an_error_and_undefined_gauc_is_null(
    tiny_project, monkeypatch, capsys
):
    monkeypatch.chdir(tiny_project)
    valid = tiny_project / "valid.csv"
    original = valid.read_text()
    header, *rows = original.splitlines()
    valid.write_text("\n".join([header, *("0" + r[1:] for r in rows)]) + "\n")
    assert run_cli("train", "--config", "run.yaml") == 2
    err = capsys.readouterr().err
    assert "valid.csv: every one of its 800 labels is 0" in err
    # one row per user: AUC is defined, gAUC is not (no user has both labels)
    valid.write_text("\n".join([header, "1,u1,i1,0,0.5", "0,u2,i1,0,0.5"]) + "\n")
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    text = (tiny_project / "runs" / "tiny-run" / "metrics.json").read_text()
    metrics = json.loads(text)
    assert metrics["valid"]["gauc"] is None and "NaN" not in text
    assert any("gauc is undefined on valid" in w for w in metrics["warnings"])


def test_damaged_run_files_are_one_line_errors(tiny_project, monkeypatch, capsys):
    monkeypatch.chdir(tiny_project)
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1") == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    for name, junk in (
        ("model.pt", b"junk"),
        ("preprocessor.json", b"{"),
        ("config.yaml", b"x: ["),
    ):
        good = (run_dir / name).read_bytes()
        (run_dir / name).write_bytes(junk)
        capsys.readouterr()
        assert run_cli("evaluate", str(run_dir)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{run_dir / name}:" in err, err
        (run_dir / name).write_bytes(good)


def test_device_choice(tiny_project, monkeypatch, capsys):
    import torch

    from tf4ctr.train.device import resolve_device

    monkeypatch.chdir(tiny_project)
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        assert run_cli("train", "--config", "run.yaml", "train.device=cuda") == 2
        err = capsys.readouterr().err
        assert "command line (train.device=cuda): train.device: cuda asked for" in err
    assert run_cli("train", "--config", "run.yaml", "train.device=gpu") == 2
    assert "train.device: expected auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert run_cli("train", "--config", "run.yaml", "train.epochs=1", "train.device=cpu") == 0
    metrics = json.loads((tiny_project / "runs" / "tiny-run" / "metrics.json").read_text())
    assert metrics["device"] == "cpu"


def _drop_fold_setting(config: Path) -> None:
    """Make ``config`` look written before train.fold_embeddings existed."""
    lines = config.read_text().splitlines(keepends=True)
    kept = [ln for ln in lines if "fold_embeddings" not in ln]
    assert len(kept) == len(lines) - 1
    config.write_text("".join(kept))


def test_an_older_run_is_scored_and_resumed_as_it_ran(tiny_project, monkeypatch, capsys):
    """A run directory written before train.fold_embeddings existed evaluated layer by layer:
    ``tf4ctr evaluate`` scores it so (its metrics to the last digit), and resuming it with
    today's default (folding) is refused naming the setting; pinning false resumes it."""
    from tf4ctr.run import load_run

    monkeypatch.chdir(tiny_project)
    args = ["train.epochs=1", "train.fold_embeddings=false", "--no-progress"]
    assert run_cli("train", "--config", "run.yaml", *args) == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    _drop_fold_setting(run_dir / "config.yaml")
    assert load_run(run_dir).config.train.fold_embeddings is False
    capsys.readouterr()
    assert run_cli("evaluate", str(run_dir), "--json") == 0
    evaluated = json.loads(capsys.readouterr().out)
    stored = json.loads((run_dir / "metrics.json").read_text())
    for split in ("valid", "test"):
        for name in ("auc", "gauc", "logloss"):
            assert evaluated[split][name] == stored[split][name], (split, name)

    older = ["train", "--config", "run.yaml", "name=older", *LONGER]
    proc = _subprocess(tiny_project, *older, stop_after=1)
    assert proc.returncode == -signal.SIGKILL
    _drop_fold_setting(RunPaths(tiny_project / "runs", "older").partial / "config.yaml")
    assert run_cli(*older, "--resume") == 2
    err = capsys.readouterr().err
    assert "train.fold_embeddings: False in the interrupted run older, True now" in err
    assert run_cli(*older, "train.fold_embeddings=false", "--resume") == 0
