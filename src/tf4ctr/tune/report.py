"""``tf4ctr tune report``: a search's trials, its best on validation, and the closing seeds
(the best trial and the starting config, on test, with Welch's t-test), as Markdown with two
PNG figures drawn with matplotlib: the optimisation history and the parameter importances.

Choosing happens on validation only (the trials' objective is the validation monitor); test
numbers appear for the closing seeds alone, so the report never picks what it reports.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, NamedTuple

from tf4ctr.errors import UserError
from tf4ctr.experiments.store import ResultStore
from tf4ctr.fileio import make_dir
from tf4ctr.tune.search import START, TUNED, SearchTune, closing_cells, open_study

__all__ = ["compare_report", "search_report"]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}" if math.isfinite(sd) else f"{values[0]:.4f}"


def _welch(a: list[float], b: list[float]) -> str:
    if len(a) < 2 or len(b) < 2:
        return "–"
    from scipy import stats

    return f"{float(stats.ttest_ind(a, b, equal_var=False).pvalue):.4g}"


def _history_png(trials: list[Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in trials if t.state.name == "COMPLETE"]
    pruned = [t for t in trials if t.state.name == "PRUNED" and t.intermediate_values]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, label="finished trial")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, s=18, marker="x", color="grey",
                   label="pruned (its last epoch)")  # fmt: skip
    best, xs, ys = -math.inf, [], []
    for t in sorted(done, key=lambda t: t.number):
        best = max(best, t.value)
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation monitor")
    ax.set_title("Optimisation history")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _importance_png(importances: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.4 * len(names)))
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance (fANOVA, share of the validation monitor's variance)")
    ax.set_title("Parameter importances")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def search_report(tune: SearchTune, out_dir: Path) -> tuple[str, list[Path]]:
    """The report's Markdown and the figures written beside it in ``out_dir``."""
    import optuna

    spec = tune.spec
    study = open_study(tune, create=False)
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, int] = {}
    for t in trials:
        by_state[t.state.name.lower()] = by_state.get(t.state.name.lower(), 0) + 1
    reused = sum(bool(t.user_attrs.get("reused")) for t in trials if t.state.name == "COMPLETE")
    lines = [
        f"# {spec.name}: tuning report",
        "",
        f"Base config `{spec.base.name}`; budget {spec.n_trials} trials (finished or pruned), "
        f"sampler {spec.sampler}, pruner {spec.pruner}; the objective is the validation "
        "monitor of each trial's best epoch.",
        "",
        "Trials: "
        + ", ".join(f"{n} {s}" for s, n in sorted(by_state.items()))
        + f"; {reused} of the finished ones answered from a stored run.",
        "",
    ]
    figures: list[Path] = []
    done = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: -t.value)
    if done:
        keys = [d.key for d in spec.space]
        lines += ["## Best trials (validation)", "",
                  "| trial | valid monitor | " + " | ".join(keys) + " |",
                  "|---|---|" + "---|" * len(keys)]  # fmt: skip
        for t in done[:10]:
            cells = [str(t.params.get(k, "–")) for k in keys]
            lines.append(f"| {t.number} | {t.value:.5f} | " + " | ".join(cells) + " |")
        lines.append("")
        make_dir(out_dir, "--output-dir")
        history = out_dir / f"{spec.name}_history.png"
        _history_png(trials, history)
        figures.append(history)
        lines.append(f"![optimisation history]({history.name})")
        try:
            importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as exc:  # too few finished trials, or one value each
            lines.append(f"(no parameter importances: {exc})")
        else:
            path = out_dir / f"{spec.name}_importances.png"
            _importance_png(importances, path)
            figures.append(path)
            lines.append(f"![parameter importances]({path.name})")
        lines.append("")
        lines += _closing_table(tune, study)
    else:
        lines.append("No trial has finished yet.")
    return "\n".join(lines) + "\n", figures


def _closing_records(tune: SearchTune, cells: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The stored closing runs among ``cells``, by label (TUNED, START); empty where none ran."""
    store = ResultStore(tune.store)
    got: dict[str, list[dict[str, Any]]] = {TUNED: [], START: []}
    for cell in cells:
        if cell.key in store:
            got[cell.label].append(store.records[cell.key])
    return got


class _Entry(NamedTuple):
    """One model in a comparison: its closing seeds' AUCs by label, and the label chosen."""

    model: str
    tune: SearchTune
    valid: dict[str, list[float]]
    test: dict[str, list[float]]
    chosen: str


def compare_report(tunes: list[SearchTune], sources: list[str]) -> str:
    """Several models' searches side by side: each model's starting config and its best trial
    over the closing seeds; of the two, the one with the higher mean validation AUC is the
    model's entry (chosen on validation, never on test), and the first file's entry is set
    against every other's with Welch's t-test on the seeds' test AUC. ``sources`` are the
    tuner files as the command line named them, written into the report so that it says how
    it is regenerated."""
    entries = []
    for tune in tunes:
        study = open_study(tune, create=False)
        got = _closing_records(tune, closing_cells(tune, study))
        want = tune.spec.seeds
        if want < 2:
            raise UserError(f"{tune.spec.path}: seeds: {want}; a comparison needs two or more")
        if len(got[START]) < want or len(got[TUNED]) < want:
            raise UserError(
                f"{tune.spec.path}: its closing seeds are not all run yet "
                f"(start {len(got[START])}/{want}, tuned {len(got[TUNED])}/{want}); "
                f"finish it with tf4ctr tune {tune.spec.path}"
            )
        valid = {k: [float(r["valid"]["auc"]) for r in v] for k, v in got.items()}
        test = {k: [float(r["test"]["auc"]) for r in v] for k, v in got.items()}
        chosen = TUNED if statistics.fmean(valid[TUNED]) > statistics.fmean(valid[START]) else START
        entries.append(
            _Entry(got[START][0].get("model", tune.spec.name), tune, valid, test, chosen)
        )
    lines = [
        "# " + " vs ".join(e.model for e in entries) + ": equal tuning",
        "",
        "Each model: its starting config and its search's best trial, each over the closing "
        "seeds (mean ± sd). The entry is whichever of the two has the higher mean validation "
        "AUC; p is Welch's t-test of the first model's entry against each other's, on test AUC.",
        "",
        f"Regenerate: `tf4ctr tune compare {' '.join(sources)}` (from each tuner file's study "
        "and result store: " + ", ".join(f"`{e.tune.store.name}`" for e in entries) + ").",
        "",
        "| model | search | start: valid AUC | start: test AUC | tuned: valid AUC "
        "| tuned: test AUC | entry (on valid) | entry test AUC | p vs first |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    first = entries[0].test[entries[0].chosen]
    for i, e in enumerate(entries):
        spec = e.tune.spec
        p = "–" if i == 0 else _welch(first, e.test[e.chosen])
        lines.append(
            f"| {e.model} | {spec.n_trials} trials, {spec.sampler}, {spec.pruner} "
            f"| {_mean_sd(e.valid[START])} | {_mean_sd(e.test[START])} "
            f"| {_mean_sd(e.valid[TUNED])} | {_mean_sd(e.test[TUNED])} "
            f"| {'tuned' if e.chosen == TUNED else 'start'} | {_mean_sd(e.test[e.chosen])} | {p} |"
        )
    best = max(entries, key=lambda e: statistics.fmean(e.test[e.chosen]))
    lines += ["", f"Highest entry on test: {best.model} "
              f"({statistics.fmean(best.test[best.chosen]):.4f})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _closing_table(tune: SearchTune, study: Any) -> list[str]:
    cells = closing_cells(tune, study)
    if not cells:
        return []
    got = _closing_records(tune, cells)
    want = tune.spec.seeds

    def col(label: str, split: str, metric: str) -> list[float]:
        return [float(r[split][metric]) for r in got[label]]

    lines = [
        f"## The best trial ({study.best_trial.number}) and the starting config, {want} seeds",
        "",
        "| config | seeds done | valid AUC | test AUC | test logloss |",
        "|---|---|---|---|---|",
    ]
    for label, what in ((START, "starting config"), (TUNED, "tuned (best on validation)")):
        lines.append(f"| {what} | {len(got[label])} / {want} | {_mean_sd(col(label, 'valid', 'auc'))} "
                     f"| {_mean_sd(col(label, 'test', 'auc'))} | {_mean_sd(col(label, 'test', 'logloss'))} |")  # fmt: skip
    a, b = col(TUNED, "test", "auc"), col(START, "test", "auc")
    diff = f"{statistics.fmean(a) - statistics.fmean(b):+.4f}" if a and b else "–"
    lines += ["", f"Tuned minus starting test AUC: {diff}; Welch's t-test p = {_welch(a, b)}."]
    if {c.key for c in cells if c.label == TUNED} == {c.key for c in cells if c.label == START}:
        lines.append("The best trial is the starting config itself: the search found nothing "
                     "better on validation, and both rows are the same runs.")  # fmt: skip
    lines.append("")
    return lines
