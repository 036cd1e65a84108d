"""FuxiCTR side of the tf4ctr-vs-FuxiCTR speed benchmark: one model, one JSON line.

Run it with the python of the FuxiCTR venv (see ``benchmarks/fuxictr_env.py``), never
with the project's own python, as a subprocess of the benchmark:

    .bench-venv/fuxictr-2.3.10/bin/python benchmarks/fuxictr_worker.py --model DNN \
        [--epochs 1] [--max-batches N] [--threads 1] [--model-zoo DIR | --model-src DIR]
    .bench-venv/fuxictr-2.3.10/bin/python benchmarks/fuxictr_worker.py --prepare-only

Everything goes through FuxiCTR 2.3.10's own API, as its ``run_expid.py`` does:
``FeatureProcessor`` + ``build_dataset`` (polars + Ray Data -> parquet, cached under
``.bench-venv/work/data/``), ``FeatureMap.load``, ``RankDataLoader`` (Ray Data parquet
loader), the model class's constructor, ``BaseModel.train_epoch`` and
``BaseModel.evaluate``. Nothing of FuxiCTR is re-implemented here.

Model classes: the PyPI package of FuxiCTR 2.3.10 ships the library (``fuxictr``) and a
stray ``model_zoo.LongCTR`` (long-behaviour-sequence models that need sequence inputs and
their own data loader), but *not* the model zoo with DNN, DualMLP, DeepFM or DCNv2 (those
live in the ``model_zoo/`` folder of FuxiCTR's source repository). So a model class is
looked up, in order, in:

1. ``--model-src DIR``: a folder that is a python package exporting the class (e.g. a
   FuxiCTR checkout's ``model_zoo/DNN/DNN_torch/src``, or another FuxiCTR-based
   project's ``src``);
2. ``--model-zoo DIR`` (or ``$FUXICTR_MODEL_ZOO``): a FuxiCTR checkout's ``model_zoo``
   folder, at that repository's layout (DNN/DNN_torch/src, FinalMLP/src for DualMLP,
   DeepFM/DeepFM_torch/src, DCNv2/src);
3. the installed package (``fuxictr.pytorch.models``).

If none has it, the JSON line carries ``"error"`` and the exit status is 2.

Phases and what is timed (``time.perf_counter``):

- preprocessing: once, in a child process (``--prepare-only``), so that its memory and its
  Ray cluster do not count in the training process (nor in either peak below); reported as
  ``preprocess_s`` (null when the cache was reused);
- ``import_s``: importing torch + fuxictr; ``loader_build_s``: ``RankDataLoader`` for train
  and valid (this starts Ray and counts the parquet rows); ``model_build_s``: the model's
  constructor (embedding, layers, optimizer); none of these is in the throughputs;
- training: per epoch, the wall time of ``model.train_epoch(train_gen)``, FuxiCTR's own
  epoch loop (per batch: Ray Data batch -> dict of tensors, ``train_step`` = zero_grad,
  forward, BCE + embedding L2 over the whole tables, backward, clip_grad_norm_(10), Adam
  step, then ``loss.item()``), with its in-epoch evaluation switched off
  (``_eval_steps`` set past the epoch), so validation, checkpointing and early stopping are
  not in it. ``--max-batches`` stops the loader after N batches (the start-up of the Ray
  iterator, including its per-epoch global shuffle, is then spread over N batches only);
  ``train_samples_per_s`` = samples seen / summed epoch seconds;
  ``train_samples_per_s_steady`` leaves out each epoch's iterator start-up (rows of batches
  1..n-1 over the time from batch 1 to batch n reaching the loop), and
  ``train_first_batch_s`` is that start-up, per epoch;
  ``seconds_per_epoch`` = measured mean when whole epochs ran, else the train-set size
  divided by that throughput (``seconds_per_epoch_extrapolated: true``);
- evaluation: the wall time of one ``model.evaluate(valid_gen)`` over the whole validation
  split (forward in no_grad, numpy conversion, then logloss + AUC with scikit-learn), as
  ``run_expid.py`` calls it; ``eval_samples_per_s`` = validation rows / that time;
- memory: ``peak_rss_mb`` = ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of this process
  (which never ran preprocessing); because FuxiCTR's loaders run in Ray's separate
  processes (raylet, workers, object store in shared memory), ``peak_tree_pss_mb`` also
  gives the peak summed PSS of this process and all its descendants, sampled every 0.25 s.

The one JSON line goes to stdout; everything else (FuxiCTR's and Ray's logs) to stderr
and ``.bench-venv/work/logs/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# benchmarks/ is this script's folder, so first on sys.path; peer_harness is stdlib only
import peer_harness as ph

DEFAULT_WORK = ph.REPO_ROOT / ".bench-venv" / "work"
LABEL = "label"
MIN_CATEGR_COUNT = 2
# where each model's package sits in a FuxiCTR source checkout's model_zoo/ folder
ZOO_LAYOUT = {
    "DNN": ["DNN/DNN_torch/src", "DNN/src"],
    "DualMLP": ["FinalMLP/src", "DualMLP/src"],
    "DeepFM": ["DeepFM/DeepFM_torch/src", "DeepFM/src"],
    "DCNv2": ["DCNv2/src", "DCNv2/DCNv2_torch/src"],
}
EXIT_MODEL_MISSING = 2


class ModelUnavailable(ph.ReportedError):
    status = EXIT_MODEL_MISSING


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default=None,
        help="DNN, DualMLP, DeepFM, DCNv2, or a class name found in --model-src",
    )
    ph.add_common_args(
        p,
        threads=1,
        threads_help="torch.set_num_threads (and OMP/MKL/polars threads)",
        num_workers=1,
        num_workers_help="ParquetDataLoader's prefetch_batches (its default is 1; FuxiCTR's sample configs use 3)",
        work=DEFAULT_WORK,
        work_help="preprocessed data, checkpoints, logs",
        prepare_help="only preprocess the data (cached), then exit",
    )
    p.add_argument(
        "--model-src", default=None, help="python package folder exporting the model class"
    )
    p.add_argument(
        "--model-zoo",
        default=os.environ.get("FUXICTR_MODEL_ZOO"),
        help="a FuxiCTR source checkout's model_zoo folder (default $FUXICTR_MODEL_ZOO)",
    )
    args = p.parse_args(argv)
    if not args.prepare_only and not args.model:
        p.error("--model is required unless --prepare-only")
    return args


# --------------------------------------------------------------------------- data


def dataset_paths(work_dir: Path) -> tuple[Path, str]:
    return work_dir / "data", "frappe_x1_rebuilt_mc2"


def prepare_data(data_dir: Path, work_dir: Path) -> dict:
    """Build FuxiCTR's feature map + parquet splits once (their build_dataset), reuse after."""
    import fuxictr
    from fuxictr.preprocess import FeatureProcessor, build_dataset

    data_root, dataset_id = dataset_paths(work_dir)
    stamp = {
        **ph.csv_stamp(data_dir),
        "fuxictr": fuxictr.__version__,
        "min_categr_count": MIN_CATEGR_COUNT,
        "features": ph.FEATURES,
    }

    def encoder():
        return FeatureProcessor(
            feature_cols=[
                {"name": ph.FEATURES, "active": True, "dtype": "str", "type": "categorical"}
            ],
            label_col={"name": LABEL, "dtype": "float"},
            dataset_id=dataset_id,
            data_root=str(data_root),
        )

    def build(feature_encoder):  # timed: build_dataset alone
        return build_dataset(
            feature_encoder,
            train_data=str(data_dir / "train.csv"),
            valid_data=str(data_dir / "valid.csv"),
            test_data=str(data_dir / "test.csv"),
            data_format="csv",
            min_categr_count=MIN_CATEGR_COUNT,
        )

    return ph.cached_build(data_root, dataset_id, stamp, build, encoder)


# --------------------------------------------------------------------------- model lookup


def _import_package(src_dir: Path, tag: str):
    import importlib.util

    init = src_dir / "__init__.py"
    if not init.is_file():
        raise ModelUnavailable(f"{src_dir} is not a python package (no __init__.py)")
    name = f"_fuxictr_models_{tag}"
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(src_dir)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def find_model_class(model: str, model_src: str | None, model_zoo: str | None):
    if model_src:
        module = _import_package(Path(model_src).resolve(), "src")
        if not hasattr(module, model):
            raise ModelUnavailable(f"{model_src} does not export {model}")
        return getattr(module, model), str(Path(model_src).resolve())
    if model_zoo:
        for rel in ZOO_LAYOUT.get(model, [f"{model}/src", f"{model}/{model}_torch/src"]):
            src = Path(model_zoo).resolve() / rel
            if (src / "__init__.py").is_file():
                module = _import_package(src, model)
                if hasattr(module, model):
                    return getattr(module, model), str(src)
    import fuxictr.pytorch.models as installed

    if hasattr(installed, model):
        return getattr(installed, model), "fuxictr.pytorch.models"
    hint = (
        (
            " (the package's model_zoo.LongCTR.DCNv2 is a long-sequence variant that needs"
            " sequence features and LongCTRDataLoader, not usable on Frappe)"
        )
        if model == "DCNv2"
        else ""
    )
    raise ModelUnavailable(
        f"{model} is not in the fuxictr {installed_version()} PyPI package{hint}; "
        "pass --model-zoo <FuxiCTR checkout>/model_zoo or --model-src <package folder>"
    )


def installed_version() -> str:
    try:
        import fuxictr

        return fuxictr.__version__
    except ImportError:
        return "not installed"


def model_params(model: str, work_dir: Path, batch_size: int, seed: int) -> dict:
    """The benchmark's shared settings in FuxiCTR's own parameter names (as in its YAML configs)."""
    params = {
        "model": model,
        "model_id": f"{model}_bench",
        "gpu": -1,
        "task": "binary_classification",
        "loss": "binary_crossentropy",
        "metrics": ["logloss", "AUC"],
        "optimizer": "adam",
        "learning_rate": 1.0e-3,
        "embedding_dim": 16,
        "embedding_regularizer": 0.1,
        "net_regularizer": 0,
        "batch_size": batch_size,
        "epochs": 1,
        "shuffle": True,
        "seed": seed,
        "verbose": 0,
        "model_root": str(work_dir / "checkpoints"),
        "monitor": "AUC",
        "monitor_mode": "max",
        "early_stop_patience": 2,
        "save_best_only": True,
        "eval_steps": None,
        # DNN / DeepFM
        "hidden_units": [400, 400, 400],
        "hidden_activations": "relu",
        "net_dropout": 0.2,
        "batch_norm": True,
        # DualMLP
        "mlp1_hidden_units": [400, 400],
        "mlp1_hidden_activations": "relu",
        "mlp1_dropout": 0.2,
        "mlp1_batch_norm": True,
        "mlp2_hidden_units": [400, 400, 400],
        "mlp2_hidden_activations": "relu",
        "mlp2_dropout": 0.2,
        "mlp2_batch_norm": True,
        # DCNv2 (parallel, full-rank cross, 3 cross layers: FuxiCTR's defaults, and tf4ctr's)
        "model_structure": "parallel",
        "use_low_rank_mixture": False,
        "low_rank": 32,
        "num_experts": 4,
        "num_cross_layers": 3,
        "stacked_dnn_hidden_units": [400, 400, 400],
        "parallel_dnn_hidden_units": [400, 400, 400],
        "dnn_activations": "relu",
    }
    return params


# --------------------------------------------------------------------------- timed run


def run_benchmark(args, result: dict, sampler) -> None:
    work_dir = Path(args.work_dir).resolve()
    data_dir = Path(args.data_dir).resolve()

    sampler.phase = "import"
    start = time.perf_counter()
    import fuxictr
    import numpy as np
    import torch
    from fuxictr.features import FeatureMap
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything

    result["import_s"] = time.perf_counter() - start
    torch.set_num_threads(args.threads)
    result["threads"] = torch.get_num_threads()
    result["versions"] = ph.versions(
        {"fuxictr": fuxictr.__version__, "torch": torch.__version__, "numpy": np.__version__},
        *("pandas", "polars", "pyarrow", "ray", "scikit-learn"),
    )

    model_class, source = find_model_class(args.model, args.model_src, args.model_zoo)
    result["model_source"] = source

    sampler.phase = "preprocess"  # a child process; not in peak_tree_pss_mb
    result["preprocess_s"] = ph.prepare_in_child(__file__, args)
    sampler.phase = "data_paths"

    # the same calls as FuxiCTR's run_expid.py; build_dataset finds the cache and only returns paths
    data = prepare_data(data_dir, work_dir)
    params = model_params(args.model, work_dir, args.batch_size, args.seed)
    params.update(
        train_data=data["train_data"], valid_data=data["valid_data"], test_data=data["test_data"]
    )
    data_root, dataset_id = dataset_paths(work_dir)
    feature_map = FeatureMap(dataset_id, str(data_root / dataset_id))
    feature_map.load(str(data_root / dataset_id / "feature_map.json"), params)
    (work_dir / "checkpoints" / dataset_id).mkdir(parents=True, exist_ok=True)

    sampler.phase = "loaders"
    start = time.perf_counter()
    train_gen, valid_gen = RankDataLoader(
        feature_map,
        stage="train",
        train_data=params["train_data"],
        valid_data=params["valid_data"],
        batch_size=args.batch_size,
        shuffle=True,
        data_format="parquet",
        num_workers=args.num_workers,
    )
    result["loader_build_s"] = time.perf_counter() - start

    sampler.phase = "model_build"
    seed_everything(seed=args.seed)
    start = time.perf_counter()
    model = model_class(feature_map, **params)
    result["model_build_s"] = time.perf_counter() - start
    result["parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ph.prepare_fit(model, train_gen)

    sampler.phase = "train"
    cpu0, tree_cpu0 = time.process_time(), ph.tree_cpu_seconds()
    epoch_seconds, loaders = ph.train_epochs(model, train_gen, args, lambda b: b[LABEL].shape[0])
    result["train_cpu_s_self"] = time.process_time() - cpu0
    result["train_cpu_s_tree"] = ph.tree_cpu_seconds() - tree_cpu0
    samples = sum(loader.samples for loader in loaders)
    train_seconds = sum(epoch_seconds)
    full_epochs = args.max_batches is None or args.max_batches >= len(train_gen)
    result["train_samples"] = samples
    result["train_batches"] = sum(loader.batches for loader in loaders)
    result["train_seconds"] = train_seconds
    result["train_first_batch_s"] = [loader.first_batch_s for loader in loaders]
    result["train_samples_per_s"] = samples / train_seconds if train_seconds > 0 else None
    result["train_samples_per_s_steady"] = ph.steady_rate(loaders)
    result["train_set_size"] = train_gen.num_samples
    if full_epochs:
        result["seconds_per_epoch"] = train_seconds / len(epoch_seconds)
        result["seconds_per_epoch_extrapolated"] = False
    else:
        result["seconds_per_epoch"] = train_gen.num_samples / result["train_samples_per_s"]
        result["seconds_per_epoch_extrapolated"] = True
    result["epoch_seconds"] = epoch_seconds

    if not args.no_eval:
        sampler.phase = "eval"
        logs = ph.timed_eval(model, valid_gen, result)  # validation_metrics = ['logloss', 'AUC']
        result["valid_auc"] = float(logs["AUC"]) if full_epochs else None
        result["valid_logloss"] = float(logs["logloss"]) if full_epochs else None


def main(argv=None) -> int:
    args = parse_args(argv)
    # Ray's processes inherit fd 1, so what they print goes to stderr too
    json_out = ph.cap_threads(args.threads, "POLARS_MAX_THREADS")
    work_dir = Path(args.work_dir).resolve()
    result: dict = {
        "library": "fuxictr",
        "version": installed_version(),
        "model": "prepare" if args.prepare_only else args.model,
        "threads": args.threads,
    }

    def body(sampler):
        if installed_version() == "not installed":
            raise RuntimeError(
                f"fuxictr is not importable from {sys.executable}; run me with the FuxiCTR venv's python"
            )
        result["log_file"] = str(
            ph.setup_logging(work_dir, "prepare" if args.prepare_only else args.model)
        )
        if args.prepare_only:
            result.update(prepare_data(Path(args.data_dir).resolve(), work_dir))
        else:
            run_benchmark(args, result, sampler)

    return ph.worker_main(json_out, result, body, by_phase=True)


if __name__ == "__main__":
    sys.exit(main())
