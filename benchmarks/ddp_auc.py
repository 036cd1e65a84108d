"""Does a 2-rank DDP run train TF4CTR to the same Frappe_x1 AUC as one process? (Issue 15.)

    python benchmarks/ddp_auc.py [--seeds 2023 2024 2025]

Dense Adam (the paper's) and, since issue 31, ``train.sparse_embedding=true`` (sparse tables
outside DDP, their touched rows exchanged each step), each against one process of the same
option: Table IV's runs for dense, frappe_x1_sparse.yaml's for sparse.

TF4CTR with the paper's Frappe setting (configs/frappe_x1/tf4ctr.yaml; REBUILT train, real BARS
valid/test), trained to early stopping by ``torchrun --standalone --nproc_per_node=2`` with one
thread per rank, one run per seed. The single-process side is Table IV's TF4CTR runs of the same
seeds (one process, one thread), read from the committed store
docs/results/frappe_x1/frappe_x1_table4.jsonl, not rerun. Prints both sides' test AUC / gAUC
per seed, mean ± std, and two-tailed Welch p-values; results are kept in
benchmarks/results/ddp_auc.json as each run finishes (a rerun skips seeds already there).
Needs both cores to itself: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from scipy import stats

from tf4ctr.fileio import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "ddp_auc.json"


#: (experiment, cell label) of the one-process runs each side is compared with
SINGLE = {
    "dense": ("frappe_x1_table4.yaml", "TF4CTR"),
    "sparse": ("frappe_x1_sparse.yaml", "TF4CTR sparse embedding + lazy Adam"),
}


def single_process_runs(seeds: list[int], side: str = "dense") -> dict[int, dict]:
    """The committed one-process TF4CTR records of ``side`` (Table IV's for dense), by seed."""
    from tf4ctr.experiments import load_experiment
    from tf4ctr.experiments.runner import known_results

    name, label = SINGLE[side]
    exp = load_experiment(ROOT / "configs/experiments" / name)
    store = known_results(exp)
    return {
        c.seed: store.records[c.key]
        for c in exp.cells
        if c.label == label and c.seed in seeds and c.key in store
    }


def ddp_run(seed: int, work: Path, *, sparse: bool = False) -> dict:
    name = f"ddp2-{'sparse-' if sparse else ''}s{seed}"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "tf4ctr", "train", "--config", str(ROOT / "configs/frappe_x1/tf4ctr.yaml"),
        "--no-progress", f"train.seed={seed}", "train.num_threads=1", f"name={name}",
        f"output_dir={work}", f"cache_dir={ROOT / '.tf4ctr-cache'}",
        *(["train.sparse_embedding=true"] if sparse else []),
    ]  # fmt: skip
    subprocess.run(cmd, check=True)
    metrics = json.loads((work / name / "metrics.json").read_text())
    secs = sorted(e["train_seconds"] for e in metrics["epochs"])
    return {
        "test": metrics["test"],
        "valid": metrics["valid"],
        "best_epoch": metrics["best_epoch"],
        "seconds_per_epoch": secs[len(secs) // 2],
    }


def seed_study_start(doc: str, out: Path) -> tuple[list[int], dict]:
    """The --seeds asked for and the results already in ``out``; exits (status 0, having said
    why) when the Frappe_x1 data is not beside the checkout. Shared by the seed-by-seed
    Frappe checks."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[2023, 2024, 2025])
    args = p.parse_args()
    if not (ROOT.parent / "shared/data/Frappe_x1_rebuilt").is_dir():
        print("skipped: ../shared/data/Frappe_x1_rebuilt not found", file=sys.stderr)
        raise SystemExit(0)
    return args.seeds, (json.loads(out.read_text()) if out.is_file() else {})


def main() -> int:
    seeds, results = seed_study_start(__doc__, OUT)
    sparse = results.setdefault("sparse", {})  # the dense side's seeds stay at the top level
    with tempfile.TemporaryDirectory() as tmp:
        for side, kept in (("dense", results), ("sparse", sparse)):
            for seed in seeds:
                if str(seed) in kept:
                    continue
                kept[str(seed)] = ddp_run(seed, Path(tmp), sparse=side == "sparse")
                OUT.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(OUT, json.dumps(results, indent=2) + "\n")
    print("TF4CTR on Frappe_x1 (rebuilt train, real valid/test), paper setting")
    for side, kept in (("dense", results), ("sparse", sparse)):
        single = single_process_runs(seeds, side)
        print(f"\n{side} embedding gradients ({SINGLE[side][0]} for one process)")
        print("| seed | 1 process: test AUC | gAUC | 2 ranks (DDP): test AUC | gAUC |")
        print("|---|---|---|---|---|")
        for seed in seeds:
            one, two = single[seed]["test"], kept[str(seed)]["test"]
            print(
                f"| {seed} | {one['auc']:.4f} | {one['gauc']:.4f} | {two['auc']:.4f} "
                f"| {two['gauc']:.4f} |"
            )
        for metric in ("auc", "gauc"):
            a = [single[s]["test"][metric] for s in seeds]
            b = [kept[str(s)]["test"][metric] for s in seeds]
            t = stats.ttest_ind(b, a, equal_var=False)
            print(
                f"test {metric.upper()}: 1 process {statistics.mean(a):.4f} ± "
                f"{statistics.stdev(a):.4f}, 2 ranks {statistics.mean(b):.4f} ± "
                f"{statistics.stdev(b):.4f}, difference {statistics.mean(b) - statistics.mean(a):+.4f},"
                f" two-tailed Welch p = {t.pvalue:.2g}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
