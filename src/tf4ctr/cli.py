"""The ``tf4ctr`` command line. Every command is a thin layer over the Python API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

from tf4ctr.data.data_cli import add_data_commands
from tf4ctr.errors import UserError
from tf4ctr.experiments.exp_cli import add_experiment_commands, examples
from tf4ctr.server.serve_cli import add_serve_command
from tf4ctr.tune.tune_cli import add_tune_command

log = logging.getLogger("tf4ctr")


def _table(rows: dict[str, dict[str, float]]) -> str:
    keys = [k for k in ("auc", "gauc", "logloss") if any(k in r for r in rows.values())]
    head = f"{'':<22}" + "".join(f"{k:>10}" for k in keys)
    lines = [head]
    for name, metrics in rows.items():
        cells = "".join(f"{metrics[k]:>10.4f}" if k in metrics else f"{'-':>10}" for k in keys)
        lines.append(f"{name:<22}{cells}")
    return "\n".join(lines)


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["tf4ctr", "train", "--config", args.config]
    if args.run_dir:
        parts += ["--run-dir", args.run_dir]
    parts += [*args.overrides, "--resume"]
    return " ".join(shlex.quote(p) for p in parts)


def cmd_train(args: argparse.Namespace) -> int:
    from tf4ctr import run
    from tf4ctr.config import load_run_config

    if args.resume and args.overwrite:
        raise UserError("--resume and --overwrite exclude each other")
    overrides = list(args.overrides)
    if args.init_from:
        overrides.append(f"train.init_from={args.init_from}")
    config = load_run_config(args.config, overrides)
    args.resume_hint = _resume_command(args)
    result = run.train(
        config,
        run_dir=Path(args.run_dir) if args.run_dir else None,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=False if args.no_progress else None,
    )
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports
    m = result.metrics
    print(_table({"valid": m["valid"], "test": m["test"]}))
    print(f"best epoch {m['best_epoch']}; run written to {result.run_dir}")
    for warning in m.get("warnings", []):  # last, where the eye lands
        print(f"tf4ctr: warning: {warning}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tf4ctr import run

    files = {Path(p).name: Path(p) for p in args.data} if args.data else None
    results = run.evaluate(
        args.run_dir, files=files, batch_size=args.batch_size, progress=not args.no_progress
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tf4ctr import run

    n = run.predict(
        args.run_dir,
        args.input,
        args.output,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    # with --output - the scores are the standard output: the count goes to stderr
    print(
        f"wrote {n} predictions to {args.output}",
        file=sys.stderr if args.output == "-" else sys.stdout,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tf4ctr.demo import run_demo
    from tf4ctr.train.trainer import seconds_per_epoch

    print("tf4ctr demo — SYNTHETIC data (built-in generator, not a real dataset)", flush=True)
    results = run_demo(
        output_dir=Path(args.output_dir),
        cache_dir=Path(args.cache_dir),
        epochs=args.epochs,
        progress=not args.no_progress,
    )
    rows = {}
    for name, result in results.items():
        rows[f"{name} valid"] = result.metrics["valid"]
        rows[f"{name} test"] = result.metrics["test"]
    print(_table(rows))
    for name, result in results.items():
        m = result.metrics
        per_epoch = seconds_per_epoch(m["epochs"]) or 0.0
        print(
            f"{name}: best epoch {m['best_epoch']}, {per_epoch:.1f} s/epoch, run in {result.run_dir}"
        )
    print(_DEMO_CAVEAT)
    return 0


_DEMO_CAVEAT = """
What this demo shows: that tf4ctr installs, reads data, trains, early-stops and scores, in
under a minute. What it cannot show: which model is better. The clicks come from a simple
made-up rule over a few fields, a single run per model, so the ranking of TF4CTR and DualMLP
here is noise about such a rule, not evidence about CTR data. On real data (Frappe_x1, five
seeds) TF4CTR beats every baseline of the paper: see the README's "Results on Frappe_x1" and
docs/REPRODUCTION.md."""


def cmd_export(args: argparse.Namespace) -> int:
    from tf4ctr.export import export_run

    model_file, sidecar = export_run(args.run_dir, args.format, args.output, args.quantize)
    print(f"wrote {model_file} and {sidecar}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from tf4ctr.models import available_models, model_defaults

    for name in available_models():
        defaults = ", ".join(f"{k}={v}" for k, v in model_defaults(name).items())
        print(f"{name}: {defaults}")
    return 0


def _version() -> str:
    from tf4ctr import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tf4ctr", description="TF4CTR: Twin Focus framework for CTR prediction."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--version", action="version", version=f"tf4ctr {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_command(sub)
    _add_scoring_commands(sub)
    _add_demo_command(sub)
    add_experiment_commands(sub)
    add_tune_command(sub)
    add_data_commands(sub)
    _add_export_command(sub)
    add_serve_command(sub)
    p = sub.add_parser("models", help="list registered models and their defaults")
    p.set_defaults(func=cmd_models)
    add_runs_commands(sub)
    return parser


def _add_train_command(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a model from a run config",
        description="Train from a YAML run config; writes runs/<name>/ (built in "
        "runs/.<name>.partial/ with a checkpoint after every epoch).",
        epilog=examples(
            "tf4ctr train --config my_run.yaml",
            "tf4ctr train --config my_run.yaml train.lr=1e-4 model.fusion=moef name=try2",
            "tf4ctr train --config my_run.yaml --resume       # after Ctrl-C, kill or reboot",
            "tf4ctr train --config my_run.yaml --overwrite    # start the run over",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="run config YAML")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="dotted overrides, e.g. train.lr=1e-4 model.dropout=0.1 name=try2",
    )
    p.add_argument("--run-dir", help="write the run here instead of <output_dir>/<name>")
    p.add_argument(
        "--init-from",
        metavar="RUN_DIR",
        help="start from this finished run's weights, its vocabularies extended by the new "
        "data (continual training; the same as train.init_from=RUN_DIR)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished or interrupted run of this name (only a folder tf4ctr marked "
        "as a run is ever removed)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run of this name from its last complete epoch "
        "(the config must be the same)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train, trains=True)


def _add_scoring_commands(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a finished run",
        description="AUC, gAUC and logloss of a run on its valid/test files "
        "(or on --data files), using the run's saved preprocessing.",
        epilog=examples(
            "tf4ctr evaluate runs/my-first-run",
            "tf4ctr evaluate runs/my-first-run --data new_week.csv --json",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's directory")
    p.add_argument("--data", nargs="+", metavar="FILE", help="labelled files to evaluate instead")
    p.add_argument("--batch-size", type=int, default=65_536, help="rows scored at once")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="score raw rows with a finished run",
        description="Write click probabilities for the rows of a CSV/parquet file; "
        "the label column may be absent.",
        epilog=examples(
            "tf4ctr predict runs/my-first-run --input new_rows.csv --output scores.csv",
            "tf4ctr predict runs/my-first-run --input big.parquet --output scores.parquet",
            "tf4ctr predict runs/my-first-run --input new_rows.csv --output - | head",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's directory")
    p.add_argument("--input", required=True, metavar="FILE", help="CSV or parquet rows to score")
    p.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="a probability column, row for row: parquet for .parquet / .pq, CSV otherwise, "
        "CSV on standard output for -",
    )
    p.add_argument("--batch-size", type=int, default=65_536, help="rows scored at once")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_predict)


def _add_demo_command(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="train TF4CTR and DualMLP on built-in synthetic data",
        description="No download: generates SYNTHETIC click data, trains TF4CTR "
        "and DualMLP, prints valid/test AUC, gAUC and logloss.",
    )
    p.add_argument("--output-dir", default="runs", help="runs folder (default: %(default)s)")
    p.add_argument(
        "--cache-dir", default=".tf4ctr-cache", help="data and cache folder (default: %(default)s)"
    )
    p.add_argument("--epochs", type=int, default=None, help="cap the number of epochs")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_demo)


def _add_export_command(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a finished run for serving (ONNX or torch.export)",
        description="Write the run's model as a graph from encoded inputs (categorical int64 "
        "[B, F], numeric float32 [B, N]) to click probabilities, with a dynamic batch size, "
        "and its preprocessing beside it as <output>.preprocessor.json, which "
        "tf4ctr.serving.RowEncoder (numpy only) turns raw rows into those inputs. ONNX needs "
        "the optional packages of tf4ctr[serve].",
        epilog=examples(
            "tf4ctr export runs/my-first-run --format onnx --output model.onnx",
            "tf4ctr export runs/my-first-run --format torch-export --output model.pt2",
            "tf4ctr export runs/my-first-run --format onnx --quantize int8 --output model-int8.onnx",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's directory")
    p.add_argument("--format", required=True, choices=["onnx", "torch-export"], help="graph format")
    p.add_argument("--output", required=True, metavar="FILE", help="the exported model file")
    p.add_argument(
        "--quantize", choices=["int8"],
        help="ONNX only: int8 weights (per output channel) and activations quantised per call; "
        "about 3x faster matrix products on a CPU with VNNI; scores move a little (Frappe_x1, "
        "TF4CTR: mean 6e-4, test AUC -6e-6; benchmarks/quantize_accuracy.py)",
    )  # fmt: skip
    p.set_defaults(func=cmd_export)


def cmd_runs_list(args: argparse.Namespace) -> int:
    from tf4ctr.rundir import list_runs

    found = False
    for status in list_runs(args.output_dir):
        found = True
        detail = ""
        if status.epochs_done is not None:
            detail = f"{status.epochs_done} epoch(s) saved"
        if status.state == "writing":
            detail += f", process {status.writer_pid}"
        elif status.state == "partial":
            detail += "; --resume continues it, `tf4ctr runs clean` removes it"
        if status.state == "finished":
            detail = _lineage(status.path)
        print(f"{status.state:<9} {status.name:<30} {detail}".rstrip())
    if not found:
        print(f"no runs in {args.output_dir}")
    return 0


def _lineage(run_dir: Path) -> str:
    """ "from PARENT" for a run warm-started from another (metrics.json's init_from)."""
    from tf4ctr.rundir import METRICS_FILE

    try:
        parent = json.loads((run_dir / METRICS_FILE).read_text()).get("init_from")
    except (OSError, ValueError, AttributeError):
        return ""
    if not isinstance(parent, dict):
        return ""
    return f"from {parent.get('name')} ({parent.get('run_dir')}, model {str(parent.get('model_sha256'))[:12]})"


def cmd_runs_clean(args: argparse.Namespace) -> int:
    from tf4ctr.rundir import clean_partial_runs

    removed = clean_partial_runs(args.output_dir, args.names or None)
    for path in removed:
        print(f"removed {path}")
    print(f"{len(removed)} interrupted run(s) removed")
    return 0


def add_runs_commands(sub) -> None:
    runs = sub.add_parser(
        "runs",
        help="list runs, and remove interrupted ones",
        description="Finished runs, interrupted (resumable) runs and runs being written "
        "under an output folder.",
    )
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    p = runs_sub.add_parser(
        "list",
        help="finished, interrupted and running runs",
        description="One line per run: finished, partial (interrupted; its process is gone), "
        "writing (a live process holds its lock), or stale (a dead build folder of an older "
        "tf4ctr).",
        epilog=examples("tf4ctr runs list", "tf4ctr runs list --output-dir experiments/runs"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--output-dir", default="runs", help="runs folder (default: %(default)s)")
    p.set_defaults(func=cmd_runs_list)
    p = runs_sub.add_parser(
        "clean",
        help="remove interrupted runs whose process is gone",
        description="Remove the partial folders of interrupted runs (all, or the NAMEs "
        "given). A run being written by a live process, a finished run, and anything tf4ctr "
        "did not mark as a run are never touched.",
        epilog=examples("tf4ctr runs clean", "tf4ctr runs clean my-first-run"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these runs")
    p.add_argument("--output-dir", default="runs", help="runs folder (default: %(default)s)")
    p.set_defaults(func=cmd_runs_clean)


def _end_process_group() -> None:
    import sys as _sys

    dist = _sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that training stops at once and keeps its checkpoint."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):  # `tf4ctr ... | head` should end quietly, like any Unix tool
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse stops collecting KEY=VALUE overrides at the first option after them
    # (`train --config r.yaml --no-progress train.epochs=1`): take the rest here
    if hasattr(args, "overrides"):
        args.overrides += [e for e in extra if "=" in e and not e.startswith("-")]
        extra = [e for e in extra if e not in args.overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    # rerunning a grid or reproduce command resumes it (and its half-trained cell)
    args.rerun_command = shlex.join(["tf4ctr", *(sys.argv[1:] if argv is None else argv)])
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if os.environ.get("RANK", "0") != "0":
        log.setLevel(logging.WARNING)  # under torchrun the other ranks keep quiet
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        # A command that trains says what SIGINT means, as Ctrl-C always does: stop, keep the
        # complete epochs, exit 130. A job started with `&` or nohup from a non-interactive
        # shell inherits SIGINT ignored, and would otherwise train on through it.
        previous_int = (
            signal.signal(signal.SIGINT, signal.default_int_handler)
            if getattr(args, "trains", False)
            else None
        )
    except ValueError:  # not the main thread: leave signals alone
        previous = previous_int = None
    try:
        return args.func(args)
    except UserError as exc:
        print(f"tf4ctr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("tf4ctr: interrupted", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    except Exception as exc:
        from tf4ctr.run import RunInterrupted

        if not isinstance(exc, RunInterrupted):
            raise
        print(f"tf4ctr: interrupted: {exc}", file=sys.stderr)
        hint = getattr(args, "resume_hint", None) or args.rerun_command
        if exc.resumable and hint:
            print(f"tf4ctr: resume with: {hint}", file=sys.stderr)
        return 143 if isinstance(exc.__context__, _Terminated) else 130
    finally:
        _end_process_group()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
        log.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
