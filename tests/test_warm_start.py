"""Continual training (issue 34): ``--init-from`` starts from a finished run's weights, its
vocabularies extended by the new data's categories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import write_csv
from tf4ctr.cli import main


@pytest.fixture
def two_days(tiny_project: Path, monkeypatch) -> Path:
    """Day 1 trained (runs/tiny-run); day 2's train split with new users and items."""
    monkeypatch.chdir(tiny_project)
    assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
    write_csv(tiny_project / "day2.csv", 3000, 9)
    text = (tiny_project / "day2.csv").read_text()
    (tiny_project / "day2.csv").write_text(
        text.replace(",u1,", ",unew1,").replace(",i3,", ",inew3,")
    )
    dataset = (tiny_project / "dataset.yaml").read_text()
    (tiny_project / "day2.yaml").write_text(
        dataset.replace("train_data: train.csv", "train_data: day2.csv")
    )
    return tiny_project


def _day2(*extra: str) -> int:
    return main(
        ["train", "--config", "run.yaml", "dataset=day2.yaml", "name=day2", "--no-progress", *extra]
    )


def test_known_ids_keep_their_rows_and_new_ids_get_new_ones(two_days):
    from tf4ctr import run
    from tf4ctr.config import load_run_config
    from tf4ctr.data import prepare_dataset
    from tf4ctr.run import warm_start

    config = load_run_config(
        "run.yaml", ["dataset=day2.yaml", "name=day2", "train.init_from=runs/tiny-run"]
    )
    parent = warm_start.load_parent(config, Path("runs/day2"))
    assert parent is not None and parent.lineage["name"] == "tiny-run"
    data = prepare_dataset(
        run.resolve_dataset(config), Path("cache"), progress=False, base=parent.run.preprocessor
    )
    old_vocab = parent.run.preprocessor.state_dict()["vocabularies"]
    new_vocab = data.preprocessor.state_dict()["vocabularies"]
    for field, words in old_vocab.items():
        assert new_vocab[field][: len(words)] == words  # every known value at its index
    assert "unew1" in new_vocab["user"] and "unew1" not in old_vocab["user"]
    assert "inew3" in new_vocab["item"] and "inew3" not in old_vocab["item"]
    model = run.build_parts(config, data.schema).model
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    new_rows = warm_start.copy_weights(parent.run.model, model)
    added = sum(len(new_vocab[f]) - len(old_vocab[f]) for f in old_vocab)
    tables = sum(isinstance(m, warm_start.FeatureEmbedding) for m in model.modules())
    assert added == 2 and new_rows == tables * added  # SER: a row in each encoder's table
    parent_state = parent.run.model.state_dict()
    for name, module in model.named_modules():
        if not isinstance(module, run.warm_start.FeatureEmbedding):
            continue
        old = dict(parent.run.model.named_modules())[name]
        for (start, rows), (old_start, old_rows) in zip(
            warm_start._field_rows(module), warm_start._field_rows(old), strict=True
        ):
            # bit for bit: padding, OOV and every known value's row
            assert torch.equal(
                module.weight[start : start + old_rows],
                old.weight[old_start : old_start + old_rows],
            )
            fresh_rows = fresh[f"{name}.weight"][start + old_rows : start + rows]
            assert torch.equal(module.weight[start + old_rows : start + rows], fresh_rows)
    for key, value in model.state_dict().items():
        if not key.endswith("embedding.weight") and value.shape == parent_state[key].shape:
            assert torch.equal(value, parent_state[key]), key


def test_a_warm_start_trains_records_its_lineage_and_is_listed(two_days, capsys):
    assert _day2("--init-from", "runs/tiny-run", "train.epochs=1") == 0
    metrics = json.loads((two_days / "runs" / "day2" / "metrics.json").read_text())
    lineage = metrics["init_from"]
    assert lineage["name"] == "tiny-run" and lineage["new_rows"] == 4  # 2 values, 2 tables
    assert len(lineage["model_sha256"]) == len(lineage["config_sha256"]) == 64
    capsys.readouterr()
    assert main(["runs", "list", "--output-dir", "runs"]) == 0
    listed = capsys.readouterr().out
    assert "day2" in listed and "from tiny-run" in listed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["train.init_from=runs/nothing"], "is not a finished run"),
        (
            ["train.init_from=runs/tiny-run", "model.embedding_dim=4"],
            "model.embedding_dim is 4 here, 8 in the parent run",
        ),
        (
            ["train.init_from=runs/tiny-run", "name=tiny-run", "--overwrite"],
            "is the run being trained",
        ),
    ],
)
def test_what_cannot_warm_start_is_one_line(two_days, capsys, extra, message):
    args = [a for a in extra if a != "--overwrite"]
    cli = ["train", "--config", "run.yaml", "dataset=day2.yaml", "--no-progress", *args]
    if "--overwrite" in extra:
        cli.append("--overwrite")
    elif not any(a.startswith("name=") for a in args):
        cli.append("name=day2")
    assert main(cli) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert (two_days / "runs" / "tiny-run" / "model.pt").is_file()  # the parent untouched


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "{name: price, type: numeric, dtype: float}",
            "{name: price, type: categorical, dtype: str}",
            "field 'price': type is 'categorical' here, 'numeric' in the parent run",
        ),
        (
            "    - {name: price, type: numeric, dtype: float}\n",
            "",
            "field 'price' of the parent run's dataset is missing",
        ),
    ],
)
def test_a_changed_schema_names_the_field(two_days, capsys, old, new, message):
    text = (two_days / "day2.yaml").read_text()
    assert old in text
    (two_days / "day2.yaml").write_text(text.replace(old, new))
    assert _day2("--init-from", "runs/tiny-run") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_the_python_api_warm_starts_too(two_days):
    import tf4ctr

    parent = tf4ctr.load("runs/tiny-run") if hasattr(tf4ctr, "load") else None
    splits = {"train": "day2.csv", "valid": "valid.csv", "test": "test.csv"}
    run = tf4ctr.fit(
        "run.yaml",
        **splits,
        overrides=["train.epochs=1", "name=api-day2"],
        init_from="runs/tiny-run",
    )
    assert run.metrics["init_from"]["name"] == "tiny-run"
    assert parent is None or parent.run_dir.name == "tiny-run"


# -- train.init_optimizer --------------------------------------------------------------

#: one batch per epoch and no dropout: a warm start on the parent's own data is then the
#: parent's next epoch, up to the order of the sums inside the batch (each epoch shuffles it)
SAME_STEPS = ["train.batch_size=4096", "model.dropout=0.0", "train.lr=1.0e-2"]


def _final_model(run_dir: Path, best_epoch: int) -> dict[str, torch.Tensor]:
    """model.pt: the weights after ``best_epoch`` (checked, so the comparison means that)."""
    assert json.loads((run_dir / "metrics.json").read_text())["best_epoch"] == best_epoch
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)


def _before_batch_norm(state: dict, key: str) -> bool:
    """A Linear's bias that a BatchNorm follows: its exact gradient is zero (the norm removes
    any shift), so Adam's step on it is rounding noise over its own root mean square, and
    any other summation order moves it by up to lr. Left out of the comparison."""
    module, _, leaf = key.rpartition(".")
    parent, _, index = module.rpartition(".")
    return leaf == "bias" and index.isdigit() and f"{parent}.{int(index) + 1}.running_mean" in state


def _largest_difference(a: dict, b: dict) -> float:
    return max(
        float((a[k].float() - b[k].float()).abs().max())
        for k in a
        if a[k].numel() and not _before_batch_norm(a, k)
    )


@pytest.mark.parametrize("sparse", [False, True])
def test_init_optimizer_continues_like_the_parents_next_epoch(tiny_project, monkeypatch, sparse):
    monkeypatch.chdir(tiny_project)
    opts = [*SAME_STEPS, f"train.sparse_embedding={'true' if sparse else 'false'}", "--no-progress"]
    train = ["train", "--config", "run.yaml", *opts]
    assert main([*train, "name=p1", "train.epochs=1"]) == 0
    assert main([*train, "name=p2", "train.epochs=2"]) == 0  # = p1 resumed for one more epoch
    assert (tiny_project / "runs" / "p1" / "optimizer.pt").is_file()
    warm = [*train, "train.epochs=1", "train.init_from=runs/p1"]
    assert main([*warm, "name=carried", "train.init_optimizer=true"]) == 0
    assert main([*warm, "name=fresh"]) == 0
    lineage = json.loads((tiny_project / "runs/carried/metrics.json").read_text())["init_from"]
    assert lineage["optimizer"] is True and lineage["new_rows"] == 0
    second_epoch = _final_model(tiny_project / "runs" / "p2", 2)
    carried = _largest_difference(_final_model(tiny_project / "runs/carried", 1), second_epoch)
    fresh = _largest_difference(_final_model(tiny_project / "runs/fresh", 1), second_epoch)
    assert carried < 1e-5, carried  # the same step, summed in another order
    assert fresh > 1e-3, fresh  # a fresh Adam takes another step: the check can fail


def test_init_optimizer_moves_each_known_rows_moments_with_it(two_days):
    from tf4ctr import run
    from tf4ctr.config import load_run_config
    from tf4ctr.data import prepare_dataset
    from tf4ctr.run import warm_start
    from tf4ctr.train.trainer import make_optimizers

    overrides = ["dataset=day2.yaml", "name=day2", "train.init_from=runs/tiny-run"]
    config = load_run_config("run.yaml", [*overrides, "train.init_optimizer=true"])
    parent = warm_start.load_parent(config, Path("runs/day2"))
    data = prepare_dataset(
        run.resolve_dataset(config), Path("cache"), progress=False, base=parent.run.preprocessor
    )
    model = run.build_parts(config, data.schema).model
    warm_start.copy_weights(parent.run.model, model)
    optimizers = make_optimizers(model, config.train)
    saved = warm_start.parent_optimizer_states(parent)
    warm_start.carry_optimizers(saved, parent.run.model, model, optimizers)
    (adam,) = optimizers
    (theirs,) = saved
    names = [n for n, _ in model.named_parameters()]
    parents = dict(parent.run.model.named_modules())
    tables = 0
    for index, (name, param) in enumerate(model.named_parameters()):
        state, old = adam.state[param], theirs["state"][index]
        assert float(state["step"]) == float(old["step"]) > 0
        module = dict(model.named_modules()).get(name.rsplit(".", 1)[0])
        if not isinstance(module, warm_start.FeatureEmbedding) or not name.endswith(".weight"):
            assert torch.equal(state["exp_avg"], old["exp_avg"]), name
            continue
        tables += 1
        before = parents[name.rsplit(".", 1)[0]]
        for (start, rows), (old_start, old_rows) in zip(
            warm_start._field_rows(module), warm_start._field_rows(before), strict=True
        ):
            for key in ("exp_avg", "exp_avg_sq"):
                assert torch.equal(
                    state[key][start : start + old_rows], old[key][old_start : old_start + old_rows]
                )
                assert not state[key][start + old_rows : start + rows].any()  # new rows: zero
    assert tables == 2 and len(names) == len(theirs["state"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["train.init_optimizer=true"], "train.init_optimizer: true needs train.init_from"),
        (
            [
                "train.init_from=runs/tiny-run",
                "train.init_optimizer=true",
                "train.sparse_embedding=true",
            ],
            "train.sparse_embedding is true here, false in the parent run tiny-run",
        ),
    ],
)
def test_init_optimizer_errors_are_one_line(two_days, capsys, extra, message):
    assert _day2(*extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_init_optimizer_needs_a_parent_that_kept_its_optimizer(two_days, capsys):
    (two_days / "runs" / "tiny-run" / "optimizer.pt").unlink()  # as a run finished before
    assert _day2("train.init_from=runs/tiny-run", "train.init_optimizer=true") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optimizer.pt not found" in err, err
    assert _day2("train.init_from=runs/tiny-run") == 0  # the default needs no optimizer.pt


# -- train.init_numeric ------------------------------------------------------------------


def _price_scalers(run_dir: Path) -> dict:
    state = json.loads((run_dir / "preprocessor.json").read_text())
    return state["scalers"]["price"]


def test_numeric_scalers_are_kept_or_refreshed(tiny_project, monkeypatch):
    """keep (the default): the day-2 run scales price as the parent did; refresh: by day 2's
    own mean and standard deviation (a hand computation over day2.csv)."""
    import numpy as np

    monkeypatch.chdir(tiny_project)
    scaled = "{name: price, type: numeric, dtype: float, normalizer: StandardScaler}"
    text = (tiny_project / "dataset.yaml").read_text()
    (tiny_project / "dataset.yaml").write_text(
        text.replace("{name: price, type: numeric, dtype: float}", scaled)
    )
    assert main(["train", "--config", "run.yaml", "train.epochs=1", "--no-progress"]) == 0
    write_csv(tiny_project / "day2.csv", 3000, 9)
    lines = (tiny_project / "day2.csv").read_text().splitlines()
    # day 2's prices drift: ten times day 1's, plus 5
    rows = [line.rsplit(",", 1) for line in lines[1:]]
    prices = np.array([10 * float(p) + 5 for _, p in rows])
    body = [f"{head},{p:.4f}" for (head, _), p in zip(rows, prices, strict=True)]
    (tiny_project / "day2.csv").write_text("\n".join([lines[0], *body]) + "\n")
    prices = np.array([float(line.rsplit(",", 1)[1]) for line in body])
    (tiny_project / "day2.yaml").write_text(
        (tiny_project / "dataset.yaml").read_text().replace("train_data: train.csv",
                                                             "train_data: day2.csv")
    )  # fmt: skip
    parent = _price_scalers(tiny_project / "runs" / "tiny-run")
    assert _day2("--init-from", "runs/tiny-run", "train.epochs=1") == 0
    assert _price_scalers(tiny_project / "runs" / "day2") == parent
    day2 = json.loads((tiny_project / "runs" / "day2" / "metrics.json").read_text())
    assert "numeric" not in day2["init_from"]
    assert _day2("--init-from", "runs/tiny-run", "train.epochs=1", "train.init_numeric=refresh",
                 "name=day2r") == 0  # fmt: skip
    refreshed = _price_scalers(tiny_project / "runs" / "day2r")
    assert refreshed["shift"] == pytest.approx(prices.mean(), rel=1e-9)
    assert refreshed["scale"] == pytest.approx(prices.std(), rel=1e-9)  # population sd
    assert abs(refreshed["shift"] - parent["shift"]) > 4  # so the two rules differ here
    day2r = json.loads((tiny_project / "runs" / "day2r" / "metrics.json").read_text())
    assert day2r["init_from"]["numeric"] == "refresh"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["train.init_numeric=refresh"], "train.init_numeric: refresh needs train.init_from"),
        (
            ["train.init_from=runs/tiny-run", "train.init_numeric=refit"],
            "train.init_numeric: expected one of keep, refresh, got 'refit'",
        ),
    ],
)
def test_init_numeric_errors_are_one_line(two_days, capsys, extra, message):
    assert _day2(*extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
