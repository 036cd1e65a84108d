"""``tf4ctr data list`` and ``tf4ctr data info NAME``: what the dataset registry knows.

Kept out of :mod:`tf4ctr.cli` so the registry's presentation lives next to
the registry; ``cli.build_parser`` only calls :func:`add_data_commands`.
Handlers follow cli.py's convention: ``handler(args) -> int`` set as
``func`` on the sub-parser; a :class:`~tf4ctr.errors.UserError` they raise
becomes one line on stderr and exit code 2 in ``cli.main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "add_data_commands",
    "cmd_data_download",
    "cmd_data_info",
    "cmd_data_list",
    "cmd_data_prepare",
    "cmd_data_synth",
]


def cmd_data_list(args: argparse.Namespace) -> int:
    """Print one row per registry dataset: name, split sizes, group column, status."""
    from tf4ctr.data.datasets import DATASETS

    head = (
        f"{'name':<20}{'train':>12}{'valid':>12}{'test':>12}  {'gAUC group':<11}{'paper':<7}notes"
    )
    print(head)
    for info in DATASETS.values():
        status = "has sequence fields" if any(g.sequence for g in info.fields) else ""
        row = (
            f"{info.name:<20}"
            + "".join(f"{info.splits[s]:>12,}" for s in ("train", "valid", "test"))
            + f"  {info.group_col or '-':<11}{'yes' if info.in_paper else 'no':<7}{status}"
        )
        print(row.rstrip())
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    """Print every registry fact about one dataset."""
    from tf4ctr.data.datasets import get_dataset

    info = get_dataset(args.name)
    lines: list[str] = [
        f"{info.title} ({info.name})",
        info.description,
        "",
        "splits:",
    ]
    lines += [f"  {split:<6}{n:>12,}" for split, n in info.splits.items()]
    lines.append(f"  {'total':<6}{info.total_rows:>12,}")
    lines += [
        f"label column:     {info.label}",
        f"gAUC group:       {info.group_col or 'none (AUC only)'}",
        f"min_categr_count: {info.min_categr_count}",
        f"in TF4CTR paper:  {'yes' if info.in_paper else 'no'}",
        "fields:",
    ]
    lines += [f"  {', '.join(g.names)}: {g.describe()}" for g in info.fields]
    lines.append("sources:")
    lines += [f"  {kind:<9}{url}" for kind, url in info.sources.items()]
    lines.append("checksums (md5):")
    lines += [
        f"  {fname:<11} {digest or 'checksum unknown'}" for fname, digest in info.checksums.items()
    ]
    if info.notes:
        lines.append("notes:")
        lines += [f"  - {note}" for note in info.notes]
    print("\n".join(lines))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    """Download, verify and unpack one registry dataset into ``DIR/<archive name>``."""
    from tf4ctr.data.datasets import download_folder_name, get_dataset
    from tf4ctr.data.download import fetch_dataset

    info = get_dataset(args.name)
    if info.name == "ml_100k":
        return _download_ml100k(args)
    url = args.url or info.sources["download"]
    target = Path(args.dir) / download_folder_name(info)
    result = fetch_dataset(
        url,
        target,
        info.checksums,
        keep_archive=args.keep_archive,
        retries=args.retries,
        progress=not args.no_progress,
    )
    state = "already present" if result.already_present else "downloaded"
    print(f"{info.title}: {state} in {result.directory}")
    for name, digest in result.verified.items():
        print(f"  {name:<12}md5 {digest}  matches the published sum")
    for name in result.unverified:
        print(f"  {name:<12}no published md5: not verified")
    return 0


def _download_ml100k(args: argparse.Namespace) -> int:
    """MovieLens-100K is built, not just unpacked: fetch, check, write the table and splits."""
    import sys

    from tf4ctr.data.ml100k import FOLDER, fetch_ml100k

    result = fetch_ml100k(Path(args.dir) / FOLDER, url=args.url, progress=not args.no_progress)
    for note in result.notes:
        print(f"tf4ctr: note: {note}", file=sys.stderr)
    if result.already_present:
        print(
            f"MovieLens-100K: already present in {result.directory} (every file matches its sha256)"
        )
    else:
        print(f"MovieLens-100K: built in {result.directory} from {result.source}")
    for split, parts in result.rows.items():
        cells = ", ".join(
            f"{part} {n:,} (click rate {result.clicks[split][part]:.4f})"
            for part, n in parts.items()
        )
        print(f"  {split:<9}{cells}")
    print(f"  licence: MovieLens may not be redistributed; see {result.directory}/PROVENANCE.md")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """Build (or find) the encoded cache of a registry dataset or a dataset YAML."""
    import json
    import time

    from tf4ctr.data.datasets import dataset_config
    from tf4ctr.data.schema import load_dataset_config
    from tf4ctr.data.store import prepare_dataset
    from tf4ctr.errors import ConfigError

    source = Path(args.source)
    if source.suffix in (".yaml", ".yml") or source.is_file():
        if args.dir is not None:
            raise ConfigError("--dir is for a registry dataset name, not a dataset YAML")
        config = load_dataset_config(source)
    else:
        if args.dir is None:
            raise ConfigError(
                f"'{args.source}' is a dataset name: give the folder of its split files "
                "with --dir (or pass a dataset YAML)"
            )
        config = dataset_config(
            args.source, args.dir, min_categr_count=args.min_count, criteo_bucketer=args.bucketer
        )
    start = time.perf_counter()
    target = prepare_dataset(
        config,
        Path(args.cache_dir),
        progress=not args.no_progress,
        load=False,
        block_bytes=args.block_mb << 20,
    )
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    rows = ", ".join(f"{split} {meta['rows'][split]:,}" for split in ("train", "valid", "test"))
    vocab = sum(f["vocab_size"] for f in meta["schema"]["fields"] if f["kind"] == "categorical")
    print(f"{config.name}: {rows} rows; {vocab:,} embedding rows")
    print(f"cache: {target} ({time.perf_counter() - start:.1f} s)")
    return 0


def cmd_data_synth(args: argparse.Namespace) -> int:
    """Write a SYNTHETIC Criteo-shaped dataset (Kaggle TSV layout) and its dataset.yaml."""
    from tf4ctr.data.synth_criteo import CriteoSynthSpec, write_synthetic_criteo
    from tf4ctr.errors import ConfigError

    try:
        split = tuple(float(x) for x in args.split.split(":"))
    except ValueError:
        raise ConfigError(
            f"--split: expected three numbers like 8:1:1, got {args.split!r}"
        ) from None
    spec = CriteoSynthSpec(rows=args.rows, split=split, zipf_s=args.zipf, seed=args.seed)  # type: ignore[arg-type]
    paths = write_synthetic_criteo(args.dir, spec, progress=not args.no_progress)
    rows = spec.split_rows()
    for split_name in ("train", "valid", "test"):
        print(f"{split_name:<6}{rows[split_name]:>12,} rows  {paths[split_name]}")
    print(f"config {paths['config']}  (SYNTHETIC data: for speed and memory benchmarks only)")
    return 0


def add_data_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``data`` with its ``list`` and ``info`` sub-commands to a sub-parser set."""
    data = subparsers.add_parser(
        "data",
        help="list the benchmark datasets tf4ctr knows and what it knows about them",
        description="The dataset registry: split sizes, fields, preprocessing, gAUC group "
        "column and where to download each BARS/paper dataset.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser(
        "list",
        help="table of the registered datasets",
        description="One row per registered dataset: split sizes, gAUC group column, "
        "whether the TF4CTR paper uses it, and whether tf4ctr can load it yet.",
    )
    p.set_defaults(func=cmd_data_list)
    p = data_sub.add_parser(
        "info",
        help="everything the registry knows about one dataset",
        description="Split sizes, fields and their preprocessing, label and gAUC group "
        "column, min count, download sources and published checksums of one dataset.",
    )
    p.add_argument("name", metavar="NAME", help="dataset name or alias, e.g. frappe_x1 or ml-1m")
    p.set_defaults(func=cmd_data_info)
    p = data_sub.add_parser(
        "download",
        help="download, verify and unpack a dataset",
        description="Download a dataset's archive (resuming an interrupted download), check "
        "every file against its published md5 and unpack it into DIR/<name> atomically. A "
        "checksum mismatch is an error and leaves nothing behind.",
    )
    p.add_argument("name", metavar="NAME", help="dataset name or alias, e.g. frappe_x1")
    p.add_argument("--dir", required=True, help="parent folder for the dataset's folder")
    p.add_argument("--url", help="fetch from this mirror instead of the registry's address")
    p.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking")
    p.add_argument("--retries", type=int, default=3, help="retries after a dropped connection")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_data_download)
    p = data_sub.add_parser(
        "prepare",
        help="build the encoded cache of a dataset",
        description="Fit the preprocessing on the train split and encode all three splits "
        "into the cache that training reads, streaming each file in blocks so memory does "
        "not grow with the number of rows. A cache that is already there is reused.",
    )
    p.add_argument(
        "source", metavar="NAME|CONFIG", help="registry dataset name (with --dir) or dataset YAML"
    )
    p.add_argument("--dir", help="folder with the dataset's train/valid/test files")
    p.add_argument("--cache-dir", default=".tf4ctr-cache", help="cache root (default: %(default)s)")
    p.add_argument("--min-count", type=int, help="override the registry's min_categr_count")
    p.add_argument(
        "--bucketer",
        help="Criteo numeric bucketing: criteo_log_bucket_fuxictr "
        "(the paper's code, default) or criteo_log_bucket (its text)",
    )
    p.add_argument("--block-mb", type=int, default=64, help="read block size in MiB")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_data_prepare)
    p = data_sub.add_parser(
        "synth",
        help="write a SYNTHETIC Criteo-shaped dataset for benchmarks",
        description="Write train/valid/test.txt in the layout of Criteo's Kaggle train.txt, "
        "with Criteo's real per-field cardinalities and Zipf-like value frequencies, plus a "
        "dataset.yaml with the paper's Criteo preprocessing. The clicks are SYNTHETIC: use it "
        "to measure speed and memory, never to report accuracy.",
    )
    p.add_argument("kind", choices=["criteo"], help="which dataset's shape to imitate")
    p.add_argument(
        "--rows",
        type=int,
        default=45_840_617,
        help="total rows (default: %(default)s, the real Kaggle train.txt)",
    )
    p.add_argument("--dir", required=True, help="folder to write into")
    p.add_argument("--split", default="8:1:1", help="train:valid:test shares (default %(default)s)")
    p.add_argument("--zipf", type=float, default=1.1, help="frequency-law exponent, > 1")
    p.add_argument("--seed", type=int, default=2023, help="generator seed (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_data_synth)
    return data
