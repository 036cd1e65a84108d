"""Criteo-scale preprocessing: rows/s and peak memory of ``tf4ctr data prepare``.

1. On a ``--slice-rows`` slice of a SYNTHETIC Criteo-shaped train.txt (default 2,000,000
   rows, split 8:1:1), alternates three preparations of the same rows: ``tf4ctr data
   prepare`` of this working tree ("new"), the same command of tf4ctr at ``--old-rev``
   ("old", exported with ``git archive`` into the data folder and run from there), and
   FuxiCTR 2.3.10's own Criteo preprocessing (``benchmarks/fuxictr_prepare_worker.py``
   under the FuxiCTR benchmark environment, created by fuxictr_env.py if missing). All get
   the same rows and bytes: tf4ctr the headerless TSV, FuxiCTR the same lines under a header.
2. With ``--full``: ``tf4ctr data prepare`` (new) on the whole synthetic table of ``--rows``
   rows (default 45,840,617, the real Kaggle train.txt; about 11 GB of text, written once
   and reused), against the issue 17 targets (<= 300 s, < 4 GB).

The slice is the first ``--slice-rows`` lines of the full table's train.txt when that table
exists (or ``--full`` is given), else of a smaller synthetic table written with the same
seed, whose rows follow the same law. Every run is a fresh subprocess. Memory is the peak
of the summed PSS of the run's whole process tree (FuxiCTR's Ray Data starts worker
processes), sampled every 0.2 s, and the largest RSS of a single process; time is wall
clock, and CPU is the user + system seconds of the waited-for processes. Prints one table
and writes benchmarks/results/criteo_prepare.json (``--output``); only measurements made on
an otherwise idle machine belong there.

    python benchmarks/criteo_prepare.py                   # slice: new vs old vs FuxiCTR
    python benchmarks/criteo_prepare.py --full            # and the full table (~25 GB disk)
    python benchmarks/criteo_prepare.py --skip-fuxictr --output /tmp/prepare.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from owned import make_owned, remove_owned  # noqa: E402
from peer_harness import _pss_kb, proc_kb, process_tree  # noqa: E402

from tf4ctr.fileio import write_text_atomic  # noqa: E402

HEADER = "\t".join(["label", *(f"I{i}" for i in range(1, 14)), *(f"C{i}" for i in range(1, 27))])
# The last commit before issue 17 made preprocessing faster: "old" in the slice table.
OLD_REV = "a86328e"
TARGET_RATIO, TARGET_FULL_S, TARGET_FULL_MB = 10.0, 300.0, 4096.0


def _rss_kb(pid: int) -> int:
    return proc_kb(pid, "status", "VmRSS")


def measure(cmd: list[str], env: dict | None = None, *, pss: bool = True) -> dict:
    """Run ``cmd``; wall seconds, CPU seconds (user + system of the waited-for processes),
    peak tree PSS (MB), peak single-process RSS (MB), peak tree anonymous memory (MB: the
    processes' own, not file pages the kernel can drop), stdout.

    ``pss=False`` leaves PSS out (0): reading it (``smaps_rollup``) walks every page table
    entry of the process, 130 ms of kernel time a read for a training run that maps a 5.7 GB
    cache, five reads a second, holding the lock its page faults need; sampled like that, the
    Criteo-shaped epoch ran at 20.7k instead of 29-30k samples/s. RSS and anonymous memory come
    from ``/proc/PID/status``, counters the kernel keeps, and cost nothing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peaks = {"pss": 0.0, "rss": 0.0, "anon": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            pids = process_tree(proc.pid)
            if pss:
                peaks["pss"] = max(peaks["pss"], sum(_pss_kb(p) for p in pids) / 1024)
            peaks["rss"] = max(peaks["rss"], max((_rss_kb(p) for p in pids), default=0) / 1024)
            anon = sum(proc_kb(p, "status", "RssAnon") for p in pids) / 1024
            peaks["anon"] = max(peaks["anon"], anon)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate()
    except BaseException:
        # Ctrl-C here must not leave the measured command running on its own: stop it the
        # way a user's Ctrl-C would (a tf4ctr run then keeps its finished epochs), then wait
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    seconds = time.perf_counter() - start
    done.set()
    thread.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "wall_s": seconds,
        "cpu_s": cpu,
        "peak_pss_mb": peaks["pss"],
        "peak_rss_mb": peaks["rss"],
        "peak_anon_mb": peaks["anon"],
        "stdout": out,
    }


def tf4ctr_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tf4ctr", *args]


def holds_synthetic(directory: Path, rows: int) -> bool:
    """Whether ``directory`` holds the synthetic table of ``rows`` rows (its dataset.yaml
    names the ``tf4ctr data synth`` command that wrote it)."""
    marker = directory / "dataset.yaml"
    return marker.is_file() and f"--rows {rows} " in marker.read_text()


def ensure_synthetic(directory: Path, rows: int, seed: int) -> None:
    if holds_synthetic(directory, rows):
        print(f"reusing {directory}")
        return
    make_owned(directory)  # an interrupted earlier write is removed, nothing else is
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
        make_owned(d)
    sizes = {"train": rows - 2 * (rows // 10), "valid": rows // 10, "test": rows // 10}
    with open(full / "train.txt", "rb") as src:
        for split, n in sizes.items():
            lines = [src.readline() for _ in range(n)]
            (ours / f"{split}.txt").write_bytes(b"".join(lines))
            (theirs / f"{split}.csv").write_bytes(HEADER.encode() + b"\n" + b"".join(lines))
    text = (full / "dataset.yaml").read_text()
    (ours / "dataset.yaml").write_text(text.replace("criteo_synthetic:", "criteo_synthetic_slice:"))
    stamp.write_text(json.dumps({"rows": rows, "source": str(full)}))


def export_old(rev: str, directory: Path) -> Path:
    """tf4ctr's ``src`` at git revision ``rev``, exported once into ``directory``/<rev>."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    target = directory / commit[:12]
    if not (target / "src" / "tf4ctr" / "__init__.py").is_file():
        make_owned(target)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True,
                                 capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "src"


def ours_prepare(config: Path, cache: Path, src: Path | None = None) -> dict:
    """``tf4ctr data prepare`` into a fresh cache; of the tf4ctr in ``src`` when given."""
    make_owned(cache)
    env = None
    if src is not None:
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])
        )
    result = measure(tf4ctr_cmd("data", "prepare", str(config), "--cache-dir", str(cache),
                                "--no-progress"), env=env)  # fmt: skip
    result["summary"] = result.pop("stdout").strip().splitlines()[0]
    remove_owned(cache)
    return result


def fuxictr_prepare(python: Path, data: Path, work: Path) -> dict:
    env = dict(os.environ, RAY_DISABLE_IMPORT_WARNING="1", RAY_USAGE_STATS_ENABLED="0")
    result = measure(
        [str(python), str(HERE / "fuxictr_prepare_worker.py"), "--data-dir", str(data),
         "--work-dir", str(work)],
        env=env,
    )  # fmt: skip
    result.update(json.loads(result.pop("stdout").strip().splitlines()[-1]))
    remove_owned(work)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=45_840_617, help="rows of the full table")
    parser.add_argument("--slice-rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs on the slice")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench-data" / "criteo_synth")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--full", action="store_true", help="also prepare the full table (new)")
    parser.add_argument("--old-rev", default=OLD_REV, help="git revision of the 'old' tf4ctr")
    parser.add_argument("--skip-old", action="store_true")
    parser.add_argument("--skip-fuxictr", action="store_true")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "criteo_prepare.json")
    args = parser.parse_args()

    full = args.data_dir / f"full-{args.rows}"
    work = args.data_dir / "work"
    if args.full or (full / "dataset.yaml").is_file():
        source = full
        ensure_synthetic(full, args.rows, args.seed)
    else:
        # a train.txt of at least slice-rows lines (8:1:1 of this many rows)
        source = args.data_dir / f"source-{args.slice_rows}"
        ensure_synthetic(source, -(-args.slice_rows * 10 // 8) + 2, args.seed)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": args.rows,
        "slice_rows": args.slice_rows,
        "slice_source": source.name,
        "data": "SYNTHETIC Criteo-shaped (tf4ctr data synth criteo)",
    }
    ours_dir, theirs_dir = args.data_dir / "slice-tf4ctr", args.data_dir / "slice-fuxictr"
    make_slice(source, args.slice_rows, ours_dir, theirs_dir)
    runs: dict[str, list[dict]] = {"new": [], "old": [], "fuxictr": []}
    old_src = None
    if not args.skip_old:
        old_src = export_old(args.old_rev, args.data_dir / "old-tf4ctr")
        report["old_rev"] = old_src.parent.name
    fuxi_python = None
    if not args.skip_fuxictr:
        from fuxictr_env import ensure_fuxictr_env

        fuxi_python = ensure_fuxictr_env(ROOT)
    slice_config = ours_dir / "dataset.yaml"
    for i in range(args.repeats):
        print(f"slice, repeat {i + 1}/{args.repeats} ...", flush=True)
        runs["new"].append(ours_prepare(slice_config, work / "cache-slice"))
        if old_src is not None:
            runs["old"].append(ours_prepare(slice_config, work / "cache-slice", old_src))
        if fuxi_python is not None:
            runs["fuxictr"].append(fuxictr_prepare(fuxi_python, theirs_dir, work / "fuxictr"))
    report["slice"] = runs
    if args.full:
        print(f"tf4ctr data prepare on {args.rows:,} rows ...", flush=True)
        report["full"] = ours_prepare(full / "dataset.yaml", work / "cache-full")
        print(f"  {report['full']}", flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    names = {"new": "tf4ctr (this tree)", "old": f"tf4ctr {report.get('old_rev', '')[:7]} (old)",
             "fuxictr": "fuxictr 2.3.10"}  # fmt: skip
    lines = [
        f"{'run':<42}{'wall s':>9}{'CPU s':>8}{'rows/s':>11}{'peak PSS MB':>13}{'max RSS MB':>12}"
    ]
    for name in ("new", "old", "fuxictr"):
        if runs[name]:
            wall = med(name, "wall_s")
            lines.append(
                f"{f'{names[name]}, {args.slice_rows:,}-row slice':<42}{wall:>9.1f}"
                f"{med(name, 'cpu_s'):>8.1f}{args.slice_rows / wall:>11,.0f}"
                f"{med(name, 'peak_pss_mb'):>13.0f}{med(name, 'peak_rss_mb'):>12.0f}"
            )
    ratios: dict[str, float] = {}
    for other in ("fuxictr", "old"):
        if runs[other]:
            ratios[f"rows_per_s_new_over_{other}"] = med(other, "wall_s") / med("new", "wall_s")
            ratios[f"memory_{other}_over_new"] = med(other, "peak_pss_mb") / med(
                "new", "peak_pss_mb"
            )
    report["slice_ratio"] = ratios
    for other in ("fuxictr", "old"):
        if runs[other]:
            speed = ratios[f"rows_per_s_new_over_{other}"]
            target = f" (target >= {TARGET_RATIO:.0f}x)" if other == "fuxictr" else ""
            lines.append(
                f"slice: new has {speed:.2f}x the rows/s of {other}{target} and uses "
                f"{ratios[f'memory_{other}_over_new']:.2f}x less memory (medians of {args.repeats})"
            )
    if "full" in report:
        f = report["full"]
        ok = f["wall_s"] <= TARGET_FULL_S and f["peak_rss_mb"] < TARGET_FULL_MB
        lines.append(
            f"{f'tf4ctr (this tree), {args.rows:,} rows':<42}{f['wall_s']:>9.1f}"
            f"{f['cpu_s']:>8.1f}{args.rows / f['wall_s']:>11,.0f}{f['peak_pss_mb']:>13.0f}"
            f"{f['peak_rss_mb']:>12.0f}"
        )
        lines.append(
            f"full: {f['wall_s']:.0f} s at {f['peak_rss_mb']:.0f} MB max RSS "
            f"(target <= {TARGET_FULL_S:.0f} s, < {TARGET_FULL_MB:.0f} MB): "
            f"{'met' if ok else 'NOT met'}"
        )
    table = "\n".join(lines)
    print(table)
    report["table"] = table
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
