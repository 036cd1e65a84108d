"""``tf4ctr grid``, ``tf4ctr reproduce`` and ``tf4ctr report``: experiments from the command line.

Kept next to the experiment code, like ``data_cli`` next to the data registry;
``cli.build_parser`` only calls :func:`add_experiment_commands`. Handlers
return an exit code; a :class:`~tf4ctr.errors.UserError` becomes one line on
stderr and exit code 2 in ``cli.main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tf4ctr.errors import ConfigError

__all__ = ["PAPER_EXPERIMENTS", "add_experiment_commands", "resolve_experiment"]

#: what ``tf4ctr reproduce NAME`` runs: the paper's tables and figures
PAPER_EXPERIMENTS = {
    "table2": "Table II: log loss / focal / R-CE / TF Loss on six models",
    "table3": "Table III: every SSEM x DFM pair",
    "table4": "Table IV: all baselines and TF4CTR, five seeds for TF4CTR and the best baseline",
    "table5": "Table V: TF4CTR wrapping DeepFM, WideDeep, xDeepFM",
    "table6": "Table VI: first-epoch training and inference time relative to DNN",
    "fig2": "Figure 2: DNN's difficulty classes per epoch",
    "fig4": "Figure 4: the TF Loss terms for several c and gamma (no training)",
    "fig5": "Figure 5: gradient norms reaching z_s and z_c, L_ctr + L_TF against L_ctr",
    "fig6": "Figure 6: sweep of alpha",
    "fig7": "Figure 7: sweep of c",
    "fig8": "Figure 8: sweep of gamma",
    "fig9": "Figure 9: the simple encoder's structure (A-E)",
    "fig10": "Figure 10: DualMLP against TF4CTR, difficulty classes per epoch",
}


def _config_roots() -> list[Path]:
    """Where shipped configs are looked for: the current folder, then the source checkout."""
    return [Path.cwd() / "configs", Path(__file__).resolve().parents[3] / "configs"]


def shipped_configs() -> Path | None:
    """The configs that came with this tf4ctr: the checkout's ``configs/`` or, in an
    installed wheel, the package data ``tf4ctr/configs/`` (None when neither exists)."""
    checkout = Path(__file__).resolve().parents[3] / "configs"
    packaged = Path(__file__).resolve().parents[1] / "configs"
    for root in (checkout, packaged):
        if (root / "experiments").is_dir():
            return root
    return None


def copy_configs(source: Path, dest: Path) -> tuple[list[Path], list[Path]]:
    """Copy every YAML under ``source`` into ``dest``, keeping the folders; a file that
    already exists in ``dest`` is left alone. Returns (written, kept)."""
    from tf4ctr.fileio import make_dir, write_text_atomic

    written, kept = [], []
    for src in sorted(source.rglob("*.yaml")):
        target = dest / src.relative_to(source)
        if target.exists():
            kept.append(target)
            continue
        make_dir(target.parent, "--copy-to")
        write_text_atomic(target, src.read_text(encoding="utf-8"))
        written.append(target)
    return written, kept


def other_grids(dataset: str) -> dict[str, Path]:
    """The shipped grids for ``dataset`` beyond the paper's experiments (e.g. ``table4_random``,
    ``beyond_gdcn``), by the name after ``<dataset>_``; the first config root that has one wins."""
    found: dict[str, Path] = {}
    for root in _config_roots():
        for path in sorted((root / "experiments").glob(f"{dataset}_*.yaml")):
            name = path.stem[len(dataset) + 1 :]
            if name not in PAPER_EXPERIMENTS:
                found.setdefault(name, path)
    return found


def resolve_experiment(name: str, dataset: str) -> Path:
    """A YAML path as given, or the shipped grid ``configs/experiments/<dataset>_<name>.yaml``
    (a paper experiment, or another grid shipped for that dataset)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"{path}: file not found")
        return path
    if name not in PAPER_EXPERIMENTS:
        if name in (others := other_grids(dataset)):
            return others[name]
        more = f"; shipped for {dataset}: {', '.join(others)}" if others else ""
        raise ConfigError(
            f"unknown experiment '{name}' (expected one of: {', '.join(PAPER_EXPERIMENTS)}, "
            f"or an experiment YAML{more})"
        )
    for root in _config_roots():
        candidate = root / "experiments" / f"{dataset}_{name}.yaml"
        if candidate.is_file():
            return candidate
    hint = ""
    if shipped_configs() is not None:
        # an installed wheel carries the grids, but a grid writes its store beside itself
        # and reads data relative to itself: it must live in a folder of the user's
        hint = "; `tf4ctr configs --copy-to .` puts the shipped ones in ./configs"
    raise ConfigError(
        f"no shipped grid for {name} on '{dataset}' "
        f"(looked for configs/experiments/{dataset}_{name}.yaml){hint}"
    )


def _write_atomic(path: Path, text: str) -> None:
    from tf4ctr.fileio import make_dir, write_text_atomic

    make_dir(path.parent, "the report's folder")
    write_text_atomic(path, text)


def cmd_grid(args: argparse.Namespace) -> int:
    from tf4ctr.experiments import load_experiment, run_experiment
    from tf4ctr.experiments.reports.table import results_table

    experiment = load_experiment(args.experiment)
    store = run_experiment(
        experiment, only=args.only, dry_run=args.dry_run, progress=not args.no_progress
    )
    if not args.dry_run:
        print(results_table(experiment, store))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Run one of the paper's experiments on a dataset, then write its report and figures."""
    from tf4ctr.experiments import figures, load_experiment, run_experiment
    from tf4ctr.experiments.reports import render_report

    out_dir = Path(args.output_dir) if args.output_dir else Path("reports") / args.dataset
    if args.experiment == "status":
        print(reproduction_status(args.dataset))
        return 0
    if args.experiment == "fig4":
        path = figures.tf_loss_figure(out_dir / "fig4_tf_loss.png")
        print(f"Figure 4 written to {path}")
        return 0
    experiment = load_experiment(
        resolve_experiment(args.experiment, args.dataset), seeds=args.seeds
    )
    store = run_experiment(
        experiment, only=args.only, dry_run=args.dry_run, progress=not args.no_progress
    )
    if args.dry_run:
        return 0
    text = render_report(experiment, store, figures_dir=out_dir)
    report_path = out_dir / f"{experiment.name}.md"
    _write_atomic(report_path, text)
    print(text)
    print(f"report written to {report_path}")
    return 0


def training_seconds(record: dict[str, Any]) -> float:
    """Seconds a finished cell took. ``wall_seconds`` is the last process's; a cell resumed
    after an interruption also spent its earlier epochs, which its history keeps, so the
    larger of the two (epochs' training + validation seconds) counts."""
    epochs = sum(
        (e.get("train_seconds") or 0.0) + ((e.get("valid") or {}).get("seconds") or 0.0)
        for e in record.get("history") or []
    )
    return max(record.get("wall_seconds") or 0.0, epochs)


def _first_comment(path: Path) -> str:
    """A grid file's first comment line, for the status table (its own words on what it is)."""
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("# ").rstrip().replace("|", "/")
    except OSError:
        pass
    return ""


def reproduction_status(dataset: str) -> str:
    """One Markdown row per paper experiment, then one per other grid shipped for the dataset:
    cells finished (here or in a store it reuses)."""
    from tf4ctr.experiments import load_experiment
    from tf4ctr.experiments.runner import known_results

    lines = ["| experiment | cells done | hours of training so far | what |", "|---|---|---|---|"]
    rows: list[tuple[str, str, Path | None]] = []
    for name, what in PAPER_EXPERIMENTS.items():
        try:
            path = None if name == "fig4" else resolve_experiment(name, dataset)
        except ConfigError:
            path = None
        rows.append((name, what, path))
    rows += [(name, _first_comment(path), path) for name, path in other_grids(dataset).items()]
    for name, what, path in rows:
        if name == "fig4":
            lines.append(f"| {name} | (no training) | – | {what} |")
            continue
        if path is None:
            lines.append(f"| {name} | (no grid for {dataset}) | – | {what} |")
            continue
        try:
            experiment = load_experiment(path)
        except ConfigError as err:
            message = str(err).replace("|", "/").splitlines()[0]
            lines.append(f"| {name} | (error: {message}) | – | {what} |")
            continue
        store = known_results(experiment)
        done = [store.records[c.key] for c in experiment.cells if c.key in store]
        hours = sum(training_seconds(r) for r in done) / 3600
        lines.append(f"| {name} | {len(done)} / {len(experiment.cells)} | {hours:.2f} | {what} |")
    return "\n".join(lines)


def cmd_configs(args: argparse.Namespace) -> int:
    """List the shipped configs, or copy them into a folder of the user's."""
    source = shipped_configs()
    if source is None:
        raise ConfigError("this tf4ctr was installed without its configs (no configs/ found)")
    if args.copy_to is None:
        print(f"shipped configs: {source}")
        for path in sorted(source.rglob("*.yaml")):
            print(f"  {path.relative_to(source)}")
        print("copy them with: tf4ctr configs --copy-to DIR (writes DIR/configs/)")
        return 0
    dest = Path(args.copy_to) / "configs"
    if dest.resolve() == source.resolve():
        print(f"{dest} is where the shipped configs are; nothing to copy")
        return 0
    written, kept = copy_configs(source, dest)
    print(f"{len(written)} config(s) written to {dest}")
    if kept:
        print(f"{len(kept)} already there, left as they are: " + ", ".join(
            str(p.relative_to(dest)) for p in kept))  # fmt: skip
    print(
        f"next: point {dest / 'datasets'}/*.yaml at your data, then e.g. "
        "`tf4ctr reproduce status --dataset frappe_x1`"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from tf4ctr.experiments import load_experiment
    from tf4ctr.experiments.reports import render_report
    from tf4ctr.experiments.runner import known_results

    experiment = load_experiment(args.experiment)
    store = known_results(experiment)
    figures_dir = Path(args.figures) if args.figures else (
        Path(args.output).parent if args.output else None
    )  # fmt: skip
    text = render_report(experiment, store, figures_dir=figures_dir)
    if args.output:
        _write_atomic(Path(args.output), text)
        print(f"written to {args.output}")
    else:
        print(text)
    return 0


def examples(*lines: str) -> str:
    """A sub-command's epilog: its example command lines, indented under "examples:"."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_experiment_commands(sub: Any) -> None:
    """Add ``grid``, ``reproduce`` and ``report`` to the CLI's sub-parsers."""
    p = sub.add_parser(
        "grid",
        help="run an experiment grid (resumable)",
        description="Run every cell of an experiment file that is not yet in its "
        "result store; finished cells are skipped, so an interrupted "
        "study resumes. Prints the results table at the end.",
        epilog=examples(
            "tf4ctr grid configs/experiments/frappe_zoo.yaml",
            "tf4ctr grid configs/experiments/frappe_zoo.yaml --only DNN DCN --dry-run",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only these cell labels")
    p.add_argument("--dry-run", action="store_true", help="list cells as done/todo and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_grid, trains=True)

    listing = "; ".join(f"{k}: {v}" for k, v in PAPER_EXPERIMENTS.items())
    p = sub.add_parser(
        "reproduce",
        help="re-run one of the paper's tables or figures and write its report",
        description="Run a shipped experiment grid of the paper on a dataset (resumable: "
        "finished cells are skipped), then write its Markdown report, with the paper's "
        f"numbers beside ours, and its figures. Experiments: {listing}.",
        epilog=examples(
            "tf4ctr reproduce status --dataset frappe_x1",
            "tf4ctr reproduce table4 --dataset frappe_x1 --output-dir docs/results/frappe_x1",
            "tf4ctr reproduce fig6 --seeds 2 --dry-run",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="table2..table6, fig2, fig4..fig10, "
                   "an experiment YAML, or 'status' (cells done per experiment)")  # fmt: skip
    p.add_argument("--dataset", default="frappe_x1", help="dataset of the shipped grid "
                   "(default: %(default)s)")  # fmt: skip
    p.add_argument("--seeds", type=int, help="run every cell with the first N seeds (2023, ...)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only these cell labels")
    p.add_argument("--output-dir", help="report and figure folder (default: reports/DATASET)")
    p.add_argument("--dry-run", action="store_true", help="list cells as done/todo and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_reproduce, trains=True)

    p = sub.add_parser(
        "report",
        help="Markdown report (and figures) of an experiment's stored results",
        description="Build an experiment's report from its store: the results table "
        "(mean ± std over seeds) with published numbers beside ours, significance tests, "
        "timing ratios or figures, depending on the experiment's report kind.",
        epilog=examples(
            "tf4ctr report configs/experiments/frappe_x1_table4.yaml",
            "tf4ctr report configs/experiments/frappe_x1_table4.yaml --output table4.md",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", metavar="EXPERIMENT", help="experiment YAML")
    p.add_argument("--output", metavar="FILE", help="write Markdown here instead of stdout")
    p.add_argument("--figures", metavar="DIR", help="folder for figures (default: beside --output)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "configs",
        help="list the shipped configs, or copy them into a folder of yours",
        description="The paper's experiment grids and the dataset and run configs they use "
        "ship with tf4ctr (in a wheel as package data). A grid keeps its result store beside "
        "itself and reads its data relative to itself, so an installed tf4ctr runs "
        "`reproduce` on a copy: --copy-to DIR writes DIR/configs/ (existing files are kept).",
        epilog=examples("tf4ctr configs", "tf4ctr configs --copy-to ."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--copy-to", metavar="DIR", help="write the configs into DIR/configs/")
    p.set_defaults(func=cmd_configs)
