"""Does FastDropout train like torch's dropout? TF4CTR on Frappe_x1, several seeds, each mask.

    python benchmarks/dropout_equivalence.py [--seeds 2023 2024 2025] [--modes torch torch-bulk]

Masks: ``torch`` (nn.functional.dropout), ``torch-bulk`` (FastDropout's current mask:
16-bit draws cut from torch int64 words). ``numpy-sfc64`` rows are kept from the earlier
FastDropout mask (numpy SFC64 words); that code is gone, so they are reported, not rerun.

Frappe_x1: REBUILT train + real BARS valid/test. Each (seed, dropout) run uses the
paper's Frappe TF4CTR config unchanged; results are appended to
benchmarks/results/dropout_equivalence.json as they finish (a rerun skips runs
already there). Prints mean ± std of test AUC / gAUC / logloss per dropout
implementation, Welch's t-test p-value on test AUC, and seconds per epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from scipy import stats

from tf4ctr import run
from tf4ctr.config import load_run_config
from tf4ctr.fileio import write_text_atomic
from tf4ctr.nn.dropout import FastDropout

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "dropout_equivalence.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[2023, 2024, 2025])
    p.add_argument(
        "--modes", nargs="+", default=["torch", "torch-bulk"], choices=["torch", "torch-bulk"]
    )
    args = p.parse_args()
    if not (ROOT.parent / "shared/data/Frappe_x1_rebuilt").is_dir():
        print("skipped: ../shared/data/Frappe_x1_rebuilt not found", file=sys.stderr)
        return 0
    results = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for seed in args.seeds:
        for mode in args.modes:
            key = f"{mode}-{seed}"
            if key in results:
                continue
            FastDropout.use_torch_dropout = False
            config = load_run_config(
                ROOT / "configs/frappe_x1/tf4ctr.yaml",
                [
                    f"train.seed={seed}",
                    "train.progress=false",
                    f"train.fast_dropout={str(mode == 'torch-bulk').lower()}",
                ],
            )
            with tempfile.TemporaryDirectory() as tmp:
                m = run.train(config, run_dir=Path(tmp) / "run", progress=False).metrics
            secs = sorted(e["train_seconds"] for e in m["epochs"])
            results[key] = {
                "mode": mode,
                "seed": seed,
                "test": m["test"],
                "best_epoch": m["best_epoch"],
                "seconds_per_epoch": secs[len(secs) // 2],
            }
            OUT.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(OUT, json.dumps(results, indent=2) + "\n")
            print(f"{key}: test auc {m['test']['auc']:.5f}", file=sys.stderr, flush=True)

    print("TF4CTR on Frappe_x1 (rebuilt train, real valid/test), paper settings")
    print(
        "| dropout | seeds | test AUC | test gAUC | test logloss | s/epoch |\n|---|---|---|---|---|---|"
    )
    aucs = {}
    labels = {
        "torch": "torch nn.Dropout",
        "torch-bulk": "FastDropout (torch-bulk mask)",
        "numpy-sfc64": "earlier FastDropout (numpy SFC64 mask)",
    }
    for mode, label in labels.items():
        rows = [r for r in results.values() if r["mode"] == mode and r["seed"] in args.seeds]
        if not rows:
            continue
        aucs[mode] = [r["test"]["auc"] for r in rows]

        def ms(xs, d=4):
            return (
                f"{statistics.mean(xs):.{d}f} ± {statistics.stdev(xs):.{d}f}"
                if len(xs) > 1
                else f"{xs[0]:.{d}f}"
            )

        print(
            f"| {label} | {len(rows)} | {ms(aucs[mode])} | {ms([r['test']['gauc'] for r in rows])} | "
            f"{ms([r['test']['logloss'] for r in rows])} | {ms([r['seconds_per_epoch'] for r in rows], 1)} |"
        )
    for mode in ("torch-bulk", "numpy-sfc64"):
        if len(aucs.get("torch", [])) > 1 and len(aucs.get(mode, [])) > 1:
            t = stats.ttest_ind(aucs[mode], aucs["torch"], equal_var=False)
            print(
                f"Welch t-test on test AUC ({mode} vs torch): t = {t.statistic:.2f}, p = {t.pvalue:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
