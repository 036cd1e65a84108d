"""MovieLens-100K (``tf4ctr data download ml_100k``).

The unit tests run on a tiny SYNTHETIC atomic-file set written into tmp_path (made-up
users, movies and ratings in RecBole's layout and in GroupLens's); they never touch
the network. The real-data tests at the end read a folder fetched beforehand and skip
when there is none: ``TF4CTR_ML100K_DIR`` (the ``ml-100k`` folder, or the folder above
it), else ``~/.cache/tf4ctr/ml-100k``. Set ``TF4CTR_ML100K_FETCH=1`` to have the test
session fetch it there first (network or the package index needed).
"""

from __future__ import annotations

import csv
import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tf4ctr.cli import main
from tf4ctr.data import ml100k
from tf4ctr.data.datasets import dataset_config
from tf4ctr.data.ml100k import (
    Pins,
    fetch_ml100k,
    ml1m_age_group,
    random_split,
    rating_label,
    temporal_split,
)
from tf4ctr.errors import DataError

# --------------------------------------------------------------- SYNTHETIC atomic files

_GENRES = ml100k._GENRES
# user -> age, gender, occupation, zip (SYNTHETIC)
_USERS = {"1": ("17", "M", "student", "11111"), "2": ("25", "F", "writer", "22222"),
          "3": ("49", "M", "other", "33333"), "4": ("61", "F", "none", "44444")}  # fmt: skip
# item -> genres (SYNTHETIC)
_ITEMS = {"10": ("Comedy",), "20": ("Action", "Sci-Fi", "Thriller"), "30": ("Children's", "Drama")}


def _ratings(n: int = 40) -> list[tuple[str, str, str, str]]:
    rng = np.random.default_rng(0)
    users, items = list(_USERS), list(_ITEMS)
    return [
        (
            users[i % 4],
            items[i % 3],
            str(int(rng.integers(1, 6))),
            str(880_000_000 + int(rng.integers(0, 15))),
        )
        for i in range(n)
    ]


def _atomic_files(ratings) -> dict[str, bytes]:
    inter = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + "".join(
        "\t".join(r) + "\n" for r in ratings
    )
    user = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n" + "".join(
        f"{u}\t{a}\t{g}\t{o}\t{z}\n" for u, (a, g, o, z) in _USERS.items()
    )
    item = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n" + "".join(
        f"{i}\tMovie {i}\t1995\t{' '.join(g)}\n" for i, g in _ITEMS.items()
    )
    return {
        "ml-100k.inter": inter.encode(),
        "ml-100k.user": user.encode(),
        "ml-100k.item": item.encode(),
    }


def _write_wheel(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("recbole/__init__.py", "")
        for name, data in files.items():
            zf.writestr(f"recbole/dataset_example/ml-100k/{name}", data)
    return path


def _write_grouplens(path: Path, ratings) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ml-100k/u.data", "".join("\t".join(r) + "\n" for r in ratings))
        zf.writestr(
            "ml-100k/u.user",
            "".join(f"{u}|{a}|{g}|{o}|{z}\n" for u, (a, g, o, z) in _USERS.items()),
        )
        zf.writestr(
            "ml-100k/u.item",
            "".join(
                f"{i}|Movie {i}|01-Jan-1995||http://x|"
                + "|".join("1" if g in gs else "0" for g in _GENRES)
                + "\n"
                for i, gs in _ITEMS.items()
            ),
        )
    return path


@pytest.fixture
def synthetic_wheel(tmp_path: Path) -> tuple[Path, Pins]:
    files = _atomic_files(_ratings())
    wheel = _write_wheel(tmp_path / "recbole-synthetic.whl", files)
    pins = Pins(
        wheel=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        atomic={n: hashlib.sha256(d).hexdigest() for n, d in files.items()},
        outputs={},
    )
    return wheel, pins


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------- rules


def test_age_groups_are_ml1m_s() -> None:
    ages = {0: 1, 17: 1, 18: 18, 24: 18, 25: 25, 34: 25, 35: 35, 44: 35, 45: 45, 49: 45,
            50: 50, 55: 50, 56: 56, 73: 56}  # fmt: skip
    assert {a: ml1m_age_group(a) for a in ages} == ages


def test_label_rule_rating_above_three_is_a_click() -> None:
    assert [rating_label(r) for r in (1, 2, 3, 4, 5)] == [0, 0, 0, 1, 1]
    for bad in (0, 6, 3.5):
        with pytest.raises(DataError, match="expected 1 to 5 stars"):
            rating_label(bad)


def test_random_split_is_8_1_1_disjoint_and_seeded() -> None:
    parts = random_split(1000)
    assert [len(p) for p in parts] == [800, 100, 100]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    assert all((np.diff(p) > 0).all() for p in parts)  # each part in the table's order
    assert all((a == b).all() for a, b in zip(parts, random_split(1000), strict=True))
    assert not (random_split(1000, seed=1)[2] == parts[2]).all()


def test_temporal_split_sorts_by_time_and_keeps_ties_in_order() -> None:
    ts = [5, 1, 3, 3, 1, 9, 3, 0, 7, 3]
    train, valid, test = temporal_split(ts)
    assert train.tolist() == [7, 1, 4, 2, 3, 6, 9, 0]  # ties (1, 3) in file order
    assert valid.tolist() == [8] and test.tolist() == [5]


# --------------------------------------------------------------- fetch (SYNTHETIC)


def test_fetch_builds_table_and_splits_then_is_idempotent(tmp_path, synthetic_wheel) -> None:
    wheel, pins = synthetic_wheel
    target = tmp_path / "out" / "ml-100k"
    first = fetch_ml100k(target, url=wheel.as_uri(), pins=pins, progress=False)
    assert not first.already_present
    table = _read(target / "ml_100k.csv")
    assert list(table[0]) == list(ml100k.TABLE_COLUMNS)
    assert len(table) == 40
    assert {r["age"] for r in table} == {"1", "25", "45", "56"}
    assert {r["genres"] for r in table} == {"Comedy", "Action|Sci-Fi|Thriller", "Children's|Drama"}
    ratings = _ratings()
    assert [int(r["label"]) for r in table] == [int(int(x[2]) > 3) for x in ratings]
    assert first.rows == {s: {"train": 32, "valid": 4, "test": 4} for s in ("random", "temporal")}
    temporal = [
        int(r["timestamp"])
        for p in ("train", "valid", "test")
        for r in _read(target / "temporal" / f"{p}.csv")
    ]
    assert temporal == sorted(temporal)
    assert "no redistribution" in (target / "PROVENANCE.md").read_text()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ml-100k"]  # no staging left
    before = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    second = fetch_ml100k(target, url=wheel.as_uri(), pins=pins, progress=False)
    assert second.already_present and second.rows == first.rows
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == before


def test_grouplens_archive_gives_the_same_table(tmp_path, synthetic_wheel) -> None:
    wheel, pins = synthetic_wheel
    fetch_ml100k(tmp_path / "a", url=wheel.as_uri(), pins=pins, progress=False)
    archive = _write_grouplens(tmp_path / "ml-100k.zip", _ratings())
    fetch_ml100k(tmp_path / "b", url=archive.as_uri(), pins=pins, progress=False)
    for name in ("ml_100k.csv", "temporal/test.csv", "random/train.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_offline_grouplens_falls_back_to_the_wheel(tmp_path, synthetic_wheel, monkeypatch) -> None:
    wheel, pins = synthetic_wheel
    monkeypatch.setattr(ml100k, "GROUPLENS_URL", (tmp_path / "absent.zip").as_uri())
    result = fetch_ml100k(
        tmp_path / "ml-100k", pins=pins, pip_download=lambda _into: wheel, progress=False
    )
    assert "recbole==1.2.1" in result.source
    assert result.notes and "GroupLens archive not used" in result.notes[0]


def test_corrupted_wheel_is_one_line_and_leaves_nothing(tmp_path, synthetic_wheel) -> None:
    wheel, pins = synthetic_wheel
    files = _atomic_files(_ratings())
    files["ml-100k.inter"] = files["ml-100k.inter"].replace(b"\t5\t", b"\t4\t", 1)
    bad = _write_wheel(tmp_path / "bad.whl", files)
    parent = tmp_path / "out"
    for candidate, lax in ((bad, Pins(wheel=pins.wheel, atomic=pins.atomic, outputs={})),
                           (bad, Pins(wheel=None, atomic=pins.atomic, outputs={}))):  # fmt: skip
        with pytest.raises(DataError, match="does not match the pinned") as err:
            fetch_ml100k(parent / "ml-100k", url=candidate.as_uri(), pins=lax, progress=False)
        assert "\n" not in str(err.value)
        assert not parent.exists() or list(parent.iterdir()) == []


def test_cli_corrupted_download_exits_2_with_one_line(tmp_path, capsys) -> None:
    bad = _write_wheel(tmp_path / "recbole-1.2.1-py3-none-any.whl", _atomic_files(_ratings()))
    code = main(
        [
            "data",
            "download",
            "ml_100k",
            "--dir",
            str(tmp_path / "d"),
            "--url",
            bad.as_uri(),
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "sha256" in err and "does not match the pinned" in err
    assert not (tmp_path / "d" / "ml-100k").exists()
    assert [p.name for p in (tmp_path / "d").iterdir()] == []


def test_damaged_finished_folder_is_reported(tmp_path, synthetic_wheel) -> None:
    wheel, pins = synthetic_wheel
    target = tmp_path / "ml-100k"
    fetch_ml100k(target, url=wheel.as_uri(), pins=pins, progress=False)
    name = "temporal/train.csv"
    good = Pins(
        wheel=pins.wheel, atomic=pins.atomic, outputs={name: ml100k.sha256_file(target / name)}
    )
    with open(target / name, "a", encoding="utf-8") as handle:
        handle.write("1,10,M,1,student,11111,Comedy,880000000,1\n")
    with pytest.raises(DataError, match=r"temporal/train.csv: sha256 .* does not match the pinned"):
        fetch_ml100k(target, url=wheel.as_uri(), pins=good, progress=False)


def test_registry_config_reads_the_synthetic_splits(tmp_path, synthetic_wheel) -> None:
    from tf4ctr.data.store import prepare_dataset

    wheel, pins = synthetic_wheel
    fetch_ml100k(tmp_path / "ml-100k", url=wheel.as_uri(), pins=pins, progress=False)
    cfg = dataset_config("ml_100k", tmp_path / "ml-100k" / "temporal", min_categr_count=1)
    data = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    assert (len(data.train), len(data.valid), len(data.test)) == (32, 4, 4)
    names = [f.name for f in data.schema.categorical]
    assert "timestamp" not in names and data.schema.widths[names.index("genres")] == 6


# --------------------------------------------------------------- real data (skip when absent)


def _real_dir() -> Path | None:
    given = os.environ.get("TF4CTR_ML100K_DIR")
    folder = Path(given).expanduser() if given else Path("~/.cache/tf4ctr/ml-100k").expanduser()
    if (folder / "ml-100k" / "PROVENANCE.md").is_file():
        folder = folder / "ml-100k"
    if not (folder / "PROVENANCE.md").is_file() and os.environ.get("TF4CTR_ML100K_FETCH") == "1":
        fetch_ml100k(folder, progress=False)
    return folder if (folder / "PROVENANCE.md").is_file() else None


@pytest.fixture(scope="module")
def real_ml100k() -> Path:
    folder = _real_dir()
    if folder is None:
        pytest.skip("MovieLens-100K not fetched (tf4ctr data download ml_100k; TF4CTR_ML100K_DIR)")
    return folder


def test_real_files_match_the_pins(real_ml100k: Path) -> None:
    result = fetch_ml100k(real_ml100k, progress=False)  # checks every file's sha256
    assert result.already_present
    assert result.rows == {
        s: {"train": 80_000, "valid": 10_000, "test": 10_000} for s in ("random", "temporal")
    }
    assert abs(result.clicks["temporal"]["train"] - 0.5509) < 1e-4


def test_real_reader_and_sequence_field(real_ml100k: Path, tmp_path: Path) -> None:
    from tf4ctr.data.store import prepare_dataset

    data = prepare_dataset(
        dataset_config("ml_100k", real_ml100k / "temporal"), tmp_path, progress=False
    )
    assert (len(data.train), len(data.valid), len(data.test)) == (80_000, 10_000, 10_000)
    names = [f.name for f in data.schema.categorical]
    assert names == ["user_id", "item_id", "gender", "age", "occupation", "zip_code", "genres"]
    start = sum(data.schema.widths[: names.index("genres")])
    genres = np.asarray(data.train.categorical[:, start : start + 6])
    tokens = (genres > 0).sum(axis=1)  # 0 pads
    assert tokens.min() >= 1 and tokens.max() == 6
    by_field = {f.name: f for f in data.schema.categorical}
    assert by_field["genres"].vocab_size >= 19  # 19 genres (+ pad/OOV)
    assert by_field["age"].vocab_size <= 7 + 2


def test_real_tf4ctr_beats_logistic_regression_on_the_temporal_split(
    real_ml100k: Path, tmp_path: Path
) -> None:
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import OneHotEncoder

    from tf4ctr import run
    from tf4ctr.config import load_run_config

    assert sklearn
    folder = real_ml100k / "temporal"
    splits = {p: _read(folder / f"{p}.csv") for p in ("train", "valid", "test")}
    cols = ["user_id", "item_id", "gender", "age", "occupation", "zip_code"]

    def matrix(rows):
        return [[r[c] for c in cols] for r in rows]

    enc = OneHotEncoder(handle_unknown="ignore").fit(matrix(splits["train"]))
    y = {p: np.array([int(r["label"]) for r in rows]) for p, rows in splits.items()}
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(
        enc.transform(matrix(splits["train"])), y["train"]
    )
    lr_auc = {
        p: roc_auc_score(y[p], lr.predict_proba(enc.transform(matrix(splits[p])))[:, 1])
        for p in ("valid", "test")
    }

    repo = Path(__file__).resolve().parents[2]
    text = (repo / "configs" / "ml_100k" / "dataset_temporal.yaml").read_text()
    (tmp_path / "dataset_temporal.yaml").write_text(
        text.replace("~/.cache/tf4ctr/ml-100k", str(real_ml100k))
    )
    (tmp_path / "run.yaml").write_text((repo / "configs" / "ml_100k" / "tf4ctr.yaml").read_text())
    config = load_run_config(
        tmp_path / "run.yaml",
        [
            "train.epochs=4",
            "train.batch_size=2000",
            f"output_dir={tmp_path / 'runs'}",
            f"cache_dir={tmp_path / 'cache'}",
        ],  # fmt: skip
    )
    metrics = run.train(config, progress=False).metrics
    for split in ("valid", "test"):
        assert metrics[split]["auc"] > lr_auc[split], (split, metrics[split]["auc"], lr_auc[split])
