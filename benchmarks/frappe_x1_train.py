"""Train TF4CTR and DualMLP on Frappe_x1 and print test metrics and seconds per epoch.

Frappe_x1 here = REBUILT train (real positives, re-drawn negatives) + the REAL BARS
valid/test splits, from ../shared/data/Frappe_x1_rebuilt (see its PROVENANCE.md).

    python benchmarks/frappe_x1_train.py [--models tf4ctr dualmlp] [--out benchmarks/results/frappe_x1_train.json] [key=value ...]

Both models run in this one process, one after the other, with the same thread
count; their seconds per epoch are comparable with each other (a ratio), and
only roughly with runs made on another machine or at a busier time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from tf4ctr import run
from tf4ctr.config import load_run_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "tf4ctr": ROOT / "configs/frappe_x1/tf4ctr.yaml",
    "dualmlp": ROOT / "configs/frappe_x1/dualmlp.yaml",
}
PAPER_TEST_AUC = {"tf4ctr": 0.9872, "dualmlp": 0.9837}  # Table IV / II, original split


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/frappe_x1_train.json"))
    parser.add_argument("--runs-dir", default=str(ROOT / "runs/bench"))
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = parser.parse_args()
    data_dir = ROOT.parent / "shared/data/Frappe_x1_rebuilt"
    if not data_dir.is_dir():
        print(f"skipped: {data_dir} not found", file=sys.stderr)
        return 0

    rows = {}
    for name in args.models:
        config = load_run_config(
            CONFIGS[name], [*args.overrides, f"output_dir={args.runs_dir}", "train.progress=false"]
        )
        start = time.perf_counter()
        result = run.train(config, overwrite=True, progress=False)
        wall = time.perf_counter() - start
        m = result.metrics
        epoch_seconds = [e["train_seconds"] for e in m["epochs"]]
        rows[name] = {
            "test": m["test"],
            "valid": m["valid"],
            "best_epoch": m["best_epoch"],
            "epochs_run": len(m["epochs"]),
            "seconds_per_epoch_median": statistics.median(epoch_seconds),
            "train_samples_per_second": 202_027 / statistics.median(epoch_seconds),
            "wall_seconds": wall,
            "parameters": m["parameters"],
            "paper_test_auc_original_split": PAPER_TEST_AUC[name],
        }

    print("Frappe_x1 (rebuilt train, real valid/test), one seed")
    print(
        f"{'model':<10}{'test AUC':>10}{'test gAUC':>11}{'logloss':>9}{'best ep':>9}{'s/epoch':>9}{'params':>10}{'paper AUC':>11}"
    )
    for name, r in rows.items():
        t = r["test"]
        print(
            f"{name:<10}{t['auc']:>10.4f}{t.get('gauc', float('nan')):>11.4f}{t['logloss']:>9.4f}"
            f"{r['best_epoch']:>9d}{r['seconds_per_epoch_median']:>9.2f}{r['parameters']:>10,}"
            f"{r['paper_test_auc_original_split']:>11.4f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor(),
        },
        "overrides": args.overrides,
        "results": rows,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
