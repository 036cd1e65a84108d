"""The SYNTHETIC Criteo-shaped generator: layout, determinism, frequencies, and that it prepares."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tf4ctr.cli import main
from tf4ctr.data.formats import read_criteo_tsv
from tf4ctr.data.schema import load_dataset_config
from tf4ctr.data.store import prepare_dataset
from tf4ctr.data.synth_criteo import (
    CRITEO_CARDINALITIES,
    CriteoSynthSpec,
    _zipf_ranks,
    write_synthetic_criteo,
)
from tf4ctr.errors import ConfigError


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    directory = tmp_path_factory.mktemp("synth")
    write_synthetic_criteo(directory, CriteoSynthSpec(rows=20_000, block_rows=3000), progress=False)
    return directory


def test_kaggle_layout_and_split_sizes(synth):
    table = read_criteo_tsv(synth / "train.txt")  # the Kaggle reader accepts it as is
    assert table.num_rows == 16_000
    assert read_criteo_tsv(synth / "valid.txt").num_rows == 2_000
    first = (synth / "train.txt").read_text().split("\n", 1)[0].split("\t")
    assert len(first) == 40 and first[0] in ("0", "1")
    cats = [c for c in first[14:] if c]
    assert all(len(c) == 8 and int(c, 16) >= 0 for c in cats)
    ctr = float(np.mean(table["label"].to_numpy()))
    assert 0.15 < ctr < 0.35  # Criteo's is 0.256


def test_values_stay_within_criteo_cardinalities_and_are_skewed(synth):
    table = read_criteo_tsv(synth / "train.txt")
    for j, card in enumerate(CRITEO_CARDINALITIES):
        col = table[f"C{j + 1}"]
        distinct = len(pa.compute.unique(col.drop_null()))
        assert distinct <= card
    counts = pa.compute.value_counts(table["C3"].drop_null()).field("counts").to_numpy()
    assert counts.max() > 50 * np.median(counts)  # a head and a long tail
    assert table["C22"].null_count / table.num_rows == pytest.approx(0.76, abs=0.03)


def test_zipf_ranks_follow_the_power_law():
    rng = np.random.default_rng(0)
    ranks = _zipf_ranks(rng, 400_000, 1000, 1.1)
    assert ranks.min() == 0 and ranks.max() <= 999
    freq = np.bincount(ranks, minlength=1000)

    # P(r) = (r + 1)^(1 - s) - (r + 2)^(1 - s), up to normalisation (a power law binned by rank)
    def p(r):
        return (r + 1) ** -0.1 - (r + 2) ** -0.1

    assert freq[0] / freq[9] == pytest.approx(p(0) / p(9), rel=0.1)
    assert freq[1] / freq[99] == pytest.approx(p(1) / p(99), rel=0.2)


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        write_synthetic_criteo(d, CriteoSynthSpec(rows=500, seed=5), progress=False)
    assert (a / "train.txt").read_bytes() == (b / "train.txt").read_bytes()
    write_synthetic_criteo(tmp_path / "c", CriteoSynthSpec(rows=500, seed=6), progress=False)
    assert (a / "train.txt").read_bytes() != (tmp_path / "c" / "train.txt").read_bytes()


def test_dataset_yaml_prepares_with_the_criteo_preprocessing(synth, tmp_path):
    config = load_dataset_config(synth / "dataset.yaml")
    assert config.min_categr_count == 10 and config.data_format == "criteo_tsv"
    data = prepare_dataset(config, tmp_path / "cache", progress=False, block_bytes=1 << 20)
    assert len(data.train) == 16_000 and data.train.categorical.shape[1] == 39
    assert data.valid.categorical.max() < max(data.schema.vocab_sizes)


def test_bad_spec_is_a_config_error():
    with pytest.raises(ConfigError, match="--zipf"):
        CriteoSynthSpec(zipf_s=1.0)


def test_cli_synth_writes_the_files(tmp_path, capsys):
    assert (
        main(["data", "synth", "criteo", "--rows", "300", "--dir", str(tmp_path), "--no-progress"])
        == 0
    )
    assert "SYNTHETIC" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dataset.yaml",
        "test.txt",
        "train.txt",
        "valid.txt",
    ]
    assert (
        main(["data", "synth", "criteo", "--rows", "300", "--dir", str(tmp_path), "--split", "x"])
        == 2
    )
