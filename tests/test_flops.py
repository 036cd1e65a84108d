"""benchmarks/flops.py: the analytic FLOP count the speed table divides by."""

import sys
from pathlib import Path

import torch

from tests.models.conftest import TINY
from tf4ctr.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from flops import linear_shapes, matmul_only_seconds, training_flops_per_sample  # noqa: E402


def test_dnn_flops_by_hand_and_model_untouched():
    d, h1, h2 = 8, 16, 12
    fields = len(TINY.vocab_sizes) + len(TINY.numeric)
    macs = fields * d * h1 + h1 * h2 + h2 * 1
    model = build_model("dnn", TINY, embedding_dim=d, hidden_units=[h1, h2])
    model.eval()  # eval mode folds batch norm and bypasses the Linear modules; still counted
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    assert training_flops_per_sample(model, TINY) == 6.0 * macs
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_linear_shapes_by_hand_and_matmul_reference_runs():
    d, h1, h2 = 8, 16, 12
    fields = len(TINY.vocab_sizes) + len(TINY.numeric)
    model = build_model("dnn", TINY, embedding_dim=d, hidden_units=[h1, h2])
    assert linear_shapes(model, TINY, batch=4) == [(4, fields * d, h1), (4, h1, h2), (4, h2, 1)]
    rng = torch.get_rng_state()
    # one step's three products per layer, timed; at these sizes well under a second
    assert 0.0 < matmul_only_seconds(model, TINY, batch=64, seconds=0.0) < 1.0
    assert torch.equal(rng, torch.get_rng_state())  # random operands, drawn on a forked RNG
