"""What int8 weights cost in accuracy: one trained TF4CTR, its float and its int8 ONNX export,
both scoring Frappe_x1's whole test split from the raw CSV.

    python benchmarks/quantize_accuracy.py                 # trains the paper's config first
    python benchmarks/quantize_accuracy.py --run RUN_DIR   # or measures a finished run

By default the model is configs/frappe_x1/tf4ctr.yaml (the paper's Frappe sizes, seed 2023,
rebuilt train), trained to its early stop under .bench-data/quantize/ (a folder this benchmark
marks as its own) and reused. Both graphs are exported from that run (``tf4ctr export``, then
``--quantize int8``) and scored through the server's own loading path (RowEncoder + ONNX
Runtime), so these are the scores ``tf4ctr serve`` would give. Prints and writes
benchmarks/results/quantize_accuracy.json: test AUC, gAUC (by user) and log loss of each graph,
the run's own test metrics (PyTorch) beside them, and how far the int8 scores move. No timing
here: latency is benchmarks/serve_load.py's (``--quantize int8``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from owned import MARKER, make_owned  # noqa: E402

CONFIG = ROOT / "configs" / "frappe_x1" / "tf4ctr.yaml"
TEST = ROOT.parent / "shared" / "data" / "Frappe_x1_rebuilt" / "test.csv"


def _tf4ctr(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-m", "tf4ctr", *args], check=True, env=env)


def trained_run(work: Path) -> Path:
    run = work / "frappe-tf4ctr"
    if (run / "metrics.json").is_file() and (work / MARKER).is_file():
        return run
    make_owned(work)
    _tf4ctr("train", "--config", str(CONFIG), f"output_dir={work}", f"cache_dir={work / 'cache'}",
            "name=frappe-tf4ctr", "--no-progress")  # fmt: skip
    return run


def scores(export: Path, rows: list[dict[str, str]]) -> tuple[np.ndarray, str]:
    from tf4ctr.server.model import load_model

    model = load_model(export)
    out = [
        model.score(*model.encoder.encode(rows[i : i + 4096])) for i in range(0, len(rows), 4096)
    ]
    return np.concatenate(out), model.weights


def metrics(label: np.ndarray, prob: np.ndarray, group: np.ndarray) -> dict[str, float]:
    from tf4ctr.train.metrics import auc, group_auc, log_loss

    return {
        "auc": round(auc(label, prob), 6),
        "gauc": round(group_auc(label, prob, group), 6),
        "logloss": round(log_loss(label, prob), 6),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="a finished Frappe_x1 run (default: train one)")
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "quantize_accuracy.json"
    )
    args = p.parse_args()
    if not TEST.is_file():
        sys.exit(f"{TEST}: Frappe_x1's test split not found under ../shared/data")
    work = ROOT / ".bench-data" / "quantize"
    run = args.run or trained_run(work)
    exports = work / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (work / MARKER).touch()
    plain, int8 = exports / "float.onnx", exports / "int8.onnx"
    _tf4ctr("export", str(run), "--format", "onnx", "--output", str(plain))
    _tf4ctr("export", str(run), "--format", "onnx", "--quantize", "int8", "--output", str(int8))

    with TEST.open(newline="") as f:
        rows = list(csv.DictReader(f))
    label = np.array([float(r.pop("label")) for r in rows])
    group = np.unique([r["user"] for r in rows], return_inverse=True)[1]
    got: dict[str, Any] = {}
    prob = {}
    for name, export in (("float32", plain), ("int8", int8)):
        prob[name], weights = scores(export, rows)
        got[name] = {"weights": weights, **metrics(label, prob[name], group)}
    gap = np.abs(prob["int8"] - prob["float32"])
    torch_test = json.loads((run / "metrics.json").read_text())["test"]
    result = {
        "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
        "config": str(CONFIG.relative_to(ROOT)) if args.run is None else "the run's own",
        "test_rows": len(rows),
        "pytorch_test": {k: round(float(torch_test[k]), 6) for k in ("auc", "gauc", "logloss")},
        "onnx": got,
        "int8_minus_float32": {
            k: round(got["int8"][k] - got["float32"][k], 6) for k in ("auc", "gauc", "logloss")
        },  # fmt: skip
        "score_gap": {
            "max": round(float(gap.max()), 6),
            "mean": round(float(gap.mean()), 6),
            "p99": round(float(np.percentile(gap, 99)), 6),
        },
        "command": "python benchmarks/quantize_accuracy.py"
        + (f" --run {args.run}" if args.run else ""),  # fmt: skip
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
