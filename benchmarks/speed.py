"""Training and inference speed of tf4ctr against FuxiCTR 2.3.10, side by side in one run.

    python benchmarks/speed.py [--models dnn dualmlp deepfm dcnv2 tf4ctr] [--repeats 3]
                               [--epochs 1] [--threads 2] [--no-fuxictr]

Data: Frappe_x1 (REBUILT train, 202,027 rows; real valid, 57,722 rows) at the paper's
settings (batch 10,000, embedding 16, [400,400,400], batch norm, dropout 0.2).
Every measurement is a fresh subprocess (so peak RSS is per run); ours and theirs
alternate, model by model, repeat by repeat, and the table quotes medians and the
ratio ours / theirs. The dense matmul rate torch reaches on this machine, with the
same thread count, is measured in this run too, before and after, and the training
FLOP rate (analytic FLOPs per sample × samples/s, see flops.py) is quoted against it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
FUXI_MODELS = {"dnn": "DNN", "dualmlp": "DualMLP", "deepfm": "DeepFM", "dcnv2": "DCNv2"}


def matmul_gflops(
    threads: int, m: int = 10_000, k: int = 400, n: int = 400, seconds: float = 3.0
) -> float:
    """Dense fp32 matmul rate at the shape of the models' hidden layers."""
    torch.set_num_threads(threads)
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - start) / 1e9


def run_worker(cmd: list[str]) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    return json.loads(lines[-1])


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None and "error" not in r]
    return statistics.median(values) if values else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["dnn", "dualmlp", "deepfm", "dcnv2", "tf4ctr"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-fuxictr", action="store_true")
    p.add_argument(
        "--extra", nargs="*", default=[], help="extra flags for our worker, e.g. --compile"
    )
    p.add_argument("--out", default=str(HERE / "results" / "speed.json"))
    args = p.parse_args()
    if not (ROOT.parent / "shared/data/Frappe_x1_rebuilt/train.csv").is_file():
        print("skipped: ../shared/data/Frappe_x1_rebuilt not found", file=sys.stderr)
        return 0

    fuxi_python = None
    if not args.no_fuxictr:
        sys.path.insert(0, str(HERE))
        from fuxictr_env import ensure_fuxictr_env

        fuxi_python = ensure_fuxictr_env(ROOT)

    rates = [matmul_gflops(args.threads)]
    results: dict[str, dict[str, list[dict]]] = {m: {"ours": [], "theirs": []} for m in args.models}
    for r in range(args.repeats):
        for model in args.models:
            ours = [
                sys.executable,
                str(HERE / "tf4ctr_worker.py"),
                "--model",
                model,
                "--epochs",
                str(args.epochs),
                "--threads",
                str(args.threads),
                *args.extra,
            ]
            results[model]["ours"].append(run_worker(ours))
            print(f"repeat {r + 1} {model} ours: {results[model]['ours'][-1]}", file=sys.stderr)
            if fuxi_python and model in FUXI_MODELS:
                theirs = [
                    str(fuxi_python),
                    str(HERE / "fuxictr_worker.py"),
                    "--model",
                    FUXI_MODELS[model],
                    "--epochs",
                    str(args.epochs),
                    "--threads",
                    str(args.threads),
                ]
                results[model]["theirs"].append(run_worker(theirs))
                print(
                    f"repeat {r + 1} {model} theirs: {results[model]['theirs'][-1]}",
                    file=sys.stderr,
                )
    rates.append(matmul_gflops(args.threads))
    matmul = statistics.median(rates)

    def fmt(x, spec=",.0f"):
        return "–" if x is None else format(x, spec)

    print(
        f"\nFrappe_x1 (rebuilt train), batch 10,000, {args.threads} threads, {args.repeats} repeats "
        f"(medians); torch {torch.__version__}; matmul {matmul:.1f} GFLOP/s "
        f"(runs: {', '.join(f'{x:.1f}' for x in rates)})"
    )
    head = (
        "model",
        "train/s ours",
        "train/s FuxiCTR",
        "ratio",
        "eval/s ours",
        "eval/s FuxiCTR",
        "ratio",
        "s/epoch ours",
        "GFLOP/s",
        "% matmul",
        "RSS MB ours",
        "RSS MB FuxiCTR",
    )
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    summary = {}
    for model, runs in results.items():
        o, t = runs["ours"], runs["theirs"]
        tr_o, tr_t = median(o, "train_samples_per_s"), median(t, "train_samples_per_s")
        ev_o, ev_t = median(o, "eval_samples_per_s"), median(t, "eval_samples_per_s")
        flops = median(o, "train_flops_per_sample")
        gflops = tr_o * flops / 1e9 if tr_o and flops else None
        row = {
            "train_samples_per_s": {
                "ours": tr_o,
                "fuxictr": tr_t,
                "ratio": tr_o / tr_t if tr_o and tr_t else None,
            },
            "eval_samples_per_s": {
                "ours": ev_o,
                "fuxictr": ev_t,
                "ratio": ev_o / ev_t if ev_o and ev_t else None,
            },
            "seconds_per_epoch": median(o, "seconds_per_epoch"),
            "train_gflops": gflops,
            "fraction_of_matmul": gflops / matmul if gflops else None,
            "peak_rss_mb": {"ours": median(o, "peak_rss_mb"), "fuxictr": median(t, "peak_rss_mb")},
            "valid_auc_after_epochs": {
                "ours": median(o, "valid_auc"),
                "fuxictr": median(t, "valid_auc"),
            },
        }
        summary[model] = row
        print(
            "| "
            + " | ".join(
                [
                    model,
                    fmt(tr_o),
                    fmt(tr_t),
                    fmt(row["train_samples_per_s"]["ratio"], ".2f"),
                    fmt(ev_o),
                    fmt(ev_t),
                    fmt(row["eval_samples_per_s"]["ratio"], ".2f"),
                    fmt(row["seconds_per_epoch"], ".2f"),
                    fmt(gflops, ".1f"),
                    fmt(None if gflops is None else 100 * row["fraction_of_matmul"], ".0f"),
                    fmt(row["peak_rss_mb"]["ours"]),
                    fmt(row["peak_rss_mb"]["fuxictr"]),
                ]
            )
            + " |"
        )
    from tf4ctr.fileio import write_json_atomic

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        {
            "machine": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "cpus": os.cpu_count(),
                "threads": args.threads,
            },
            "matmul_gflops": rates,
            "args": vars(args),
            "summary": summary,
            "runs": results,
        },
        out,
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
