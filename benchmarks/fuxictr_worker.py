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
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "Frappe_x1_rebuilt"
DEFAULT_WORK = REPO_ROOT / ".bench-venv" / "work"
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


class ModelUnavailable(Exception):
    pass


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--model",
        default=None,
        help="DNN, DualMLP, DeepFM, DCNv2, or a class name found in --model-src",
    )
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--max-batches", type=int, default=None, help="stop each epoch after this many batches"
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads (and OMP/MKL/polars threads)"
    )
    p.add_argument("--batch-size", type=int, default=10000)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument(
        "--num-workers",
        type=int,
        default=1,
        help="ParquetDataLoader's prefetch_batches (its default is 1; FuxiCTR's sample configs use 3)",
    )
    p.add_argument(
        "--data-dir", default=str(DEFAULT_DATA), help="folder with train.csv, valid.csv, test.csv"
    )
    p.add_argument(
        "--work-dir", default=str(DEFAULT_WORK), help="preprocessed data, checkpoints, logs"
    )
    p.add_argument(
        "--model-src", default=None, help="python package folder exporting the model class"
    )
    p.add_argument(
        "--model-zoo",
        default=os.environ.get("FUXICTR_MODEL_ZOO"),
        help="a FuxiCTR source checkout's model_zoo folder (default $FUXICTR_MODEL_ZOO)",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the timed evaluation")
    p.add_argument(
        "--prepare-only", action="store_true", help="only preprocess the data (cached), then exit"
    )
    args = p.parse_args(argv)
    if not args.prepare_only and not args.model:
        p.error("--model is required unless --prepare-only")
    return args


# --------------------------------------------------------------------------- memory / CPU of the process tree


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def process_tree(root: int | None = None) -> list[int]:
    root = os.getpid() if root is None else root
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack += _children(pid)
    return seen


def proc_kb(pid: int, file: str, field: str) -> int:
    """A ``field: N kB`` line of /proc/PID/FILE (0 when the process is gone)."""
    try:
        with open(f"/proc/{pid}/{file}") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    return proc_kb(pid, "smaps_rollup", "Pss")


def tree_cpu_seconds() -> float:
    """utime + stime of this process and its live descendants (Ray's raylet, workers...)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree():
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


class TreeMemorySampler:
    """Peak summed PSS of this process tree, per phase, sampled in a daemon thread."""

    def __init__(self, interval: float = 0.25):
        import threading

        self.interval = interval
        self.phase = "startup"
        self.peaks: dict[str, float] = {}
        self.max_procs = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def sample(self):
        pids = process_tree()
        mb = sum(_pss_kb(p) for p in pids) / 1024
        self.max_procs = max(self.max_procs, len(pids))
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), mb)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sample()


# --------------------------------------------------------------------------- data


def _source_stamp(data_dir: Path, fuxictr_version: str) -> dict:
    files = {}
    for split in ("train", "valid", "test"):
        st = (data_dir / f"{split}.csv").stat()
        files[split] = [st.st_size, st.st_mtime_ns]
    return {
        "files": files,
        "data_dir": str(data_dir.resolve()),
        "fuxictr": fuxictr_version,
        "min_categr_count": MIN_CATEGR_COUNT,
        "features": FEATURES,
    }


def dataset_paths(work_dir: Path) -> tuple[Path, str]:
    return work_dir / "data", "frappe_x1_rebuilt_mc2"


def prepare_data(data_dir: Path, work_dir: Path) -> dict:
    """Build FuxiCTR's feature map + parquet splits once (their build_dataset), reuse after."""
    import fcntl
    import shutil

    import fuxictr
    from fuxictr.preprocess import FeatureProcessor, build_dataset

    data_root, dataset_id = dataset_paths(work_dir)
    ds_dir = data_root / dataset_id
    data_root.mkdir(parents=True, exist_ok=True)
    stamp = _source_stamp(data_dir, fuxictr.__version__)
    stamp_file = ds_dir / "source_stamp.json"
    with open(data_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp
        if not cached and ds_dir.exists():
            shutil.rmtree(ds_dir)  # stale or half-built
        feature_encoder = FeatureProcessor(
            feature_cols=[
                {"name": FEATURES, "active": True, "dtype": "str", "type": "categorical"}
            ],
            label_col={"name": LABEL, "dtype": "float"},
            dataset_id=dataset_id,
            data_root=str(data_root),
        )
        start = time.perf_counter()
        train, valid, test = build_dataset(
            feature_encoder,
            train_data=str(data_dir / "train.csv"),
            valid_data=str(data_dir / "valid.csv"),
            test_data=str(data_dir / "test.csv"),
            data_format="csv",
            min_categr_count=MIN_CATEGR_COUNT,
        )
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
    """Run --prepare-only in a child process; return its preprocessing seconds (None if cached)."""
    import subprocess

    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--prepare-only",
        "--data-dir",
        args.data_dir,
        "--work-dir",
        args.work_dir,
        "--threads",
        str(args.threads),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    info = json.loads(lines[-1]) if lines else {}
    if proc.returncode != 0 or "error" in info:
        raise RuntimeError(f"preprocessing failed: {info.get('error', f'exit {proc.returncode}')}")
    return info.get("preprocess_s")


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


class LimitedLoader:
    """Wraps a FuxiCTR loader: stops after max_batches, counts samples, notes the first batch's time."""

    def __init__(self, loader, max_batches: int | None):
        self.loader = loader
        self.max_batches = max_batches
        self.samples = 0
        self.batches = 0
        self.first_batch_s = None
        self.handed_out = []  # (perf_counter when batch i reached the train loop, rows of batch i)
        self.end = None

    def steady(self) -> tuple[int, float]:
        """Rows of batches 1..n-1 and the time from batch 1 to batch n reaching the loop.

        That window holds the training of batches 1..n-1 and the loading of 2..n, so it
        leaves out the iterator's start-up (Ray's per-epoch shuffle) and the first fetch.
        """
        if len(self.handed_out) < 2:
            return 0, 0.0
        rows = sum(n for _, n in self.handed_out[:-1])
        return rows, self.handed_out[-1][0] - self.handed_out[0][0]

    def __len__(self):
        n = len(self.loader)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __iter__(self):
        start = time.perf_counter()
        for batch in self.loader:
            now = time.perf_counter()
            if self.first_batch_s is None:
                self.first_batch_s = now - start
            rows = int(batch[LABEL].shape[0])
            self.handed_out.append((now, rows))
            self.samples += rows
            self.batches += 1
            yield batch
            if self.max_batches is not None and self.batches >= self.max_batches:
                break


def run_benchmark(args, result: dict, sampler: TreeMemorySampler) -> None:
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
    result["versions"] = {
        "fuxictr": fuxictr.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        **{name: _version(name) for name in ("pandas", "polars", "pyarrow", "ray", "scikit-learn")},
        "python": sys.version.split()[0],
    }

    model_class, source = find_model_class(args.model, args.model_src, args.model_zoo)
    result["model_source"] = source

    sampler.phase = "preprocess"  # a child process; not in peak_tree_pss_mb
    result["preprocess_s"] = prepare_in_child(args)
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

    # what BaseModel.fit sets up before its epochs, minus the in-epoch evaluation
    model._max_gradient_norm = 10.0
    model._best_metric = -np.inf
    model._stopping_steps = 0
    model._stop_training = False
    model._steps_per_epoch = len(train_gen)
    model._total_steps = 0
    model._eval_steps = sys.maxsize  # never reached: no evaluate/checkpoint inside the timed loop

    sampler.phase = "train"
    epoch_seconds, first_batch, samples, batches, steady_rows, steady_s = [], [], 0, 0, 0, 0.0
    cpu0, tree_cpu0 = time.process_time(), tree_cpu_seconds()
    for epoch in range(args.epochs):
        model._epoch_index = epoch
        loader = LimitedLoader(train_gen, args.max_batches)
        start = time.perf_counter()
        model.train_epoch(loader)
        epoch_seconds.append(time.perf_counter() - start)
        first_batch.append(loader.first_batch_s)
        samples += loader.samples
        batches += loader.batches
        rows, seconds = loader.steady()
        steady_rows += rows
        steady_s += seconds
    result["train_cpu_s_self"] = time.process_time() - cpu0
    result["train_cpu_s_tree"] = tree_cpu_seconds() - tree_cpu0
    train_seconds = sum(epoch_seconds)
    full_epochs = args.max_batches is None or args.max_batches >= len(train_gen)
    result["train_samples"] = samples
    result["train_batches"] = batches
    result["train_seconds"] = train_seconds
    result["train_first_batch_s"] = first_batch
    result["train_samples_per_s"] = samples / train_seconds if train_seconds > 0 else None
    result["train_samples_per_s_steady"] = steady_rows / steady_s if steady_s > 0 else None
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
        start = time.perf_counter()
        logs = model.evaluate(valid_gen)  # validation_metrics = ['logloss', 'AUC']
        eval_seconds = time.perf_counter() - start
        result["eval_samples"] = valid_gen.num_samples
        result["eval_seconds"] = eval_seconds
        result["eval_samples_per_s"] = valid_gen.num_samples / eval_seconds
        result["valid_auc"] = float(logs["AUC"]) if full_epochs else None
        result["valid_logloss"] = float(logs["logloss"]) if full_epochs else None


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
    # Thread caps before numpy/torch/polars load; the harness may set them itself.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    # Keep stdout for the single JSON line: everything else, including what Ray's processes
    # (which inherit fd 1) print, goes to stderr.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    work_dir = Path(args.work_dir).resolve()
    result: dict = {
        "library": "fuxictr",
        "version": installed_version(),
        "model": "prepare" if args.prepare_only else args.model,
        "threads": args.threads,
    }
    status = 0
    sampler = TreeMemorySampler().start()
    try:
        if installed_version() == "not installed":
            raise RuntimeError(
                f"fuxictr is not importable from {sys.executable}; run me with the FuxiCTR venv's python"
            )
        result["log_file"] = str(
            setup_logging(work_dir, "prepare" if args.prepare_only else args.model)
        )
        if args.prepare_only:
            result.update(prepare_data(Path(args.data_dir).resolve(), work_dir))
        else:
            run_benchmark(args, result, sampler)
    except ModelUnavailable as err:
        result["error"] = str(err)
        status = EXIT_MODEL_MISSING
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
    result["peak_tree_pss_mb_by_phase"] = {k: round(v, 1) for k, v in sampler.peaks.items()}
    result["max_tree_processes"] = sampler.max_procs
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
