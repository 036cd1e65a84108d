"""Where `tf4ctr predict` and `tf4ctr evaluate` spend their time on the Criteo-shaped test split.

    python benchmarks/score_profile.py --label before       # writes results/score_profile.json
    python benchmarks/score_profile.py --label after --megabytes 128

The workload is scale.py's: the TF4CTR Criteo setting (SER, embedding 16 / 8, MLP_s [400, 400],
MLP_c [400, 400, 400], WSF) on the SYNTHETIC Criteo-shaped table (``tf4ctr data synth criteo``,
written by scale.py to .bench-data/criteo_synth/full-45840617 with its cache). Scoring time does
not depend on what the weights hold, so the run scored is built here, untrained (seed 2023),
from the cache's vocabularies (``preprocessor.json``) and written as a run directory, the way
``tf4ctr train`` leaves one. The first ``--megabytes`` of test.txt (cut at a line end) are
scored; that prefix is copied once next to the table.

Scoring is cut into these parts, each timed with ``perf_counter`` around it, block by block
as ``tf4ctr.run.scoring`` does it (2 MiB of text per block):

- ``read + parse``: the CSV reader's next block, as an Arrow table;
- ``encode``: the run's preprocessing of the block (vocabulary lookups, numeric buckets), its
  fields side by side on the thread pool scoring keeps for the file;
- ``model forward``: ``Trainer.predict`` over the block (slices of 2,048 rows, inference mode);
- ``probabilities``: the sigmoid and the one-column Arrow table (predict);
- ``parquet write``: the table written to the output (predict);
- ``metrics``: AUC and log loss of all rows at the end (evaluate).

Then ``tf4ctr.run.scoring.predict`` and ``.evaluate`` themselves, uninstrumented, over the
same prefix (the check that the parts add up); ``predict`` with and without the encoder's thread
pool, alternating three times (the A/B of that change); and the forward's matrix products alone at
its shapes (``flops.matmul_only_seconds(forward_only=True)``): the rows/s a forward that did
nothing else would reach. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from flops import matmul_only_seconds  # noqa: E402
from step_profile import machine, store_labelled  # noqa: E402

DEFAULT_DATA = ROOT / ".bench-data" / "criteo_synth" / "full-45840617"

PARTS = ("read + parse", "encode", "model forward", "probabilities", "parquet write", "metrics")


def prefix_file(data: Path, megabytes: int) -> Path:
    """The first ``megabytes`` of the test split, cut after a line end (copied once)."""
    out = data / f"test-first-{megabytes}MB.txt"
    if out.is_file():
        return out
    with open(data / "test.txt", "rb") as src:
        head = src.read(megabytes << 20)
    head = head[: head.rfind(b"\n") + 1]
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(head)
    tmp.replace(out)
    return out


def make_run(data: Path, run_dir: Path) -> None:
    """A run directory with the Criteo setting's untrained model and the cache's vocabularies."""
    import yaml

    from tf4ctr.config import load_run_config
    from tf4ctr.data import Preprocessor
    from tf4ctr.models import build_model
    from tf4ctr.run.setup import layer_options

    config = load_run_config(data / "profile_run.yaml")
    state = json.loads(next((data / "cache").glob("*/preprocessor.json")).read_text())
    schema = Preprocessor.from_state_dict(state).schema
    torch.manual_seed(2023)
    model = build_model(config.model_name, schema, layer_options=layer_options(config.train),
                        **config.model_hparams)  # fmt: skip
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(json.loads(json.dumps(config.to_dict(), default=str)), sort_keys=False)
    )
    (run_dir / "preprocessor.json").write_text(json.dumps(state))
    torch.save(model.state_dict(), run_dir / "model.pt")


def profile_parts(run_dir: Path, path: Path, out: Path, batch_size: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tf4ctr.data import BatchLoader
    from tf4ctr.data.preprocess import field_threads
    from tf4ctr.data.readers import iter_chunks
    from tf4ctr.run.scoring import SCORING_BLOCK_BYTES, load_run
    from tf4ctr.run.setup import scoring_trainer
    from tf4ctr.train.metrics import evaluate_predictions

    run = load_run(run_dir)
    trainer = scoring_trainer(run)
    seconds = dict.fromkeys(PARTS, 0.0)
    labels, logits = [], []
    rows = 0
    start = time.perf_counter()
    writer = pq.ParquetWriter(out, pa.schema([("probability", pa.float64())]))
    # the fields' thread pool scoring keeps for a whole file (none before issue 31)
    with field_threads(len(run.dataset.feature_cols)) as pool:
        chunks = iter_chunks(path, run.dataset, require_label=True, block_bytes=SCORING_BLOCK_BYTES)
        while True:
            t0 = time.perf_counter()
            item = next(chunks, None)
            t1 = time.perf_counter()
            seconds["read + parse"] += t1 - t0
            if item is None:
                break
            table, first_line = item
            block = run.preprocessor.transform(table, source=path, first_row=first_line, pool=pool)
            t2 = time.perf_counter()
            pred = trainer.predict(BatchLoader(block, batch_size))
            t3 = time.perf_counter()
            prob = torch.sigmoid(torch.from_numpy(pred.logit)).numpy().astype(np.float64)
            scores = pa.table({"probability": prob})
            t4 = time.perf_counter()
            writer.write_table(scores)
            t5 = time.perf_counter()
            labels.append(pred.label)
            logits.append(pred.logit)
            rows += len(pred.label)
            seconds["encode"] += t2 - t1
            seconds["model forward"] += t3 - t2
            seconds["probabilities"] += t4 - t3
            seconds["parquet write"] += t5 - t4
    writer.close()
    t0 = time.perf_counter()
    evaluate_predictions(np.concatenate(labels), np.concatenate(logits), None)
    seconds["metrics"] = time.perf_counter() - t0
    total = time.perf_counter() - start
    return {
        "rows": rows,
        "seconds": total,
        "rows_per_s": rows / total,
        "parts": {
            name: {"seconds": s, "share": s / total, "rows_per_s": rows / s if s else None}
            for name, s in seconds.items()
        },
    }


def end_to_end(run_dir: Path, path: Path, out: Path, rows: int) -> dict:
    from tf4ctr.run.scoring import evaluate, predict

    t0 = time.perf_counter()
    predict(run_dir, path, out, progress=False)
    t1 = time.perf_counter()
    evaluate(run_dir, files={"test": path}, progress=False)
    t2 = time.perf_counter()
    return {
        "predict": {"seconds": t1 - t0, "rows_per_s": rows / (t1 - t0)},
        "evaluate": {"seconds": t2 - t1, "rows_per_s": rows / (t2 - t1)},
    }


def pool_ab(run_dir: Path, path: Path, out: Path, rows: int, rounds: int = 3) -> dict:
    """``scoring.predict`` with the file's field thread pool against without it (as before
    issue 31), alternating, ``rounds`` times each: the side-by-side ratio of that change."""
    import contextlib

    import tf4ctr.run.scoring as scoring

    @contextlib.contextmanager
    def no_pool(fields: int):
        yield None

    real = scoring.field_threads
    rates: dict[str, list[float]] = {"no pool": [], "pool": []}
    try:
        for _ in range(rounds):
            for label, threads in (("no pool", no_pool), ("pool", real)):
                scoring.field_threads = threads
                t0 = time.perf_counter()
                scoring.predict(run_dir, path, out, progress=False)
                rates[label].append(rows / (time.perf_counter() - t0))
    finally:
        scoring.field_threads = real
    ratios = [p / n for p, n in zip(rates["pool"], rates["no pool"], strict=True)]
    return {"rows_per_s": rates, "ratio_each_round": ratios}


def forward_bound(run_dir: Path) -> dict:
    from tf4ctr.run.scoring import load_run
    from tf4ctr.train.trainer import Trainer

    run = load_run(run_dir)
    rows = Trainer.cpu_forward_rows
    seconds = matmul_only_seconds(run.model, run.preprocessor.schema, rows, forward_only=True)
    return {"slice_rows": rows, "matmul_ms": seconds * 1e3, "rows_per_s": rows / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--megabytes", type=int, default=256,
                        help="how much of test.txt is scored (default 256, ~1.3M rows)")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=65_536)
    parser.add_argument("--label", default="after", help="the entry written (before / after)")
    parser.add_argument("--out", default=str(HERE / "results" / "score_profile.json"))
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "profile_run.yaml").is_file() or not (data / "test.txt").is_file():
        print(f"{data}: no synthetic Criteo table with profile_run.yaml (run benchmarks/scale.py "
              "and benchmarks/step_profile.py first)", file=sys.stderr)  # fmt: skip
        return 2
    path = prefix_file(data, args.megabytes)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        run_dir = Path(tmp) / "criteo-score"
        make_run(data, run_dir)
        end_to_end(run_dir, path, Path(tmp) / "warm.parquet", 1)  # first touch of the file
        parts = profile_parts(run_dir, path, Path(tmp) / "parts.parquet", args.batch_size)
        e2e = end_to_end(run_dir, path, Path(tmp) / "scores.parquet", parts["rows"])
        ab = pool_ab(run_dir, path, Path(tmp) / "ab.parquet", parts["rows"])
        bound = forward_bound(run_dir)
    entry = {
        "machine": machine(),
        "input": {"file": path.name, "megabytes": args.megabytes, "rows": parts["rows"]},
        "profile": parts,
        "end_to_end": e2e,
        "field_pool_ab": ab,
        "forward_matmul_bound": bound,
    }
    out = Path(args.out)
    store_labelled(out, args.label, entry)
    print(f"{parts['rows']:,} rows of {path.name}; instrumented {parts['rows_per_s']:,.0f} rows/s")
    print("| part | seconds | share | rows/s of the part alone |")
    print("|---|---|---|---|")
    for name, p in parts["parts"].items():
        rate = f"{p['rows_per_s']:,.0f}" if p["rows_per_s"] else "-"
        print(f"| {name} | {p['seconds']:.2f} | {p['share']:.1%} | {rate} |")
    print(f"predict (uninstrumented): {e2e['predict']['rows_per_s']:,.0f} rows/s; "
          f"evaluate: {e2e['evaluate']['rows_per_s']:,.0f} rows/s; forward matmuls alone: "
          f"{bound['rows_per_s']:,.0f} rows/s")  # fmt: skip
    print("predict with / without the field thread pool, each round: "
          + ", ".join(f"{r:.3f}" for r in ab["ratio_each_round"]))  # fmt: skip
    print(f"written to {out} ({args.label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
