"""The sparse-embedding step: RowSparseAdam against torch's SparseAdam, and the one coalesced
gradient of a sparse table against the lookups it replaced, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tf4ctr.nn import FeatureEmbedding, FeatureInput
from tf4ctr.nn.embedding import unique_rows
from tf4ctr.train.sparse_adam import RowSparseAdam


def _sparse_grad(rows: int, dim: int, n: int, gen: torch.Generator, *, coalesced: bool):
    index = torch.randint(0, rows, (n,), generator=gen)
    values = torch.randn(n, dim, generator=gen)
    grad = torch.sparse_coo_tensor(index.unsqueeze(0), values, (rows, dim))
    return grad.coalesce() if coalesced else grad


@pytest.mark.parametrize("coalesced", [True, False])
@pytest.mark.parametrize("maximize", [False, True])
def test_row_sparse_adam_is_sparse_adam_bit_for_bit(coalesced, maximize):
    gen = torch.Generator().manual_seed(3)
    start = torch.randn(50, 6, generator=gen)
    ours, theirs = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    opts = [
        RowSparseAdam([ours], lr=3e-3, maximize=maximize),
        torch.optim.SparseAdam([theirs], lr=3e-3, maximize=maximize),
    ]
    for step in range(6):
        grad = _sparse_grad(50, 6, 30, gen, coalesced=coalesced)
        for p, opt in zip((ours, theirs), opts, strict=True):
            p.grad = grad.clone()
            opt.step()
        if step == 3:  # a learning rate change reaches both alike
            for opt in opts:
                opt.param_groups[0]["lr"] = 1e-4
    assert torch.equal(ours, theirs)
    a, b = (opt.state_dict()["state"][0] for opt in opts)
    assert a["step"] == b["step"] == 6
    assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_row_sparse_adam_loads_a_sparse_adam_state():
    p = nn.Parameter(torch.randn(10, 3))
    old = torch.optim.SparseAdam([p], lr=1e-2)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), torch.ones(2, 3), (10, 3))
    old.step()
    new = RowSparseAdam([p], lr=1e-2)
    new.load_state_dict(old.state_dict())
    assert new.state[p]["step"] == 1 and torch.equal(
        new.state[p]["exp_avg"], old.state[p]["exp_avg"]
    )


def test_row_sparse_adam_refuses_a_dense_gradient():
    p = nn.Parameter(torch.randn(4, 2))
    p.grad = torch.ones(4, 2)
    with pytest.raises(RuntimeError, match="sparse gradients"):
        RowSparseAdam([p]).step()


def _old_sparse_lookup(table: FeatureEmbedding, x: FeatureInput, l2: float):
    """What a sparse table computed before: a sparse lookup of the distinct rows, gathered
    per sample, and a second sparse lookup for the L2 term, the gradients coalesced."""
    index = x.categorical + table.column_offsets
    rows, inverse = unique_rows(index)
    emb = nn.functional.embedding(rows, table.weight, sparse=True)[inverse]
    penalty = nn.functional.embedding(rows, table.weight, sparse=True).pow(2).sum()
    return emb, l2 * penalty


def test_sparse_table_gradient_is_the_old_lookups_bit_for_bit():
    torch.manual_seed(0)
    table = FeatureEmbedding([30, 7, 100], 0, 5)
    table.sparse = True
    table.train()
    gen = torch.Generator().manual_seed(1)
    x = FeatureInput(
        torch.stack([torch.randint(0, v, (64,), generator=gen) for v in (30, 7, 100)], 1),
        torch.zeros(64, 0),
    )
    upstream = torch.randn(64, 3, 5, generator=gen)
    emb, penalty = _old_sparse_lookup(table, x, 0.3)
    ((emb * upstream).sum() + penalty).backward()
    old_grad = table.weight.grad.coalesce()
    table.weight.grad = None

    new = table(x)
    assert torch.equal(new, emb.detach())
    ((new * upstream).sum() + 0.3 * table.squared_norm()).backward()
    grad = table.weight.grad
    assert grad.is_sparse and grad.is_coalesced()
    assert torch.equal(grad._indices(), old_grad._indices())
    assert torch.equal(grad._values(), old_grad._values())


def test_two_tables_of_one_batch_share_its_distinct_rows(monkeypatch):
    import tf4ctr.nn.embedding as embedding

    calls = []
    real = embedding.unique_rows
    monkeypatch.setattr(embedding, "unique_rows", lambda i: calls.append(1) or real(i))
    a, b = FeatureEmbedding([9, 9], 0, 4), FeatureEmbedding([9, 9], 0, 2)
    other = FeatureEmbedding([5, 13], 0, 4)  # other offsets: its own rows
    for t in (a, b, other):
        t.sparse = True
    x = FeatureInput(torch.randint(0, 5, (16, 2)), torch.zeros(16, 0))
    a(x), b(x)
    assert len(calls) == 1
    other(x)
    assert len(calls) == 2
    x.categorical.add_(1)  # the same tensor changed in place: found again
    a(x)
    assert len(calls) == 3
    rows = torch.unique(x.categorical + a.column_offsets)
    assert torch.equal(a._touched, a.weight.detach()[rows])


def test_a_table_looked_up_twice_in_a_step_sums_both_gradients():
    torch.manual_seed(0)
    table = FeatureEmbedding([6, 4], 0, 3)
    table.sparse = True
    x1 = FeatureInput(torch.tensor([[0, 1], [2, 1]]), torch.zeros(2, 0))
    x2 = FeatureInput(torch.tensor([[0, 3], [5, 0]]), torch.zeros(2, 0))
    (table(x1).sum() + 2 * table(x2).sum()).backward()
    grad = table.weight.grad.coalesce().to_dense()
    expected = torch.zeros(10, 3)
    for x, w in ((x1, 1.0), (x2, 2.0)):
        for i in (x.categorical + table.column_offsets).flatten().tolist():
            expected[i] += w
    assert torch.equal(grad, expected)


def test_a_sparse_trained_model_still_deep_copies():
    import copy

    table = FeatureEmbedding([6, 4], 0, 3)
    table.sparse = True
    table(FeatureInput(torch.tensor([[0, 1]]), torch.zeros(1, 0))).sum().backward()
    copy.deepcopy(table)
