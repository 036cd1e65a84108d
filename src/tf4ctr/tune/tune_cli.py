"""``tf4ctr tune TUNER.yaml`` and ``tf4ctr tune report TUNER.yaml``.

Kept next to the tuner, like ``exp_cli`` next to the experiments; ``cli.build_parser`` only
calls :func:`add_tune_command`. A :class:`~tf4ctr.errors.UserError` becomes one line on
stderr and exit code 2 in ``cli.main``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tf4ctr.errors import ConfigError

__all__ = ["add_tune_command"]


def cmd_tune(args: argparse.Namespace) -> int:
    from tf4ctr.tune.search import SearchTune, load_tuner, run_grid, run_search

    if args.target == "report":
        if len(args.tuner) != 1:
            raise ConfigError("tune report: expected one tuner file: tf4ctr tune report TUNER.yaml")
        return _report(args)
    if args.target == "compare":
        return _compare(args)
    if args.tuner:
        raise ConfigError(f"tune: one tuner file expected, got {args.target} and {args.tuner[0]}")
    if args.workers < 1:
        raise ConfigError(f"--workers: expected at least 1, got {args.workers}")
    _set_threads(args)
    tune = load_tuner(args.target, seeds=args.seeds)
    if isinstance(tune, SearchTune):
        trained = run_search(
            tune, workers=args.workers, dry_run=args.dry_run, progress=not args.no_progress
        )
        if not args.dry_run:
            print(f"{tune.spec.name}: budget of {tune.spec.n_trials} trials complete "
                  f"({len(trained)} trained by this process); study {tune.study_file}")  # fmt: skip
            print(f"report: tf4ctr tune report {args.target}")
        return 0
    if args.workers > 1:
        raise ConfigError("--workers: start several `tf4ctr tune` on a FuxiCTR grid instead "
                          "(they share its result store)")  # fmt: skip
    store = run_grid(tune, dry_run=args.dry_run, progress=not args.no_progress)
    if not args.dry_run:
        from tf4ctr.experiments.reports.table import results_table

        print(results_table(tune.experiment, store))
    return 0


def _report(args: argparse.Namespace) -> int:
    from tf4ctr.fileio import make_dir, write_text_atomic
    from tf4ctr.tune.search import SearchTune, load_tuner

    tune = load_tuner(args.tuner[0])
    out_dir = (
        Path(args.output_dir) if args.output_dir else Path(args.tuner[0]).resolve().with_suffix("")
    )
    make_dir(out_dir, "the report's folder")
    if isinstance(tune, SearchTune):
        from tf4ctr.tune.report import search_report

        text, figures = search_report(tune, out_dir)
        name = tune.spec.name
    else:
        from tf4ctr.experiments.reports import render_report
        from tf4ctr.experiments.runner import known_results

        experiment = tune.experiment
        text = render_report(experiment, known_results(experiment), figures_dir=out_dir)
        figures, name = [], experiment.name
    path = out_dir / f"{name}.md"
    write_text_atomic(path, text)
    print(text)
    print(f"report written to {path}" + "".join(f"\nfigure written to {f}" for f in figures))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from tf4ctr.fileio import write_text_atomic
    from tf4ctr.tune.report import compare_report
    from tf4ctr.tune.search import SearchTune, load_tuner

    if len(args.tuner) < 2:
        raise ConfigError("tune compare: expected two or more search tuner files, the first the "
                          "model set against the others")  # fmt: skip
    tunes = []
    for path in args.tuner:
        tune = load_tuner(path)
        if not isinstance(tune, SearchTune):
            raise ConfigError(f"{path}: tune compare takes search files (base, space, n_trials)")
        tunes.append(tune)
    text = compare_report(tunes, list(args.tuner))
    print(text)
    if args.output:
        write_text_atomic(Path(args.output), text)
        print(f"comparison written to {args.output}")
    return 0


def _set_threads(args: argparse.Namespace) -> None:
    """Threads per trial, for this process and the workers it starts (they inherit it)."""
    import os

    from tf4ctr.run.setup import THREADS_ENV

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads: expected at least 1, got {args.threads}")
    threads = args.threads
    if threads is None and args.workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, (cores or 1) // args.workers)
    if threads is not None:
        os.environ[THREADS_ENV] = str(threads)


def add_tune_command(sub: Any) -> None:
    """Add ``tune`` to the CLI's sub-parsers."""
    from tf4ctr.experiments.exp_cli import examples

    p = sub.add_parser(
        "tune",
        help="tune hyperparameters: a FuxiCTR tuner file's grid, or an Optuna search",
        description="Run a tuner file. A FuxiCTR tuner file (base_config, base_expid, "
        "dataset_id, tuner_space) runs the grid FuxiCTR's autotuner would, then its best "
        "experiment on validation over --seeds seeds. A search file (base, space, n_trials) "
        "runs an Optuna study (TPE, a pruner fed each epoch's validation monitor) kept in a "
        "SQLite file: a killed tune started again continues it, several processes on one file "
        "share it, and every trial is a keyed grid cell, so none is trained twice. At the end "
        "the best trial and the starting config are re-run over --seeds seeds; "
        "`tune report` writes the table (test AUC, t-test) and PNG plots.",
        epilog=examples(
            "tf4ctr tune configs/tune/frappe_x1_tf4ctr.yaml",
            "tf4ctr tune configs/tune/frappe_x1_tf4ctr.yaml --workers 2",
            "tf4ctr tune configs/tune/frappe_x1_tf4ctr.yaml --dry-run",
            "tf4ctr tune report configs/tune/frappe_x1_tf4ctr.yaml --output-dir reports/tune",
            "tf4ctr tune compare configs/tune/ml_100k_tf4ctr.yaml configs/tune/ml_100k_finalnet.yaml",
            "tf4ctr tune DCN_tiny_parquet_tuner_config.yaml --seeds 0   # FuxiCTR's format",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("target", metavar="TUNER.yaml|report|compare",
                   help="a tuner file, 'report' or 'compare'")  # fmt: skip
    p.add_argument("tuner", nargs="*", metavar="TUNER.yaml",
                   help="(after 'report') the tuner file; (after 'compare') two or more, the "
                   "first set against the others")  # fmt: skip
    p.add_argument("--output", metavar="FILE.md", help="(compare) also write the table here")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the study (default 1)")
    p.add_argument("--threads", type=int, help="torch threads of each process's trials (default: "
                   "the cores this process may use, divided by --workers), unless a config sets "
                   "train.num_threads; it changes no result and no run key")  # fmt: skip
    p.add_argument("--seeds", type=int, help="closing seeds of the best and the start (default: "
                   "the file's, else 5; 0: none)")  # fmt: skip
    p.add_argument("--output-dir", metavar="DIR", help="(report) folder for the Markdown and PNGs "
                   "(default: beside the tuner file, named after it)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="check the file and list what would run")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_tune, trains=True)
