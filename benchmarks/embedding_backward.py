"""The embedding table's gradient, A/B: ``index_add_`` (tf4ctr's lookup, the default) against
torch's ``embedding_dense_backward``.

    python benchmarks/embedding_backward.py [--threads 2] [--pairs 4] [--models dnn ...]

Two parts, both in this one process, on an idle machine:

1. The gradient alone: 100,000 indices (a 10,000-row batch of Frappe's 10 fields) into a
   5,383-row table, 1, 8, 16 and 64 wide; both ways alternating, medians of 25; checked equal.
2. Training epochs on Frappe_x1 (rebuilt train; the paper's settings as in tf4ctr_worker.py):
   per model, one Trainer; a warm-up epoch, then ``--pairs`` pairs of epochs with
   ``FeatureEmbedding.fast_backward`` off and on, alternating (which goes first alternates
   too); medians of the epoch times.

Prints both tables and writes benchmarks/results/embedding_backward.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from frappe_setup import MODELS, ROOT, frappe_trainer, write_record

OUT = ROOT / "benchmarks" / "results" / "embedding_backward.json"


def gradient_alone(rounds: int = 25) -> list[dict]:
    rows, n = 5383, 100_000
    out = []
    for width in (1, 8, 16, 64):
        g = torch.Generator().manual_seed(width)
        index = torch.randint(0, rows, (n,), generator=g)
        grad = torch.randn(n, width, generator=g)

        def torch_backward(grad=grad, index=index) -> torch.Tensor:
            return torch.ops.aten.embedding_dense_backward(grad, index, rows, -1, False)

        def index_add(grad=grad, index=index, width=width) -> torch.Tensor:
            return grad.new_zeros(rows, width).index_add_(0, index, grad)

        same = torch.equal(torch_backward(), index_add())
        times: dict[str, list[float]] = {"torch": [], "index_add_": []}
        for _ in range(rounds):
            for name, fn in (("torch", torch_backward), ("index_add_", index_add)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        a, b = (statistics.median(times[k][3:]) * 1e3 for k in times)
        out.append(
            {"width": width, "torch_ms": a, "index_add_ms": b, "speedup": a / b, "same": same}
        )
    return out


def epochs(model_name: str, pairs: int, threads: int) -> dict:
    from tf4ctr.data import BatchLoader
    from tf4ctr.nn import FeatureEmbedding

    trainer, data = frappe_trainer(model_name, threads)
    loader = BatchLoader(data.train, 10_000, shuffle=True, seed=2023)
    trainer.train_epoch(loader, epoch=1)  # warm-up
    seconds: dict[str, list[float]] = {"torch": [], "index_add_": []}
    epoch = 2
    try:
        for pair in range(pairs):
            order = ("torch", "index_add_") if pair % 2 == 0 else ("index_add_", "torch")
            for side in order:
                FeatureEmbedding.fast_backward = side == "index_add_"
                seconds[side].append(trainer.train_epoch(loader, epoch=epoch)["train_seconds"])
                epoch += 1
    finally:
        FeatureEmbedding.fast_backward = True
    a, b = (statistics.median(seconds[k]) for k in ("torch", "index_add_"))
    return {"model": model_name, "torch_s": a, "index_add_s": b, "ratio": a / b, "epochs": seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    alone = gradient_alone()
    print("width  torch ms  index_add_ ms  speedup  same")
    for r in alone:
        print(
            f"{r['width']:5}  {r['torch_ms']:8.2f}  {r['index_add_ms']:13.2f}  "
            f"{r['speedup']:7.2f}  {r['same']}"
        )
    trained = []
    print(f"\n{'model':8} {'torch s/epoch':>14} {'index_add_ s/epoch':>19} {'ratio':>6}")
    for model_name in args.models:
        r = epochs(model_name, args.pairs, args.threads)
        trained.append(r)
        print(f"{model_name:8} {r['torch_s']:14.3f} {r['index_add_s']:19.3f} {r['ratio']:6.3f}")
    write_record(args, args.out, gradient_alone=alone, epochs=trained)
    return 0


if __name__ == "__main__":
    sys.exit(main())
