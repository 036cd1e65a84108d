"""Issue 16's command-line items, each run as a user would, in a fresh temporary project.

    python benchmarks/cli_cases.py                          # this checkout
    PYTHONPATH=<old checkout>/src python benchmarks/cli_cases.py   # the "before" column

Prints one Markdown row per item: the command, its exit code and what it showed (first line
of output, or the fact checked: a parquet file's magic bytes, a file named '-', carriage
returns in a log, seconds for --help). Timings here are single runs, not benchmarks.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import DATASET_YAML, RUN_YAML, write_csv  # noqa: E402

TF4CTR = [sys.executable, "-m", "tf4ctr"]
EXP = """\
name: cli
base: run.yaml
seeds: [1]
store: results/cli.jsonl
runs_dir: runs/cli
cells:
  - {label: A, train.epochs: 1}
  - {label: B, train.epochs: 1, train.lr: 0.02}
"""


def sh(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*TF4CTR, *args], cwd=cwd, capture_output=True, text=True, input=stdin)


def first(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    line = text[0] if text else ""
    if proc.returncode not in (0, 2) and "Traceback" in proc.stderr:
        line = "Traceback … " + proc.stderr.strip().splitlines()[-1]
    return line.replace("|", "\\|")[:150]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_csv(d / "train.csv", 3000, 0)
        write_csv(d / "valid.csv", 800, 1)
        write_csv(d / "test.csv", 800, 2)
        (d / "dataset.yaml").write_text(DATASET_YAML)
        (d / "run.yaml").write_text(RUN_YAML)
        (d / "exp.yaml").write_text(EXP)
        (d / "unlabelled.csv").write_text(
            "\n".join(line.split(",", 1)[1] for line in (d / "test.csv").read_text().splitlines())
        )

        def case(what: str, args: list[str], fact=None) -> None:
            proc = sh(d, *args)
            shown = fact(proc) if fact else first(proc)
            rows.append((what, "tf4ctr " + " ".join(args), proc.returncode, shown))

        case("override after an option",
             ["train", "--config", "run.yaml", "--no-progress", "train.epochs=1"])  # fmt: skip
        case("unknown override key", ["train", "--config", "run.yaml", "train.lrr=1"])
        case("grid --only with an unknown label", ["grid", "exp.yaml", "--only", "Nope"])
        case(
            "grid --only A --dry-run",
            ["grid", "exp.yaml", "--only", "A", "--dry-run"],
            lambda p: f"{len(p.stdout.strip().splitlines())} cell(s) listed",
        )
        run_dir = d / "runs" / "tiny-run"

        def magic(p):
            out = d / "s.parquet"
            return f"output starts with {out.read_bytes()[:4]!r}" if out.is_file() else "no file"

        case("predict to .parquet",
             ["predict", str(run_dir), "--input", "unlabelled.csv", "--output", "s.parquet"],
             magic)  # fmt: skip
        case(
            "predict to -",
            ["predict", str(run_dir), "--input", "unlabelled.csv", "--output", "-"],
            lambda p: (
                f"file named '-' written: {(d / '-').exists()}; "
                f"stdout lines: {len(p.stdout.splitlines())}"
            ),
        )
        case("--version", ["--version"])
        case(
            "examples in train --help",
            ["train", "--help"],
            lambda p: f"'example' in help: {'example' in p.stdout}",
        )
        start = time.perf_counter()
        proc = sh(d, "--help")
        rows.append(("--help wall time", "tf4ctr --help", proc.returncode,
                     f"{time.perf_counter() - start:.2f} s"))  # fmt: skip
        case(
            "progress bars into a log (not a terminal)",
            ["train", "--config", "run.yaml", "train.epochs=2", "name=logged", "--overwrite"],
            lambda p: f"carriage returns in stderr: {p.stderr.count(chr(13))}",
        )
        case(
            "data info ml_1m",
            ["data", "info", "ml_1m"],
            lambda p: next((ln for ln in p.stdout.splitlines() if "checksum" in ln), "(none)")[
                :120
            ],
        )
    print("| item | command | exit | shown |\n|---|---|---|---|")
    for what, cmd, code, shown in rows:
        print(f"| {what} | `{cmd}` | {code} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
