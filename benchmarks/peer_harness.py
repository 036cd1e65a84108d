"""The peer side of the speed benchmark, shared by the FuxiCTR and the official TF4CTR code's scripts.

``fuxictr_worker.py`` and ``official_worker.py`` run under the peers' own virtual
environments, where tf4ctr (and maybe nothing but the peer) is installed, so this module
uses the standard library only; the workers find it because python puts a script's folder
(``benchmarks/``) first on ``sys.path``. ``fuxictr_env.py`` and ``official_env.py``, which
run under the project's python, build those environments with ``ensure_venv``.

Worker side: the process tree's memory and CPU (``TreeMemorySampler``, ``tree_cpu_seconds``),
the cached, locked ``build_dataset`` step (``cached_build``) and its child process
(``prepare_in_child``), the common flags (``add_common_args``), the limited training loader
(``LimitedLoader``) and the epoch loop over it (``train_epochs``), the timed evaluation
(``timed_eval``), logging (``setup_logging``) and the one-JSON-line main (``worker_main``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "Frappe_x1_rebuilt"
# tf4ctr.data.formats.FRAPPE_FIELDS (tf4ctr may not be importable here)
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


class ReportedError(Exception):
    """A failure the JSON line reports by its message alone (no traceback), exit ``status``."""

    status = 2


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


def children_cpu_s() -> float:
    """User + system CPU seconds of this process's reaped children (a DataLoader's workers)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def csv_stamp(data_dir: Path) -> dict:
    """Size and mtime of train/valid/test.csv, and the folder: what a cached build is keyed on."""
    files = {}
    for split in ("train", "valid", "test"):
        st = (data_dir / f"{split}.csv").stat()
        files[split] = [st.st_size, st.st_mtime_ns]
    return {"files": files, "data_dir": str(data_dir.resolve())}


def cached_build(data_root: Path, dataset_id: str, stamp: dict, build, encoder=lambda: None):
    """``build(encoder())`` (the peer's build_dataset -> train, valid, test paths), under a lock
    on data_root, timing build alone.

    A dataset folder whose ``source_stamp.json`` equals ``stamp`` is kept (build_dataset then
    only returns its paths); any other one is removed first and stamped once built.
    """
    import fcntl
    import shutil

    ds_dir = data_root / dataset_id
    data_root.mkdir(parents=True, exist_ok=True)
    stamp_file = ds_dir / "source_stamp.json"
    with open(data_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp
        if not cached and ds_dir.exists():
            shutil.rmtree(ds_dir)  # stale or half-built
        made = encoder()
        start = time.perf_counter()
        train, valid, test = build(made)
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


def last_json_line(text: str) -> dict:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def prepare_in_child(script: str, args, *extra: str) -> float | None:
    """Run ``script --prepare-only`` in a child process; its preprocessing seconds (None if cached)."""
    cmd = [
        sys.executable,
        os.path.abspath(script),
        "--prepare-only",
        "--data-dir",
        args.data_dir,
        "--work-dir",
        args.work_dir,
        *extra,
        "--threads",
        str(args.threads),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True, check=False)
    info = last_json_line(proc.stdout)
    if proc.returncode != 0 or "error" in info:
        raise RuntimeError(f"preprocessing failed: {info.get('error', f'exit {proc.returncode}')}")
    return info.get("preprocess_s")


# --------------------------------------------------------------------------- flags


def add_common_args(
    p,
    *,
    threads: int,
    threads_help: str,
    num_workers: int,
    num_workers_help: str,
    work: Path,
    work_help: str,
    prepare_help: str,
) -> None:
    """The flags both workers take (each adds its own before or after them)."""
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-batches", type=int, default=None, help="stop each epoch after N batches")
    p.add_argument("--threads", type=int, default=threads, help=threads_help)
    p.add_argument("--batch-size", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--num-workers", type=int, default=num_workers, help=num_workers_help)
    p.add_argument(
        "--data-dir", default=str(DEFAULT_DATA), help="folder with train.csv, valid.csv, test.csv"
    )
    p.add_argument("--work-dir", default=str(work), help=work_help)
    p.add_argument("--no-eval", action="store_true", help="skip the timed evaluation")
    p.add_argument("--prepare-only", action="store_true", help=prepare_help)


# --------------------------------------------------------------------------- timed run


class LimitedLoader:
    """Wraps a peer's training loader: stops after max_batches, counts samples, notes when each
    batch reaches the train loop (``handed_out``) and the first one's delay (``first_batch_s``)."""

    def __init__(self, loader, max_batches: int | None, rows=lambda batch: batch.shape[0]):
        self.loader = loader
        self.max_batches = max_batches
        self.rows = rows
        self.samples = 0
        self.batches = 0
        self.first_batch_s = None
        self.handed_out: list[tuple[float, int]] = []  # (perf_counter at the loop, rows)

    def steady(self) -> tuple[int, float]:
        """Rows of batches 1..n-1 and the time from batch 1 to batch n reaching the loop.

        That window holds the training of batches 1..n-1 and the loading of 2..n, so it
        leaves out the iterator's start-up (Ray's per-epoch shuffle, a DataLoader's worker
        start) and the first fetch.
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
            rows = int(self.rows(batch))
            self.handed_out.append((now, rows))
            self.samples += rows
            self.batches += 1
            yield batch
            if self.max_batches is not None and self.batches >= self.max_batches:
                break


def prepare_fit(model, train_gen, **more) -> None:
    """What BaseModel.fit sets up before its epochs, minus the in-epoch evaluation."""
    model._max_gradient_norm = 10.0
    model._best_metric = -float("inf")
    model._stopping_steps = 0
    model._stop_training = False
    model._steps_per_epoch = len(train_gen)
    model._total_steps = 0
    model._eval_steps = sys.maxsize  # never reached: no evaluate/checkpoint inside the timed loop
    for name, value in more.items():
        setattr(model, name, value)


def train_epochs(model, train_gen, args, rows) -> tuple[list[float], list[LimitedLoader]]:
    """``model.train_epoch`` over a LimitedLoader per epoch: each epoch's wall time and loader."""
    seconds, loaders = [], []
    for epoch in range(args.epochs):
        model._epoch_index = epoch
        loader = LimitedLoader(train_gen, args.max_batches, rows)
        start = time.perf_counter()
        model.train_epoch(loader)
        seconds.append(time.perf_counter() - start)
        loaders.append(loader)
    return seconds, loaders


def steady_rate(loaders: list[LimitedLoader]) -> float | None:
    """Summed steady rows over summed steady seconds (None when no epoch had two batches)."""
    pairs = [loader.steady() for loader in loaders]
    rows, seconds = sum(r for r, _ in pairs), sum(s for _, s in pairs)
    return rows / seconds if seconds > 0 else None


def timed_eval(model, valid_gen, result: dict) -> dict:
    """One ``model.evaluate(valid_gen)``: its rows, seconds and rate into result; its logs back."""
    start = time.perf_counter()
    logs = model.evaluate(valid_gen)
    eval_seconds = time.perf_counter() - start
    result["eval_samples"] = valid_gen.num_samples
    result["eval_seconds"] = eval_seconds
    result["eval_samples_per_s"] = valid_gen.num_samples / eval_seconds
    return logs


def version(dist: str):
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions(main: dict, *dists: str) -> dict:
    """``main`` (name -> version), then each dist's installed version, then python's."""
    return {**main, **{name: version(name) for name in dists}, "python": sys.version.split()[0]}


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


def cap_threads(threads: int, *more_vars: str):
    """Thread caps before numpy/torch load (the harness may set them itself); then keep stdout
    for the one JSON line, sending everything else, child processes' fd 1 included, to stderr.
    Returns the JSON line's stream."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", *more_vars):
        os.environ.setdefault(var, str(threads))
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return json_out


def worker_main(json_out, result: dict, body, *, by_phase: bool) -> int:
    """Run ``body(sampler)`` with the tree sampler on; write result (+ memory) as one JSON line.

    Whatever happens the harness gets the line: an exception's message goes to ``"error"``
    (a ReportedError's alone, with its status; any other with a traceback on stderr, exit 1).
    """
    status = 0
    sampler = TreeMemorySampler().start()
    try:
        body(sampler)
    except ReportedError as err:
        result["error"] = str(err)
        status = err.status
    except Exception as err:
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
    if by_phase:
        result["peak_tree_pss_mb_by_phase"] = {k: round(v, 1) for k, v in sampler.peaks.items()}
    result["max_tree_processes"] = sampler.max_procs
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return status


# --------------------------------------------------------------------------- the peers' venvs


def default_torch_version() -> str:
    try:
        import torch

        return torch.__version__.split("+")[0]
    except ImportError:
        return "2.13.0"


def make_log(label: str):
    def log(message: str) -> None:
        print(f"[{label}] {message}", file=sys.stderr, flush=True)

    return log


def run_logged(cmd: list[str], log_file: Path, what: str, label: str) -> None:
    make_log(label)(f"{what}: {' '.join(cmd)}")
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{label.replace('-', ' ')}: {what} failed (exit {proc.returncode}); "
            f"pip's output is in {log_file}"
        )


def installed_versions(python: Path, names: list[str], label: str) -> dict:
    """The installed version (or None) of each distribution, as ``python`` sees them."""
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {names!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{label.replace('-', ' ')}: cannot read package versions with {python}: "
            f"{proc.stderr.strip()[-300:]}"
        )
    return json.loads(proc.stdout)


def _plain(torch: str | None) -> str:
    return str(torch or "").split("+")[0]


def ensure_venv(
    venv_dir: Path,
    torch_version: str,
    *,
    label: str,
    marker: str,
    want: dict,
    install: list[str],
    install_what: str,
    version_names: list[str],
    check=None,
) -> Path:
    """Return the python of ``venv_dir``, (re)installing it unless its marker says it is done.

    The marker (``want`` plus the installed versions) is reused when it holds ``want`` and the
    same torch; else: create the venv, pip-install ``torch==torch_version`` first (so nothing
    pulls a CUDA build), then ``install`` under a constraints file pinning that torch, check
    torch and every string in ``want`` against what got installed, run ``check(python)``, and
    write the marker. Failures raise ``RuntimeError`` with one line (pip's output:
    ``<venv>-install.log`` beside the venv).
    """
    log = make_log(label)
    name = label.replace("-", " ")
    python = venv_dir / "bin" / "python"
    marker_file = venv_dir / marker
    pins = {k: v for k, v in want.items() if isinstance(v, str)}
    if python.exists() and marker_file.exists():
        try:
            info = json.loads(marker_file.read_text())
        except (OSError, ValueError):
            info = {}
        installed_torch = _plain(info.get("versions", {}).get("torch"))
        if all(info.get(k) == v for k, v in want.items()) and installed_torch == torch_version:
            if check:
                check(python)
            pinned = "".join(f"{k} {v}, " for k, v in pins.items())
            log(f"reusing {venv_dir} ({pinned}torch {info['versions']['torch']})")
            return python
        found = "".join(f"{k} {info.get(k)}, " for k in pins)
        log(
            f"{venv_dir} was made for other versions ({found}torch {installed_torch}); reinstalling"
        )
        marker_file.unlink()

    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    log_file = venv_dir.parent / f"{venv_dir.name}-install.log"
    if not python.exists():
        run_logged([sys.executable, "-m", "venv", str(venv_dir)], log_file, "create venv", label)
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    run_logged(
        [*pip, f"torch=={torch_version}"], log_file, f"install torch {torch_version} first", label
    )
    constraints = venv_dir / "constraints.txt"
    constraints.write_text(f"torch=={torch_version}\n")
    run_logged([*pip, "-c", str(constraints), *install], log_file, install_what, label)
    versions = installed_versions(python, version_names, label)
    for dist, wanted in {"torch": torch_version, **pins}.items():
        got = versions.get(dist)
        if (_plain(got) if dist == "torch" else got) != wanted:
            raise RuntimeError(f"{name}: {dist} in {venv_dir} is {got}, wanted {wanted}")
    if check:
        check(python)
    marker_file.write_text(json.dumps({**want, "versions": versions}, indent=2) + "\n")
    log(f"ready: {python} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    return python


def env_parser(doc: str, venv_help: str, torch_help: str):
    """The env scripts' --root, then (added by the caller) their own flags, then --venv --torch."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--root", default=str(REPO_ROOT), help="repository root")

    def finish():
        parser.add_argument("--venv", default=None, help=venv_help)
        parser.add_argument("--torch", default=None, help=torch_help)
        return parser.parse_args()

    return parser, finish


def env_main(make) -> int:
    """Print the lines ``make()`` returns (the venv's python, ...); a RuntimeError: exit 1."""
    try:
        lines = make()
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0
