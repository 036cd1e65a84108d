"""Dataset registry, dataset_config, and the `tf4ctr data` commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from tf4ctr.data.data_cli import add_data_commands
from tf4ctr.data.datasets import DATASETS, dataset_config, get_dataset
from tf4ctr.data.formats import read_criteo_tsv
from tf4ctr.data.readers import read_table
from tf4ctr.data.store import prepare_dataset
from tf4ctr.errors import ConfigError

PAPER = {"frappe_x1", "movielenslatest_x1", "ml_1m", "kkbox_x1", "criteo_x4"}


def test_registry_facts_are_consistent() -> None:
    assert set(DATASETS) == PAPER | {"avazu_x1", "criteo_x1", "ml_100k"}
    for name, info in DATASETS.items():
        assert info.name == name
        assert set(info.splits) == {"train", "valid", "test"}
        assert all(n > 0 for n in info.splits.values())
        assert len(set(info.field_names)) == len(info.field_names)
        assert info.in_paper == (name in PAPER)
        if info.group_col is not None:
            assert info.group_col in info.field_names
        assert info.min_categr_count == (10 if name.startswith("criteo") else 2)
        assert info.sources and all(u.startswith("https://") for u in info.sources.values())
        for digest in info.checksums.values():
            assert digest is None or re.fullmatch(r"[0-9a-f]{32}", digest)


def test_registry_matches_paper_table() -> None:
    assert DATASETS["frappe_x1"].splits == {"train": 202_027, "valid": 57_722, "test": 28_860}
    assert DATASETS["ml_1m"].total_rows == 1_000_209
    assert DATASETS["criteo_x4"].total_rows == 45_840_617
    assert DATASETS["criteo_x1"].total_rows == 45_840_617
    groups = {n: i.group_col for n, i in DATASETS.items()}
    assert groups == {
        "frappe_x1": "user",
        "movielenslatest_x1": "user_id",
        "ml_1m": "UserID",
        "ml_100k": "user_id",
        "kkbox_x1": "msno",
        "criteo_x4": None,
        "avazu_x1": None,
        "criteo_x1": None,
    }


def test_get_dataset_aliases_and_unknown() -> None:
    assert get_dataset("Frappe_x1").name == "frappe_x1"
    assert get_dataset("ML-1M").name == "ml_1m"
    assert get_dataset("ml-tag").name == "movielenslatest_x1"
    assert get_dataset("MovielensLatest_x1").name == "movielenslatest_x1"
    with pytest.raises(ConfigError, match=r"unknown dataset 'nope' \(expected one of: frappe_x1"):
        get_dataset("nope")


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"kkbox_x1"}))
def test_dataset_config_builds(name: str, tmp_path: Path) -> None:
    cfg = dataset_config(name, tmp_path)
    info = DATASETS[name]
    assert cfg.name == name
    assert cfg.feature_names == info.field_names
    assert cfg.group_col == info.group_col
    assert cfg.min_categr_count == info.min_categr_count
    assert cfg.train_data == tmp_path / "train.csv"
    assert cfg.test_data == tmp_path / "test.csv"


def test_dataset_config_options(tmp_path: Path) -> None:
    default = dataset_config("criteo_x4", tmp_path)
    assert {f.preprocess for f in default.feature_cols if f.name.startswith("I")} == {
        "criteo_log_bucket_fuxictr"
    }
    assert default.label_col.name == "Label"
    paper = dataset_config("criteo_x4", tmp_path, criteo_bucketer="criteo_log_bucket")
    assert {f.preprocess for f in paper.feature_cols if f.name.startswith("I")} == {
        "criteo_log_bucket"
    }
    assert dataset_config("frappe_x1", tmp_path, min_categr_count=1).min_categr_count == 1
    with pytest.raises(ConfigError, match="key 'criteo_bucketer': expected one of"):
        dataset_config("criteo_x4", tmp_path, criteo_bucketer="log")


def _kkbox_files(directory: Path) -> None:
    header = (
        "label,msno,song_id,source_system_tab,source_screen_name,source_type,city,gender,"
        "registered_via,language,genre_ids,artist_name,isrc,bd"
    )
    rows = [
        "1,u1,s1,my library,Local playlist more,local-library,1,female,7,52,465|958,Jay Chou,TWK231410303,24",
        "0,u2,s2,discover,Online playlist more,online-playlist,13,,9,3,465,Eason Chan|Jolin,USUM71500312,0",
        "1,u1,s3,my library,,local-library,1,female,7,52,,Jay Chou,,61",
        "0,u3,s1,search,Search,song,5,male,4,-1,958|1259|465|2022,Jay Chou,TWK231410303,1051",
    ]
    for split in ("train", "valid", "test"):
        (directory / f"{split}.csv").write_text("\n".join([header, *rows]) + "\n")


def test_kkbox_sequences_and_its_preprocessors(tmp_path: Path) -> None:
    _kkbox_files(tmp_path)
    cfg = dataset_config("kkbox_x1", tmp_path, min_categr_count=1)
    kinds = {f.name: f.type for f in cfg.feature_cols}
    assert kinds["genre_ids"] == kinds["artist_name"] == "sequence"
    data = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    schema = data.schema
    names = [f.name for f in schema.categorical]
    assert schema.widths[names.index("genre_ids")] == 3
    start = sum(schema.widths[: names.index("genre_ids")])
    genre = data.train.categorical[:, start : start + 3]
    # vocabulary by frequency: 465 (3x), 958 (2x), then 1259 and 2022 (1x, byte order)
    assert genre.tolist() == [[2, 3, 0], [2, 0, 0], [0, 0, 0], [3, 4, 2]]
    prep = data.preprocessor.state_dict()["vocabularies"]
    assert prep["isrc"] == ["TW", "US"] and prep["bd"] == ["3", "7"]


def test_criteo_sample_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    # Raw sample -> formats reader -> BARS-like split files -> registry config -> cache.
    sample = shared_data / "criteo_samples" / "deepctr_criteo_sample.txt"
    if not sample.is_file():
        pytest.skip(f"{sample} not found")
    table = read_criteo_tsv(sample)
    data = tmp_path / "criteo"
    data.mkdir()
    for split, (start, n) in {"train": (0, 150), "valid": (150, 25), "test": (175, 25)}.items():
        pacsv.write_csv(table.slice(start, n), data / f"{split}.csv")
    cfg = dataset_config("criteo_x4", data, min_categr_count=2)
    assert cfg.label_col.name == "label"  # picked up from the file's header
    ds = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    assert len(ds.train) == 150 and len(ds.test) == 25
    assert len(ds.schema.categorical) == 39


def test_frappe_config_reads_real_splits(shared_data: Path) -> None:
    folder = shared_data / "Frappe_x1"
    if not (folder / "valid.csv").is_file():
        pytest.skip(f"{folder} not found")
    cfg = dataset_config("frappe_x1", folder)
    for split in ("valid", "test"):
        table = read_table(cfg.paths[split], cfg)
        assert table.num_rows == DATASETS["frappe_x1"].splits[split]
        assert "user" in table.column_names


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tf4ctr")
    sub = parser.add_subparsers(dest="command", required=True)
    add_data_commands(sub)
    return parser


def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["data", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in DATASETS:
        assert name in out
    assert "202,027" in out and "has sequence fields" in out


def test_cli_info(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["data", "info", "Frappe_x1"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "gAUC group:       user" in out
    assert "ba7306e6c4fc19dd2cd84f2f0596d158" in out
    assert "https://huggingface.co/datasets/reczoo/Frappe_x1" in out
    args = _parser().parse_args(["data", "info", "criteo_x4"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "4a53bb7cbc0e4ee25f9d6a73ed824b1a" in out and "criteo_log_bucket_fuxictr" in out
    assert "none (AUC only)" in out
    args = _parser().parse_args(["data", "info", "ml-1m"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "checksum unknown" in out and "rating > 3" in out


def test_cli_info_unknown_name() -> None:
    args = _parser().parse_args(["data", "info", "imagenet"])
    with pytest.raises(ConfigError, match="expected one of: frappe_x1, movielenslatest_x1"):
        args.func(args)


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["data", "info", "--help"])
    assert exc.value.code == 0
    assert "checksums" in capsys.readouterr().out


def test_relative_data_dir_is_not_joined_twice(tmp_path, monkeypatch):
    from tf4ctr.data.datasets import dataset_config

    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path)
    config = dataset_config("frappe_x1", "d")
    assert config.paths["train"].resolve() == (tmp_path / "d" / "train.csv").resolve()


def test_kkbox_like_data_trains_end_to_end(tmp_path: Path, capsys) -> None:
    import yaml

    from tf4ctr.cli import main

    _kkbox_files(tmp_path)
    run = {
        "name": "kkbox-tiny",
        "dataset": {**dataset_config("kkbox_x1", tmp_path, min_categr_count=1).to_dict(),
                    "train_data": str(tmp_path / "train.csv"),
                    "valid_data": str(tmp_path / "valid.csv"),
                    "test_data": str(tmp_path / "test.csv")},
        "model": {"name": "tf4ctr", "embedding_dim": 4, "simple_hidden_units": [8],
                  "complex_hidden_units": [8]},
        "loss": {"name": "tf"},
        "train": {"epochs": 1, "batch_size": 2, "progress": False},
        "output_dir": str(tmp_path / "runs"),
        "cache_dir": str(tmp_path / "cache"),
    }  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 0
    assert "best epoch 1" in capsys.readouterr().out


def test_avazu_samples_prepare_with_the_registry_config(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "avazu_samples"
    if not src.is_dir():
        pytest.skip(f"{src} not found")
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.csv").write_bytes(
            (src / f"torchrechub_avazu_{split}_sample.csv").read_bytes()
        )
    data = prepare_dataset(
        dataset_config("avazu_x1", tmp_path, min_categr_count=1), tmp_path / "c", progress=False
    )
    assert (len(data.train), len(data.valid), len(data.test)) == (70, 10, 20)
    assert data.train.categorical.shape[1] == 22
