"""The first layer folded into the embedding table at evaluation (tf4ctr.nn.fold)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.models.conftest import TINY
from tf4ctr.config import TrainConfig
from tf4ctr.data.loader import Batch
from tf4ctr.framework import Objective
from tf4ctr.models import available_models, build_model
from tf4ctr.nn import MLP, FeatureEmbedding, FeatureInput, LayerOptions, fold
from tf4ctr.train.trainer import Trainer


def _inputs(n: int = 50, seed: int = 0) -> FeatureInput:
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack([torch.randint(0, v, (n,), generator=g) for v in TINY.vocab_sizes], 1)
    return FeatureInput(cat, torch.rand(n, len(TINY.numeric), generator=g))


def _mlps(model: torch.nn.Module) -> list[MLP]:
    return [m for m in model.modules() if isinstance(m, MLP)]


def test_folded_first_layer_is_the_hand_computed_layer():
    """Two categorical fields and one numeric, d = 2, H = 3: T[v] = W_f·E[v] row by row, and
    the layer is b + Σ_f T[x_f] + value·W_num·n, checked against explicit sums."""
    torch.manual_seed(0)
    emb = FeatureEmbedding([3, 2], 1, 2, init_std=1.0)
    weight, bias = torch.randn(3, 6), torch.randn(3)
    x = FeatureInput(torch.tensor([[2, 1], [0, 0]]), torch.tensor([[0.5], [-2.0]]))
    table, numeric = fold.fold_tables(emb, weight)
    assert table.shape == (5, 3) and numeric.shape == (1, 3)
    e, n = emb.weight.detach(), emb.numeric_weight.detach()
    for v in range(5):
        f = 0 if v < 3 else 1
        want = [sum(weight[h, 2 * f + k] * e[v, k] for k in range(2)) for h in range(3)]
        assert torch.allclose(table[v], torch.stack(want), atol=1e-6)
    want_num = [sum(weight[h, 4 + k] * n[0, k] for k in range(2)) for h in range(3)]
    assert torch.allclose(numeric[0], torch.stack(want_num), atol=1e-6)
    out = fold.folded_first_layer(emb, (table, numeric), bias, x)
    for r, (a, b, value) in enumerate([(2, 1, 0.5), (0, 0, -2.0)]):
        want = bias + table[a] + table[3 + b] + value * numeric[0]
        assert torch.allclose(out[r], want, atol=1e-6)
    # and it is the layer itself, on the looked-up embeddings
    assert torch.allclose(out, emb(x).flatten(1) @ weight.t() + bias, atol=1e-5)


def test_mlp_folds_only_when_evaluating_with_the_switch_on():
    emb = FeatureEmbedding(TINY.vocab_sizes, 1, 4)
    mlp = MLP(6 * 4, [8], batch_norm=True, output_dim=1)
    assert mlp.fold_embedding is False  # a model built by hand evaluates layer by layer
    mlp.eval()
    assert not mlp.folds(emb)
    mlp.fold_embedding = True
    assert mlp.folds(emb)
    mlp.train()
    assert not mlp.folds(emb)
    mlp.eval()
    # a sequence field pools several rows into one vector: no single row to fold
    seq = FeatureEmbedding(TINY.vocab_sizes, 1, 4, widths=[1, 3, 1, 1, 1])
    assert not mlp.folds(seq)
    # an MLP that does not read this table's width
    assert not MLP(7, [8]).eval().folds(emb)


def test_tables_past_the_size_limit_do_not_fold(monkeypatch):
    emb = FeatureEmbedding(TINY.vocab_sizes, 1, 4)
    mlp = MLP(6 * 4, [8], output_dim=1).eval()
    mlp.fold_embedding = True
    rows = sum(TINY.vocab_sizes)
    monkeypatch.setattr(fold, "MAX_FOLDED_ELEMENTS", rows * 8)
    assert mlp.folds(emb)
    monkeypatch.setattr(fold, "MAX_FOLDED_ELEMENTS", rows * 8 - 1)
    assert not mlp.folds(emb)


def _trained_a_little(name: str, fold: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(name, TINY, layer_options=LayerOptions(fold_embeddings=fold))
    model.train()
    with torch.no_grad():  # move batch-norm running statistics off their initial values
        model(_inputs(200, seed=3))
    return model


@pytest.mark.parametrize("name", available_models())
def test_every_model_scores_alike_folded_and_layer_by_layer(name):
    """train.fold_embeddings changes only the order of a sum: logits within float rounding."""
    x, y = _inputs(300, seed=1), torch.zeros(300)
    batches = [Batch(x.categorical, x.numeric, y)]
    scored = {}
    for on in (False, True):  # the same weights, built with folding off and on
        model = _trained_a_little(name, fold=on)
        trainer = Trainer(model, Objective(None), TrainConfig(progress=False))
        assert all(m.fold_embedding is on for m in _mlps(model))
        scored[on] = trainer.predict(batches, encoder_logits=True)
    for field in ("logit", "z_s", "z_c"):
        a, b = getattr(scored[False], field), getattr(scored[True], field)
        assert (a is None) == (b is None)
        if a is not None:
            assert np.allclose(a, b, rtol=1e-5, atol=1e-6), f"{name} {field}"


@pytest.mark.parametrize(
    ("name", "lookups"), [("dnn", 0), ("dualmlp", 0), ("tf4ctr", 0), ("deepfm", 1), ("dcnv2", 1)]
)
def test_folding_skips_the_lookups_no_encoder_needs(name, lookups, monkeypatch):
    """DNN, DualMLP and TF4CTR read only folded tables; DeepFM's FM and DCNv2's cross network
    still need the embeddings, looked up once from the shared table (FM's own first-order
    weights are another table, not counted)."""
    model = _trained_a_little(name).eval()
    shared = {id(t) for t in (model.ssem.tables() if hasattr(model, "ssem") else [model.embedding])}
    for mlp in _mlps(model):
        mlp.fold_embedding = True
    calls = []
    original = FeatureEmbedding.forward

    def counted(self, x):
        if id(self) in shared:
            calls.append(self)
        return original(self, x)

    monkeypatch.setattr(FeatureEmbedding, "forward", counted)
    with torch.inference_mode():
        model(_inputs())
    assert len(calls) == lookups


def test_the_kept_table_follows_every_update():
    """Under inference_mode the folded table is kept between calls, and rebuilt after the
    embedding or the first layer changes in place (an optimizer step, load_state_dict)."""
    model = _trained_a_little("dualmlp").eval()
    x = _inputs()
    reference = build_model("dualmlp", TINY).eval()

    def scores(m):
        with torch.inference_mode():
            return m(x).logit

    for mlp in _mlps(model):
        mlp.fold_embedding = True
    first = scores(model)
    assert torch.equal(first, scores(model))
    tables = [m._table_cache[1][0] for m in _mlps(model)]
    assert torch.equal(first, scores(model))
    assert all(m._table_cache[1][0] is t for m, t in zip(_mlps(model), tables, strict=True))
    for change in ("embedding", "first layer", "running mean"):
        with torch.no_grad():
            if change == "embedding":
                model.ssem.embedding.weight.mul_(1.5)
            elif change == "first layer":
                model.complex_encoder.mlp.net[0].weight.add_(0.1)
            else:
                model.simple_encoder.mlp.net[1].running_mean.add_(0.3)
        reference.load_state_dict(model.state_dict())
        now = scores(model)
        assert not torch.allclose(now, first), change
        assert torch.allclose(now, scores(reference), rtol=1e-5, atol=1e-6), change
        first = now


def test_gradients_flow_through_a_folded_evaluation():
    """Outside inference_mode the fold is recomputed in the graph: an eval-mode forward with
    gradients reaches the table and the first layer as the unfolded one does."""
    x = _inputs()
    grads = {}
    for on in (False, True):
        model = _trained_a_little("dnn").eval()
        model.mlp.fold_embedding = on
        model(x).logit.sum().backward()
        grads[on] = (model.embedding.weight.grad, model.mlp.net[0].weight.grad)
    for a, b in zip(grads[False], grads[True], strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_export_traces_the_layer_by_layer_graph(tmp_path):
    """An exported graph must not rebuild the folded table on every call: export switches the
    fold off while tracing, and back on after."""
    from tf4ctr.export import export_model

    model = _trained_a_little("dnn").eval()
    model.mlp.fold_embedding = True
    with fold.layer_by_layer(model) as inside:
        assert inside is model and not model.mlp.fold_embedding
    assert model.mlp.fold_embedding
    path = export_model(model, len(TINY.vocab_sizes), 1, "torch-export", tmp_path / "m.pt2")
    graph = str(torch.export.load(path).graph)
    assert "embedding_bag" not in graph and "embedding" in graph
    assert model.mlp.fold_embedding
