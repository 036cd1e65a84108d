"""Difficulty classes (Figures 2 and 10) and the logit-gradient probe (Figure 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tf4ctr.config import TrainConfig
from tf4ctr.framework import Objective, TwinFocusLoss
from tf4ctr.models import build_model
from tf4ctr.train.analysis import difficulty_counts
from tf4ctr.train.trainer import Trainer


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_difficulty_counts_by_hand():
    # p:        0.9   0.5   0.1   0.2   0.5   0.95  0.3   0.6
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 1])
    probs = [0.9, 0.5, 0.1, 0.2, 0.5, 0.95, 0.3, 0.6]
    counts = difficulty_counts(labels, np.array([_logit(p) for p in probs]))
    # positives: p_t = 0.9 well, 0.5 poor, 0.1 mis, 0.3 poor (boundary), 0.6 well (boundary)
    assert counts["positive"] == {"well": 2, "poor": 2, "mis": 1}
    # negatives: p_t = 0.8 well, 0.5 poor, 0.05 mis
    assert counts["negative"] == {"well": 1, "poor": 1, "mis": 1}


def test_difficulty_thresholds_are_checked():
    with pytest.raises(ValueError):
        difficulty_counts(np.array([1]), np.array([0.0]), thresholds=(0.6, 0.3))


class _Batch:
    def __init__(self, cat, label):
        self.categorical, self.numeric, self.label, self.group = (
            cat,
            torch.empty(len(label), 0),
            label,
            None,
        )


def test_logit_gradient_probe_records_one_norm_per_first_epoch_batch():
    class Schema:
        vocab_sizes = [5, 7]
        numeric = ()

    torch.manual_seed(0)
    model = build_model("tf4ctr", Schema(), embedding_dim=4, simple_hidden_units=[4],
                        complex_hidden_units=[4])  # fmt: skip
    batches = [
        _Batch(torch.randint(1, 5, (16, 2)), (torch.rand(16) > 0.5).float()) for _ in range(3)
    ]
    cfg = TrainConfig(record_logit_grads=True, progress=False)
    trainer = Trainer(model, Objective(TwinFocusLoss()), cfg)
    first = trainer.train_epoch(batches, epoch=1)
    assert len(first["logit_grad_norms"]["z_s"]) == 3 and len(first["logit_grad_norms"]["z_c"]) == 3
    assert all(v > 0 for v in first["logit_grad_norms"]["z_s"])
    assert "logit_grad_norms" not in trainer.train_epoch(batches, epoch=2)
    plain = Trainer(model, Objective(TwinFocusLoss()), TrainConfig(progress=False))
    assert "logit_grad_norms" not in plain.train_epoch(batches, epoch=1)
