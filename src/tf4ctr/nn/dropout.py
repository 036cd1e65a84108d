"""Dropout with a cheap mask.

On CPU, ``nn.Dropout`` draws one random float per element with torch's
sequential generator: for a 10,000 × 400 activation that is ~55 ms, more than
the layer's matrix product, and it made dropout the single largest cost of a
TF4CTR training step (37 % of it, profiled with torch.profiler). Here (the trainer's
default, ``train.fast_dropout``; see :class:`FastDropout`) the mask comes from the same torch
generator, but in bulk — ``random_()`` on int64 words, each cut into four 16-bit lanes whose low
15 bits are compared with a threshold (torch never sets the top bit of an
int64 draw, so the top lane has only 15 random bits; using 15 from every lane
keeps all four alike). Several times cheaper than ``bernoulli_``, the drop
rate exact to 1/32768, and ``torch.manual_seed`` governs it like any torch
op (on an accelerator, the device's own generator).

An earlier version drew the mask from numpy's SFC64 generator (seeded from
torch); TF4CTR on Frappe_x1 scored ~0.0013 lower test AUC with it in 2 seeds
out of 2 (``benchmarks/dropout_equivalence.py`` keeps those runs as
``numpy-sfc64``), which is why the fast mask stayed opt-in until the torch-sourced one was
shown to train alike: 30 seeds a side, stated in advance
(configs/experiments/frappe_x1_fast_dropout_extended.yaml, docs/results/frappe_x1/).

Inside :class:`~tf4ctr.nn.mlp.MLP` the ReLU before a dropout runs in place and, with the fast
mask, fused with it (:func:`relu_then_dropout_`): same numbers, fewer passes over memory.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tf4ctr.nn.building import current_layer_options
from tf4ctr.nn.step_masks import current_step_masks

_LEVELS = 1 << 15  # 15 random bits per draw


def _kept_ones(
    shape: torch.Size,
    p: float,
    *,
    generator: torch.Generator | None = None,
    like: torch.Tensor | None = None,
) -> tuple[torch.Tensor, float]:
    """The fast mask as float32 ones (kept) and zeros (dropped), and the scale of the kept
    elements; both :func:`dropout_factors` and the fused ReLU + mask draw it here, so they drop
    alike. ``like``: the tensor being dropped (the mask is drawn on its device).

    Ones and zeros to multiply by, not booleans to ``masked_fill_`` with: torch's CPU
    ``masked_fill_`` branches per element, which a random mask defeats — for a 10,000 × 400
    activation at two threads 5.7 ms against 1.8 ms to write the ones and multiply by them
    (benchmarks/mask_apply.py); the same values (x·1 = x, x·0 = 0 for finite x).
    """
    n = math.prod(shape)
    # on an accelerator, from its own generator: no mask crosses from the host each step
    device = like.device if like is not None and generator is None else torch.device("cpu")
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(generator=generator)
    # the words are this call's own, so cut them in place: uniform on [0, 2^15) per lane
    draws = words.view(torch.int16)[:n].bitwise_and_(_LEVELS - 1).view(shape)
    drop_levels = round(p * _LEVELS)
    kept = torch.empty(shape, dtype=torch.float32, device=words.device)
    torch.ge(draws, drop_levels, out=kept)
    return kept, _LEVELS / (_LEVELS - drop_levels)


def dropout_factors(
    shape: torch.Size,
    p: float,
    *,
    generator: torch.Generator | None = None,
    like: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-element factors of inverted dropout: 0 with probability ≈ p, else 1/(1 − p).

    p is rounded to a multiple of 2⁻¹⁵ and the scale uses the rounded value,
    so the expectation of the factors is exactly 1. ``like``: the tensor being dropped (the
    mask is drawn on its device).
    """
    kept, scale = _kept_ones(shape, p, generator=generator, like=like)
    return kept.mul_(scale)


class _Scale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(factors)
        return x * factors

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (factors,) = ctx.saved_tensors
        return grad * factors, None


class _ReLUThenMask(torch.autograd.Function):
    """ReLU and the fast dropout mask in place on a tensor nobody else holds.

    Unfused, the two cost an output tensor each, a float copy of the mask and the factors
    kept alive for backward. Here the input becomes the output, and backward needs only that
    output: it is > 0 exactly where ReLU passed the value and the mask kept it, so the
    gradient is ``grad · scale`` there and 0 elsewhere — the same numbers the unfused pair
    gives (tests/test_dropout.py compares them bit for bit).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        kept, scale = _kept_ones(x.shape, p, like=x)
        x.relu_().mul_(kept).mul_(scale)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (out,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, out, 0).mul_(ctx.scale), None


def _torch_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """``nn.functional.dropout`` in training; its noise drawn ahead on a second thread when the
    trainer prefetches a step's masks (tf4ctr.nn.step_masks: the same noise, the same product)."""
    masks = current_step_masks()
    noise = masks.take(x, p) if masks is not None else None
    if noise is None:
        return nn.functional.dropout(x, p, training=True)
    return x * noise


def relu_then_dropout_(x: torch.Tensor, dropout: FastDropout) -> torch.Tensor:
    """``dropout(relu(x))``, overwriting ``x``: for a tensor that only the caller holds and
    that no backward needs (the output of a Linear or of a batch norm in training mode).
    Same values and gradients as the two modules one after the other."""
    if not dropout.training or dropout.p == 0.0:
        return torch.relu_(x)
    if not dropout.fast or FastDropout.use_torch_dropout:
        # ReLU's output is saved for its backward, so torch's dropout must stay out of place
        return _torch_dropout(torch.relu_(x), dropout.p)
    return _ReLUThenMask.apply(x, dropout.p)


class FastDropout(nn.Module):
    """Dropout whose mask can come from the cheap generator (inverted dropout).

    ``fast`` is taken at construction from the layer options (tf4ctr.nn.building): off for a
    model built by hand, so it is exactly ``nn.functional.dropout`` and a model trained by a
    loop of one's own drops as torch does; the run engine builds with ``train.fast_dropout``
    (true by default), and the mask then comes from :func:`dropout_factors` (see the module
    docstring). Identity in eval mode.
    """

    #: class-wide switch back to torch's dropout (benchmarks/dropout_equivalence.py)
    use_torch_dropout = False

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.fast = current_layer_options().fast_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if not self.fast or FastDropout.use_torch_dropout:
            return _torch_dropout(x, self.p)
        factors = dropout_factors(x.shape, self.p, like=x).to(dtype=x.dtype)  # on x's device
        return _Scale.apply(x, factors)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def replace_torch_dropout(module: nn.Module) -> nn.Module:
    """Swap every ``nn.Dropout`` inside ``module`` (e.g. in a torch Transformer layer) for
    :class:`FastDropout` with the same p, so ``train.fast_dropout`` reaches it too."""
    for name, child in module.named_children():
        if isinstance(child, nn.Dropout):
            setattr(module, name, FastDropout(child.p))
        else:
            replace_torch_dropout(child)
    return module
