"""One timed tf4ctr training/evaluation run; prints one JSON line (used by speed.py).

    python benchmarks/tf4ctr_worker.py --model tf4ctr --epochs 1 --threads 2

Frappe_x1: REBUILT train + real BARS valid (../shared/data/Frappe_x1_rebuilt).
Preprocessing (cached) and model construction are outside the timed phases;
training time is the sum of the trainer's per-epoch times (no evaluation);
evaluation time covers prediction and metrics over the validation split. After both, the
step's matrix products are timed alone at the step's shapes (flops.matmul_only_seconds),
in the same process and threads: the step's own matmul-only time, for "% own matmul".
Without --fast-dropout / --torch-dropout the run takes the library's default mask.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from flops import matmul_only_seconds, training_flops_per_sample  # noqa: E402
from frappe_setup import MODELS, frappe_data, speed_model, speed_objective  # noqa: E402

from tf4ctr.config import TrainConfig  # noqa: E402
from tf4ctr.data import BatchLoader  # noqa: E402
from tf4ctr.train import Trainer  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=list(MODELS), required=True)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--eval-batch-size", type=int, default=65_536)
    p.add_argument("--sparse", action="store_true", help="sparse embedding gradients + lazy Adam")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    masks = p.add_mutually_exclusive_group()
    masks.add_argument(
        "--fast-dropout",
        dest="fast_dropout",
        action="store_const",
        const=True,
        default=None,
        help="train.fast_dropout: true",
    )
    masks.add_argument(
        "--torch-dropout",
        dest="fast_dropout",
        action="store_const",
        const=False,
        help="train.fast_dropout: false (torch's own dropout mask)",
    )
    p.add_argument("--cache", default=str(ROOT / ".tf4ctr-cache"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2023)

    data = frappe_data(Path(args.cache))
    train_cfg = TrainConfig(
        batch_size=args.batch_size,
        epochs=args.epochs,
        progress=False,
        sparse_embedding=args.sparse,
        # neither flag: the library's default, whatever it is
        **({} if args.fast_dropout is None else {"fast_dropout": args.fast_dropout}),
    )
    model = speed_model(args.model, data.schema, train_cfg)
    flops = training_flops_per_sample(model, data.schema)
    plain = model
    if args.compile:
        model = torch.compile(model)
    objective = speed_objective(args.model)
    trainer = Trainer(model, objective, train_cfg)
    loader = BatchLoader(data.train, args.batch_size, shuffle=True, seed=2023)
    seconds = [
        trainer.train_epoch(loader, epoch=e)["train_seconds"] for e in range(1, args.epochs + 1)
    ]
    valid_loader = BatchLoader(data.valid, args.eval_batch_size)
    start = time.perf_counter()
    metrics = trainer.evaluate(valid_loader)
    eval_seconds = time.perf_counter() - start
    # the step's matrix products alone, same process and threads: the reference for overhead
    matmul_step = matmul_only_seconds(plain, data.schema, args.batch_size)
    n = len(data.train)
    per_epoch = sorted(seconds)[len(seconds) // 2]
    print(
        json.dumps(
            {
                "library": "tf4ctr",
                "model": args.model,
                "threads": args.threads,
                "sparse": args.sparse,
                "compile": args.compile,
                "fast_dropout": train_cfg.fast_dropout,
                "seconds_per_epoch": per_epoch,
                "train_samples_per_s": n / per_epoch,
                "train_flops_per_sample": flops,
                "matmul_only_s_per_sample": matmul_step / args.batch_size,
                "eval_samples_per_s": len(data.valid) / eval_seconds,
                "valid_auc": metrics["auc"],
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
