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

__all__ = ["add_data_commands", "cmd_data_download", "cmd_data_info", "cmd_data_list"]


def cmd_data_list(args: argparse.Namespace) -> int:
    """Print one row per registry dataset: name, split sizes, group column, status."""
    from tf4ctr.data.datasets import DATASETS

    head = (
        f"{'name':<20}{'train':>12}{'valid':>12}{'test':>12}  {'gAUC group':<11}{'paper':<7}notes"
    )
    print(head)
    for info in DATASETS.values():
        status = "needs sequence support" if info.needs_sequences else ""
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
        f"supported:        {'no - needs sequence features' if info.needs_sequences else 'yes'}",
        "fields:",
    ]
    lines += [f"  {', '.join(g.names)}: {g.describe()}" for g in info.fields]
    lines.append("sources:")
    lines += [f"  {kind:<9}{url}" for kind, url in info.sources.items()]
    lines.append("checksums (md5):")
    lines += [
        f"  {fname:<11}{digest or 'checksum unknown'}" for fname, digest in info.checksums.items()
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
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_data_download)
    return data
