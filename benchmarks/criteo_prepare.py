"""Criteo-scale preprocessing: wall time and peak memory of ``tf4ctr data prepare``.

1. Writes (once, then reuses) a SYNTHETIC Criteo-shaped dataset of ``--rows`` rows
   (default 45,840,617, the real Kaggle train.txt) with ``tf4ctr data synth criteo``,
   split 8:1:1, and runs ``tf4ctr data prepare`` on it into a fresh cache.
2. Takes a ``--slice-rows`` slice of the same train.txt (default 2,000,000, split
   8:1:1) and, side by side on it, alternates ``tf4ctr data prepare`` with FuxiCTR
   2.3.10's own Criteo preprocessing (``benchmarks/fuxictr_prepare_worker.py`` under the
   FuxiCTR benchmark environment, created by fuxictr_env.py if missing). Both get the
   same rows and bytes: ours the headerless TSV, FuxiCTR the same lines under a header.

Every run is a fresh subprocess. Memory is the peak of the summed PSS of the run's whole
process tree (FuxiCTR's Ray Data starts worker processes), sampled every 0.2 s, and
the largest RSS of a single process; time is wall clock. Prints one table and writes
benchmarks/results/criteo_prepare.json.

    python benchmarks/criteo_prepare.py                         # full + slice (~45 GB disk)
    python benchmarks/criteo_prepare.py --rows 4000000          # a smaller "full" run
    python benchmarks/criteo_prepare.py --skip-full             # slice comparison only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from fuxictr_worker import _pss_kb, proc_kb, process_tree  # noqa: E402

HEADER = "\t".join(["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))])


def _rss_kb(pid: int) -> int:
    return proc_kb(pid, "status", "VmRSS")


def measure(cmd: list[str], env: dict | None = None) -> dict:
    """Run ``cmd``; wall seconds, peak tree PSS (MB), peak single-process RSS (MB), peak tree
    anonymous memory (MB: the processes' own, not file pages the kernel can drop), stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peaks = {"pss": 0.0, "rss": 0.0, "anon": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            pids = process_tree(proc.pid)
            peaks["pss"] = max(peaks["pss"], sum(_pss_kb(p) for p in pids) / 1024)
            peaks["rss"] = max(peaks["rss"], max((_rss_kb(p) for p in pids), default=0) / 1024)
            anon = sum(proc_kb(p, "status", "RssAnon") for p in pids) / 1024
            peaks["anon"] = max(peaks["anon"], anon)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return {
        "wall_s": seconds,
        "peak_pss_mb": peaks["pss"],
        "peak_rss_mb": peaks["rss"],
        "peak_anon_mb": peaks["anon"],
        "stdout": out,
    }


def tf4ctr_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tf4ctr", *args]


def ensure_synthetic(directory: Path, rows: int, seed: int) -> None:
    marker = directory / "dataset.yaml"
    if marker.is_file() and f"--rows {rows} " in marker.read_text():
        print(f"reusing {directory}")
        return
    shutil.rmtree(directory, ignore_errors=True)
    print(f"writing {rows:,} SYNTHETIC rows to {directory} ...", flush=True)
    subprocess.run(
        tf4ctr_cmd("data", "synth", "criteo", "--rows", str(rows), "--dir", str(directory),
                   "--seed", str(seed)),
        check=True,
    )  # fmt: skip


def make_slice(full: Path, rows: int, ours: Path, theirs: Path) -> None:
    """First ``rows`` lines of full/train.txt, split 8:1:1, as TSV (ours) and TSV+header (FuxiCTR)."""
    stamp = ours / "slice.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == {"rows": rows, "source": str(full)}:
        return
    for d in (ours, theirs):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    sizes = {"train": rows - 2 * (rows // 10), "valid": rows // 10, "test": rows // 10}
    with open(full / "train.txt", "rb") as src:
        for split, n in sizes.items():
            lines = [src.readline() for _ in range(n)]
            (ours / f"{split}.txt").write_bytes(b"".join(lines))
            (theirs / f"{split}.csv").write_bytes(HEADER.encode() + b"\n" + b"".join(lines))
    text = (full / "dataset.yaml").read_text()
    (ours / "dataset.yaml").write_text(text.replace("criteo_synthetic:", "criteo_synthetic_slice:"))
    stamp.write_text(json.dumps({"rows": rows, "source": str(full)}))


def ours_prepare(config: Path, cache: Path) -> dict:
    shutil.rmtree(cache, ignore_errors=True)
    result = measure(tf4ctr_cmd("data", "prepare", str(config), "--cache-dir", str(cache),
                                "--no-progress"))  # fmt: skip
    result["summary"] = result.pop("stdout").strip().splitlines()[0]
    shutil.rmtree(cache, ignore_errors=True)
    return result


def fuxictr_prepare(python: Path, data: Path, work: Path) -> dict:
    env = dict(os.environ, RAY_DISABLE_IMPORT_WARNING="1", RAY_USAGE_STATS_ENABLED="0")
    result = measure(
        [str(python), str(HERE / "fuxictr_prepare_worker.py"), "--data-dir", str(data),
         "--work-dir", str(work)],
        env=env,
    )  # fmt: skip
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=45_840_617)
    parser.add_argument("--slice-rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs on the slice")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench-data" / "criteo_synth")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-fuxictr", action="store_true")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "criteo_prepare.json")
    args = parser.parse_args()

    full = args.data_dir / f"full-{args.rows}"
    work = args.data_dir / "work"
    ensure_synthetic(full, args.rows, args.seed)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": args.rows,
        "slice_rows": args.slice_rows,
        "data": "SYNTHETIC Criteo-shaped (tf4ctr data synth criteo)",
    }
    if not args.skip_full:
        print(f"tf4ctr data prepare on {args.rows:,} rows ...", flush=True)
        report["full"] = ours_prepare(full / "dataset.yaml", work / "cache-full")
        print(f"  {report['full']}", flush=True)

    ours_dir, theirs_dir = args.data_dir / "slice-tf4ctr", args.data_dir / "slice-fuxictr"
    make_slice(full, args.slice_rows, ours_dir, theirs_dir)
    runs: dict[str, list[dict]] = {"tf4ctr": [], "fuxictr": []}
    fuxi_python = None
    if not args.skip_fuxictr:
        from fuxictr_env import ensure_fuxictr_env

        fuxi_python = ensure_fuxictr_env(ROOT)
    for i in range(args.repeats):
        print(f"slice, repeat {i + 1}/{args.repeats} ...", flush=True)
        runs["tf4ctr"].append(ours_prepare(ours_dir / "dataset.yaml", work / "cache-slice"))
        if fuxi_python is not None:
            runs["fuxictr"].append(fuxictr_prepare(fuxi_python, theirs_dir, work / "fuxictr"))
    report["slice"] = runs

    def med(name: str, key: str) -> float | None:
        values = [r[key] for r in runs[name]]
        return statistics.median(values) if values else None

    lines = [
        f"{'run':<34}{'wall s':>10}{'peak PSS MB':>14}{'max RSS MB':>13}",
    ]
    if "full" in report:
        f = report["full"]
        lines.append(f"{f'tf4ctr, {args.rows:,} rows':<34}{f['wall_s']:>10.1f}"
                     f"{f['peak_pss_mb']:>14.0f}{f['peak_rss_mb']:>13.0f}")  # fmt: skip
    for name in ("tf4ctr", "fuxictr"):
        if runs[name]:
            lines.append(
                f"{f'{name}, {args.slice_rows:,}-row slice':<34}{med(name, 'wall_s'):>10.1f}"
                f"{med(name, 'peak_pss_mb'):>14.0f}{med(name, 'peak_rss_mb'):>13.0f}"
            )
    if runs["fuxictr"]:
        ratio_t = med("fuxictr", "wall_s") / med("tf4ctr", "wall_s")
        ratio_m = med("fuxictr", "peak_pss_mb") / med("tf4ctr", "peak_pss_mb")
        report["slice_ratio"] = {
            "time_fuxictr_over_tf4ctr": ratio_t,
            "memory_fuxictr_over_tf4ctr": ratio_m,
        }
        lines.append(f"slice: tf4ctr is {ratio_t:.2f}x faster and uses {ratio_m:.2f}x less memory "
                     f"(medians of {args.repeats})")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    report["table"] = table
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
