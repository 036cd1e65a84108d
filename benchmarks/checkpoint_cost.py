"""What resumability costs: seconds to write the per-epoch checkpoint, as a share of an epoch.

    python benchmarks/checkpoint_cost.py [--frappe-epochs 3] [--criteo-steps 20]

1. Frappe_x1 (REBUILT train + real BARS valid/test, ../shared/data): TF4CTR with the paper's
   Frappe setting trained for ``--frappe-epochs`` epochs through ``tf4ctr.run.train``; every
   epoch's record in metrics.json holds the seconds spent training, evaluating and writing
   its checkpoint (model, both Adam moments, RNG, fit state).
2. The model of the 45.8M-row SYNTHETIC Criteo table (``tf4ctr data synth criteo`` +
   ``data prepare``: 36,672,493 train rows, 1,161,723 embedding rows in
   benchmarks/results/criteo_prepare.json): TF4CTR with the paper's Criteo setting
   (embedding 16, WSF, MLP_s [400,400], MLP_c [400,400,400], batch 4096) built on a schema
   with that many embedding rows, the 26 categorical fields sized in proportion to Criteo's
   real cardinalities. No data is read: ``--criteo-steps`` training steps on random ids fill
   the Adam state and give samples/s, from which the epoch (train + valid pass) is
   ESTIMATED; the checkpoint is then written three times (median). The table itself would
   take ~30 min to generate and prepare and hours per epoch here; what a checkpoint costs
   depends only on the model and optimizer, which are the real ones.

Run it on an idle machine; it prints a table and writes benchmarks/results/checkpoint_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tf4ctr import run
from tf4ctr.config import LossConfig, RunConfig, TrainConfig, load_run_config
from tf4ctr.data import FeatureSchema, FieldInfo
from tf4ctr.data.synth_criteo import CRITEO_CARDINALITIES
from tf4ctr.fileio import write_text_atomic
from tf4ctr.train.trainer import FitState, atomic_torch_save

ROOT = Path(__file__).resolve().parents[1]
CRITEO_TRAIN_ROWS, CRITEO_VALID_ROWS = 36_672_493, 4_584_062
CRITEO_EMBEDDING_ROWS = 1_161_723  # benchmarks/results/criteo_prepare.json, "full"
NUMERIC_BUCKETS = 64  # I1..I13 after floor(log(x)^2) bucketing: a few dozen ids each


def frappe(epochs: int, workdir: Path) -> dict | None:
    if not (ROOT.parent / "shared/data/Frappe_x1_rebuilt").is_dir():
        print("Frappe: skipped (../shared/data/Frappe_x1_rebuilt not found)", file=sys.stderr)
        return None
    config = load_run_config(
        ROOT / "configs/frappe_x1/tf4ctr.yaml",
        [
            f"train.epochs={epochs}",
            "train.progress=false",
            f"output_dir={workdir / 'runs'}",
            f"cache_dir={ROOT / '.tf4ctr-cache'}",
        ],
    )
    result = run.train(config)
    rows = result.metrics["epochs"]
    ckpt = [r["checkpoint_seconds"] for r in rows]
    epoch = [r["train_seconds"] + r["valid"]["seconds"] for r in rows]
    return {
        "parameters": result.metrics["parameters"],
        "epochs": len(rows),
        "checkpoint_s": ckpt,
        "epoch_s": epoch,
        "share": statistics.median(c / e for c, e in zip(ckpt, epoch, strict=True)),
    }


def criteo_schema() -> FeatureSchema:
    left = CRITEO_EMBEDDING_ROWS - 13 * NUMERIC_BUCKETS
    total = sum(CRITEO_CARDINALITIES)
    sizes = [max(3, round(c * left / total)) for c in CRITEO_CARDINALITIES]
    fields = [FieldInfo(f"I{i}", "categorical", NUMERIC_BUCKETS) for i in range(1, 14)]
    fields += [FieldInfo(f"C{i}", "categorical", n) for i, n in enumerate(sizes, 1)]
    return FeatureSchema(tuple(fields))


def criteo(steps: int, workdir: Path) -> dict:
    schema = criteo_schema()
    config = RunConfig(
        name="checkpoint-cost",
        dataset=None,  # batches are made up below: build_parts reads no data
        model={
            "name": "tf4ctr",
            "embedding_dim": 16,
            "ssem": "ser",
            "fusion": "wsf",
            "simple_hidden_units": [400, 400],
            "complex_hidden_units": [400, 400, 400],
            "dropout": 0.2,
        },
        loss=LossConfig(name="tf", embedding_l2=1e-5),
        train=TrainConfig(batch_size=4096, progress=False, seed=0),
    )
    parts = run.build_parts(config, schema)
    model, trainer, cfg = parts.model, parts.trainer, config.train
    vocab = torch.tensor(schema.vocab_sizes)

    class Batch:
        def __init__(self, n: int) -> None:
            self.categorical = (torch.rand(n, len(vocab)) * vocab).long()
            self.numeric = torch.zeros(n, 0)
            self.label = (torch.rand(n) < 0.25).float()
            self.group = None

    batches = [Batch(cfg.batch_size) for _ in range(steps)]
    trainer.train_epoch(batches[:2])  # warm-up: allocator, Adam state
    start = time.perf_counter()
    trainer.train_epoch(batches)
    train_rate = steps * cfg.batch_size / (time.perf_counter() - start)
    eval_batches = [Batch(65_536) for _ in range(3)]
    start = time.perf_counter()
    trainer.predict(eval_batches)
    eval_rate = 3 * 65_536 / (time.perf_counter() - start)
    state = FitState(epoch=1, best_epoch=1)
    path = workdir / "checkpoint-epoch1.pt"
    times = []
    for _ in range(3):
        start = time.perf_counter()
        atomic_torch_save(trainer.checkpoint(state), path)
        times.append(time.perf_counter() - start)
    epoch_s = CRITEO_TRAIN_ROWS / train_rate + CRITEO_VALID_ROWS / eval_rate
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "embedding_rows": int(vocab.sum()),
        "checkpoint_mb": path.stat().st_size / 2**20,
        "checkpoint_s": times,
        "train_samples_per_s": train_rate,
        "eval_samples_per_s": eval_rate,
        "epoch_s_estimated": epoch_s,
        "share": statistics.median(times) / epoch_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frappe-epochs", type=int, default=3)
    parser.add_argument("--criteo-steps", type=int, default=20)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/checkpoint_cost.json"))
    args = parser.parse_args()
    run.configure_threads(None)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        results = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "threads": torch.get_num_threads(),
            "frappe": frappe(args.frappe_epochs, Path(tmp)),
            "criteo_synthetic_model": criteo(args.criteo_steps, Path(tmp)),
        }
    print("| model | parameters | checkpoint (s, median) | epoch (s) | share of epoch |")
    print("|---|---|---|---|---|")
    f = results["frappe"]
    if f is not None:
        print(
            f"| TF4CTR, Frappe_x1 (rebuilt train), {f['epochs']} epochs measured | "
            f"{f['parameters']:,} | {statistics.median(f['checkpoint_s']):.3f} | "
            f"{statistics.median(f['epoch_s']):.1f} | {100 * f['share']:.2f} % |"
        )
    c = results["criteo_synthetic_model"]
    print(
        f"| TF4CTR, 45.8M-row SYNTHETIC Criteo model ({c['checkpoint_mb']:.0f} MB checkpoint) | "
        f"{c['parameters']:,} | {statistics.median(c['checkpoint_s']):.3f} | "
        f"{c['epoch_s_estimated']:.0f} (estimated from {c['train_samples_per_s']:,.0f} "
        f"train samples/s) | {100 * c['share']:.3f} % |"
    )
    write_text_atomic(args.out, json.dumps(results, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
