"""Issue 13's cases, each run as a new user would, in a fresh sandbox folder.

    python benchmarks/safety_cases.py [--only NAME ...]

Prints one Markdown row per case: the command, its exit code, the first line it printed, and
what was left on disk afterwards (files gone from the project, leftover partial/temporary
folders). Nothing here is timed; the signal cases wait until an epoch is on disk before they
send the signal. Every case runs in its own folder under a temporary directory, so even the
destructive "before" behaviour (name=.. removing the working folder) harms nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conftest import DATASET_YAML, RUN_YAML, write_csv  # noqa: E402

TF4CTR = [sys.executable, "-m", "tf4ctr"]


def project(root: Path, *, rows: int = 3000, epochs: int = 4) -> Path:
    d = root / "project"
    d.mkdir(parents=True)
    write_csv(d / "train.csv", rows, 0)
    write_csv(d / "valid.csv", 800, 1)
    write_csv(d / "test.csv", 800, 2)
    (d / "dataset.yaml").write_text(DATASET_YAML)
    (d / "run.yaml").write_text(RUN_YAML.replace("epochs: 4", f"epochs: {epochs}"))
    (d / "SENTINEL.txt").write_text("user's own file\n")
    return d


def listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def cli(d: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [*TF4CTR, *args], cwd=d, capture_output=True, text=True, timeout=timeout, env=env
    )


def first_line(proc_out: str) -> str:
    lines = [ln for ln in proc_out.splitlines() if ln.strip()]
    return lines[0][:140] if lines else ""


def left(root: Path, before: set[str]) -> str:
    after = listing(root)
    gone = sorted(p for p in before - after if "/" not in p.split("project/", 1)[-1])
    notes = []
    if gone:
        notes.append("GONE: " + ", ".join(gone[:6]) + (" ..." if len(gone) > 6 else ""))
    odd = sorted(
        p
        for p in after
        if any(s in Path(p).name for s in (".partial", ".tmp-", ".lock")) and p.count("/") <= 2
    )
    if odd:
        notes.append("left: " + ", ".join(odd[:4]))
    return "; ".join(notes) or "nothing unexpected"


def wait_for_epoch(d: Path, n: int, timeout: float = 240) -> None:
    end = time.time() + timeout
    while time.time() < end:
        for m in (d / "runs").glob(".*/metrics.json"):
            try:
                if len(json.loads(m.read_text())["epochs"]) >= n:
                    return
            except (ValueError, KeyError, OSError):
                pass
        time.sleep(0.05)
    raise TimeoutError("no epoch written")


def signal_case(root: Path, sig: int) -> tuple[str, int, str, str]:
    d = project(root, rows=60000, epochs=30)
    before = listing(root)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [*TF4CTR, "train", "--config", "run.yaml", "--no-progress"],
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    wait_for_epoch(d, 1)
    p.send_signal(sig)
    out, _ = p.communicate(timeout=120)
    last = [ln for ln in out.splitlines() if ln.strip()]
    shown = next((ln for ln in reversed(last) if "interrupt" in ln or "resume" in ln), "")
    result = left(root, before)
    resumed = cli(d, "train", "--config", "run.yaml", "--resume", "--no-progress", timeout=600)
    result += f"; then --resume: exit {resumed.returncode} ({first_line(resumed.stderr + resumed.stdout)})"
    name = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGKILL: "kill -9"}[sig]
    return f"{name} after epoch 1, then `train --resume`", p.returncode, shown[:140], result


def simple(root: Path, args: list[str], *, prep=None, label: str | None = None):
    d = project(root)
    if prep is not None:
        prep(d)
    before = listing(root)
    out = cli(d, *args)
    text = out.stderr.strip().splitlines()
    line = ""
    for ln in text:
        if ln.startswith("tf4ctr:") or "Error" in ln or "warning" in ln.lower():
            line = ln
            break
    if not line:
        line = first_line(out.stderr) or first_line(out.stdout)
    if out.returncode == 0 and "Traceback" not in out.stderr:
        m = list((d / "runs").glob("*/metrics.json"))
        if m:
            metrics = json.loads(m[0].read_text())
            line = (
                f"(ok) test auc {metrics['test']['auc']:.4f} logloss {metrics['test']['logloss']:.3g}; "
                + line
            )
    elif "Traceback" in out.stderr:
        line = "Traceback ... " + out.stderr.strip().splitlines()[-1][:110]
    return (
        label or "`tf4ctr " + " ".join(args) + "`",
        out.returncode,
        line[:160],
        left(root, before),
    )


def put_in_column(value: str, *, split: str = "train", column: str = "price"):
    def prep(d: Path) -> None:
        path = d / f"{split}.csv"
        lines = path.read_text().splitlines()
        head = lines[0].split(",")
        j = head.index(column)
        cells = lines[5].split(",")
        cells[j] = value
        lines[5] = ",".join(cells)
        path.write_text("\n".join(lines) + "\n")

    return prep


def bad_value(value: str, label: str, *, split: str = "train"):
    """A case: ``tf4ctr train`` with ``value`` put in the split's numeric column ``price``."""
    return lambda r: simple(
        r, ["train", "--config", "run.yaml"], prep=put_in_column(value, split=split), label=label
    )


def two_writers(root: Path):
    d = project(root, rows=100000, epochs=8)
    before = listing(root)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [*TF4CTR, "train", "--config", "run.yaml", "--no-progress"]
    a = subprocess.Popen(
        cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    wait_for_epoch(d, 1)
    b = subprocess.run(cmd, cwd=d, capture_output=True, text=True, env=env)
    a_out, a_err = a.communicate()
    line = f"first: exit {a.returncode}; second: " + (
        first_line(b.stderr)
        if b.returncode
        else "exit 0, " + first_line(b.stdout.splitlines()[-1] if b.stdout else "")
    )
    return (
        "two `tf4ctr train` on one run name at once",
        b.returncode,
        line[:160],
        left(root, before),
    )


def no_meta(root: Path):
    d = project(root)
    ok = cli(d, "data", "prepare", "dataset.yaml", "--cache-dir", "cache")
    if ok.returncode != 0:  # older CLI spelling
        ok = cli(d, "train", "--config", "run.yaml", "train.epochs=1")
    metas = list((d / "cache").glob("*/meta.json"))
    for m in metas:
        m.unlink()
    before = listing(root)
    out = cli(d, "train", "--config", "run.yaml", "train.epochs=1", "name=again")
    line = first_line(out.stderr) if out.returncode else "(ok) " + first_line(out.stdout)
    if "Traceback" in out.stderr:
        line = "Traceback ... " + out.stderr.strip().splitlines()[-1][:110]
    return "cache folder without meta.json, then `train`", out.returncode, line, left(root, before)


def killed_prepare(root: Path):
    d = project(root, rows=400000)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(
        [*TF4CTR, "data", "prepare", "dataset.yaml", "--cache-dir", "cache"],
        cwd=d,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    end = time.time() + 60
    while time.time() < end and not list((d / "cache").glob(".tmp-*/train")):
        time.sleep(0.02)
    p.kill()
    p.wait()
    tmp_left = [x.name for x in (d / "cache").glob(".tmp-*")]
    out = subprocess.run(
        [*TF4CTR, "data", "prepare", "dataset.yaml", "--cache-dir", "cache"],
        cwd=d,
        capture_output=True,
        text=True,
        env=env,
    )
    still = [x.name for x in (d / "cache").glob(".tmp-*")]
    line = first_line(out.stderr) if out.returncode else "(ok) " + first_line(out.stdout)
    return (
        "`data prepare` killed (-9) halfway, then `data prepare` again",
        out.returncode,
        line[:140],
        f"after kill: {len(tmp_left)} .tmp folder(s); after the next prepare: {len(still)}",
    )


def cr_header(root: Path):
    d = project(root)
    cli(d, "train", "--config", "run.yaml", "train.epochs=1")
    rows = (d / "test.csv").read_text().splitlines()
    rows[0] = rows[0] + "\r,extra"
    rows[1:] = [r + ",x" for r in rows[1:]]
    (d / "bad.csv").write_text("\n".join(rows) + "\n")
    return simple_in(
        d, root, ["predict", "runs/tiny-run", "--input", "bad.csv", "--output", "s.csv"]
    )


def simple_in(d: Path, root: Path, args: list[str]):
    before = listing(root)
    out = cli(d, *args)
    line = first_line(out.stderr) if out.returncode else "(ok) " + first_line(out.stdout)
    if "Traceback" in out.stderr:
        line = "Traceback ... " + out.stderr.strip().splitlines()[-1][:110]
    return (
        "`tf4ctr " + " ".join(args) + "` (header `...\\r,extra`)",
        out.returncode,
        line,
        left(root, before),
    )


def output_dir_case(root: Path):
    # output_dir: <root>/x/y/runs and name=..: would the run remove <root>/x/y?
    d = project(root)
    y = root / "x" / "y"
    (y / "runs").mkdir(parents=True)
    (y / "precious.txt").write_text("keep me")
    cfg = (d / "run.yaml").read_text().replace("output_dir: runs", f"output_dir: {y / 'runs'}")
    (d / "run.yaml").write_text(cfg)
    before = listing(root)
    out = cli(d, "train", "--config", "run.yaml", "--overwrite", "name=..", "train.epochs=1")
    line = first_line(out.stderr) if out.returncode else "(ok) " + first_line(out.stdout)
    gone = "x/y/precious.txt GONE" if not (y / "precious.txt").exists() else "x/y/precious.txt kept"
    return (
        "`output_dir: /x/y/runs` + `--overwrite name=..`",
        out.returncode,
        line[:140],
        gone + "; " + left(root, before),
    )


def overwrite_dot(root: Path):
    def prep(d: Path) -> None:
        cli(d, "train", "--config", "run.yaml", "train.epochs=1", "name=other")

    label, code, line, what = simple(
        root,
        ["train", "--config", "run.yaml", "--overwrite", "name=.", "train.epochs=1"],
        prep=prep,
    )
    d = root / "project"
    what = (
        ("runs/other kept" if (d / "runs" / "other").exists() else "runs/other GONE") + "; " + what
    )
    return label, code, line, what


CASES = {
    "name_dotdot": lambda r: simple(
        r, ["train", "--config", "run.yaml", "name=..", "train.epochs=1"]
    ),
    "name_dot_overwrite": overwrite_dot,
    "output_dir_dotdot": output_dir_case,
    "two_writers": two_writers,
    "sigint": lambda r: signal_case(r, signal.SIGINT),
    "sigterm": lambda r: signal_case(r, signal.SIGTERM),
    "sigkill": lambda r: signal_case(r, signal.SIGKILL),
    "inf_train": bad_value("inf", "`inf` in train's numeric column `price`"),
    "minus_inf_train": bad_value("-inf", "`-inf` in train's `price`"),
    "1e308_train": bad_value("1e308", "`1e308` in train's `price`"),
    "1e38_train": bad_value("1e38", "`1e38` in train's `price`"),
    "inf_valid": bad_value("inf", "`inf` in valid's `price`", split="valid"),
    "lr_100": lambda r: simple(r, ["train", "--config", "run.yaml", "train.lr=100"]),
    "hidden_0": lambda r: simple(
        r, ["train", "--config", "run.yaml", "model.simple_hidden_units=[0]"]
    ),
    "lr_1e300": lambda r: simple(r, ["train", "--config", "run.yaml", "train.lr=1e300"]),
    "embedding_0": lambda r: simple(r, ["train", "--config", "run.yaml", "model.embedding_dim=0"]),
    "dropout_1.5": lambda r: simple(r, ["train", "--config", "run.yaml", "model.dropout=1.5"]),
    "cache_no_meta": no_meta,
    "killed_prepare": killed_prepare,
    "cr_header": cr_header,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(CASES))
    args = parser.parse_args()
    print("| case | exit | first line | left on disk |")
    print("|---|---|---|---|")
    for name in args.only or CASES:
        with tempfile.TemporaryDirectory(prefix=f"case-{name}-") as tmp:
            try:
                label, code, line, what = CASES[name](Path(tmp))
            except Exception as exc:  # a case that cannot even run says so
                label, code, line, what = name, "-", f"case failed: {exc!r}"[:160], "-"
        line = line.replace("|", "\\|")
        print(f"| {label} | {code} | {line} | {what} |", flush=True)


if __name__ == "__main__":
    main()
