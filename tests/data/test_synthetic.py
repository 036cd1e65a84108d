"""SYNTHETIC data: determinism, the LR-versus-oracle gap it is built for, and cached writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

import tf4ctr.data.synthetic as synthetic
from tf4ctr.data.store import prepare_dataset
from tf4ctr.data.synthetic import SyntheticSpec, generate_synthetic, write_synthetic_dataset
from tf4ctr.errors import ConfigError

SMALL = SyntheticSpec(n_train=2_000, n_valid=500, n_test=500)


def test_deterministic_for_a_seed() -> None:
    a, b = generate_synthetic(SMALL), generate_synthetic(SMALL)
    c = generate_synthetic(SyntheticSpec(n_train=2_000, n_valid=500, n_test=500, seed=1))
    assert all(a[s].equals(b[s]) for s in a)
    assert not a["train"].equals(c["train"])
    assert a["train"].column_names == ["label", "user", "f1", "f2", "f3", "f4", "f5", "f6", "f7"]
    assert [a[s].num_rows for s in ("train", "valid", "test")] == [2_000, 500, 500]


def test_lr_clearly_below_oracle() -> None:
    spec = SyntheticSpec(n_train=30_000, n_valid=1_000, n_test=10_000)
    tables = generate_synthetic(spec, with_truth=True)
    names = synthetic.synthetic_field_names(spec)

    def features(split: str) -> np.ndarray:
        return np.stack([tables[split][n].to_numpy(zero_copy_only=False) for n in names], axis=1)

    y_train = tables["train"]["label"].to_numpy()
    y_test = tables["test"]["label"].to_numpy()
    assert 0.2 <= y_train.mean() <= 0.4
    enc = OneHotEncoder(handle_unknown="ignore").fit(features("train"))
    lr = LogisticRegression(max_iter=1000).fit(enc.transform(features("train")), y_train)
    auc_lr = roc_auc_score(y_test, lr.predict_proba(enc.transform(features("test")))[:, 1])
    oracle = tables["test"]["oracle_prob"].to_numpy()
    auc_oracle = roc_auc_score(y_test, oracle)
    hard = tables["test"]["is_hard"].to_numpy(zero_copy_only=False)
    assert 0.62 < auc_lr < auc_oracle - 0.08, (auc_lr, auc_oracle)
    # Hard rows are hard even for the oracle.
    assert (
        roc_auc_score(y_test[hard], oracle[hard])
        < roc_auc_score(y_test[~hard], oracle[~hard]) - 0.1
    )
    assert 0.1 < hard.mean() < 0.2


def test_spec_checks() -> None:
    with pytest.raises(ConfigError, match="n_users"):
        SyntheticSpec(n_users=100)
    with pytest.raises(ConfigError, match="hard_fraction"):
        SyntheticSpec(hard_fraction=1.5)
    assert SyntheticSpec.from_dict(SMALL.to_dict()) == SMALL


def test_write_then_reuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "synth"
    cfg = write_synthetic_dataset(out, SMALL)
    assert cfg.name == "synthetic_demo" and cfg.group_col == "user"
    assert cfg.train_data == out / "synthetic_train.csv" and cfg.source == out / "synthetic.yaml"
    assert sorted(p.name for p in out.iterdir()) == [
        "synthetic.yaml",
        "synthetic_spec.json",
        "synthetic_test.csv",
        "synthetic_train.csv",
        "synthetic_valid.csv",
    ]
    assert "SYNTHETIC" in (out / "synthetic.yaml").read_text()
    prepared = prepare_dataset(cfg, tmp_path / "cache", progress=False)
    assert len(prepared.train) == 2_000 and prepared.schema.vocab_sizes[0] <= 502

    def no_generate(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated")

    with monkeypatch.context() as m:
        m.setattr(synthetic, "generate_synthetic", no_generate)
        assert write_synthetic_dataset(out, SMALL) == cfg
    other = SyntheticSpec(n_train=1_000, n_valid=500, n_test=500)
    write_synthetic_dataset(out, other)
    assert len(prepare_dataset(cfg, tmp_path / "cache", progress=False).train) == 1_000
