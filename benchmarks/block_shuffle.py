"""Reading a shuffled epoch from a cold memory-mapped cache: full shuffle against block shuffle.

    python benchmarks/block_shuffle.py            # writes results/block_shuffle.json

The data is the SYNTHETIC Criteo-shaped table scale.py trains on (its train split: 36.7M rows,
39 int32 columns, one .npy file each, 5.7 GB; scale.py or criteo_prepare.py builds it under
.bench-data/criteo_synth/full-45840617). For each order — ``train.shuffle: full`` (one
permutation of every row) and ``train.shuffle: block`` (blocks of 4,096 rows in a random order,
rows shuffled within buffers of 64 blocks, the defaults) — the split's files are dropped from
the page cache (``posix_fadvise(POSIX_FADV_DONTNEED)`` on each, after ``fsync``; no root
needed), then a fresh process gathers batches of 4,096 rows exactly as ``train.memory_map``
training does (BatchLoader over the maps, no model) for a fixed time, and reports rows/s; the
same again after reading every file once, the pages cached (warm), for reference. Cold reads are what a table larger
than the page cache meets on every epoch. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT / ".bench-data" / "criteo_synth" / "full-45840617"


def split_files(data: Path) -> list[Path]:
    (folder,) = (data / "cache").glob("*/train")
    return sorted(folder.glob("*.npy"))


def drop_from_page_cache(files: list[Path]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def read_into_page_cache(files: list[Path]) -> None:
    for path in files:
        with path.open("rb") as f:
            while f.read(16 << 20):
                pass


def gather(data: Path, order: str, seconds: float, batch: int) -> dict:
    """In this process: batches of the mapped train split for ``seconds``; rows/s."""
    from tf4ctr.data import load_dataset_config
    from tf4ctr.data.loader import BatchLoader
    from tf4ctr.data.store import prepare_dataset

    config = load_dataset_config(data / "dataset.yaml")
    prepared = prepare_dataset(config, data / "cache", progress=False, mapped=True)
    blocks = (4096, 64) if order == "block" else None
    loader = BatchLoader(prepared.train, batch, shuffle=True, seed=7, block_shuffle=blocks)
    start = time.perf_counter()
    batches = iter(loader)  # the epoch's order is drawn here
    drawn = time.perf_counter() - start
    rows, start = 0, time.perf_counter()
    for b in batches:
        rows += len(b)
        if time.perf_counter() - start >= seconds:
            break
    elapsed = time.perf_counter() - start
    return {"order": order, "rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed,
            "order_seconds": drawn}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--seconds", type=float, default=60.0, help="gathering time per case")
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--worker", choices=["full", "block"], help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(HERE / "results" / "block_shuffle.json"))
    args = parser.parse_args()
    data = Path(args.data)
    if args.worker:
        print(json.dumps(gather(data, args.worker, args.seconds, args.batch)))
        return 0
    if not (data / "dataset.yaml").is_file():
        print(f"block_shuffle: {data / 'dataset.yaml'} not found (python benchmarks/scale.py "
              "writes the table)", file=sys.stderr)  # fmt: skip
        return 2
    from tf4ctr.fileio import write_json_atomic

    files = split_files(data)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "data": f"SYNTHETIC Criteo-shaped train split, {len(files)} column files, "
        f"{sum(f.stat().st_size for f in files) / 2**30:.1f} GiB",
        "batch": args.batch,
        "block_shuffle": {"block_rows": 4096, "buffer_blocks": 64},
        "cases": [],
    }
    for order in ("full", "block"):
        for cache in ("cold", "warm"):
            if cache == "cold":
                drop_from_page_cache(files)
            else:
                read_into_page_cache(files)
            cmd = [sys.executable, __file__, "--data", str(data), "--worker", order,
                   "--seconds", str(args.seconds), "--batch", str(args.batch)]  # fmt: skip
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            case = {**json.loads(out.splitlines()[-1]), "page_cache": cache}
            results["cases"].append(case)
            print(f"{order:5s} shuffle, {cache}: {case['rows_per_s']:>12,.0f} rows/s "
                  f"({case['rows']:,} rows in {case['seconds']:.0f} s)", flush=True)  # fmt: skip
            write_json_atomic(results, Path(args.out))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
