"""The MLP block's training step, A/B: module by module against ReLU fused with dropout in place.

    python benchmarks/mlp_block.py [--threads 2] [--rounds 7] [--batch 10000]

One training step (forward, backward) of the paper's Frappe DNN block: 400 inputs, hidden
[400, 400, 400], batch norm, ReLU, dropout 0.2, one output. Four variants, alternating round by
round in this one process, medians reported:

- ``modules, torch dropout`` / ``fused, torch dropout``: ``train.fast_dropout: false``,
  ``MLP.fuse_relu_dropout`` off / on (on: ReLU in place, torch's dropout after it);
- ``modules, fast mask`` / ``fused, fast mask``: the same with ``train.fast_dropout`` on (the
  default; fused: ReLU and the mask in one autograd function, in place).

With a C compiler on the machine, two more: ``inductor, torch dropout`` / ``inductor, fast mask``:
the same block under ``torch.compile`` (inductor generates one C++ loop for what it can fuse:
batch norm, ReLU, the mask; a package cannot count on a compiler, so this is the comparison,
not the default path). ``--no-inductor`` leaves them out.

Beside them, ``matmul only``: the same step's matrix products alone (three forward addmm, two
backward products per layer plus the output layer's), the ceiling the block can approach; each
variant's "% of matmul" is matmul-only time / its time. Run on an idle machine; prints one table
and writes benchmarks/results/mlp_block.json.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import time
from pathlib import Path

import torch

from tf4ctr.fileio import write_json_atomic
from tf4ctr.nn.dropout import FastDropout
from tf4ctr.nn.mlp import MLP

OUT = Path(__file__).resolve().parent / "results" / "mlp_block.json"


def block_step(mlp: MLP, x: torch.Tensor) -> None:
    mlp.zero_grad(set_to_none=True)
    mlp(x).sum().backward()


def matmul_step(weights: list[torch.Tensor], x: torch.Tensor) -> None:
    # forward products, then per layer the input gradient (not for the first) and the weight
    # gradient: what autograd computes for the Linear layers, without anything between them
    acts = [x]
    for w in weights:
        acts.append(acts[-1] @ w.t())
    grad = torch.ones_like(acts[-1])
    for i in range(len(weights) - 1, -1, -1):
        grad.t() @ acts[i]
        if i:
            grad = grad @ weights[i]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=5, help="steps timed per variant and round")
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--no-inductor", action="store_true", help="skip the torch.compile variants")
    p.add_argument("--out", type=Path, default=OUT, help="where the JSON goes")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(2023)
    mlp = MLP(400, [400, 400, 400], dropout=0.2, batch_norm=True, output_dim=1).train()
    x = torch.randn(args.batch, 400)
    weights = [m.weight.detach() for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    dropouts = [m for m in mlp.modules() if isinstance(m, FastDropout)]

    def variant(fused: bool, fast: bool):
        def run() -> None:
            MLP.fuse_relu_dropout = fused
            for d in dropouts:
                d.fast = fast
            block_step(mlp, x)

        return run

    def compiled(fast: bool):
        twin = copy.deepcopy(mlp)
        for d in twin.modules():
            if isinstance(d, FastDropout):
                d.fast = fast
        step = torch.compile(twin)

        def run() -> None:
            twin.zero_grad(set_to_none=True)
            step(x).sum().backward()

        start = time.perf_counter()
        run()  # compiles
        compile_seconds[f"inductor, {'fast mask' if fast else 'torch dropout'}"] = (
            time.perf_counter() - start
        )
        return run

    variants = {
        "modules, torch dropout": variant(False, False),
        "fused, torch dropout": variant(True, False),
        "modules, fast mask": variant(False, True),
        "fused, fast mask": variant(True, True),
    }
    compile_seconds: dict[str, float] = {}
    if args.no_inductor:
        pass
    elif shutil.which("cc") or shutil.which("gcc"):
        variants["inductor, torch dropout"] = compiled(False)
        variants["inductor, fast mask"] = compiled(True)
    else:
        print("no C compiler on this machine: the inductor variants are left out")
    variants["matmul only"] = lambda: matmul_step(weights, x)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            run()  # warm: allocations of this variant's shapes
            start = time.perf_counter()
            for _ in range(args.steps):
                run()
            times[name].append((time.perf_counter() - start) / args.steps)
    MLP.fuse_relu_dropout = True
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["modules, torch dropout"]
    print(f"MLP block step, batch {args.batch:,}, {args.threads} threads, torch {torch.__version__}, "
          f"median of {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    print("| variant | ms / step | vs modules, torch dropout | % of matmul |")
    print("|---|---|---|---|")
    for name, t in med.items():
        print(f"| {name} | {t * 1e3:.1f} | {base / t:.2f}x | {100 * med['matmul only'] / t:.0f} |")
    for name, t in compile_seconds.items():
        print(f"{name}: compiling took {t:.1f} s (once per process)")
    record = {"args": vars(args), "torch": torch.__version__, "seconds": times, "median": med}
    write_json_atomic({**record, "compile_seconds": compile_seconds}, args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
