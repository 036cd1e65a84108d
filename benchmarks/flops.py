"""Analytic training FLOPs per sample, from the shapes of a model's layers.

Counts the dense matrix products, which dominate these models: each Linear
layer costs 2·in·out FLOPs per sample forward and twice that backward (the
gradients with respect to its input and to its weight), so 6·in·out in all.
Element-wise work (activations, batch norm, dropout, embedding lookups) is
left out on purpose: it is the overhead we measure ourselves against, not
useful arithmetic. Shapes are read with forward hooks on one real batch, so
layers applied to several inputs (or not at all) are counted as they run.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from tf4ctr.nn import FeatureInput


def linear_shapes(model: nn.Module, schema, batch: int = 8) -> list[tuple[int, int, int]]:
    """(rows, in, out) of every Linear call in one training forward of ``batch`` samples,
    rows being samples × positions; a layer applied twice is listed twice."""
    shapes: list[tuple[int, int, int]] = []

    def hook(module: nn.Linear, inputs, output) -> None:
        rows = inputs[0].numel() // inputs[0].shape[-1]
        shapes.append((rows, module.in_features, module.out_features))

    # Training mode, because eval mode may take a fused path that bypasses the Linear
    # modules (MLP folds batch norm into them). The state dict and the RNG are restored,
    # so counting leaves the run it measures untouched.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    was_training = model.training
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.random.fork_rng(), torch.no_grad():
            cat = torch.stack([torch.randint(0, v, (batch,)) for v in schema.vocab_sizes], 1)
            num = torch.rand(batch, len(schema.numeric))
            model.train()
            model(FeatureInput(cat, num))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        model.load_state_dict(state)
    return shapes


def training_flops_per_sample(model: nn.Module, schema, batch: int = 8) -> float:
    macs = sum(
        rows * fan_in * fan_out for rows, fan_in, fan_out in linear_shapes(model, schema, batch)
    )
    return 6.0 * macs / batch


def matmul_only_seconds(
    model: nn.Module, schema, batch: int, *, seconds: float = 3.0, forward_only: bool = False
) -> float:
    """Seconds one training step of ``batch`` samples would take if it did its matrix products
    and nothing else: per Linear call, the forward product and the two of its backward (the
    gradients of its input and of its weight), at the step's own shapes and in the memory
    layouts autograd uses (weights read transposed). The reference a step's overhead is
    measured against: embeddings, batch norm, activations, dropout, the loss and Adam are
    what the step adds on top. Median of rounds lasting ``seconds`` in all. With
    ``forward_only``, the forward products alone (the bound of scoring)."""
    per_sample = linear_shapes(model, schema, batch=8)
    operands = []
    with torch.random.fork_rng():
        for rows, fan_in, fan_out in per_sample:
            rows = rows * batch // 8
            operands.append(
                (
                    torch.randn(rows, fan_in),
                    torch.randn(fan_out, fan_in),
                    torch.randn(rows, fan_out),
                )
            )

    def step() -> None:
        for x, w, g in operands:
            torch.mm(x, w.t())  # forward
            if forward_only:
                continue
            torch.mm(g, w)  # gradient of the input
            torch.mm(g.t(), x)  # gradient of the weight

    step()  # warm-up: first-touch of the operands and the BLAS's buffers
    rounds: list[float] = []
    budget = time.perf_counter() + seconds
    while time.perf_counter() < budget or len(rounds) < 3:
        start = time.perf_counter()
        step()
        rounds.append(time.perf_counter() - start)
    return statistics.median(rounds)
