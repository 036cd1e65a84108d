"""A pure interaction for "learns beyond logistic regression" tests that take seconds.

The label is the XOR of two fields' parities: every value of either field is
clicked half the time, so no model additive in the features (logistic regression
on one-hot features, say) can beat chance, while any model of pairwise
interactions can reach an AUC near 1. Two noise fields ride along.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from tf4ctr.framework import Objective
from tf4ctr.nn import FeatureInput
from tf4ctr.train import auc


@dataclass
class XorSchema:
    vocab_sizes: list
    numeric: tuple = ()


@dataclass
class XorData:
    schema: XorSchema
    train: tuple[FeatureInput, torch.Tensor]
    test: tuple[FeatureInput, torch.Tensor]
    #: test AUC of a one-hot logistic regression, the bar to clear
    lr_auc: float


def _split(rng: np.random.Generator, n: int, vocab: list[int]) -> tuple[FeatureInput, torch.Tensor]:
    cat = np.stack([rng.integers(2, v, n) for v in vocab], axis=1)  # 0 and 1: padding, OOV
    label = (cat[:, 0] % 2) ^ (cat[:, 1] % 2)
    x = FeatureInput(torch.from_numpy(cat), torch.zeros(n, 0))
    return x, torch.from_numpy(label).float()


@functools.cache
def xor_data(n_train: int = 4096, n_test: int = 2048, seed: int = 0) -> XorData:
    vocab = [10, 10, 7, 14]
    rng = np.random.default_rng(seed)
    train, test = _split(rng, n_train, vocab), _split(rng, n_test, vocab)
    enc = OneHotEncoder(handle_unknown="ignore").fit(train[0].categorical.numpy())
    lr = LogisticRegression(max_iter=2000).fit(
        enc.transform(train[0].categorical.numpy()), train[1].numpy()
    )
    score = lr.decision_function(enc.transform(test[0].categorical.numpy()))
    return XorData(XorSchema(vocab), train, test, auc(test[1].numpy(), score))


def xor_auc(
    model: torch.nn.Module, data: XorData, *, epochs: int = 15, lr: float = 1e-2, batch: int = 256
) -> float:
    """Train on the XOR data with log loss (plus any aux loss of the model); test AUC."""
    objective = Objective()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    (x, y), n = data.train, len(data.train[1])
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            xb = FeatureInput(x.categorical[idx], x.numeric[idx])
            opt.zero_grad()
            objective(model, model(xb), y[idx]).total.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        logit = model(data.test[0]).logit
    return auc(data.test[1].numpy(), logit.numpy())
