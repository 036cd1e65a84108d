"""Evaluation A/Bs on Frappe_x1. ``--compare rows`` (the default): scoring a CPU batch in
slices, ``Trainer.cpu_forward_rows`` 2,048 (the default) against one forward over the whole
loader batch (tf4ctr until 2026-12-02). ``--compare fold``: each MLP's first layer folded into
its embedding table (``train.fold_embeddings``, the default since 2026-12-02; tf4ctr.nn.fold)
against the layer-by-layer evaluation, both in 2,048-row slices.

    python benchmarks/eval_rows.py [--compare rows|fold] [--rounds 3] [--threads 2] [--models ...]

Frappe_x1 (rebuilt train, real BARS valid: 57,722 rows, one 65,536-row loader batch), the
paper's settings (batch 10,000, embedding 16, [400, 400, 400], BN, dropout 0.2). Each
measurement is a fresh process that trains one epoch (seed 2023, so both sides score the same
weights), then times ``Trainer.evaluate`` on the validation split five times: the first call
(what a run's first epoch pays, and what benchmarks/speed.py measures) and the median of the
other four. Sides alternate within each round; medians over rounds are reported. Each worker
also hashes its validation logits: for ``rows`` both sides must hash alike (the slices give the
same bits); for ``fold``, whose sum runs in another order, the table gives the largest logit
difference between the sides and both sides' validation AUC. Run on an idle machine; prints one
table and writes benchmarks/results/eval_rows.json (eval_fold.json for ``fold``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from frappe_setup import MODELS, ROOT, frappe_trainer

RESULTS = ROOT / "benchmarks" / "results"
WHOLE = 1 << 30  # larger than any loader batch: one forward per batch


def worker(model_name: str, rows: int, fold: bool, threads: int, calls: int, logits: Path) -> dict:
    from tf4ctr.data import BatchLoader
    from tf4ctr.nn import MLP

    trainer, data = frappe_trainer(model_name, threads)
    trainer.cpu_forward_rows = rows
    for module in trainer.model.modules():
        if isinstance(module, MLP):
            module.fold_embedding = fold
    trainer.train_epoch(BatchLoader(data.train, 10_000, shuffle=True, seed=2023), epoch=1)
    valid = BatchLoader(data.valid, 65_536)
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        metrics = trainer.evaluate(valid)
        seconds.append(time.perf_counter() - start)
    scores = trainer.predict(valid).logit
    np.save(logits, scores)
    return {
        "model": model_name,
        "rows": rows,
        "fold": fold,
        "n": len(data.valid),
        "valid_auc": metrics["auc"],
        "first_s": seconds[0],
        "later_s": statistics.median(seconds[1:]),
        "logits_sha256": hashlib.sha256(scores.tobytes()).hexdigest(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compare", choices=("rows", "fold"), default="rows")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calls", type=int, default=5, help="evaluate calls per process")
    p.add_argument("--rows", type=int, default=2048, help="the sliced side's cpu_forward_rows")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--out", type=Path, help="default: results/eval_rows.json or eval_fold.json")
    p.add_argument(
        "--worker", nargs=4, metavar=("MODEL", "ROWS", "FOLD", "NPY"), help=argparse.SUPPRESS
    )
    args = p.parse_args()
    if args.worker:
        name, rows, fold, npy = args.worker
        result = worker(name, int(rows), fold == "1", args.threads, args.calls, Path(npy))
        print(json.dumps(result))
        return 0
    out_path = args.out or RESULTS / f"eval_{args.compare}.json"

    from tqdm.auto import tqdm

    from tf4ctr.fileio import write_json_atomic

    # side → (rows per forward, fold); today's default on the right
    sides = (
        {"whole batch": (WHOLE, True), f"{args.rows} rows": (args.rows, True)}
        if args.compare == "rows"
        else {"layer by layer": (args.rows, False), "folded": (args.rows, True)}
    )
    runs: list[dict] = []
    jobs = [(r, m, s) for r in range(args.rounds) for m in args.models for s in sides]
    scratch = Path(tempfile.mkdtemp(prefix="eval_rows-"))
    for round_, model_name, side in tqdm(jobs, desc=f"eval_{args.compare}"):
        rows, fold = sides[side]
        npy = scratch / f"{model_name}-{round_}-{int(fold)}-{rows}.npy"
        command = [sys.executable, __file__, "--threads", str(args.threads)]
        command += ["--calls", str(args.calls), "--worker", model_name, str(rows)]
        command += [str(int(fold)), str(npy)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        run = {**json.loads(out.strip().splitlines()[-1]), "side": side, "round": round_}
        run["npy"] = npy
        runs.append(run)

    def median_rate(model_name: str, side: str, key: str) -> float:
        mine = [r for r in runs if r["model"] == model_name and r["side"] == side]
        return statistics.median(r["n"] / r[key] for r in mine)

    summary = []
    before, after = sides
    print(
        f"{'model':8} {'call':6} {before:>14} {after:>14} {'ratio':>6}  same logits"
        "  max |dlogit|  valid AUC before / after"
    )
    for model_name in args.models:
        mine = [r for r in runs if r["model"] == model_name]
        digests = {r["logits_sha256"] for r in mine}
        first = {r["side"]: r for r in mine if r["round"] == 0}
        gap = float(
            np.abs(np.load(first[before]["npy"]) - np.load(first[after]["npy"])).max(initial=0.0)
        )
        auc = [first[side]["valid_auc"] for side in sides]
        for key, call in (("first_s", "first"), ("later_s", "later")):
            a, b = (median_rate(model_name, s, key) for s in sides)
            summary.append(
                {
                    "model": model_name,
                    "call": call,
                    "before": before,
                    "after": after,
                    "before_samples_per_s": a,
                    "after_samples_per_s": b,
                    "ratio": b / a,
                    "same_logits": len(digests) == 1,
                    "max_abs_logit_diff": gap,
                    "valid_auc_before": auc[0],
                    "valid_auc_after": auc[1],
                }
            )
            print(
                f"{model_name:8} {call:6} {a:14,.0f} {b:14,.0f} {b / a:6.2f}  "
                f"{len(digests) == 1!s:11}  {gap:12.2e}  {auc[0]:.10f} / {auc[1]:.10f}"
            )
    for run in runs:
        Path(run.pop("npy")).unlink()
    scratch.rmdir()
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "summary": summary, "runs": runs}
    write_json_atomic(record, out_path)
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
