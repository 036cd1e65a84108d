"""Data-parallel training with torchrun + DDP (gloo, two CPU processes), end to end on tiny data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from tf4ctr.data import BatchLoader
from tf4ctr.data.encoded import EncodedSplit

REPO = Path(__file__).resolve().parents[1]
STOPPER = REPO / "tests" / "helpers" / "stop_after_epoch.py"


def _torchrun(cwd: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env_extra or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _why(proc: subprocess.CompletedProcess) -> str:
    """What a failed torchrun printed that says why: the ranks' error lines (torchrun's own
    summary at the end names only the signal), then the tail."""
    lines = proc.stderr.splitlines()
    causes = [ln for ln in lines if "rror" in ln or "what()" in ln or "terminate" in ln]
    return "\n".join(causes[:20]) + "\n...\n" + "\n".join(lines[-15:])


def test_sharded_loader_cuts_every_global_batch_into_disjoint_pieces():
    n = 1003
    split = EncodedSplit(
        categorical=torch.arange(n, dtype=torch.int32).view(n, 1).numpy(),
        numeric=torch.zeros(n, 0).numpy(),
        label=torch.zeros(n).numpy(),
    )
    whole = BatchLoader(split, 100, shuffle=True, seed=3)
    ranks = [BatchLoader(split, 100, shuffle=True, seed=3, shard=(r, 2)) for r in range(2)]
    for _ in range(2):
        for full, a, b in zip(whole, *ranks, strict=False):
            ids = torch.cat([a.categorical, b.categorical]).flatten()
            if len(full) >= 2:
                assert torch.equal(ids, full.categorical.flatten())
                assert abs(len(a) - len(b)) <= 1
    assert len(ranks[0]) == len(whole) == 11
    tiny = BatchLoader(split, 1002, shard=(0, 2))  # a last batch of 1 row is dropped on all
    assert len(tiny) == 1


def test_two_ranks_train_resume_and_evaluate_exactly(tiny_project):
    base = ["-m", "tf4ctr", "train", "--config", "run.yaml", "--no-progress"]
    whole = _torchrun(tiny_project, *base, "name=whole")
    assert whole.returncode == 0, _why(whole)
    assert whole.stdout.count("run written to") == 1  # rank 0 reports, once
    run_dir = tiny_project / "runs" / "whole"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["test"]["auc"] > 0.7
    assert sorted(p.name for p in (tiny_project / "runs").iterdir()) == ["whole"]

    # evaluation was shared out by batches and gathered: one process scoring the same
    # weights gets the same metrics, to the last digit
    from tf4ctr import run

    single = run.evaluate(run_dir)
    for split in ("valid", "test"):
        for k in ("auc", "gauc", "logloss"):
            assert single[split][k] == metrics[split][k]

    # killed after epoch 2 (every rank dies), resumed under torchrun: the same run
    cut = _torchrun(
        tiny_project,
        str(STOPPER),
        *base[2:],
        "name=cut",
        env_extra={"STOP_AFTER_EPOCH": "2", "STOP_SIGNAL": "KILL"},
    )
    assert cut.returncode != 0
    assert (tiny_project / "runs" / ".cut.partial" / "checkpoint-epoch2.pt").is_file()
    resumed = _torchrun(tiny_project, *base, "name=cut", "--resume")
    assert resumed.returncode == 0, _why(resumed)
    again = json.loads((tiny_project / "runs" / "cut" / "metrics.json").read_text())
    for split in ("valid", "test"):
        for k in ("auc", "gauc", "logloss"):
            assert again[split][k] == metrics[split][k]


def test_ddp_trains_every_kind_of_model_and_loss(tmp_path):
    """Models whose parameters once got no gradient under some loss (the default TF4CTR
    config without numeric fields: the empty numeric tables; a cf-fused twin model under
    log loss: the encoders' heads), and the others, for a few DDP steps each
    (tests/helpers/ddp_matrix.py, one torchrun for all; test_ddp_parameters.py checks every
    registered model in-process)."""
    matrix = REPO / "tests" / "helpers" / "ddp_matrix.py"
    proc = _torchrun(tmp_path, str(matrix))
    # the cases that passed say whether a failure came during the run or at its exit
    assert proc.returncode == 0, _why(proc) + "\nstdout:\n" + proc.stdout[-2000:]
    cases = int(proc.stdout.split(" cases trained")[0].split()[-1])
    assert cases >= 10 and proc.stdout.count("ok ") == cases, proc.stdout


def test_two_ranks_warm_start_from_a_finished_run(tiny_project, monkeypatch):
    """Continual training under torchrun: every rank loads the parent and copies its weights
    (rank 0's are broadcast anyway) and its optimizer state; the run trains, with its lineage,
    and new rows exist."""
    from tests.conftest import write_csv
    from tf4ctr.cli import main

    monkeypatch.chdir(tiny_project)
    assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
    write_csv(tiny_project / "day2.csv", 3000, 9)
    text = (tiny_project / "day2.csv").read_text().replace(",u1,", ",unew1,")
    (tiny_project / "day2.csv").write_text(text)
    dataset = (tiny_project / "dataset.yaml").read_text().replace("train.csv", "day2.csv")
    (tiny_project / "day2.yaml").write_text(dataset)
    args = ["-m", "tf4ctr", "train", "--config", "run.yaml", "dataset=day2.yaml", "name=day2"]
    proc = _torchrun(
        tiny_project, *args, "train.epochs=1", "--init-from", "runs/tiny-run", "--no-progress",
        "train.init_optimizer=true",  # every rank loads the parent's optimizer state alike
    )  # fmt: skip
    assert proc.returncode == 0, _why(proc)
    metrics = json.loads((tiny_project / "runs" / "day2" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["init_from"]["name"] == "tiny-run"
    assert metrics["init_from"]["optimizer"] is True
    assert (tiny_project / "runs" / "day2" / "optimizer.pt").is_file()
    assert metrics["init_from"]["new_rows"] == 2  # one new user, in each of SER's two tables


def test_two_ranks_with_sparse_embeddings_train_as_one_process(tmp_path):
    """train.sparse_embedding under DDP: the ranks exchange their touched rows and gradients,
    so after a few steps both hold the same tables (bit for bit), and those are one process's
    on the same global batches (to float rounding: the sums run in another order)."""
    from tests.helpers.sparse_case import build, loader
    from tf4ctr.train import Trainer

    helper = REPO / "tests" / "helpers" / "sparse_ddp.py"
    proc = _torchrun(tmp_path, str(helper), env_extra={"SPARSE_DDP_OUT": str(tmp_path)})
    assert proc.returncode == 0, _why(proc)
    for l2 in (0.0, 0.1):
        digests = {(tmp_path / f"rank{r}-l2{l2}.sha256").read_text() for r in range(2)}
        assert len(digests) == 1, f"embedding_l2={l2}: the ranks hold different weights"
    two = torch.load(tmp_path / "two-ranks.pt")
    model, objective, config = build(0.0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    Trainer(model, objective, config).train_epoch(loader())
    one = model.state_dict()
    for key, value in one.items():
        assert not torch.equal(value, start[key]), f"{key} did not train"
        torch.testing.assert_close(two[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_torchrun_trains_a_sparse_embedding_run(tiny_project):
    """`torchrun ... tf4ctr train train.sparse_embedding=true`: two ranks, one run written."""
    args = ["-m", "tf4ctr", "train", "--config", "run.yaml", "--no-progress", "name=sparse"]
    proc = _torchrun(tiny_project, *args, "train.sparse_embedding=true", "train.epochs=2")
    assert proc.returncode == 0, _why(proc)
    assert proc.stdout.count("run written to") == 1
    assert sorted(p.name for p in (tiny_project / "runs").iterdir()) == ["sparse"]
    metrics = json.loads((tiny_project / "runs" / "sparse" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and len(metrics["epochs"]) == 2
    assert metrics["test"]["auc"] > 0.6
