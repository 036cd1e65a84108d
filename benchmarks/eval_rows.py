"""Scoring a CPU batch in slices, A/B: ``Trainer.cpu_forward_rows`` 2,048 (the default) against
one forward over the whole loader batch (tf4ctr until 2026-12-02).

    python benchmarks/eval_rows.py [--rounds 3] [--threads 2] [--models dnn dualmlp ...]

Frappe_x1 (rebuilt train, real BARS valid: 57,722 rows, one 65,536-row loader batch), the
paper's settings (batch 10,000, embedding 16, [400, 400, 400], BN, dropout 0.2). Each
measurement is a fresh process that trains one epoch (seed 2023, so both sides score the same
weights), then times ``Trainer.evaluate`` on the validation split five times: the first call
(what a run's first epoch pays, and what benchmarks/speed.py measures) and the median of the
other four. Sides alternate within each round; medians over rounds are reported. Each worker
also hashes its validation logits: both sides must hash alike (the slices give the same bits).
Run on an idle machine; prints one table and writes benchmarks/results/eval_rows.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

from frappe_setup import MODELS, ROOT, frappe_trained, run_worker, write_record

OUT = ROOT / "benchmarks" / "results" / "eval_rows.json"
WHOLE = 1 << 30  # larger than any loader batch: one forward per batch


def worker(model_name: str, rows: int, threads: int, calls: int) -> dict:
    trainer, data, valid = frappe_trained(model_name, threads)
    trainer.cpu_forward_rows = rows  # scoring only: training is the same on both sides
    seconds = []
    for _ in range(calls):
        start = time.perf_counter()
        trainer.evaluate(valid)
        seconds.append(time.perf_counter() - start)
    logits = trainer.predict(valid).logit
    return {
        "model": model_name,
        "rows": rows,
        "n": len(data.valid),
        "first_s": seconds[0],
        "later_s": statistics.median(seconds[1:]),
        "logits_sha256": hashlib.sha256(logits.tobytes()).hexdigest(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calls", type=int, default=5, help="evaluate calls per process")
    p.add_argument("--rows", type=int, default=2048, help="the sliced side's cpu_forward_rows")
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "ROWS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.threads, args.calls)))
        return 0

    from tqdm.auto import tqdm

    sides = {"whole batch": WHOLE, f"{args.rows} rows": args.rows}
    runs: list[dict] = []
    jobs = [(r, m, s) for r in range(args.rounds) for m in args.models for s in sides]
    for round_, model_name, side in tqdm(jobs, desc="eval_rows"):
        options = ["--threads", str(args.threads), "--calls", str(args.calls)]
        result = run_worker(__file__, *options, "--worker", model_name, str(sides[side]))
        runs.append({**result, "side": side, "round": round_})

    def median_rate(model_name: str, side: str, key: str) -> float:
        mine = [r for r in runs if r["model"] == model_name and r["side"] == side]
        return statistics.median(r["n"] / r[key] for r in mine)

    summary = []
    whole, sliced = sides
    print(f"{'model':8} {'call':6} {whole:>12} {sliced:>12} {'ratio':>6}  same logits")
    for model_name in args.models:
        digests = {r["logits_sha256"] for r in runs if r["model"] == model_name}
        for key, call in (("first_s", "first"), ("later_s", "later")):
            a, b = (median_rate(model_name, s, key) for s in sides)
            summary.append(
                {
                    "model": model_name,
                    "call": call,
                    "whole_samples_per_s": a,
                    "sliced_samples_per_s": b,
                    "ratio": b / a,
                    "same_logits": len(digests) == 1,
                }
            )
            print(
                f"{model_name:8} {call:6} {a:12,.0f} {b:12,.0f} {b / a:6.2f}  {len(digests) == 1}"
            )
    write_record(args, args.out, summary=summary, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
