"""Dense Adam against sparse gradients + lazy Adam on a Criteo-sized embedding table.

    python benchmarks/sparse_embedding.py [--model tf4ctr] [--steps 20] [--batch-size 4096]

SYNTHETIC inputs: 39 fields whose vocabularies add up to 5,549,252 rows (Criteo's
feature count in the paper's Table I; 13 small bucketised fields and 26 categorical
ones with a long tail), indices drawn Zipf-like. Nothing is learnt here; this measures
the cost of a training step. TF4CTR under SER holds two tables (16 + 8 wide), so
about 133M embedding parameters. Each variant runs in its own subprocess (peak RSS is
per run), dense and sparse alternating, and the table quotes medians.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

TOTAL_ROWS = 5_549_252
RESULTS = Path(__file__).resolve().parent / "results"


def criteo_like_vocab() -> list[int]:
    small = [60] * 13  # bucketised I1–I13
    rest = TOTAL_ROWS - sum(small)
    weights = np.array([0.5 ** (i / 3) for i in range(26)])
    big = np.maximum(3, np.floor(weights / weights.sum() * rest)).astype(int)
    big[0] += rest - big.sum()
    return small + big.tolist()


@dataclass
class Schema:
    vocab_sizes: list
    numeric: tuple = ()


def worker(model_name: str, sparse: bool, steps: int, batch_size: int, threads: int) -> dict:
    from tf4ctr.config import TrainConfig
    from tf4ctr.framework import Objective, TwinFocusLoss
    from tf4ctr.models import build_model
    from tf4ctr.nn import FeatureInput
    from tf4ctr.train.trainer import clip_grad_norm, make_optimizers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    vocab = criteo_like_vocab()
    schema = Schema(vocab)
    model = build_model(model_name, schema)
    objective = Objective(TwinFocusLoss() if model_name == "tf4ctr" else None, embedding_l2=1e-5)
    optimizers = make_optimizers(model, TrainConfig(sparse_embedding=sparse))
    rng = np.random.default_rng(0)

    def batch():
        cols = [np.minimum(rng.zipf(1.2, batch_size) - 1, v - 1) for v in vocab]
        x = FeatureInput(torch.from_numpy(np.stack(cols, 1)), torch.zeros(batch_size, 0))
        return x, torch.from_numpy((rng.random(batch_size) < 0.25).astype(np.float32))

    batches = [batch() for _ in range(4)]
    times = []
    for step in range(steps + 2):
        x, y = batches[step % len(batches)]
        start = time.perf_counter()
        parts = objective(model, model(x), y)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        parts.total.backward()
        clip_grad_norm(model.parameters(), 10.0)
        for opt in optimizers:
            opt.step()
        if step >= 2:  # the first steps allocate Adam's state
            times.append(time.perf_counter() - start)
    return {
        "model": model_name,
        "sparse": sparse,
        "embedding_rows": sum(vocab),
        "parameters": sum(p.numel() for p in model.parameters()),
        "step_seconds_median": statistics.median(times),
        "steps_per_s": 1 / statistics.median(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tf4ctr")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "sparse_embedding.json"))
    p.add_argument("--worker", choices=["dense", "sparse"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(
            json.dumps(
                worker(
                    args.model, args.worker == "sparse", args.steps, args.batch_size, args.threads
                )
            )
        )
        return 0
    runs: dict[str, list[dict]] = {"dense": [], "sparse": []}
    for _ in range(args.repeats):
        for mode in ("dense", "sparse"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    mode,
                    "--model",
                    args.model,
                    "--steps",
                    str(args.steps),
                    "--batch-size",
                    str(args.batch_size),
                    "--threads",
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{mode}: {runs[mode][-1]}", file=sys.stderr)
    med = {m: statistics.median(r["steps_per_s"] for r in rs) for m, rs in runs.items()}
    rss = {m: statistics.median(r["peak_rss_mb"] for r in rs) for m, rs in runs.items()}
    first = runs["dense"][0]
    print(
        f"SYNTHETIC Criteo-sized vocabulary: {first['embedding_rows']:,} rows per table; "
        f"{args.model}, {first['parameters']:,} parameters; batch {args.batch_size}; "
        f"{args.threads} threads; median of {args.repeats} runs x {args.steps} steps"
    )
    print("| optimizer | steps/s | peak RSS MB |\n|---|---|---|")
    print(f"| dense Adam (paper) | {med['dense']:.2f} | {rss['dense']:,.0f} |")
    print(f"| sparse grads + lazy Adam | {med['sparse']:.2f} | {rss['sparse']:,.0f} |")
    print(f"speed-up: {med['sparse'] / med['dense']:.1f}x")
    from tf4ctr.fileio import write_json_atomic

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "machine": {"python": platform.python_version(), "torch": torch.__version__},
        "args": {k: v for k, v in vars(args).items() if k != "worker"},
        "steps_per_s": med,
        "peak_rss_mb": rss,
        "speedup": med["sparse"] / med["dense"],
        "runs": runs,
    }
    write_json_atomic(summary, out)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
