"""Serving latency, side by side in one run: eager PyTorch vs ONNX Runtime vs torch.export.

    python benchmarks/serving.py [--model tf4ctr] [--repeats 200]

TF4CTR (or ``--model``) with the paper's Frappe sizes, built on Frappe_x1's schema when
../shared/data is present (else on a made-up schema of ten fields, said in the output),
random weights (latency does not depend on them). For batch 1, 64 and 4,096 the three
runtimes are timed in turn, ``--repeats`` calls each after a warm-up, all on the same inputs
and threads; prints p50 / p99 in milliseconds and writes benchmarks/results/serving.json.
Also prints each runtime's largest difference from eager. Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def schema():
    from tf4ctr.data.preprocess import FeatureSchema, FieldInfo

    meta = sorted((ROOT / ".tf4ctr-cache").glob("frappe_x1-*/meta.json"))
    if meta:
        return FeatureSchema.from_dict(json.loads(meta[0].read_text())["schema"]), "Frappe_x1"
    fields = tuple(FieldInfo(f"f{i}", "categorical", 1000) for i in range(10))
    return FeatureSchema(fields), "made-up (10 fields x 1,000 values)"


def percentiles(fn, repeats: int) -> tuple[float, float]:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def main() -> int:
    import onnxruntime as ort

    from tf4ctr.export import Scorer, export_model
    from tf4ctr.models import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tf4ctr")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/serving.json"))
    args = parser.parse_args()
    sch, schema_name = schema()
    torch.manual_seed(0)
    model = build_model(args.model, sch).eval()
    f, n = sum(sch.widths), len(sch.numeric)
    vocab = torch.tensor(sch.vocab_sizes)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_model(model, f, n, "onnx", Path(tmp) / "m.onnx")
        pt2_path = export_model(model, f, n, "torch-export", Path(tmp) / "m.pt2")
        session = ort.InferenceSession(str(onnx_path))
        exported = torch.export.load(pt2_path).module()
    scorer = Scorer(model).eval()
    rows = {}
    for batch in (1, 64, 4096):
        cat = (torch.rand(batch, f) * vocab).long()
        num = torch.rand(batch, n)
        feeds = {"categorical": cat.numpy(), "numeric": num.numpy()}

        def eager(cat=cat, num=num):
            with torch.inference_mode():
                return scorer(cat, num)

        def exported_call(cat=cat, num=num):
            with torch.inference_mode():
                return exported(cat, num)

        def onnx_call(feeds=feeds):
            return session.run(None, feeds)

        reference = eager().numpy()
        row = {}
        for name, fn, diff in (
            ("eager PyTorch", eager, 0.0),
            ("ONNX Runtime", onnx_call, np.abs(onnx_call()[0] - reference).max()),
            ("torch.export", exported_call, np.abs(exported_call().numpy() - reference).max()),
        ):  # fmt: skip
            p50, p99 = percentiles(fn, args.repeats)
            row[name] = {"p50_ms": p50, "p99_ms": p99, "max_abs_diff": float(diff)}
        rows[str(batch)] = row
    print(f"model {args.model} on the {schema_name} schema, {torch.get_num_threads()} threads")
    print("| batch | runtime | p50 ms | p99 ms | max abs diff vs eager |")
    print("|---|---|---|---|---|")
    for batch, row in rows.items():
        for name, r in row.items():
            print(
                f"| {batch} | {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['max_abs_diff']:.1e} |"
            )
    result = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "model": args.model, "schema": schema_name, "threads": torch.get_num_threads(),
              "batches": rows}  # fmt: skip
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
