"""``tf4ctr predict`` holds a bounded amount of the input in memory (issue 30.7).

Two things grew with the file before: Arrow's streaming CSV reader reads about 32 parse blocks
ahead of its consumer (35 MB at 1 MiB blocks, now 256 KiB), and a file smaller than one scoring
block is held whole while a larger one holds a full block (16 MiB of text, ~10x that once
parsed; now 2 MiB). Peak RSS at 300k rows was 1.34x lower than at 3M; now within 10 %.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

_PEAK = """
import json, sys
from tf4ctr.cli import main
code = main(["predict", sys.argv[1], "--input", sys.argv[2], "--output", sys.argv[3], "--no-progress"])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking (pytest) process
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"code": code, "peak_kb": peak}))
"""


def _rows(path: Path, n: int, seed: int) -> None:
    """``n`` rows shaped like the tiny project's CSV, written with numpy (a few seconds)."""
    rng = np.random.default_rng(seed)
    with path.open("w") as out:
        out.write("label,user,item,ctx,price\n")
        for start in range(0, n, 500_000):
            k = min(500_000, n - start)
            block = np.column_stack(
                [
                    rng.integers(0, 2, k).astype(str),
                    np.char.add("u", rng.integers(0, 30, k).astype(str)),
                    np.char.add("i", rng.integers(0, 40, k).astype(str)),
                    rng.integers(0, 4, k).astype(str),
                    rng.random(k).round(3).astype(str),
                ]
            )
            out.write("\n".join(",".join(r) for r in block) + "\n")


def _peak_mb(run_dir: Path, rows: Path, out: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(run_dir), str(rows), str(out)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, done.stderr
    return result["peak_kb"] / 1024


def test_predict_peak_memory_does_not_grow_with_rows(tiny_project, monkeypatch):
    from tf4ctr.cli import main

    monkeypatch.chdir(tiny_project)
    assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
    run_dir = tiny_project / "runs" / "tiny-run"
    small, large = tiny_project / "n.csv", tiny_project / "10n.csv"
    _rows(small, 250_000, 1)  # ~4.3 MB: two scoring blocks
    _rows(large, 2_500_000, 2)  # ~43 MB: twenty blocks, beyond Arrow's read-ahead window
    peak_small = _peak_mb(run_dir, small, tiny_project / "n-scores.csv")
    peak_large = _peak_mb(run_dir, large, tiny_project / "10n-scores.csv")
    assert sum(1 for _ in (tiny_project / "10n-scores.csv").open()) == 2_500_001
    assert peak_large <= 1.10 * peak_small, (peak_small, peak_large)
