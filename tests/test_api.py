"""The Python face: tf4ctr.fit / load / Run on in-memory tables, the same run as the CLI's."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.csv as pacsv
import pytest

import tf4ctr
from tf4ctr.errors import DataError, UserError


def test_fit_predict_evaluate_load_on_arrow_tables(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    tables = {s: pacsv.read_csv(tiny_project / f"{s}.csv") for s in ("train", "valid", "test")}
    run = tf4ctr.fit("run.yaml", **tables, overrides=["train.epochs=2", "name=api"])
    assert run.run_dir.name == "api" and (run.run_dir / "model.pt").is_file()
    # the same config trained from the files through the CLI gives the same run
    from tf4ctr.cli import main

    assert main(["train", "--config", "run.yaml", "train.epochs=2", "name=cli"]) == 0
    cli = json.loads((tiny_project / "runs" / "cli" / "metrics.json").read_text())
    for k in ("auc", "gauc", "logloss"):
        assert run.metrics["test"][k] == pytest.approx(cli["test"][k], abs=1e-12)

    unlabelled = tables["test"].drop_columns(["label"])
    probs = run.predict(unlabelled)
    assert probs.shape == (800,) and ((probs > 0) & (probs < 1)).all()
    out = tiny_project / "scores.csv"
    assert main(["predict", str(run.run_dir), "--input", "test.csv", "--output", str(out)]) == 0
    from_file = np.array(
        [float(r["probability"]) for r in csv.DictReader(out.read_text().splitlines())]
    )
    np.testing.assert_allclose(probs, from_file, rtol=0, atol=1e-15)
    assert run.evaluate(tables["test"])["auc"] == pytest.approx(run.metrics["test"]["auc"])
    np.testing.assert_array_equal(tf4ctr.load(run.run_dir).predict(unlabelled), probs)


def test_rows_are_checked_like_files(tiny_project, monkeypatch):
    monkeypatch.chdir(tiny_project)
    tables = {s: pacsv.read_csv(tiny_project / f"{s}.csv") for s in ("train", "valid", "test")}
    run = tf4ctr.fit("run.yaml", **tables, overrides=["train.epochs=1"])
    with pytest.raises(DataError, match="rows: missing column 'price'"):
        run.predict(tables["test"].drop_columns(["price"]))
    with pytest.raises(DataError, match="column 'price' holds inf"):
        run.predict({"user": ["u1"], "item": ["i1"], "ctx": ["1"], "price": [float("inf")]})
    with pytest.raises(DataError, match="label 'label' must be 0 or 1"):
        run.evaluate({"label": [3.0], "user": ["u1"], "item": ["i1"], "ctx": ["1"], "price": [1.0]})
    with pytest.raises(DataError, match="expected a pandas DataFrame, a pyarrow Table"):
        run.predict([1, 2, 3])
    with pytest.raises(UserError, match="train: expected a pandas DataFrame"):
        tf4ctr.fit("run.yaml", train=42, valid=tables["valid"], test=tables["test"])
    with pytest.raises(UserError, match="not a finished tf4ctr run"):
        tf4ctr.load(tiny_project / "nowhere")


def test_fit_paths_are_the_callers_and_the_cache_is_the_clis(tiny_project, monkeypatch):
    """A config in another folder: split paths passed to fit and the cache are relative to the
    working folder (as run.train's cache is), not to the config file."""
    work = tiny_project / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    table = pacsv.read_csv(tiny_project / "valid.csv")
    run = tf4ctr.fit(
        tiny_project / "run.yaml",
        train="../train.csv",
        valid=table,
        test="../test.csv",
        overrides=["train.epochs=1", "name=elsewhere"],
    )
    assert run.run_dir == work / "runs" / "elsewhere"
    assert list((work / "cache" / "in-memory").glob("valid-*.parquet"))  # run.yaml: cache_dir
    assert not (tiny_project / "cache").exists()
