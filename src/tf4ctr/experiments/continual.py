"""The continual-training study: frozen vs retrained from scratch vs warm-started (on the new
period alone, or with the last k periods replayed beside it: ``replay_windows``), period by
period, on data in time order (issue 34; configs/continual/*.yaml says the protocol).

Every trained step is a record in a JSONL store (model, seed, step, strategy, metrics, seconds),
appended as it finishes, so a killed study resumes where it was; the report (a Markdown table
and a PNG) is rendered from the store alone, so a fresh clone regenerates it without the data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tf4ctr.errors import ConfigError, UserError
from tf4ctr.fileio import make_dir, read_yaml, write_text_atomic

_KEYS = ("name", "data", "time_col", "periods", "valid_fraction", "store", "report", "workdir",
         "seeds", "models", "overrides", "replay_windows")  # fmt: skip


def replay_name(window: int) -> str:
    """The strategy replaying ``window`` periods ("replay" for one, as the first stores say)."""
    return "replay" if window == 1 else f"replay-{window}"


def replay_window(strategy: str) -> int:
    return 1 if strategy == "replay" else int(strategy.split("-", 1)[1])


@dataclass
class Study:
    name: str
    data: Path
    time_col: str
    periods: int
    valid_fraction: float
    store: Path
    report: Path
    workdir: Path
    seeds: list[int]
    models: dict[str, Path]
    overrides: list[str]
    source: Path
    replay_windows: tuple[int, ...] = (1,)

    @property
    def strategies(self) -> tuple[str, ...]:
        return ("frozen", "scratch", "warm", *(replay_name(k) for k in self.replay_windows))


def load_study(path: str | Path) -> Study:
    """A study file, its paths resolved against its folder (``~`` expanded); one-line errors."""
    source = Path(path).resolve()
    raw = read_yaml(source, expected="a study mapping")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping")
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{source}: {key}: unknown key (expected one of: {', '.join(_KEYS)})")
    missing = [k for k in ("name", "data", "store", "report", "models") if k not in raw]
    if missing:
        raise ConfigError(f"{source}: missing key {missing[0]}")

    def where(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else (source.parent / p).resolve()

    periods = raw.get("periods", 6)
    if not isinstance(periods, int) or periods < 3:
        raise ConfigError(f"{source}: periods: expected an integer >= 3, got {periods!r}")
    fraction = raw.get("valid_fraction", 0.1)
    if not isinstance(fraction, float) or not 0 < fraction < 0.5:
        raise ConfigError(
            f"{source}: valid_fraction: expected a number in (0, 0.5), got {fraction!r}"
        )
    windows = raw.get("replay_windows", [1])
    if (
        not isinstance(windows, list)
        or not windows
        or not all(isinstance(k, int) and not isinstance(k, bool) and 1 <= k < periods - 1 for k in windows)
        or len(set(windows)) != len(windows)
    ):  # fmt: skip
        raise ConfigError(
            f"{source}: replay_windows: expected distinct integers from 1 to {periods - 2} "
            f"(periods replayed beside the new one), got {windows!r}"
        )
    models = raw["models"]
    if not isinstance(models, dict) or not models:
        raise ConfigError(f"{source}: models: expected a mapping of label: run config")
    return Study(
        name=str(raw["name"]),
        data=where(raw["data"]),
        time_col=str(raw.get("time_col", "timestamp")),
        periods=periods,
        valid_fraction=fraction,
        store=where(raw["store"]),
        report=where(raw["report"]),
        workdir=where(raw.get("workdir", ".tf4ctr-continual")),
        seeds=[int(s) for s in raw.get("seeds", [2023])],
        models={str(k): where(v) for k, v in models.items()},
        overrides=[str(o) for o in raw.get("overrides", [])],
        source=source,
        replay_windows=tuple(sorted(windows)),
    )


def read_store(path: Path) -> dict[tuple, dict[str, Any]]:
    records = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                records[(r["model"], r["seed"], r["step"], r["strategy"])] = r
    return records


def _periods(study: Study) -> list[Any]:
    """The data sorted by time (stable: ties keep file order) in ``periods`` equal pieces."""
    import pyarrow.csv as pacsv

    if not study.data.is_file():
        raise UserError(
            f"{study.data}: not found; fetch it with `tf4ctr data download ml_100k --dir ~/.cache/tf4ctr`"
        )
    table = pacsv.read_csv(
        study.data, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)
    )
    if study.time_col not in table.column_names:
        raise UserError(f"{study.data}: no column '{study.time_col}' to order the rows by")
    order = np.argsort(table[study.time_col].to_numpy(), kind="stable")
    table = table.take(order)
    bounds = np.linspace(0, table.num_rows, study.periods + 1).astype(int)
    return [table.slice(a, b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _fit(study: Study, label: str, seed: int, name: str, train: Any, valid: Any, test: Any,
         init_from: Path | None) -> tuple[Any, float]:  # fmt: skip
    import tf4ctr

    overrides = [*study.overrides, f"train.seed={seed}", f"name={name}", "train.progress=false",
                 f"output_dir={study.workdir / 'runs'}", f"cache_dir={study.workdir / 'cache'}"]  # fmt: skip
    start = time.perf_counter()
    run = tf4ctr.fit(str(study.models[label]), train=train, valid=valid, test=test,
                     overrides=overrides, overwrite=True, init_from=init_from)  # fmt: skip
    return run, time.perf_counter() - start


def run_study(study: Study) -> dict[tuple, dict[str, Any]]:
    """Train every missing step (resumable); returns the store's records."""
    import pyarrow as pa

    from tf4ctr.run import evaluate

    done = read_store(study.store)
    periods = _periods(study)
    make_dir(study.workdir, "workdir")

    def split(table: Any) -> tuple[Any, Any]:
        cut = int(round(table.num_rows * (1 - study.valid_fraction)))
        return table.slice(0, cut), table.slice(cut)

    def add(record: dict[str, Any]) -> None:
        make_dir(study.store.parent, "store")
        with study.store.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        done[(record["model"], record["seed"], record["step"], record["strategy"])] = record
        print(f"{record['model']} seed {record['seed']} step {record['step']} {record['strategy']}: "
              f"test auc {record['test']['auc']:.4f} ({record['seconds']:.0f} s)", flush=True)  # fmt: skip

    for label in study.models:
        for seed in study.seeds:
            base = f"{study.name}-{label.lower()}-s{seed}"
            for step in range(1, study.periods):
                future = periods[step]  # period step+1, 0-based
                for strategy in study.strategies:
                    if (label, seed, step, strategy) in done:
                        continue
                    if step == 1 and strategy != "scratch":
                        continue  # at step 1 all three are the same model: stored once
                    if strategy == "frozen":
                        first = study.workdir / "runs" / f"{base}-scratch-1"
                        scores = evaluate(first, files=_files(study, future, step), progress=False)
                        add(_record(label, seed, step, strategy, None, scores["future"], 0.0, 0))
                        continue
                    if strategy == "scratch":
                        train, valid = split(pa.concat_tables(periods[:step]))
                        init = None
                    else:
                        train, valid = split(periods[step - 1])
                        if strategy.startswith("replay"):  # the last k periods beside the new one
                            window = replay_window(strategy)
                            replayed = periods[max(0, step - 1 - window) : step - 1]
                            train = pa.concat_tables([*replayed, train])
                        parent = "scratch-1" if step == 2 else f"{strategy}-{step - 1}"
                        init = study.workdir / "runs" / f"{base}-{parent}"
                        if parent == "scratch-1" and not (init / "metrics.json").is_file():
                            _rebuild_first(study, label, seed, base, periods, split, done)
                    run, seconds = _fit(study, label, seed, f"{base}-{strategy}-{step}",
                                        train, valid, future, init)  # fmt: skip
                    add(_record(label, seed, step, strategy, run.metrics["valid"],
                                run.metrics["test"], seconds, train.num_rows))  # fmt: skip
    return done


def _rebuild_first(study: Study, label: str, seed: int, base: str, periods: list[Any],
                   split: Any, done: dict[tuple, dict[str, Any]]) -> None:  # fmt: skip
    """Train step 1's model again when the store has it but the workdir lost it (a new
    strategy added to a finished study needs it as a parent); it must score as stored."""
    train, valid = split(periods[0])
    run, _ = _fit(study, label, seed, f"{base}-scratch-1", train, valid, periods[1], None)
    stored = done[(label, seed, 1, "scratch")]["test"]["auc"]
    if abs(run.metrics["test"]["auc"] - stored) > 1e-9:
        raise UserError(
            f"{base}-scratch-1: retrained, it scores test AUC {run.metrics['test']['auc']:.6f}, "
            f"not the stored {stored:.6f}; the store's runs are not reproducible here"
        )


def _files(study: Study, table: Any, step: int) -> dict[str, Path]:
    """Period ``step + 1`` as a file for ``tf4ctr evaluate``."""
    import pyarrow.parquet as pq

    path = study.workdir / f"future-{step + 1}.parquet"
    pq.write_table(table, path)
    return {"future": path}


def _record(label: str, seed: int, step: int, strategy: str, valid: Any, test: dict[str, float],
            seconds: float, rows: int) -> dict[str, Any]:  # fmt: skip
    keep = ("auc", "gauc", "logloss")
    return {
        "model": label, "seed": seed, "step": step, "strategy": strategy, "train_rows": rows,
        "valid": {k: valid[k] for k in keep} if valid else None,
        "test": {k: test[k] for k in keep}, "seconds": round(seconds, 1),
    }  # fmt: skip


def render(study: Study, records: dict[tuple, dict[str, Any]], figure: Path | None = None) -> str:
    """The report: per model and step, each strategy's test AUC / gAUC / logloss on the next
    period and its training seconds (means over seeds), and what the table says."""
    models = list(study.models)
    steps = range(1, study.periods)
    lines = [f"# {study.name}", "",
             f"`python -m tf4ctr.experiments.continual run {_rel(study.source)}`, then `report`. "
             "Each step scores the period after the one trained on (the future).", ""]  # fmt: skip

    def cell(label: str, step: int, strategy: str) -> dict[str, Any] | None:
        got = [records.get((label, seed, step, "scratch" if step == 1 else strategy))
               for seed in study.seeds]  # fmt: skip
        got = [g for g in got if g is not None]
        if not got:
            return None
        mean = {k: float(np.mean([g["test"][k] for g in got])) for k in ("auc", "gauc", "logloss")}
        return {**mean, "seconds": float(np.mean([g["seconds"] for g in got])), "n": len(got)}

    for label in models:
        lines += [f"## {label}", "", "| step (trained to → scored on) | strategy | test AUC | test gAUC "
                  "| test logloss | training s |", "|---|---|---|---|---|---|"]  # fmt: skip
        for step in steps:
            for strategy in study.strategies:
                c = cell(label, step, strategy)
                if c is None:
                    lines.append(f"| {step} (P{step} → P{step + 1}) | {strategy} | – | – | – | – |")
                    continue
                secs = "0" if strategy == "frozen" and step > 1 else f"{c['seconds']:.0f}"
                lines.append(f"| {step} (P{step} → P{step + 1}) | {strategy} | {c['auc']:.4f} | "
                             f"{c['gauc']:.4f} | {c['logloss']:.4f} | {secs} |")  # fmt: skip
        summary = []
        for strategy in study.strategies:
            cells = [cell(label, s, strategy) for s in steps if s > 1]
            if cells and all(cells):
                auc = np.mean([c["auc"] for c in cells])  # type: ignore[index]
                secs = np.sum([c["seconds"] for c in cells])  # type: ignore[index]
                summary.append(f"{strategy}: mean test AUC {auc:.4f} over steps 2–{study.periods - 1}, "
                               f"{secs:.0f} s of training in all")  # fmt: skip
        lines += ["", *(f"- {s}" for s in summary), ""]
    done = sum(1 for _ in records)
    lines.append(f"{done} records ({len(models)} models × {len(study.seeds)} seed(s)).")
    if figure is not None:
        _plot(study, cell, figure)
        lines += ["", f"![test AUC per step]({figure.name})"]
    return "\n".join(lines) + "\n"


def _plot(study: Study, cell: Any, path: Path) -> None:
    from tf4ctr.experiments.figures import _pyplot, _save

    fig, axes = _pyplot().subplots(
        1, len(study.models), figsize=(5 * len(study.models), 3.6), squeeze=False
    )
    steps = list(range(1, study.periods))
    for ax, label in zip(axes[0], study.models, strict=True):
        for strategy in study.strategies:
            ys = [cell(label, s, strategy) for s in steps]
            xs = [s for s, y in zip(steps, ys, strict=True) if y]
            ax.plot(xs, [y["auc"] for y in ys if y], marker="o", label=strategy)
        ax.set_title(label)
        ax.set_xlabel("step t (trained to period t, scored on t+1)")
        ax.set_ylabel("test AUC")
        ax.legend()
    fig.tight_layout()
    _save(fig, path)  # the other figures' way: atomic, the figure closed whatever happens


def _rel(path: Path) -> str:
    """The study file as the shipped configs name it (the same wherever the clone lives)."""
    return f"configs/{path.parent.name}/{path.name}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tf4ctr.experiments.continual", description=__doc__)
    p.add_argument("action", choices=["run", "report"])
    p.add_argument("study", help="a study file, e.g. configs/continual/ml_100k.yaml")
    args = p.parse_args(argv)
    try:
        study = load_study(args.study)
        records = run_study(study) if args.action == "run" else read_store(study.store)
        figure = study.report.with_suffix(".png")
        text = render(study, records, figure)
        make_dir(study.report.parent, "report")
        write_text_atomic(study.report, text)
        print(text)
    except (UserError, ConfigError) as exc:
        print(f"tf4ctr: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
