"""GPU smoke test: train, interrupt, resume and score on ``cuda`` (exits 0 with a note without one).

    python benchmarks/gpu_smoke.py [--rows 20000]

On SYNTHETIC demo data (tf4ctr's generator): TF4CTR trains 3 epochs on the GPU, a second run is
stopped after epoch 1 and resumed, and both must end with the same test metrics; the saved
model, loaded on the CPU, must score the test split like the GPU did (AUC within 1e-4, since
the two devices sum in different orders). Prints one line per check and exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from tf4ctr import run
from tf4ctr.config import parse_run_config
from tf4ctr.data.synthetic import SyntheticSpec, write_synthetic_dataset
from tf4ctr.run.record import add_after_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="training rows")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_smoke: skipped, torch sees no CUDA device")
        return 0
    print(f"gpu_smoke: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    failures = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal failures
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dataset = write_synthetic_dataset(root / "data", SyntheticSpec(n_train=args.rows))
        raw = {
            "name": "whole",
            "dataset": str(dataset.source),
            "model": {"name": "tf4ctr", "embedding_dim": 8},
            "loss": {"name": "tf"},
            "train": {"epochs": 3, "patience": 5, "batch_size": 1024, "device": "cuda",
                      "progress": False},
            "output_dir": str(root / "runs"),
            "cache_dir": str(root / "cache"),
        }  # fmt: skip
        whole = run.train(parse_run_config(raw))
        check("device", whole.metrics["device"].startswith("cuda"), whole.metrics["device"])

        cut = parse_run_config({**raw, "name": "cut"})

        def stop_after_first(epoch, path):
            if epoch == 1:
                raise KeyboardInterrupt

        remove_hook = add_after_checkpoint(stop_after_first)
        try:
            run.train(cut)
        except run.RunInterrupted as exc:
            check("interrupt", exc.epochs_done == 1, str(exc))
        finally:
            remove_hook()
        resumed = run.train(cut, resume=True)
        same = resumed.metrics["test"]["auc"] == whole.metrics["test"]["auc"]
        check(
            "resume",
            same,
            f"test AUC {resumed.metrics['test']['auc']:.6f} vs {whole.metrics['test']['auc']:.6f}",
        )
        cpu = run.evaluate(whole.run_dir)["test"]["auc"]
        gpu = whole.metrics["test"]["auc"]
        check("cpu scoring", abs(cpu - gpu) <= 1e-4, f"test AUC on CPU {cpu:.6f}, on GPU {gpu:.6f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
