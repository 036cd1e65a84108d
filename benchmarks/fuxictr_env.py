"""Create (or reuse) the separate virtual environment that holds FuxiCTR for the speed benchmark.

FuxiCTR is never vendored into this repository: it is installed from PyPI into
``<root>/.bench-venv/fuxictr-2.3.10/`` (ignored by git), and
``benchmarks/fuxictr_worker.py`` runs under that environment's python, as a
subprocess of the benchmark.

    python benchmarks/fuxictr_env.py            # create/reuse, print the venv's python

What it installs, in this order, each in its own pip call:

1. ``torch==<TORCH>`` (default: this interpreter's torch version, e.g. 2.13.0; on this
   machine pip finds the CPU wheel through the global find-links), *before* FuxiCTR, so
   that pip never pulls a multi-GB CUDA build as FuxiCTR's dependency;
2. ``fuxictr==2.3.10`` plus ``polars<2`` with a constraints file pinning that torch:
   FuxiCTR 2.3.10 calls ``polars.scan_csv(dtypes=...)``, an argument that polars 2.0
   removed, and it does not cap polars itself, so a plain install breaks preprocessing.

The environment is marked complete by ``.fuxictr-env.json`` (the versions installed);
an environment without that file is (re)installed, so an interrupted install is simply
rerun. FuxiCTR 2.3.10 also pulls ray[data], pyarrow, pandas, scikit-learn, h5py, scipy:
about 1.9 GB on disk, about 2 minutes to install.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FUXICTR_VERSION = "2.3.10"
EXTRA_REQUIREMENTS = ("polars<2",)  # see the module docstring
MARKER = ".fuxictr-env.json"


def default_venv_dir(root: Path) -> Path:
    return Path(root) / ".bench-venv" / f"fuxictr-{FUXICTR_VERSION}"


def _log(message: str) -> None:
    print(f"[fuxictr-env] {message}", file=sys.stderr, flush=True)


def _default_torch_version() -> str:
    try:
        import torch

        return torch.__version__.split("+")[0]
    except ImportError:
        return "2.13.0"


def _run(cmd: list[str], log_file: Path, what: str) -> None:
    _log(f"{what}: {' '.join(cmd)}")
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"fuxictr env: {what} failed (exit {proc.returncode}); pip's output is in {log_file}"
        )


def _installed_versions(python: Path) -> dict:
    code = (
        "import json, importlib.metadata as m\n"
        "names = ['fuxictr', 'torch', 'numpy', 'pandas', 'polars', 'pyarrow', 'ray', 'scikit-learn', 'h5py']\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"fuxictr env: cannot read package versions with {python}: {proc.stderr.strip()[-300:]}"
        )
    return json.loads(proc.stdout)


def ensure_fuxictr_env(
    root: Path, venv_dir: Path | None = None, torch_version: str | None = None
) -> Path:
    """Return the python of the FuxiCTR venv under ``root``, creating it if missing.

    Idempotent: a complete environment (marker file present, same torch wanted) is
    reused without running pip. Raises ``RuntimeError`` with a one-line message if
    venv creation or a pip install fails (pip's output goes to ``<venv>-install.log`` beside the venv).
    """
    venv_dir = (
        Path(venv_dir).resolve() if venv_dir is not None else default_venv_dir(Path(root).resolve())
    )
    torch_version = torch_version or _default_torch_version()
    python = venv_dir / "bin" / "python"
    marker = venv_dir / MARKER
    if python.exists() and marker.exists():
        try:
            info = json.loads(marker.read_text())
        except (OSError, ValueError):
            info = {}
        installed_torch = str(info.get("versions", {}).get("torch") or "").split("+")[0]
        if info.get("fuxictr") == FUXICTR_VERSION and installed_torch == torch_version:
            _log(
                f"reusing {venv_dir} (fuxictr {FUXICTR_VERSION}, torch {info['versions']['torch']})"
            )
            return python
        _log(
            f"{venv_dir} was made for other versions ({info.get('fuxictr')}, torch {installed_torch}); reinstalling"
        )
        marker.unlink()

    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    log_file = venv_dir.parent / f"{venv_dir.name}-install.log"
    if not python.exists():
        _run([sys.executable, "-m", "venv", str(venv_dir)], log_file, "create venv")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    _run([*pip, f"torch=={torch_version}"], log_file, f"install torch {torch_version} first")
    constraints = venv_dir / "constraints.txt"
    constraints.write_text(f"torch=={torch_version}\n")
    _run(
        [*pip, "-c", str(constraints), f"fuxictr=={FUXICTR_VERSION}", *EXTRA_REQUIREMENTS],
        log_file,
        f"install fuxictr {FUXICTR_VERSION}",
    )
    versions = _installed_versions(python)
    if (versions.get("torch") or "").split("+")[0] != torch_version:
        raise RuntimeError(
            f"fuxictr env: torch in {venv_dir} is {versions.get('torch')}, wanted {torch_version}"
        )
    if versions.get("fuxictr") != FUXICTR_VERSION:
        raise RuntimeError(
            f"fuxictr env: fuxictr in {venv_dir} is {versions.get('fuxictr')}, wanted {FUXICTR_VERSION}"
        )
    marker.write_text(
        json.dumps({"fuxictr": FUXICTR_VERSION, "versions": versions}, indent=2) + "\n"
    )
    _log(f"ready: {python} ({', '.join(f'{k} {v}' for k, v in versions.items())})")
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", default=str(Path(__file__).resolve().parents[1]), help="repository root"
    )
    parser.add_argument(
        "--venv", default=None, help="venv folder (default <root>/.bench-venv/fuxictr-2.3.10)"
    )
    parser.add_argument(
        "--torch", default=None, help="torch version to install (default: this python's)"
    )
    args = parser.parse_args()
    try:
        python = ensure_fuxictr_env(
            Path(args.root), Path(args.venv) if args.venv else None, args.torch
        )
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 1
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
