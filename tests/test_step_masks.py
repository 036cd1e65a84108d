"""StepMasks: torch's dropout masks drawn a step ahead on a second thread give the same run."""

from __future__ import annotations

import torch

from tests.models.conftest import TINY
from tf4ctr.config import TrainConfig
from tf4ctr.framework import Objective, TwinFocusLoss
from tf4ctr.models import build_model
from tf4ctr.nn import LayerOptions
from tf4ctr.nn.step_masks import StepMasks
from tf4ctr.train.trainer import Trainer


def _batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in TINY.vocab_sizes], 1)
        label = (torch.rand(n, generator=g) > 0.5).float()
        out.append(
            type(
                "B",
                (),
                {
                    "categorical": cat,
                    "numeric": torch.rand(n, 1, generator=g),
                    "label": label,
                    "group": None,
                },
            )  # fmt: skip
        )
    return out


def _train(
    prefetch: bool, model_name: str = "tf4ctr", draw_extra: bool = False, fast: bool = False
):
    """Two epochs (a short last batch in each); returns the losses, the weights, the masks
    object and the generator state after."""
    enabled = StepMasks.enabled
    StepMasks.enabled = prefetch
    try:
        torch.manual_seed(0)
        kw = (
            {"simple_hidden_units": [16, 16], "complex_hidden_units": [16, 16, 16]}
            if model_name == "tf4ctr"
            else {"hidden_units": [16, 16]}
        )
        options = LayerOptions(fast_dropout=fast)
        model = build_model(
            model_name,
            TINY,
            embedding_dim=4,
            dropout=0.3,
            batch_norm=True,
            layer_options=options,
            **kw,
        )
        if draw_extra:  # a model that draws from the default generator besides its masks
            forward = model.forward
            model.forward = lambda x: (torch.rand(1), forward(x))[1]
        twin = TwinFocusLoss(0.25, 0.7, 1.0) if model_name == "tf4ctr" else None
        trainer = Trainer(
            model, Objective(twin, embedding_l2=0.1), TrainConfig(progress=False, fast_dropout=fast)
        )
        batches = _batches([40, 40, 40, 13])
        losses = [trainer.train_epoch(batches, epoch=e)["train_total_loss"] for e in (1, 2)]
        return losses, model.state_dict(), trainer._step_masks, torch.get_rng_state()
    finally:
        StepMasks.enabled = enabled


def _same(a, b):
    la, sa, _, ra = a
    lb, sb, _, rb = b
    assert la == lb
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(ra, rb)


def test_prefetched_masks_give_the_same_run_bit_for_bit():
    """TF4CTR (five dropouts a step, batch norm, TF Loss) and a DNN: losses, weights and the
    generator's state after two epochs equal those of drawing the masks in line."""
    for name in ("tf4ctr", "dnn"):
        inline = _train(prefetch=False, model_name=name)
        ahead = _train(prefetch=True, model_name=name)
        _same(inline, ahead)
        masks = ahead[2]
        assert not masks.disabled and masks.plan is not None and len(masks.plan) >= 2


def test_the_fast_mask_is_drawn_in_line():
    """The fast mask's words come from torch's random_, cheap next to bernoulli_: drawing them
    ahead gained nothing measurable (benchmarks/results/fast_mask_prefetch_ab.txt), so a
    fast-mask step draws in line; the first step sees no torch mask and prefetching stays off."""
    inline = _train(prefetch=False, fast=True)
    ahead = _train(prefetch=True, fast=True)
    _same(inline, ahead)
    assert ahead[2].disabled and ahead[2].plan is None
    # and the fast run is not the torch-mask run (the switch reached the dropouts)
    assert ahead[0] != _train(prefetch=True, fast=False)[0]


def test_a_model_that_draws_more_than_its_masks_keeps_drawing_in_line():
    inline = _train(prefetch=False, draw_extra=True)
    ahead = _train(prefetch=True, draw_extra=True)
    _same(inline, ahead)
    assert ahead[2].disabled and ahead[2].plan is None


def test_declined_by_the_environment(monkeypatch):
    monkeypatch.setenv("TF4CTR_NO_MASK_PREFETCH", "1")
    masks = StepMasks()
    masks.begin(10)
    x = torch.ones(10, 4)
    assert masks.take(x, 0.5) is None and masks.disabled
    masks.end()
    assert masks.plan is None


def test_a_changed_step_falls_back_to_masks_drawn_in_line():
    """A dropout met in another shape than in the first step: warn, stop prefetching, go on."""
    masks = StepMasks()
    x = torch.ones(8, 4)
    masks.begin(8)
    assert masks.take(x, 0.5) is None  # recorded, drawn in line by the caller
    torch.nn.functional.dropout(x, 0.5, training=True)
    masks.end()
    assert masks.plan == [((4,), 0.5, torch.float32)]
    masks.begin(8)
    assert masks.take(torch.ones(8, 6), 0.5) is None
    assert masks.disabled
    masks.end()
