"""Every registered model exported to ONNX: largest difference from eager PyTorch, file size.

    python benchmarks/export_parity.py

Each model with its default settings on Frappe_x1's schema (from the encoded cache when it is
there, else ten made-up fields), random weights, 10,000 rows of random ids; ONNX Runtime's
probabilities against eager PyTorch's. Prints a table; writes benchmarks/results/export_parity.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import ROOT, schema  # noqa: E402


def main() -> int:
    import onnxruntime as ort

    from tf4ctr.errors import UserError
    from tf4ctr.export import Scorer, export_model
    from tf4ctr.models import available_models, build_model

    sch, schema_name = schema()
    f, n = sum(sch.widths), len(sch.numeric)
    vocab = torch.tensor(sch.vocab_sizes)
    gen = torch.Generator().manual_seed(1)
    cat = (torch.rand(10_000, f, generator=gen) * vocab).long()
    num = torch.rand(10_000, n, generator=gen)
    rows = {}
    print(f"{schema_name} schema, 10,000 rows")
    print("| model | max abs diff | ONNX size (KB) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in available_models():
            torch.manual_seed(0)
            model = build_model(name, sch).eval()
            try:
                path = export_model(model, f, n, "onnx", Path(tmp) / f"{name}.onnx")
            except UserError as exc:
                rows[name] = {"error": str(exc)}
                print(f"| {name} | not exportable: {exc} | – |")
                continue
            with torch.inference_mode():
                eager = Scorer(model)(cat, num).numpy()
            got = ort.InferenceSession(str(path)).run(
                None, {"categorical": cat.numpy(), "numeric": num.numpy()}
            )[0]
            diff = float(np.abs(got - eager).max())
            rows[name] = {"max_abs_diff": diff, "onnx_kb": path.stat().st_size / 1024}
            print(f"| {name} | {diff:.1e} | {path.stat().st_size / 1024:,.0f} |")
    out = ROOT / "benchmarks/results/export_parity.json"
    out.write_text(
        json.dumps({"schema": schema_name, "rows": 10_000, "models": rows}, indent=1) + "\n"
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
