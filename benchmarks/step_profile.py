"""Where one Criteo-shaped training step spends its time, part by part.

    python benchmarks/step_profile.py --label before       # writes results/step_profile.json
    python benchmarks/step_profile.py --label after --steps 60

The workload is scale.py's out-of-core epoch: TF4CTR with the paper's Criteo setting (SER,
embedding 16 / 8, MLP_s [400, 400], MLP_c [400, 400, 400], WSF, TF loss, embedding L2, batch
4096) on the SYNTHETIC Criteo-shaped table (``tf4ctr data synth criteo``; scale.py writes it
to .bench-data/criteo_synth/full-45840617 and builds its cache there), read memory-mapped
(``train.memory_map``) with lazy sparse Adam (``train.sparse_embedding``). The config's
``train`` keys can be changed with ``--set key=value`` (e.g. ``--set sparse_embedding=false``).

One step is cut into the parts below and each is timed with ``perf_counter`` around it (the
CPU runs every op synchronously, so a part's time is the wall time of its ops):

- ``batch gather``: the loader's next batch, gathered from the memory maps;
- ``embedding forward``: the SSEM (both tables' lookups);
- ``simple MLP forward`` / ``complex MLP forward``; ``fusion forward``;
- ``loss forward``: L_ctr, L_TF, the embedding L2 term;
- ``loss + fusion backward``: backward until the complex MLP's head starts (the L2 term's
  backward is in it: it is the last op of the forward);
- ``complex MLP backward`` / ``simple MLP backward``: each MLP's nodes, head to input
  (autograd runs the complex MLP's first: they were made later; tensor hooks on z_c, z_s
  and the SSEM outputs mark the boundaries);
- ``embedding backward``: the rest of ``backward()`` (the tables' gradients);
- ``gradient clip``: the global norm (sparse gradients coalesced) and the scaling;
- ``dense optimizer step`` (Adam over the MLPs) and ``sparse row update`` (the tables);
- ``everything else``: the step's wall time minus the parts (zero_grad, loss floats, masks).

The same number of steps is also timed through ``Trainer.train_epoch`` itself, uninstrumented,
as the check that the parts add up to the trainer's real step, and the step's matrix products
alone at its shapes (``flops.matmul_only_seconds``): their ratio to the trainer's step is the
matmul fraction scale.py reports for a whole epoch. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from flops import matmul_only_seconds  # noqa: E402

DEFAULT_DATA = ROOT / ".bench-data" / "criteo_synth" / "full-45840617"

PARTS = (
    "batch gather",
    "embedding forward",
    "simple MLP forward",
    "complex MLP forward",
    "fusion forward",
    "loss forward",
    "loss + fusion backward",
    "complex MLP backward",
    "simple MLP backward",
    "embedding backward",
    "gradient clip",
    "dense optimizer step",
    "sparse row update",
    "everything else",
)


def machine() -> dict:
    """The machine a profile ran on (score_profile.py records the same)."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "threads": torch.get_num_threads()}  # fmt: skip


def store_labelled(out: Path, label: str, entry: dict) -> None:
    """Keep ``entry`` under ``label`` in the JSON file ``out`` (other labels stay)."""
    from tf4ctr.fileio import write_json_atomic

    stored = json.loads(out.read_text()) if out.is_file() else {}
    stored[label] = entry
    write_json_atomic(stored, out)


def run_config(data: Path, sets: list[str]):
    from tf4ctr.config import load_run_config

    path = data / "profile_run.yaml"
    path.write_text(
        "name: criteo-profile\n"
        f"dataset: {data / 'dataset.yaml'}\n"
        "model: {name: tf4ctr, embedding_dim: 16, ssem: ser, fusion: wsf,"
        " simple_hidden_units: [400, 400], complex_hidden_units: [400, 400, 400], dropout: 0.2}\n"
        "loss: {name: tf, alpha: 0.35, c: 0.9, gamma: 1.0, embedding_l2: 1.0e-5}\n"
        "train: {batch_size: 4096, epochs: 1, lr: 1.0e-3, memory_map: true, sparse_embedding: true,"
        " monitor: auc, progress: false}\n"
        f"cache_dir: {data / 'cache'}\n"
    )
    return load_run_config(path, [f"train.{s}" for s in sets])


class Capped:
    """The next ``n`` batches of a running epoch's iterator, as a loader (``len`` included):
    the trainer's loop then times steps, not the start of an epoch (its 36.7M-row shuffle)."""

    def __init__(self, batches, n: int) -> None:
        self.batches, self.n = batches, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return itertools.islice(self.batches, self.n)


def instrumented_steps(trainer, it, steps: int) -> list[dict[str, float]]:
    """``steps`` training steps as Trainer._train_steps makes them, each part timed."""
    from tf4ctr.nn import FeatureInput, ModelOutput
    from tf4ctr.nn.step_masks import step_masks_active
    from tf4ctr.train.trainer import clip_grad_norm

    model, objective, cfg = trainer.model, trainer.objective, trainer.config
    dense_opt, *sparse_opts = trainer.optimizers
    masks = trainer._step_masks
    model.train()
    clock = time.perf_counter
    records = []
    with step_masks_active(masks):
        for _ in range(steps):
            t: dict[str, float] = {}
            stamps: dict[str, float] = {}
            start = clock()
            batch = next(it)
            x = FeatureInput(batch.categorical, batch.numeric)
            label = batch.label
            t["batch gather"] = clock() - start
            if masks is not None:
                masks.begin(len(label))
            a = clock()
            h_es, h_hs = model.ssem(x)
            b = clock()
            h_s, z_s = model.simple_encoder(h_es, x)
            c = clock()
            h_c, z_c = model.complex_encoder(h_hs, x)
            d = clock()
            logit = model.fusion(h_s, h_c, z_s, z_c)
            e = clock()
            if masks is not None:
                masks.end()
            t["embedding forward"], t["simple MLP forward"] = b - a, c - b
            t["complex MLP forward"], t["fusion forward"] = d - c, e - d
            a = clock()
            parts = objective(model, ModelOutput(logit, z_s, z_c), label)
            t["loss forward"] = clock() - a
            for name, tensor in (("z_s", z_s), ("z_c", z_c), ("h_hs", h_hs), ("h_es", h_es)):
                tensor.register_hook(lambda g, name=name, at=stamps: at.__setitem__(name, clock()))
            for opt in trainer.optimizers:
                opt.zero_grad(set_to_none=True)
            a = clock()
            parts.total.backward()
            end = clock()
            # A tensor's hook runs just before the node that made it: z_c's when the complex
            # head's backward starts, z_s's when the simple one's does (autograd runs the
            # complex MLP's nodes first, they were made later), h_hs / h_es's when the
            # tables' backward starts.
            tables = min(stamps["h_hs"], stamps["h_es"])
            assert a <= stamps["z_c"] <= stamps["z_s"] <= tables <= end, stamps
            t["loss + fusion backward"] = stamps["z_c"] - a
            t["complex MLP backward"] = stamps["z_s"] - stamps["z_c"]
            t["simple MLP backward"] = tables - stamps["z_s"]
            t["embedding backward"] = end - tables
            loss = float(parts.total.detach())
            a = clock()
            clip_grad_norm(model.parameters(), cfg.clip_grad_norm or math.inf)
            b = clock()
            dense_opt.step()
            c = clock()
            for opt in sparse_opts:
                opt.step()
            d = clock()
            t["gradient clip"], t["dense optimizer step"], t["sparse row update"] = (
                b - a,
                c - b,
                d - c,
            )
            for name in ("ctr", "twin_focus", "l2"):
                value = getattr(parts, name)
                if value is not None:
                    float(value.detach())
            assert math.isfinite(loss)
            total = clock() - start
            t["everything else"] = total - sum(t.values())
            t["step"] = total
            records.append(t)
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="a folder holding the synthetic table's dataset.yaml and cache/")  # fmt: skip
    parser.add_argument("--steps", type=int, default=60, help="measured steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--label", default="current", help="the key the figures are stored under")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a train.* override, e.g. sparse_embedding=false")  # fmt: skip
    parser.add_argument("--out", default=str(HERE / "results" / "step_profile.json"))
    args = parser.parse_args()
    data = Path(args.data)
    if not (data / "dataset.yaml").is_file():
        print(f"step_profile: {data / 'dataset.yaml'} not found; make the table first "
              "(python benchmarks/scale.py writes it, or tf4ctr data synth criteo)",
              file=sys.stderr)  # fmt: skip
        return 2
    from tf4ctr.data.loader import BatchLoader
    from tf4ctr.data.store import prepare_dataset
    from tf4ctr.run.setup import build_parts, resolve_dataset

    config = run_config(data, args.set)
    dataset = resolve_dataset(config)
    prepared = prepare_dataset(dataset, Path(config.cache_dir), progress=False, mapped=True)
    parts = build_parts(config, prepared.schema)
    trainer = parts.trainer
    loader = BatchLoader(prepared.train, config.train.batch_size, shuffle=True, seed=1)
    batch_size = config.train.batch_size

    batches = iter(loader)  # one epoch's order, drawn once
    instrumented_steps(trainer, batches, args.warmup)
    records = instrumented_steps(trainer, batches, args.steps)
    # the trainer's own loop over as many steps (its epoch timer), not instrumented
    plain = trainer.train_epoch(Capped(batches, args.steps), epoch=2)["train_seconds"] / args.steps

    matmul = matmul_only_seconds(parts.model, prepared.schema, batch_size)
    medians = {p: statistics.median(r[p] for r in records) * 1e3 for p in (*PARTS, "step")}
    means = {p: statistics.fmean(r[p] for r in records) * 1e3 for p in (*PARTS, "step")}
    total = sum(means[p] for p in PARTS)
    result = {
        "machine": machine(),
        "data": f"SYNTHETIC Criteo-shaped, {len(prepared.train):,} train rows ({data.name})",
        "train": {s.split("=")[0]: s.split("=", 1)[1] for s in args.set},
        "batch_size": batch_size,
        "steps": args.steps,
        "mean_ms": means,
        "median_ms": medians,
        "share": {p: means[p] / total for p in PARTS},
        "instrumented_samples_per_s": batch_size / (means["step"] / 1e3),
        "trainer_step_ms": plain * 1e3,
        "trainer_samples_per_s": batch_size / plain,
        # the step's matrix products alone, at its shapes (flops.matmul_only_seconds)
        "matmul_only_step_ms": matmul * 1e3,
        "matmul_fraction": matmul / plain,
    }
    out = Path(args.out)
    store_labelled(out, args.label, result)
    print(f"| part ({args.label}) | mean ms | share |")
    print("|---|---:|---:|")
    for p in PARTS:
        print(f"| {p} | {means[p]:.1f} | {result['share'][p]:.1%} |")
    print(
        f"| **step** (instrumented) | {means['step']:.1f} | {result['instrumented_samples_per_s']:,.0f} samples/s |"
    )  # noqa: E501
    print(
        f"| Trainer.train_epoch step | {plain * 1e3:.1f} | {result['trainer_samples_per_s']:,.0f} samples/s |"
    )  # noqa: E501
    print(f"| matrix products alone | {matmul * 1e3:.1f} | matmul fraction "
          f"{result['matmul_fraction']:.2f} |")  # fmt: skip
    print(f"written to {out} under {args.label!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
