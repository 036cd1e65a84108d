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

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "Frappe_x1_rebuilt"
DEFAULT_WORK = REPO_ROOT / ".bench-venv" / "official-work"
DEFAULT_CHECKOUT = REPO_ROOT / ".bench-venv" / "official-tf4ctr"
MODEL_DIR = Path("TF4CTR") / "TF4CTR_torch"
DATASET_ID = "Frappe_x1_rebuilt_csv"
FEATURES = [
    "user",
    "item",
    "daytime",
    "weekday",
    "isweekend",
    "homework",
    "cost",
    "weather",
    "country",
    "city",
]
PAPER_PARAMETERS = 711_996  # "Total number of parameters" in the best Frappe log

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuxictr_worker import TreeMemorySampler  # noqa: E402  (stdlib only)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-batches", type=int, default=None, help="stop each epoch after N batches")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (and OMP/MKL)")
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument(
        "--num-workers",
        type=int,
        default=4,
        help="the torch DataLoader's worker processes (4 in the best logged Frappe run)",
    )
    p.add_argument(
        "--checkout",
        default=str(DEFAULT_CHECKOUT),
        help="the patched copy of the official repository (made by official_env.py)",
    )
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="train.csv, valid.csv, test.csv")
    p.add_argument("--work-dir", default=str(DEFAULT_WORK), help="h5 data, checkpoints, logs")
    p.add_argument("--no-eval", action="store_true", help="skip the timed evaluation")
    p.add_argument("--prepare-only", action="store_true", help="only build the h5 data, then exit")
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
            {"name": list(FEATURES), "active": True, "dtype": "float", "type": "categorical"},
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


def _source_stamp(data_dir: Path, checkout: Path) -> dict:
    files = {}
    for split in ("train", "valid", "test"):
        st = (data_dir / f"{split}.csv").stat()
        files[split] = [st.st_size, st.st_mtime_ns]
    marker = checkout / ".official-checkout.json"
    source = json.loads(marker.read_text()).get("source") if marker.is_file() else None
    return {"files": files, "data_dir": str(data_dir.resolve()), "official_source": source}


def prepare_data(data_dir: Path, work_dir: Path, checkout: Path) -> dict:
    """run_expid.py's csv branch: FeatureProcessor + build_dataset (skips a finished build)."""
    import fcntl
    import shutil

    from fuxictr.preprocess import FeatureProcessor, build_dataset

    params = dataset_params(data_dir, work_dir)
    data_root = Path(params["data_root"])
    ds_dir = data_root / DATASET_ID
    data_root.mkdir(parents=True, exist_ok=True)
    stamp = _source_stamp(data_dir, checkout)
    stamp_file = ds_dir / "source_stamp.json"
    with open(data_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp
        if not cached and ds_dir.exists():
            shutil.rmtree(ds_dir)  # stale or half-built
        start = time.perf_counter()
        feature_encoder = FeatureProcessor(**params)
        train, valid, test = build_dataset(feature_encoder, **params)
        seconds = time.perf_counter() - start
        if not cached:
            stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
    return {
        "train_data": train,
        "valid_data": valid,
        "test_data": test,
        "preprocess_s": None if cached else seconds,
        "cached": cached,
    }


def prepare_in_child(args) -> float | None:
    import subprocess

    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--prepare-only",
        "--data-dir",
        args.data_dir,
        "--work-dir",
        args.work_dir,
        "--checkout",
        args.checkout,
        "--threads",
        str(args.threads),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    info = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or "error" in info:
        raise RuntimeError(f"preprocessing failed: {info.get('error', f'exit {proc.returncode}')}")
    return info.get("preprocess_s")


class LimitedLoader:
    """Wraps the training DataLoader: stops after max_batches, notes when each batch arrives."""

    def __init__(self, loader, max_batches: int | None):
        self.loader = loader
        self.max_batches = max_batches
        self.samples = 0
        self.arrivals: list[tuple[float, int]] = []  # (perf_counter at the loop, rows)

    def __len__(self):
        n = len(self.loader)
        return n if self.max_batches is None else min(n, self.max_batches)

    def steady(self) -> tuple[int, float]:
        """Rows of batches 1..n-1 over the time from batch 1 to batch n reaching the loop."""
        if len(self.arrivals) < 2:
            return 0, 0.0
        return sum(n for _, n in self.arrivals[:-1]), self.arrivals[-1][0] - self.arrivals[0][0]

    def __iter__(self):
        for batch in self.loader:
            rows = int(batch.shape[0])
            self.arrivals.append((time.perf_counter(), rows))
            self.samples += rows
            yield batch
            if self.max_batches is not None and len(self.arrivals) >= self.max_batches:
                break


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
    result["versions"] = {
        "bundled_fuxictr": fuxictr.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        **{name: _version(name) for name in ("pandas", "scikit-learn", "h5py")},
        "python": sys.version.split()[0],
    }
    marker = checkout / ".official-checkout.json"
    if marker.is_file():
        info = json.loads(marker.read_text())
        result["official_source"] = info.get("source")
        result["official_patch"] = info.get("patch")

    sampler.phase = "preprocess"  # a child process; not in peak_tree_pss_mb
    result["preprocess_s"] = prepare_in_child(args)

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

    # what BaseModel.fit sets up before its epochs, minus the in-epoch evaluation
    model.valid_gen = valid_gen
    model._max_gradient_norm = 10.0
    model._best_metric = -np.inf
    model._stopping_steps = 0
    model._steps_per_epoch = len(train_gen)
    model._stop_training = False
    model._total_steps = 0
    model._batch_index = 0
    model._eval_steps = sys.maxsize  # never reached: no evaluation inside the timed loop

    sampler.phase = "train"
    epoch_seconds, epoch_samples, steady_rows, steady_s = [], [], 0, 0.0
    cpu0, children0 = time.process_time(), _children_cpu_s()
    for epoch in range(args.epochs):
        model._epoch_index = epoch
        loader = LimitedLoader(train_gen, args.max_batches)
        start = time.perf_counter()
        model.train_epoch(loader)
        epoch_seconds.append(time.perf_counter() - start)
        epoch_samples.append(loader.samples)
        rows, seconds = loader.steady()
        steady_rows += rows
        steady_s += seconds
    result["train_cpu_s_self"] = time.process_time() - cpu0
    # the loader's workers are reaped when each epoch's iterator ends
    result["train_cpu_s_loader_workers"] = _children_cpu_s() - children0
    full_epochs = args.max_batches is None or args.max_batches >= len(train_gen)
    per_epoch = sorted(epoch_seconds)[len(epoch_seconds) // 2]
    samples_per_epoch = epoch_samples[0]
    result["epoch_seconds"] = epoch_seconds
    result["train_batches_per_epoch"] = len(LimitedLoader(train_gen, args.max_batches))
    result["train_samples_per_epoch"] = samples_per_epoch
    result["train_set_size"] = train_gen.num_samples
    result["full_epochs"] = full_epochs
    result["seconds_per_epoch"] = per_epoch
    result["train_samples_per_s"] = samples_per_epoch / per_epoch
    result["train_samples_per_s_mean"] = sum(epoch_samples) / sum(epoch_seconds)
    result["train_samples_per_s_steady"] = steady_rows / steady_s if steady_s > 0 else None

    if not args.no_eval:
        sampler.phase = "eval"
        start = time.perf_counter()
        logs = model.evaluate(valid_gen)  # validation_metrics = ['logloss', 'AUC', 'gAUC']
        eval_seconds = time.perf_counter() - start
        result["eval_samples"] = valid_gen.num_samples
        result["eval_seconds"] = eval_seconds
        result["eval_samples_per_s"] = valid_gen.num_samples / eval_seconds
        result["valid_auc"] = float(logs["AUC"])
        result["valid_gauc"] = float(logs["gAUC"])
        result["valid_logloss"] = float(logs["logloss"])


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's reaped children (the loader's workers)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _version(dist: str):
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def setup_logging(work_dir: Path, name: str) -> Path:
    import logging

    log_dir = work_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / f"{name}.log"
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)
    to_file = logging.FileHandler(log_file, mode="w")
    to_file.setLevel(logging.INFO)
    to_err = logging.StreamHandler(sys.stderr)
    to_err.setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s P%(process)d %(levelname)s %(message)s",
        handlers=[to_file, to_err],
    )
    return log_file


def main(argv=None) -> int:
    args = parse_args(argv)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    # stdout is kept for the one JSON line; the code's tqdm bars (verbose: 1) go to stderr
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    work_dir = Path(args.work_dir).resolve()
    result: dict = {
        "library": "official-tf4ctr",
        "model": "prepare" if args.prepare_only else "TF4CTRv2",
        "threads": args.threads,
        "num_workers": args.num_workers,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "max_batches": args.max_batches,
    }
    status = 0
    sampler = TreeMemorySampler().start()
    try:
        use_official_code(Path(args.checkout).resolve())
        result["log_file"] = str(
            setup_logging(work_dir, "prepare" if args.prepare_only else "TF4CTRv2")
        )
        if args.prepare_only:
            result.update(
                prepare_data(Path(args.data_dir).resolve(), work_dir, Path(args.checkout).resolve())
            )
        else:
            run_benchmark(args, result, sampler)
    except Exception as err:  # the harness gets a JSON line whatever happens
        import traceback

        traceback.print_exc()
        result["error"] = f"{type(err).__name__}: {err}"
        status = 1
    finally:
        sampler.stop()
    import resource

    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    run_peaks = [v for k, v in sampler.peaks.items() if k != "preprocess"]
    result["peak_tree_pss_mb"] = round(max(run_peaks), 1) if run_peaks else None
    result["max_tree_processes"] = sampler.max_procs
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
