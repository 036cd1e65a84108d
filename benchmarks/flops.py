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

import torch
from torch import nn

from tf4ctr.nn import FeatureInput


def training_flops_per_sample(model: nn.Module, schema, batch: int = 8) -> float:
    macs = 0

    def hook(module: nn.Linear, inputs, output) -> None:
        nonlocal macs
        rows = inputs[0].numel() // inputs[0].shape[-1]  # samples × positions
        macs += rows * module.in_features * module.out_features

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
    return 6.0 * macs / batch
