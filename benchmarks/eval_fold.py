"""Evaluation with each MLP's first layer folded into its embedding table (``train.fold_embeddings``,
the default since 2026-12-02; tf4ctr.nn.fold), A/B against the layer-by-layer evaluation.

    python benchmarks/eval_fold.py [--rounds 3] [--pairs 8] [--threads 2] [--models dnn ...]

Frappe_x1 (rebuilt train, real BARS valid: 57,722 rows), the paper's settings (batch 10,000,
embedding 16, [400, 400, 400], BN, dropout 0.2). The fold is a switch on the trained model, so
both sides are measured in one process on the same weights: each round is a fresh process per
model that trains one epoch (seed 2023), then times ``Trainer.evaluate`` on the validation split
in ``--pairs`` alternating pairs (which side goes first alternates too), after one warm-up call
each. Reported: validation samples/s per side (median over every timed call of every round), the
median and range of the pairs' ratios, the largest logit difference between the sides and both
sides' validation AUC (the fold sums in another order: last digits only). Run on an idle
machine; prints one table and writes benchmarks/results/eval_fold.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from frappe_setup import MODELS, ROOT, frappe_trained, run_worker, write_record

OUT = ROOT / "benchmarks" / "results" / "eval_fold.json"


def worker(model_name: str, threads: int, pairs: int) -> dict:
    import numpy as np

    from tf4ctr.nn import MLP

    trainer, data, valid = frappe_trained(model_name, threads)
    mlps = [m for m in trainer.model.modules() if isinstance(m, MLP)]

    def evaluate(fold: bool) -> tuple[float, dict]:
        for mlp in mlps:
            mlp.fold_embedding = fold
        start = time.perf_counter()
        metrics = trainer.evaluate(valid)
        return time.perf_counter() - start, metrics

    seconds: dict[bool, list[float]] = {False: [], True: []}
    auc, logits = {}, {}
    for fold in (False, True):  # warm-up; also what each side scores
        auc[fold] = evaluate(fold)[1]["auc"]
        logits[fold] = trainer.predict(valid).logit
    for pair in range(pairs):
        for fold in (False, True) if pair % 2 == 0 else (True, False):
            seconds[fold].append(evaluate(fold)[0])
    return {
        "model": model_name,
        "n": len(data.valid),
        "layer_by_layer_s": seconds[False],
        "folded_s": seconds[True],
        "valid_auc_layer_by_layer": auc[False],
        "valid_auc_folded": auc[True],
        "max_abs_logit_diff": float(np.abs(logits[False] - logits[True]).max()),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pairs", type=int, default=8, help="alternating pairs per process")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.pairs)))
        return 0

    from tqdm.auto import tqdm

    runs: list[dict] = []
    jobs = [(r, m) for r in range(args.rounds) for m in args.models]
    for round_, model_name in tqdm(jobs, desc="eval_fold"):
        options = ["--threads", str(args.threads), "--pairs", str(args.pairs)]
        result = run_worker(__file__, *options, "--worker", model_name)
        runs.append({**result, "round": round_})

    summary = []
    print(
        f"{'model':8} {'layer by layer/s':>16} {'folded/s':>10} {'pair ratio':>10} "
        f"{'range':>13}  max |dlogit|  valid AUC layer by layer / folded"
    )
    for model_name in args.models:
        mine = [r for r in runs if r["model"] == model_name]
        n = mine[0]["n"]
        plain = [s for r in mine for s in r["layer_by_layer_s"]]
        folded = [s for r in mine for s in r["folded_s"]]
        ratios = [a / b for a, b in zip(plain, folded, strict=True)]
        row = {
            "model": model_name,
            "layer_by_layer_samples_per_s": n / statistics.median(plain),
            "folded_samples_per_s": n / statistics.median(folded),
            "median_pair_ratio": statistics.median(ratios),
            "min_pair_ratio": min(ratios),
            "max_pair_ratio": max(ratios),
            "max_abs_logit_diff": max(r["max_abs_logit_diff"] for r in mine),
            "valid_auc_layer_by_layer": mine[0]["valid_auc_layer_by_layer"],
            "valid_auc_folded": mine[0]["valid_auc_folded"],
        }
        summary.append(row)
        print(
            f"{model_name:8} {row['layer_by_layer_samples_per_s']:16,.0f} "
            f"{row['folded_samples_per_s']:10,.0f} {row['median_pair_ratio']:10.3f} "
            f"{row['min_pair_ratio']:6.3f}-{row['max_pair_ratio']:.3f}  "
            f"{row['max_abs_logit_diff']:12.2e}  {row['valid_auc_layer_by_layer']:.10f} / "
            f"{row['valid_auc_folded']:.10f}"
        )
    write_record(args, args.out, summary=summary, runs=runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
