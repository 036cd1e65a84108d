"""Training and inference speed of tf4ctr against FuxiCTR 2.3.10 and the official TF4CTR code, in one run.

    python benchmarks/speed.py [--models dnn dualmlp deepfm dcnv2 tf4ctr] [--repeats 3]
                               [--epochs 1] [--threads 2] [--no-fuxictr]
                               [--official-src DIR | --no-official] [--official-args "..."]

Data: Frappe_x1 (REBUILT train, 202,027 rows; real valid, 57,722 rows) at the paper's
settings (batch 10,000, embedding 16, [400,400,400], batch norm, dropout 0.2).
Every measurement is a fresh subprocess (so peak RSS is per run); ours and theirs
alternate, model by model, repeat by repeat, and the table quotes medians and the
ratio ours / theirs. The dense matmul rate torch reaches on this machine, with the
same thread count, is measured in this run too, before and after, and the training
FLOP rate (analytic FLOPs per sample × samples/s, see flops.py) is quoted against it ("%
matmul"). That rate is one forward product's shape (10,000 × 400 × 400); "% own matmul" instead
divides the time the step's own matrix products take alone — forward and both backward products
of every Linear at the step's shapes, timed by each worker after its run — by the step's time:
how much of a training step is matrix products and how much everything else. Evaluation's
FLOP rate (a third of training's FLOPs per sample: forward only) is quoted against the
single-shape rate, beside the share of it that 5× FuxiCTR's evaluation rate would take ("5x
eval needs"): above ~90 % the inference target asks for more than the matrix products alone
can give. Both count the layer-by-layer forward: with ``train.fold_embeddings`` (the default
since 2026-12-02) an MLP's first layer is a sum of table rows instead of a product, so our
evaluation does fewer operations than counted and its column is an effective rate that may
pass 100 %.

When ``tf4ctr`` is among the models, its runs also alternate with runs of the authors'
official TF4CTRv2 (github.com/salmon1802/TF4CTR, patched only to import; see
official_env.py and official_worker.py) at the same settings, and a second table gives
ours vs official. The official code comes from ``--official-src`` or
``$OFFICIAL_TF4CTR_SRC`` (a clone: work tree or bare git dir), else from the copy an
earlier run left in ``.bench-venv/official-tf4ctr/``; without any of these the script
stops before measuring anything (``--no-official`` leaves that comparison out).
``--official-args`` passes flags to the official worker (e.g. ``"--max-batches 5"``
for a quick check; such figures are not comparable).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
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


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "–" if x is None else format(x, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def side_by_side(ours: list[dict], theirs: list[dict], name: str) -> dict:
    """Medians of both sides' training and scoring rates, and ours / theirs."""
    out = {}
    for key in ("train_samples_per_s", "eval_samples_per_s"):
        a, b = median(ours, key), median(theirs, key)
        out[key] = {"ours": a, name: b, "ratio": ratio(a, b)}
    return out


def print_table(head: tuple[str, ...], rows: list[list[str]]) -> None:
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


def ours_parameter_count() -> int | None:
    """Trainable parameters of tf4ctr's TF4CTR as tf4ctr_worker.py builds it (a subprocess)."""
    code = (
        "from pathlib import Path\n"
        "from tf4ctr.data import load_dataset_config, prepare_dataset\n"
        "from tf4ctr.models import build_model\n"
        f"root = Path({str(ROOT)!r})\n"
        "cfg = load_dataset_config(root / 'configs/datasets/frappe_x1.yaml')\n"
        "data = prepare_dataset(cfg, root / '.tf4ctr-cache', progress=False)\n"
        "m = build_model('tf4ctr', data.schema, ssem='ser', fusion='wsf')\n"
        "print(sum(p.numel() for p in m.parameters() if p.requires_grad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    try:
        return int(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return None


def official_table(ours: list[dict], official: list[dict], args) -> dict:
    """Print TF4CTR ours vs the official code (medians) and return the record for the JSON."""
    ok = [r for r in official if "error" not in r]
    first = ok[0] if ok else {}
    source = first.get("official_source") or {}
    params_ours = ours_parameter_count()
    params_official = first.get("parameters")
    short = any(not r.get("full_epochs", True) for r in ok)
    print(
        f"\nTF4CTR (SER + WSF) ours vs the official code (salmon1802/TF4CTR "
        f"{str(source.get('commit') or source.get('digest') or '?')[:10]}, import patch only; "
        f"bundled FuxiCTR {first.get('versions', {}).get('bundled_fuxictr', '?')}, "
        f"DataLoader workers {first.get('num_workers', '?')}), {args.epochs} epoch(s) per run, "
        f"{len(ours)} / {len(official)} runs (medians); parameters ours "
        f"{fmt(params_ours)}, official {fmt(params_official)} (paper's log 711,996)"
        + ("; OFFICIAL RUNS STOPPED EARLY (--max-batches): not comparable" if short else "")
    )
    head = (
        "model",
        "train/s ours",
        "train/s official",
        "ratio",
        "eval/s ours",
        "eval/s official",
        "ratio",
        "s/epoch ours",
        "s/epoch official",
        "valid AUC ours",
        "valid AUC official",
        "RSS MB ours",
        "RSS MB official",
        "tree PSS MB official",
    )
    row = {
        **side_by_side(ours, official, "official"),
        "seconds_per_epoch": {
            "ours": median(ours, "seconds_per_epoch"),
            "official": median(official, "seconds_per_epoch"),
        },
        "valid_auc_after_epochs": {
            "ours": median(ours, "valid_auc"),
            "official": median(official, "valid_auc"),
        },
        "peak_rss_mb": {
            "ours": median(ours, "peak_rss_mb"),
            "official": median(official, "peak_rss_mb"),
        },
        "peak_tree_pss_mb_official": median(official, "peak_tree_pss_mb"),
        "parameters": {"ours": params_ours, "official": params_official, "paper_log": 711_996},
    }
    tr, ev = row["train_samples_per_s"], row["eval_samples_per_s"]
    print_table(
        head,
        [
            [
                "tf4ctr",
                fmt(tr["ours"]),
                fmt(tr["official"]),
                fmt(tr["ratio"], ".2f"),
                fmt(ev["ours"]),
                fmt(ev["official"]),
                fmt(ev["ratio"], ".2f"),
                fmt(row["seconds_per_epoch"]["ours"], ".2f"),
                fmt(row["seconds_per_epoch"]["official"], ".2f"),
                fmt(row["valid_auc_after_epochs"]["ours"], ".4f"),
                fmt(row["valid_auc_after_epochs"]["official"], ".4f"),
                fmt(row["peak_rss_mb"]["ours"]),
                fmt(row["peak_rss_mb"]["official"]),
                fmt(row["peak_tree_pss_mb_official"]),
            ]
        ],
    )
    errors = [r["error"] for r in official if "error" in r]
    if errors:
        print(f"official runs that failed: {len(errors)} (first: {errors[0]})")
    return {
        "source": source,
        "patch": first.get("official_patch"),
        "versions": first.get("versions"),
        "num_workers": first.get("num_workers"),
        "official_args": args.official_args,
        "summary": {"tf4ctr": row},
        "runs": official,
    }


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
    p.add_argument(
        "--no-official", action="store_true", help="leave out TF4CTR vs the official code"
    )
    p.add_argument(
        "--official-src",
        default=os.environ.get("OFFICIAL_TF4CTR_SRC"),
        help="clone of salmon1802/TF4CTR (default $OFFICIAL_TF4CTR_SRC, else the earlier copy)",
    )
    p.add_argument(
        "--official-args",
        default="",
        help='extra flags for official_worker.py, one string, e.g. "--max-batches 5"',
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

    official_python = official_checkout = None
    if not args.no_official and "tf4ctr" in args.models:
        sys.path.insert(0, str(HERE))
        from official_env import ensure_official_env

        try:
            official_python, official_checkout = ensure_official_env(ROOT, args.official_src)
        except RuntimeError as err:
            print(f"{err}\n(or run with --no-official)", file=sys.stderr)
            return 1
    official_runs: list[dict] = []

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
            if official_python and model == "tf4ctr":
                official = [
                    str(official_python),
                    str(HERE / "official_worker.py"),
                    "--checkout",
                    str(official_checkout),
                    "--epochs",
                    str(args.epochs),
                    "--threads",
                    str(args.threads),
                    *shlex.split(args.official_args),
                ]
                official_runs.append(run_worker(official))
                print(f"repeat {r + 1} tf4ctr official: {official_runs[-1]}", file=sys.stderr)
    rates.append(matmul_gflops(args.threads))
    matmul = statistics.median(rates)

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
        "% own matmul",
        "eval % matmul",
        "5x eval needs",
        "RSS MB ours",
        "RSS MB FuxiCTR",
    )
    summary, table = {}, []
    for model, runs in results.items():
        o, t = runs["ours"], runs["theirs"]
        row = side_by_side(o, t, "fuxictr")
        tr, ev = row["train_samples_per_s"], row["eval_samples_per_s"]
        flops = median(o, "train_flops_per_sample")
        gflops = tr["ours"] * flops / 1e9 if tr["ours"] and flops else None
        # Inference runs the forward products only, a third of training's (flops.py): how close
        # evaluation is to the matrix-product ceiling, and how close 5x FuxiCTR would have to be
        forward = flops / 3 if flops else None
        eval_share = ev["ours"] * forward / 1e9 / matmul if ev["ours"] and forward else None
        needed = 5 * ev["fuxictr"] * forward / 1e9 / matmul if ev["fuxictr"] and forward else None
        # the step's own matrix products alone (timed by the worker after its run) against the
        # whole step: the share of training time that is matrix products at the step's shapes
        own = [
            r["train_samples_per_s"] * r["matmul_only_s_per_sample"]
            for r in o
            if r.get("train_samples_per_s") and r.get("matmul_only_s_per_sample")
        ]
        own_share = statistics.median(own) if own else None
        row.update(
            seconds_per_epoch=median(o, "seconds_per_epoch"),
            fraction_of_own_matmul=own_share,
            train_gflops=gflops,
            fraction_of_matmul=gflops / matmul if gflops else None,
            eval_fraction_of_matmul=eval_share,
            eval_fraction_of_matmul_for_5x=needed,
            peak_rss_mb={"ours": median(o, "peak_rss_mb"), "fuxictr": median(t, "peak_rss_mb")},
            valid_auc_after_epochs={
                "ours": median(o, "valid_auc"),
                "fuxictr": median(t, "valid_auc"),
            },
        )
        summary[model] = row
        table.append(
            [
                model,
                fmt(tr["ours"]),
                fmt(tr["fuxictr"]),
                fmt(tr["ratio"], ".2f"),
                fmt(ev["ours"]),
                fmt(ev["fuxictr"]),
                fmt(ev["ratio"], ".2f"),
                fmt(row["seconds_per_epoch"], ".2f"),
                fmt(gflops, ".1f"),
                fmt(None if gflops is None else 100 * row["fraction_of_matmul"], ".0f"),
                fmt(None if own_share is None else 100 * own_share, ".0f"),
                fmt(None if eval_share is None else 100 * eval_share, ".0f"),
                fmt(None if needed is None else 100 * needed, ".0f"),
                fmt(row["peak_rss_mb"]["ours"]),
                fmt(row["peak_rss_mb"]["fuxictr"]),
            ]
        )
    print_table(head, table)
    official = (
        official_table(results["tf4ctr"]["ours"], official_runs, args) if official_python else None
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
            **({"official": official} if official else {}),
        },
        out,
    )
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
