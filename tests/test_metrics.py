"""AUC, gAUC and log loss against scikit-learn, with ties."""

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from tf4ctr.train.metrics import (
    auc,
    evaluate_predictions,
    group_auc,
    log_loss,
    log_loss_from_logits,
)


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.integers(0, 2, n)
    score = rng.integers(0, 30, n) / 7.0  # many ties
    assert abs(auc(y, score) - roc_auc_score(y, score)) < 1e-9
    cont = rng.normal(size=n) + y
    assert abs(auc(y, cont) - roc_auc_score(y, cont)) < 1e-9


def sklearn_gauc(y, s, g):
    values, weights = [], []
    for k in np.unique(g):
        m = g == k
        if 0 < y[m].sum() < m.sum():
            values.append(roc_auc_score(y[m], s[m]))
            weights.append(m.sum())
    return np.average(values, weights=weights)


@pytest.mark.parametrize("seed", range(5))
def test_gauc_matches_sklearn_per_group(seed):
    rng = np.random.default_rng(100 + seed)
    n = 4000
    g = rng.integers(0, 80, n) * 3 - 50  # arbitrary, negative, non-contiguous ids
    y = rng.integers(0, 2, n)
    y[g == g[0]] = 1  # a single-class group, which must be skipped
    s = rng.integers(0, 12, n) / 5.0
    assert abs(group_auc(y, s, g) - sklearn_gauc(y, s, g)) < 1e-9


def test_gauc_by_hand():
    # group a: pos 0.9, neg 0.1 -> 1.0 ; group b: pos 0.2, negs 0.2 and 0.5 -> (0.5 + 0)/2 = 0.25
    # group c: only positives -> skipped. weights 2 and 3.
    y = np.array([1, 0, 1, 0, 0, 1, 1])
    s = np.array([0.9, 0.1, 0.2, 0.2, 0.5, 0.3, 0.4])
    g = np.array(["a", "a", "b", "b", "b", "c", "c"])
    assert group_auc(y, s, g) == pytest.approx((2 * 1.0 + 3 * 0.25) / 5, abs=1e-12)


def test_single_class_gives_nan():
    assert math.isnan(auc(np.ones(5), np.arange(5)))
    assert math.isnan(group_auc(np.ones(5), np.arange(5), np.zeros(5)))


def test_log_loss_matches_sklearn():
    rng = np.random.default_rng(3)
    z = rng.normal(scale=3, size=1000)
    y = rng.integers(0, 2, 1000)
    p = 1 / (1 + np.exp(-z))
    assert log_loss_from_logits(y, z) == pytest.approx(sk_log_loss(y, p), rel=1e-9)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-9)


def test_evaluate_predictions_keys():
    y = np.array([0, 1, 0, 1])
    z = np.array([-1.0, 2.0, 0.5, 0.1])
    assert set(evaluate_predictions(y, z)) == {"auc", "logloss"}
    assert set(evaluate_predictions(y, z, np.array([1, 1, 2, 2]))) == {"auc", "logloss", "gauc"}


def _auc_by_rankdata(label, score):
    """The former implementation: scipy's average ranks, summed over the positives."""
    from scipy.stats import rankdata

    n_pos = label.sum()
    n_neg = label.size - n_pos
    ranks = rankdata(score)
    return float((ranks[label > 0.5].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _gauc_by_lexsort(label, score, group):
    """The former implementation: a lexsort by (group, score), otherwise as group_auc."""
    _, gid = np.unique(group, return_inverse=True)
    order = np.lexsort((score, gid))
    g, s, y = gid[order], score[order], label[order]
    n = y.size
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_run = new_group | np.r_[False, s[1:] != s[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    pos = np.arange(n) - group_start + 1.0
    run_id = np.cumsum(new_run) - 1
    rank = (np.bincount(run_id, weights=pos) / np.bincount(run_id))[run_id]
    size = np.bincount(g).astype(np.float64)
    n_pos = np.bincount(g, weights=y)
    valid = (n_pos > 0) & (size - n_pos > 0)
    per_group = (
        np.bincount(g, weights=rank * y)[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2
    ) / (n_pos[valid] * (size - n_pos)[valid])
    return float(np.average(per_group, weights=size[valid]))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [None, 40])  # continuous scores, or heavy ties
def test_auc_and_gauc_equal_the_former_sorts_bit_for_bit(seed, levels):
    """The argsort-based ranks give the very floats the rankdata / lexsort versions gave,
    so no stored metric moves (ties included, where sort order differs)."""
    rng = np.random.default_rng(seed)
    n = 5000
    score = rng.standard_normal(n).astype(np.float32).astype(np.float64)
    if levels:
        score = np.round(score * levels / 8) / levels
    label = (rng.random(n) < 1 / (1 + np.exp(-score))).astype(np.float64)
    group = rng.integers(0, 300, n) * 7 - 50
    assert auc(label, score) == _auc_by_rankdata(label, score)
    assert group_auc(label, score, group) == _gauc_by_lexsort(label, score, group)


def test_auc_of_a_nan_score_is_nan():
    assert np.isnan(auc(np.array([0.0, 1.0, 1.0]), np.array([0.1, np.nan, 0.3])))
