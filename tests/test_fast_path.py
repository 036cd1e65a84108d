"""Guards for the fast path (not timed): a refactor that loses it fails here.

- every model embeds a batch with one lookup per embedding table, never a loop over fields;
- no model uses torch's per-element-bernoulli dropout (FastDropout instead);
- the loader gathers a batch with one index_select per array, not per row.
"""

from __future__ import annotations

import pytest
import torch

from tests.models.conftest import TINY
from tf4ctr.data import BatchLoader, EncodedSplit
from tf4ctr.models import available_models, build_model
from tf4ctr.nn import FeatureEmbedding, FeatureInput

SMALL = {"embedding_dim": 4}


def _batch(n=16):
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in TINY.vocab_sizes], 1)
    return FeatureInput(cat, torch.rand(n, len(TINY.numeric), generator=g))


@pytest.mark.parametrize("name", available_models())
def test_one_lookup_per_embedding_table(name, monkeypatch):
    model = build_model(name, TINY, **SMALL)
    model.eval()  # training-only extras (CL4CTR's views) reuse the same lookup anyway
    tables = sum(isinstance(m, FeatureEmbedding) for m in model.modules())
    calls = []
    real = torch.nn.functional.embedding

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "embedding", counting)
    with torch.no_grad():
        model(_batch())
    assert 1 <= len(calls) <= tables, f"{name}: {len(calls)} lookups for {tables} tables"


@pytest.mark.parametrize("name", available_models())
def test_no_torch_dropout(name):
    model = build_model(name, TINY, **SMALL)
    slow = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)]
    assert not slow, f"{name} uses nn.Dropout at {slow}; use tf4ctr.nn.dropout.FastDropout"


def test_loader_gathers_whole_batches(monkeypatch):
    import numpy as np

    n = 1000
    split = EncodedSplit(
        categorical=np.zeros((n, 3), dtype=np.int32),
        numeric=np.zeros((n, 1), dtype=np.float32),
        label=np.zeros(n, dtype=np.float32),
        group=np.zeros(n, dtype=np.int64),
    )
    loader = BatchLoader(split, 100, shuffle=True, seed=1)
    calls = []
    real = torch.Tensor.index_select

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "index_select", counting)
    batches = list(loader)
    assert len(batches) == 10
    assert (
        len(calls) == 10 * 4
    )  # one gather per array (categorical, numeric, label, group) per batch
