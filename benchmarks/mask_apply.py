"""Applying the fast dropout mask, A/B: ``masked_fill_`` with booleans against multiplying by
float ones and zeros.

    python benchmarks/mask_apply.py [--threads 2] [--rounds 9] [--batch 10000]

What the fused ReLU + fast mask (``tf4ctr.nn.dropout._ReLUThenMask``) does to one 10,000 × 400
activation in training, from the same cut random draws, both ways, alternating round by round
in this one process, medians reported:

- ``bool mask, masked_fill_`` (tf4ctr until 2026-12-02): ``drop = draws < level``, then
  ``x.relu_().masked_fill_(drop, 0).mul_(scale)``;
- ``float ones, mul_`` (now): ``torch.ge(draws, level, out=kept)`` into float32, then
  ``x.relu_().mul_(kept).mul_(scale)``.

Both give the same tensor (checked here, bit for bit). The random words (``random_``) are
drawn once, outside the timing: they are the same either way. Run on an idle machine; prints
one table and writes benchmarks/results/mask_apply.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from tf4ctr.fileio import write_json_atomic

OUT = Path(__file__).resolve().parent / "results" / "mask_apply.json"
LEVELS = 1 << 15


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--steps", type=int, default=10, help="applications timed per round")
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--width", type=int, default=400)
    p.add_argument("--p", type=float, default=0.2)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2023)
    shape = (args.batch, args.width)
    n = args.batch * args.width
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_()
    draws = words.view(torch.int16)[:n].bitwise_and(LEVELS - 1).view(shape)
    level = round(args.p * LEVELS)
    scale = LEVELS / (LEVELS - level)
    source = torch.randn(shape)
    x = torch.empty(shape)

    def bool_masked_fill() -> torch.Tensor:
        x.copy_(source)
        drop = draws < level
        return x.relu_().masked_fill_(drop, 0.0).mul_(scale)

    def float_ones() -> torch.Tensor:
        x.copy_(source)
        kept = torch.empty(shape)
        torch.ge(draws, level, out=kept)
        return x.relu_().mul_(kept).mul_(scale)

    def copy_only() -> torch.Tensor:
        return x.copy_(source)

    same = torch.equal(bool_masked_fill().clone(), float_ones().clone())
    variants = {
        "bool mask, masked_fill_": bool_masked_fill,
        "float ones, mul_": float_ones,
        "the input copy alone": copy_only,
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            run()
            start = time.perf_counter()
            for _ in range(args.steps):
                run()
            times[name].append((time.perf_counter() - start) / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    copy = med["the input copy alone"]
    print(
        f"fast mask applied to {args.batch:,} x {args.width}, p {args.p}, {args.threads} threads, "
        f"torch {torch.__version__}, median of {args.rounds} rounds x {args.steps}; "
        f"same result: {same}"
    )
    print("| variant | ms (with the input copy) | ms (less the copy) |")
    print("|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {1e3 * t:.2f} | {1e3 * (t - copy):.2f} |")
    write_json_atomic(
        {
            "threads": args.threads,
            "batch": args.batch,
            "width": args.width,
            "p": args.p,
            "rounds": args.rounds,
            "steps": args.steps,
            "torch": torch.__version__,
            "same_result": same,
            "median_seconds": med,
            "seconds": times,
        },
        args.out,
    )
    print(f"written to {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
