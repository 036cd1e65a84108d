"""Create (or reuse) the environment that runs the authors' official TF4CTR code for the speed benchmark.

The official code (github.com/salmon1802/TF4CTR) is never vendored or committed here. This
script places a copy of it under ``<root>/.bench-venv/official-tf4ctr/`` and builds a
virtual environment for it under ``<root>/.bench-venv/official-tf4ctr-env/`` (both ignored
by git); ``benchmarks/official_worker.py`` then runs under that environment's python.

    python benchmarks/official_env.py --src DIR     # copy + patch DIR, build/reuse the venv
    OFFICIAL_TF4CTR_SRC=DIR python benchmarks/official_env.py
    python benchmarks/official_env.py               # reuse the copy made before

Where the official code comes from (``--src`` or ``$OFFICIAL_TF4CTR_SRC``): either a work
tree (``git clone https://github.com/salmon1802/TF4CTR``; the benchmark has no network
access of its own and never clones) or a git directory without a work tree (a bare clone
or mirror), whose ``HEAD`` tree is extracted with ``git archive``. Either way the files are
copied into ``.bench-venv/official-tf4ctr/`` and only that copy is patched; the source is
never modified. Without ``--src``, a copy made by an earlier call is reused. Developed
against commit a52d10a5d5d7b1cef3eced04388f6dded2e62a67 (the repository's state in 2024).

The patch (the smallest that makes the code import; nothing else is changed):

- ``TF4CTR/TF4CTR_torch/src/__init__.py``, the line ``from .TF4CTR_emb_grad import *`` is
  commented out: that module is not in the repository, so ``import src`` (how
  ``run_expid.py`` loads its models) fails with ModuleNotFoundError. The patch is applied
  only when the module is missing, and only to that exact line; if the file does not hold
  it, the script stops rather than guess.

The code imports its own bundled, modified FuxiCTR (``fuxictr/`` at the repository root,
version "2.0.1.post"), which the worker puts first on ``sys.path`` as ``run_expid.py``
intends with its hard-coded ``sys.path.append("/home/lhh/code")``; FuxiCTR from PyPI is
*not* installed (current FuxiCTR breaks this code).

What the venv gets, in this order, each in its own pip call:

1. ``torch==<TORCH>`` (default: this interpreter's torch version; pip finds the local CPU
   wheel), first, so that nothing pulls a multi-GB CUDA build;
2. under a constraints file pinning that torch, the README's requirements other than
   fuxictr and torch: ``numpy<2`` (the code uses ``np.Inf``, removed in numpy 2),
   ``scikit-learn<1.5`` (its metrics call ``log_loss(..., eps=1e-7)``; 1.5 removed ``eps``),
   ``pandas<3`` (the code predates pandas 3 and its new string dtype), ``h5py``, ``PyYAML``
   and ``tqdm``.

The environment is marked complete by ``.official-env.json`` (versions, source, patch); an
environment without it is (re)installed, so an interrupted install is simply rerun.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from peer_harness import default_torch_version, ensure_venv, env_main, env_parser, make_log

ENV_VAR = "OFFICIAL_TF4CTR_SRC"
REQUIREMENTS = ("numpy<2", "scikit-learn<1.5", "pandas<3", "h5py", "PyYAML", "tqdm")
VENV_MARKER = ".official-env.json"
CHECKOUT_MARKER = ".official-checkout.json"
MODEL_DIR = Path("TF4CTR") / "TF4CTR_torch"  # run_expid.py's folder; ``src`` lives in it
PATCHED_FILE = MODEL_DIR / "src" / "__init__.py"
MISSING_MODULE = MODEL_DIR / "src" / "TF4CTR_emb_grad.py"
PATCH_OLD = "from .TF4CTR_emb_grad import *"
PATCH_NEW = "# from .TF4CTR_emb_grad import *  # tf4ctr benchmark: module not in the repository"
DEVELOPED_AT = "a52d10a5d5d7b1cef3eced04388f6dded2e62a67"
VERSIONS = ["torch", "numpy", "pandas", "scikit-learn", "h5py", "PyYAML", "tqdm"]


def default_checkout_dir(root: Path) -> Path:
    return Path(root) / ".bench-venv" / "official-tf4ctr"


def default_venv_dir(root: Path) -> Path:
    return Path(root) / ".bench-venv" / "official-tf4ctr-env"


_log = make_log("official-env")


def _git(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"official env: git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def _tree_digest(path: Path) -> str:
    """sha256 over the relative names and bytes of every file below path (``.git`` left out)."""
    h = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if ".git" in rel.parts or rel.as_posix() == CHECKOUT_MARKER:
            continue
        rel = rel.as_posix()
        h.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def _source_id(src: Path) -> dict:
    if _is_git_dir(src):
        return {"kind": "git-dir", "path": str(src), "commit": _git(src, "rev-parse", "HEAD")}
    if (src / ".git").exists():
        commit = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    else:
        commit = None
    return {"kind": "work-tree", "path": str(src), "commit": commit, "digest": _tree_digest(src)}


def apply_patch(checkout: Path) -> list[dict]:
    """Comment out the import of the missing module; return what was changed (file, line)."""
    if (checkout / MISSING_MODULE).exists():
        return []  # a later upstream state that has the module needs no patch
    init = checkout / PATCHED_FILE
    lines = init.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == PATCH_OLD]
    if len(hits) != 1:
        raise RuntimeError(
            f"official env: {PATCHED_FILE} does not hold exactly one line {PATCH_OLD!r}; "
            "this is not the code the patch was written for"
        )
    i = hits[0]
    ending = "\n" if lines[i].endswith("\n") else ""
    lines[i] = PATCH_NEW + ending
    init.write_text("".join(lines), encoding="utf-8")
    return [{"file": PATCHED_FILE.as_posix(), "line": i + 1, "old": PATCH_OLD, "new": PATCH_NEW}]


def ensure_checkout(root: Path, src: str | os.PathLike | None = None) -> Path:
    """Copy (or reuse) the patched official code under ``<root>/.bench-venv/official-tf4ctr``."""
    dest = default_checkout_dir(Path(root).resolve())
    marker = dest / CHECKOUT_MARKER
    src = src or os.environ.get(ENV_VAR) or None
    if src is None:
        if marker.is_file():
            return dest
        raise RuntimeError(
            "official env: no copy of the official TF4CTR code yet; pass --src DIR or set "
            f"${ENV_VAR} to a clone of https://github.com/salmon1802/TF4CTR (a work tree or a "
            "bare git directory)"
        )
    src_path = Path(src).expanduser().resolve()
    if src_path == dest:
        if not marker.is_file():
            raise RuntimeError(f"official env: {dest} is the destination, not a source")
        return dest
    if not src_path.exists():
        raise RuntimeError(f"official env: {ENV_VAR} / --src {src_path} does not exist")
    source = _source_id(src_path)
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("source") == source:
                return dest
        except ValueError:
            pass
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="official-tf4ctr-", dir=dest.parent))
    try:
        if source["kind"] == "git-dir":
            archive = subprocess.run(
                ["git", f"--git-dir={src_path}", "archive", "--format=tar", "HEAD"],
                capture_output=True,
                check=False,
            )
            if archive.returncode != 0:
                raise RuntimeError(
                    f"official env: git archive failed: {archive.stderr.decode().strip()}"
                )
            subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        else:
            shutil.copytree(
                src_path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".git")
            )
        if (
            not (tmp / MODEL_DIR / "src" / "TF4CTRv2.py").is_file()
            or not (tmp / "fuxictr" / "__init__.py").is_file()
        ):
            raise RuntimeError(
                f"official env: {src_path} is not the salmon1802/TF4CTR repository "
                f"(no {MODEL_DIR}/src/TF4CTRv2.py or fuxictr/)"
            )
        patch = apply_patch(tmp)
        (tmp / CHECKOUT_MARKER).write_text(
            json.dumps({"source": source, "patch": patch}, indent=2) + "\n"
        )
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _log(
        f"official code from {src_path} ({source.get('commit') or source.get('digest')}) in {dest}"
    )
    return dest


def check_import(python: Path, checkout: Path) -> None:
    """Import the bundled fuxictr and the model package as run_expid.py does."""
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(checkout)!r}, {str(checkout / MODEL_DIR)!r}]\n"
        "import fuxictr, src\n"
        "assert fuxictr.__file__.startswith(sys.path[0]), fuxictr.__file__\n"
        "print(fuxictr.__version__, src.TF4CTRv2.__name__)\n"
    )
    proc = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=False, cwd=checkout
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"official env: the official code does not import: {proc.stderr.strip()[-600:]}"
        )


def ensure_official_env(
    root: Path,
    src: str | os.PathLike | None = None,
    venv_dir: Path | None = None,
    torch_version: str | None = None,
) -> tuple[Path, Path]:
    """Return (venv python, patched checkout), creating what is missing.

    Idempotent: a complete venv (marker present, same torch) is reused without pip, and a
    copy of the code made from the same source is reused. Raises ``RuntimeError`` with a
    one-line message when something fails (pip's output: ``<venv>-install.log``).
    """
    root = Path(root).resolve()
    checkout = ensure_checkout(root, src)
    python = ensure_venv(
        Path(venv_dir).resolve() if venv_dir else default_venv_dir(root),
        torch_version or default_torch_version(),
        label="official-env",
        marker=VENV_MARKER,
        want={"requirements": list(REQUIREMENTS)},
        install=list(REQUIREMENTS),
        install_what="install the requirements",
        version_names=VERSIONS,
        check=lambda python: check_import(python, checkout),
    )
    return python, checkout


def main() -> int:
    parser, finish = env_parser(
        __doc__, venv_help="venv folder", torch_help="torch version (default: this python's)"
    )
    parser.add_argument(
        "--src",
        default=None,
        help=f"the official repository: a work tree or a bare git dir (default ${ENV_VAR}, "
        "else the copy made before)",
    )
    args = finish()
    return env_main(
        lambda: ensure_official_env(
            Path(args.root), args.src, Path(args.venv) if args.venv else None, args.torch
        )
    )


if __name__ == "__main__":
    sys.exit(main())
