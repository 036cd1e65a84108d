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
