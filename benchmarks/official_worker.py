"""The official TF4CTR code's side of the speed benchmark: one timed run, one JSON line.

Run it with the python of the environment ``benchmarks/official_env.py`` builds, never with
the project's own python, as a subprocess of ``benchmarks/speed.py``:

    .bench-venv/official-tf4ctr-env/bin/python benchmarks/official_worker.py \
        [--epochs 1] [--max-batches N] [--threads 2] [--checkout DIR]
    .bench-venv/official-tf4ctr-env/bin/python benchmarks/official_worker.py --prepare-only

What runs is the authors' code (github.com/salmon1802/TF4CTR) as published, with the one-line
import patch ``official_env.py`` describes: its bundled FuxiCTR 2.0.1 fork and its
``src.TF4CTRv2`` model, called the way its ``run_expid.py`` calls them. Nothing of it is
re-implemented here:

- data: the bundled ``FeatureProcessor`` + ``build_dataset`` (pandas -> h5 files), with the
  dataset config of the repository's Frappe runs (``TF4CTRv2_tuner_config_Frappe.yaml``:
  ten categorical fields read as float, ``group_id`` copied from ``user`` for gAUC, min
  count 2) pointed at Frappe_x1 rebuilt (``../shared/data/Frappe_x1_rebuilt``). It runs once,
  in a child process (``--prepare-only``), into ``.bench-venv/official-work/data/``; later
  runs reuse it (stamped with the CSVs' sizes and times);
- model: ``TF4CTRv2(feature_map, **params)`` with the parameters of the best logged Frappe
  run (``checkpoints/Frappe_x1_csv_53b0b0b3/TF4CTRv2_Frappe_121_422294bf.log``: SSM=SER,
  DFM=WSF, easy [400, 400], hard [400, 400, 400], c 0.7, gamma 1, alpha 0.25, dropout 0.2,
  batch norm, embedding 16, embedding L2 0.1, Adam 1e-3, batch 10,000, seed 2023) - the same
  settings as ``configs/frappe_x1/tf4ctr.yaml``;
- loaders: ``H5DataLoader(feature_map, stage="train", ...)``, a torch ``DataLoader`` over a
  per-row ``Dataset`` with ``num_workers`` worker processes (``--num-workers``, default 4,
  the value in that log);
- training: ``BaseModel.train_epoch`` (per batch: zero_grad, forward, BCE + twin-focus loss +
  embedding L2 over both whole tables, backward, clip_grad_norm_(10), Adam step,
  ``loss.item()``, tqdm bar as with ``verbose: 1``), with its in-epoch evaluation switched off
  (``_eval_steps`` past the epoch), so validation, checkpointing and early stopping are not in
  the timed loop - the fields ``BaseModel.fit`` sets before its epochs are set the same way;
- evaluation: one ``model.evaluate(valid_gen)`` over the whole validation split with the
  run's metrics ``[logloss, AUC, gAUC]`` (forward under no_grad in batches of 10,000, numpy
  conversion, scikit-learn metrics, gAUC per user in a ``multiprocessing.Pool``).

What is timed (``time.perf_counter``), defined as in ``tf4ctr_worker.py``:

- ``seconds_per_epoch``: the median (upper median for an even count, as
  ``tf4ctr_worker.py`` takes it) of the epochs' wall times of ``model.train_epoch(loader)``,
  which includes starting the loader's worker processes and fetching every batch;
  ``train_samples_per_s`` = samples per epoch / that time (tf4ctr's figure is the train-set
  size over its trainer's median epoch time, which likewise includes fetching batches);
  ``--max-batches N`` stops every epoch after N batches, so the samples per epoch are the
  rows of N batches (a short-run check, not a comparable figure);
  ``train_samples_per_s_mean`` = all samples / all epoch seconds;
  ``train_samples_per_s_steady`` leaves out each epoch's first batch (loader start-up);
- ``eval_samples_per_s`` = validation rows / the wall time of ``model.evaluate(valid_gen)``
  (tf4ctr's: validation rows / its ``Trainer.evaluate``, prediction plus AUC, gAUC, log loss);
- not in either: imports (``import_s``), the feature map, the model's constructor
  (``model_build_s``) and reading the h5 files into the loaders (``loader_build_s``).

``parameters`` counts trainable parameters as the code's ``count_parameters`` does; the
paper's Frappe log reports 711,996 (``parameters_paper_log``), which needs the original
training split's vocabularies. ``peak_rss_mb`` is this process's ``ru_maxrss``;
``peak_tree_pss_mb`` adds the loader's worker processes (summed PSS, sampled every 0.25 s).
Everything but the one JSON line (the code's logging, tqdm bars) goes to stderr and to
``.bench-venv/official-work/logs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# benchmarks/ is this script's folder, so first on sys.path; peer_harness is stdlib only
import peer_harness as ph

DEFAULT_WORK = ph.REPO_ROOT / ".bench-venv" / "official-work"
DEFAULT_CHECKOUT = ph.REPO_ROOT / ".bench-venv" / "official-tf4ctr"
MODEL_DIR = Path("TF4CTR") / "TF4CTR_torch"
DATASET_ID = "Frappe_x1_rebuilt_csv"
PAPER_PARAMETERS = 711_996  # "Total number of parameters" in the best Frappe log


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ph.add_common_args(
        p,
        threads=2,
        threads_help="torch.set_num_threads (and OMP/MKL)",
        num_workers=4,
        num_workers_help="the torch DataLoader's worker processes (4 in the best logged Frappe run)",
        work=DEFAULT_WORK,
        work_help="h5 data, checkpoints, logs",
        prepare_help="only build the h5 data, then exit",
    )
    p.add_argument(
        "--checkout",
        default=str(DEFAULT_CHECKOUT),
        help="the patched copy of the official repository (made by official_env.py)",
    )
    return p.parse_args(argv)


def use_official_code(checkout: Path) -> None:
    """Put the bundled fuxictr and the model package first on sys.path (run_expid.py's layout)."""
    if not (checkout / MODEL_DIR / "src" / "TF4CTRv2.py").is_file():
        raise RuntimeError(
            f"no official TF4CTR code at {checkout}; run benchmarks/official_env.py --src DIR first"
        )
    sys.path[:0] = [str(checkout), str(checkout / MODEL_DIR)]


def dataset_params(data_dir: Path, work_dir: Path) -> dict:
    """The repository's Frappe_x1_csv dataset config, pointed at the rebuilt Frappe_x1 CSVs."""
    return {
        "dataset_id": DATASET_ID,
        "data_format": "csv",
        "data_root": str(work_dir / "data"),
        "feature_cols": [
            {
                "name": "group_id",
                "active": True,
                "dtype": "int",
                "type": "meta",
                "preprocess": "copy_from(user)",
                "remap": False,
            },
            {"name": list(ph.FEATURES), "active": True, "dtype": "float", "type": "categorical"},
        ],
        "label_col": {"name": "label", "dtype": "float"},
        "min_categr_count": 2,
        "train_data": str(data_dir / "train.csv"),
        "valid_data": str(data_dir / "valid.csv"),
        "test_data": str(data_dir / "test.csv"),
        "group_id": "group_id",
    }


def run_params(work_dir: Path, batch_size: int, seed: int, num_workers: int) -> dict:
    """The model_config Base entries plus the parameters of the best logged Frappe run."""
    return {
        # Base (model_config.yaml), with num_workers as logged for that run
        "model_root": str(work_dir / "checkpoints"),
        "num_workers": num_workers,
        "verbose": 1,
        "early_stop_patience": 2,
        "pickle_feature_encoder": True,
        "save_best_only": True,
        "eval_steps": None,
        "debug_mode": False,
        "use_features": None,
        "feature_specs": None,
        "feature_config": None,
        # TF4CTRv2_Frappe_121_422294bf
        "model": "TF4CTRv2",
        "model_id": "TF4CTRv2_Frappe_bench",
        "gpu": -1,
        "task": "binary_classification",
        "loss": "binary_crossentropy",
        "metrics": ["logloss", "AUC", "gAUC"],
        "monitor": {"AUC": 1, "gAUC": 1, "logloss": 0},
        "monitor_mode": "max",
        "optimizer": "adam",
        "learning_rate": 1.0e-3,
        "embedding_dim": 16,
        "embedding_regularizer": 0.1,
        "net_regularizer": 0,
        "batch_size": batch_size,
        "epochs": 100,
        "shuffle": True,
        "seed": seed,
        "SSM": "SER",
        "DFM": "WSF",
        "easy_hidden_units": [400, 400],
        "hard_hidden_units": [400, 400, 400],
        "hidden_activations": "relu",
        "net_dropout": 0.2,
        "batch_norm": True,
        "c": 0.7,
        "gamma": 1,
        "alpha": 0.25,
    }


def prepare_data(data_dir: Path, work_dir: Path, checkout: Path) -> dict:
    """run_expid.py's csv branch: FeatureProcessor + build_dataset (skips a finished build)."""
    from fuxictr.preprocess import FeatureProcessor, build_dataset

    params = dataset_params(data_dir, work_dir)
    marker = checkout / ".official-checkout.json"
    source = json.loads(marker.read_text()).get("source") if marker.is_file() else None
    stamp = {**ph.csv_stamp(data_dir), "official_source": source}

    def build(_):  # timed: the encoder's constructor and build_dataset
        return build_dataset(FeatureProcessor(**params), **params)

    return ph.cached_build(Path(params["data_root"]), DATASET_ID, stamp, build)


def run_benchmark(args, result: dict, sampler) -> None:
    work_dir = Path(args.work_dir).resolve()
    data_dir = Path(args.data_dir).resolve()
    checkout = Path(args.checkout).resolve()

    sampler.phase = "import"
    start = time.perf_counter()
    import fuxictr
    import numpy as np
    import torch
    from fuxictr.features import FeatureMap
    from fuxictr.pytorch.dataloaders import H5DataLoader
    from fuxictr.pytorch.torch_utils import seed_everything

    import src as model_zoo  # the official model package, as run_expid.py imports it

    result["import_s"] = time.perf_counter() - start
    torch.set_num_threads(args.threads)
    result["threads"] = torch.get_num_threads()
    result["versions"] = ph.versions(
        {
            "bundled_fuxictr": fuxictr.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        *("pandas", "scikit-learn", "h5py"),
    )
    marker = checkout / ".official-checkout.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        result["official_source"] = info.get("source")
        result["official_patch"] = info.get("patch")

    sampler.phase = "preprocess"  # a child process; not in peak_tree_pss_mb
    result["preprocess_s"] = ph.prepare_in_child(__file__, args, "--checkout", args.checkout)

    sampler.phase = "model_build"
    params = run_params(work_dir, args.batch_size, args.seed, args.num_workers)
    params.update(dataset_params(data_dir, work_dir))
    data = prepare_data(data_dir, work_dir, checkout)  # finds the cache, returns the h5 paths
    params.update(
        train_data=data["train_data"], valid_data=data["valid_data"], test_data=data["test_data"]
    )
    seed_everything(seed=params["seed"])
    data_dir_h5 = os.path.join(params["data_root"], params["dataset_id"])
    feature_map = FeatureMap(params["dataset_id"], data_dir_h5)
    feature_map.load(os.path.join(data_dir_h5, "feature_map.json"), params)
    Path(params["model_root"], DATASET_ID).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    model = getattr(model_zoo, params["model"])(feature_map, **params)
    result["model_build_s"] = time.perf_counter() - start
    model.count_parameters()  # logs it, as run_expid.py does
    result["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    result["parameters_paper_log"] = PAPER_PARAMETERS
    result["vocab_sizes"] = {
        name: spec["vocab_size"]
        for name, spec in feature_map.features.items()
        if spec["type"] == "categorical"
    }

    sampler.phase = "loaders"
    start = time.perf_counter()
    train_gen, valid_gen = H5DataLoader(feature_map, stage="train", **params).make_iterator()
    result["loader_build_s"] = time.perf_counter() - start
    ph.prepare_fit(model, train_gen, valid_gen=valid_gen, _batch_index=0)

    sampler.phase = "train"
    cpu0, children0 = time.process_time(), ph.children_cpu_s()
    epoch_seconds, loaders = ph.train_epochs(model, train_gen, args, lambda b: b.shape[0])
    result["train_cpu_s_self"] = time.process_time() - cpu0
    # the loader's workers are reaped when each epoch's iterator ends
    result["train_cpu_s_loader_workers"] = ph.children_cpu_s() - children0
    epoch_samples = [loader.samples for loader in loaders]
    full_epochs = args.max_batches is None or args.max_batches >= len(train_gen)
    per_epoch = sorted(epoch_seconds)[len(epoch_seconds) // 2]
    samples_per_epoch = epoch_samples[0]
    result["epoch_seconds"] = epoch_seconds
    result["train_batches_per_epoch"] = len(loaders[0])
    result["train_samples_per_epoch"] = samples_per_epoch
    result["train_set_size"] = train_gen.num_samples
    result["full_epochs"] = full_epochs
    result["seconds_per_epoch"] = per_epoch
    result["train_samples_per_s"] = samples_per_epoch / per_epoch
    result["train_samples_per_s_mean"] = sum(epoch_samples) / sum(epoch_seconds)
    result["train_samples_per_s_steady"] = ph.steady_rate(loaders)

    if not args.no_eval:
        sampler.phase = "eval"
        logs = ph.timed_eval(model, valid_gen, result)  # validation_metrics = logloss, AUC, gAUC
        result["valid_auc"] = float(logs["AUC"])
        result["valid_gauc"] = float(logs["gAUC"])
        result["valid_logloss"] = float(logs["logloss"])


def main(argv=None) -> int:
    args = parse_args(argv)
    json_out = ph.cap_threads(args.threads)  # the code's tqdm bars (verbose: 1) go to stderr
    work_dir = Path(args.work_dir).resolve()
    checkout = Path(args.checkout).resolve()
    result: dict = {
        "library": "official-tf4ctr",
        "model": "prepare" if args.prepare_only else "TF4CTRv2",
        "threads": args.threads,
        "num_workers": args.num_workers,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "max_batches": args.max_batches,
    }

    def body(sampler):
        use_official_code(checkout)
        result["log_file"] = str(ph.setup_logging(work_dir, result["model"]))
        if args.prepare_only:
            result.update(prepare_data(Path(args.data_dir).resolve(), work_dir, checkout))
        else:
            run_benchmark(args, result, sampler)

    return ph.worker_main(json_out, result, body, by_phase=False)


if __name__ == "__main__":
    sys.exit(main())
