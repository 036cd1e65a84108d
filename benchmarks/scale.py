"""Scale-out figures in one run: DDP 1 vs 2 ranks, an out-of-core epoch, streaming predict.

    python benchmarks/scale.py                      # the full 45.8M-row synthetic Criteo table
    python benchmarks/scale.py --rows 2000000       # a smaller table (a quick check)

1. DDP on Frappe_x1 (REBUILT train, ../shared/data): TF4CTR with the paper's Frappe setting,
   two epochs, as one plain process (2 threads), as torchrun with 1 rank, and as torchrun with
   2 ranks of 1 thread each; training samples/s from the median epoch. On a 2-core machine this
   shows what DDP costs (the gradient all-reduce, a second process), not a speed-up: one
   process already uses both cores.
2. One out-of-core epoch over the SYNTHETIC Criteo-shaped table (``tf4ctr data synth criteo``,
   written once and reused, with its encoded cache in DATA/cache; its clicks are synthetic, so
   no accuracy is reported): TF4CTR with the paper's Criteo setting (embedding 16, batch 4096,
   WSF), ``train.memory_map=true`` and ``train.sparse_embedding=true`` (28.7M parameters, 27.9M
   of them embedding rows: dense Adam would rewrite every row every step, 6.0k samples/s here
   against 10.0k with lazy row-wise Adam, so an epoch would take 101 min instead of 61);
   wall time, samples/s, peak resident memory and its anonymous part (the process's own memory,
   as opposed to file pages of the memory-mapped cache the kernel can drop); then, in this
   process, the samples/s of the step's matrix products alone at the model's layer shapes
   (``flops.matmul_only_seconds``) and ``matmul_fraction``, the epoch's samples/s over it.
3. ``tf4ctr predict`` of the table's test split with that run, to parquet: rows/s and peak
   memory.

Memory is sampled every 0.2 s (``criteo_prepare.measure``): the largest single process's RSS,
and anonymous memory summed over the process tree (torchrun starts children). Run it
on an idle machine; prints one table and writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from criteo_prepare import holds_synthetic, measure  # noqa: E402
from flops import matmul_only_seconds  # noqa: E402


def tf4ctr(*args: str) -> list[str]:
    return [sys.executable, "-m", "tf4ctr", *args]


def torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", "-m", "tf4ctr", *args]  # fmt: skip


def ddp(work: Path) -> dict | None:
    if not (ROOT.parent / "shared/data/Frappe_x1_rebuilt").is_dir():
        print("DDP: skipped (../shared/data/Frappe_x1_rebuilt not found)", file=sys.stderr)
        return None
    config = str(ROOT / "configs/frappe_x1/tf4ctr.yaml")
    common = ["train", "--config", config, "train.epochs=2", "train.patience=5", "--no-progress",
              f"output_dir={work / 'runs'}", f"cache_dir={ROOT / '.tf4ctr-cache'}"]  # fmt: skip
    out = {}
    for label, cmd, threads in (
        ("1 process, 2 threads", tf4ctr(*common, "name=plain"), "2"),
        ("torchrun 1 rank, 2 threads", torchrun(1, *common, "name=ddp1"), "2"),
        ("torchrun 2 ranks, 1 thread each", torchrun(2, *common, "name=ddp2"), "1"),
    ):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        result = measure(cmd, env, pss=False)
        name = next(a for a in cmd if a.startswith("name=")).split("=", 1)[1]
        metrics = json.loads((work / "runs" / name / "metrics.json").read_text())
        seconds = statistics.median(e["train_seconds"] for e in metrics["epochs"])
        out[label] = {"train_rows": 202_027, "seconds_per_epoch": seconds,
                      "samples_per_s": 202_027 / seconds, "peak_rss_mb": result["peak_rss_mb"]}  # fmt: skip
    return out


def out_of_core(rows: int, data: Path, work: Path, save) -> dict:
    # a table of these rows already there (written by this script or by criteo_prepare.py:
    # `tf4ctr data synth` names its rows in the dataset.yaml) is reused
    if not holds_synthetic(data, rows):
        subprocess.run(tf4ctr("data", "synth", "criteo", "--rows", str(rows), "--dir", str(data),
                              "--no-progress"), check=True)  # fmt: skip
    # the encoded cache is kept beside the reused table (building it is not what is measured)
    cache = data / "cache"
    subprocess.run(tf4ctr("data", "prepare", str(data / "dataset.yaml"), "--cache-dir", str(cache),
                          "--no-progress"), check=True, capture_output=True)  # fmt: skip
    run_yaml = work / "criteo_run.yaml"
    run_yaml.write_text(
        "name: criteo-ooc\n"
        f"dataset: {data / 'dataset.yaml'}\n"
        "model: {name: tf4ctr, embedding_dim: 16, ssem: ser, fusion: wsf,"
        " simple_hidden_units: [400, 400], complex_hidden_units: [400, 400, 400], dropout: 0.2}\n"
        "loss: {name: tf, alpha: 0.35, c: 0.9, gamma: 1.0, embedding_l2: 1.0e-5}\n"
        "train: {batch_size: 4096, epochs: 1, lr: 1.0e-3, memory_map: true, sparse_embedding: true,"
        " monitor: auc}\n"
        f"output_dir: {work / 'runs'}\ncache_dir: {cache}\n"
    )
    result = measure(tf4ctr("train", "--config", str(run_yaml), "--no-progress"), pss=False)
    metrics = json.loads((work / "runs" / "criteo-ooc" / "metrics.json").read_text())
    train_rows = metrics_rows(cache, "train")
    epoch = metrics["epochs"][0]
    out = {
        "rows": rows,
        "train_rows": train_rows,
        "epoch": {
            "wall_s": result["wall_s"],
            "train_seconds": epoch["train_seconds"],
            "samples_per_s": train_rows / epoch["train_seconds"],
            "peak_rss_mb": result["peak_rss_mb"],
            "peak_anon_mb": result["peak_anon_mb"],
            "parameters": metrics["parameters"],
        },  # fmt: skip
    }
    out["epoch"].update(matmul_bound(run_yaml, batch_size=4096))
    out["epoch"]["matmul_fraction"] = (
        out["epoch"]["samples_per_s"] / out["epoch"]["matmul_bound_samples_per_s"]
    )
    save(out)  # an epoch of the full table is most of an hour: keep it if predict is cut short
    predict = measure(tf4ctr("predict", str(work / "runs" / "criteo-ooc"), "--input",
                             str(data / "test.txt"), "--output", str(work / "scores.parquet")), pss=False)  # fmt: skip
    test_rows = metrics_rows(cache, "test")
    return {
        **out,
        "predict": {
            "rows": test_rows,
            "wall_s": predict["wall_s"],
            "rows_per_s": test_rows / predict["wall_s"],
            "peak_rss_mb": predict["peak_rss_mb"],
            "peak_anon_mb": predict["peak_anon_mb"],
        },  # fmt: skip
    }


def matmul_bound(run_yaml: Path, batch_size: int) -> dict:
    """The samples/s of a step that did its matrix products and nothing else: the run's model
    (built from its config and the cache's vocabularies, in this process, after the epoch),
    each Linear's forward and two backward products at the step's shapes
    (flops.matmul_only_seconds)."""
    from tf4ctr.config import load_run_config
    from tf4ctr.data.store import prepare_dataset
    from tf4ctr.run.setup import configure_threads, model_for, resolve_dataset

    config = load_run_config(run_yaml)
    configure_threads(config.train.num_threads)
    prepared = prepare_dataset(resolve_dataset(config), Path(config.cache_dir), progress=False,
                               mapped=True)  # fmt: skip
    seconds = matmul_only_seconds(model_for(config, prepared.schema), prepared.schema, batch_size)
    return {"matmul_step_ms": seconds * 1e3, "matmul_bound_samples_per_s": batch_size / seconds}


def metrics_rows(cache: Path, split: str) -> int:
    (meta,) = cache.glob("*/meta.json")
    return int(json.loads(meta.read_text())["rows"][split])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=45_840_617, help="synthetic Criteo rows")
    parser.add_argument("--data", default=None,
                        help="where the synthetic table is written once and reused (default: "
                        ".bench-data/criteo_synth/full-ROWS, shared with criteo_prepare.py)")  # fmt: skip
    parser.add_argument("--skip-ddp", action="store_true",
                        help="only the Criteo part (the DDP figures already in --out are kept)")  # fmt: skip
    parser.add_argument("--out", default=str(HERE / "results/scale.json"))
    args = parser.parse_args()
    if args.data is None:
        args.data = str(ROOT / ".bench-data" / "criteo_synth" / f"full-{args.rows}")
    from tf4ctr.fileio import write_json_atomic

    results: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    out = Path(args.out)
    if args.skip_ddp and out.is_file():
        results["ddp_frappe"] = json.loads(out.read_text()).get("ddp_frappe")

    def save(part: str):
        def store(value: dict | None) -> None:
            results[part] = value
            write_json_atomic(results, Path(args.out))  # each part as soon as it is measured

        return store

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        work = Path(tmp)
        if not args.skip_ddp:
            save("ddp_frappe")(ddp(work))
        criteo = save("criteo_synthetic")
        criteo(out_of_core(args.rows, Path(args.data), work, criteo))
    print("| what | figure |")
    print("|---|---|")
    for label, r in (results.get("ddp_frappe") or {}).items():
        print(f"| Frappe_x1 TF4CTR, {label} | {r['samples_per_s']:,.0f} samples/s |")
    c = results["criteo_synthetic"]
    e, p = c["epoch"], c["predict"]
    print(f"| out-of-core epoch, {c['train_rows']:,} SYNTHETIC rows | {e['train_seconds']:.0f} s "
          f"training ({e['wall_s']:.0f} s wall), {e['samples_per_s']:,.0f} samples/s, peak RSS "
          f"{e['peak_rss_mb']:,.0f} MB (anonymous {e['peak_anon_mb']:,.0f} MB) |")  # fmt: skip
    print(f"| matrix products alone, same shapes | {e['matmul_bound_samples_per_s']:,.0f} samples/s;"
          f" matmul fraction {e['matmul_fraction']:.2f} |")  # fmt: skip
    print(f"| streaming predict, {p['rows']:,} rows to parquet | {p['rows_per_s']:,.0f} rows/s, "
          f"peak RSS {p['peak_rss_mb']:,.0f} MB (anonymous {p['peak_anon_mb']:,.0f} MB) |")  # fmt: skip
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
