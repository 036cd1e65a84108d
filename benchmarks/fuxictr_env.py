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

import sys
from pathlib import Path

from peer_harness import default_torch_version, ensure_venv, env_main, env_parser

FUXICTR_VERSION = "2.3.10"
EXTRA_REQUIREMENTS = ("polars<2",)  # see the module docstring
MARKER = ".fuxictr-env.json"
VERSIONS = [
    "fuxictr",
    "torch",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "ray",
    "scikit-learn",
    "h5py",
]


def default_venv_dir(root: Path) -> Path:
    return Path(root) / ".bench-venv" / f"fuxictr-{FUXICTR_VERSION}"


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
    return ensure_venv(
        venv_dir,
        torch_version or default_torch_version(),
        label="fuxictr-env",
        marker=MARKER,
        want={"fuxictr": FUXICTR_VERSION},
        install=[f"fuxictr=={FUXICTR_VERSION}", *EXTRA_REQUIREMENTS],
        install_what=f"install fuxictr {FUXICTR_VERSION}",
        version_names=VERSIONS,
    )


def main() -> int:
    parser, finish = env_parser(
        __doc__,
        venv_help="venv folder (default <root>/.bench-venv/fuxictr-2.3.10)",
        torch_help="torch version to install (default: this python's)",
    )
    args = finish()
    return env_main(
        lambda: [
            ensure_fuxictr_env(Path(args.root), Path(args.venv) if args.venv else None, args.torch)
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
