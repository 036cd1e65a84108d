"""The multi-layer perceptron every encoder in the paper is built from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import nn

from tf4ctr.nn import fold
from tf4ctr.nn.building import current_layer_options
from tf4ctr.nn.dropout import FastDropout, relu_then_dropout_
from tf4ctr.nn.embedding import FeatureEmbedding
from tf4ctr.nn.types import FeatureInput

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def activation_layer(name: str) -> nn.Module:
    """Build an activation by name (case-insensitive)."""
    try:
        return _ACTIVATIONS[name.lower()]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r} (expected one of: {', '.join(_ACTIVATIONS)})"
        ) from None


_T = TypeVar("_T")


def _version_key(tensors: list[torch.Tensor]) -> tuple[tuple[int, int], ...]:
    """Each tensor's storage and in-place version: changes whenever one of them is updated."""
    return tuple((t.data_ptr(), t._version) for t in tensors)


class MLP(nn.Module):
    """Linear → [BatchNorm] → activation → [Dropout], per hidden layer.

    The layer order and the Xavier-normal initialisation follow FuxiCTR's
    ``MLP_Block``, which the paper's published runs used. Dropout is
    :class:`FastDropout` (the fast mask when the Trainer trains it with ``train.fast_dropout``,
    the default; torch's dropout otherwise). With ``output_dim``
    a final bare Linear is added (no activation).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_units: Sequence[int],
        *,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        output_dim: int | None = None,
        output_bias: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        # Fold the first layer into the embedding table in forward_embedded when evaluating
        # (tf4ctr.nn.fold)? Off for a model built by hand, so its evaluation is exactly
        # self(embedding(x).flatten(1)); the run engine builds with train.fold_embeddings.
        self.fold_embedding = current_layer_options().fold_embeddings
        layers: list[nn.Module] = []
        width = input_dim
        for units in hidden_units:
            layers.append(nn.Linear(width, units))
            if batch_norm:
                layers.append(nn.BatchNorm1d(units))
            layers.append(activation_layer(activation))
            if dropout > 0:
                layers.append(FastDropout(dropout))
            width = units
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim, bias=output_bias))
            width = output_dim
        self.output_dim = width
        self.net = nn.Sequential(*layers)
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.xavier_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Branch on the module's mode only (fixed when a graph is traced or exported), never
        # on grad mode: the fused path is differentiable too.
        if self.training:
            return self._train(x) if MLP.fuse_relu_dropout else self.net(x)
        return self._inference(x)

    #: class-wide switch back to the module-by-module forward (benchmarks/mlp_block.py A/B)
    fuse_relu_dropout = True

    def _train(self, x: torch.Tensor) -> torch.Tensor:
        """Training forward with each ReLU applied in place, fused with the dropout after it.

        Every ReLU here follows a Linear or a batch norm, whose output is a fresh tensor their
        backward does not need, so ReLU (and the fast dropout mask) may overwrite it instead of
        writing another 10,000 × 400 tensor: fewer passes over memory per layer
        (benchmarks/mlp_block.py). Same values and gradients as ``net(x)``.
        """
        layers = list(self.net)
        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, nn.ReLU):
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(nxt, FastDropout):
                    x = relu_then_dropout_(x, nxt)
                    i += 2
                    continue
                x = torch.relu_(x)
            else:
                x = layer(x)
            i += 1
        return x

    def folds(self, embedding: FeatureEmbedding) -> bool:
        """Whether :meth:`forward_embedded` folds the first layer into ``embedding`` now."""
        if self.training or not self.fold_embedding:
            return False
        first = self.net[0] if len(self.net) else None
        return isinstance(first, nn.Linear) and fold.can_fold(embedding, first.weight)

    def forward_embedded(self, embedding: FeatureEmbedding, x: FeatureInput) -> torch.Tensor:
        """``self(embedding(x).flatten(1))``, the MLP over a batch's concatenated embeddings.

        When :meth:`folds` (evaluating, ``fold_embedding`` on), the first Linear, with its
        BatchNorm folded in, is folded further into the table (tf4ctr.nn.fold): the lookup and
        the first product become one sum of table rows per sample. The same function up to
        float rounding (~1e-7 of a logit). Under ``torch.inference_mode`` the folded table is
        kept while no parameter or statistic of either module changes, like the BN fold.
        """
        if not self.folds(embedding):
            return self(embedding(x).flatten(1))
        layers = self._folded()
        weight, bias = layers[0]  # type: ignore[misc]
        tables = self._kept(
            "_table_cache",
            [*self._fold_inputs(), *embedding.parameters()],
            lambda: fold.fold_tables(embedding, weight),
        )
        return self._run(fold.folded_first_layer(embedding, tables, bias, x), layers[1:])

    _table_cache: tuple[tuple, tuple[torch.Tensor, torch.Tensor]] | None = None

    def _inference(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode forward with each BatchNorm folded into the Linear before it.

        In eval mode BN is an affine map, so ``BN(Wx + b) = W'x + b'`` with
        ``W' = W·γ/σ`` and ``b' = (b − μ)·γ/σ + β``: one matrix product per layer
        and no pass over the activations for BN. Same outputs as ``net(x)`` up to float
        rounding.
        """
        return self._run(x, self._folded())

    @staticmethod
    def _run(
        x: torch.Tensor, layers: list[nn.Module | tuple[torch.Tensor, torch.Tensor | None]]
    ) -> torch.Tensor:
        for layer in layers:
            if isinstance(layer, tuple):
                weight, bias = layer
                x = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
            elif isinstance(layer, nn.ReLU):
                x = torch.relu_(x)  # the addmm result is ours; autograd allows this in place
            else:
                x = layer(x)
        return x

    def _folded(self) -> list[nn.Module | tuple[torch.Tensor, torch.Tensor | None]]:
        """The eval-mode layers: each Linear (with the BatchNorm after it folded in) as its
        ``(weight, bias)``, every other layer as is, dropout left out (the identity here).

        Under ``torch.inference_mode`` (what Trainer.predict uses, slice after slice) the
        folded weights are kept and reused while no parameter or statistic has changed: a
        key of each tensor's storage and in-place version counter, which the optimizer's and
        load_state_dict's updates bump. Elsewhere they are recomputed each call, so a forward
        with gradients still reaches the parameters through the fold. A write through
        ``param.data`` bumps no counter: call ``.eval()`` again after one (it drops the fold).
        """
        return self._kept("_fold_cache", self._fold_inputs(), self._fold_layers)

    def _kept(self, slot: str, inputs: list[torch.Tensor], build: Callable[[], _T]) -> _T:
        """``build()``, kept in ``self.<slot>`` under ``torch.inference_mode`` while every tensor
        of ``inputs`` keeps its storage and in-place version; built afresh elsewhere."""
        if not torch.is_inference_mode_enabled():
            return build()
        key = _version_key(inputs)
        kept = getattr(self, slot)
        if kept is None or kept[0] != key:
            kept = (key, build())
            setattr(self, slot, kept)
        return kept[1]

    def _fold_layers(self) -> list[nn.Module | tuple[torch.Tensor, torch.Tensor | None]]:
        folded: list[nn.Module | tuple[torch.Tensor, torch.Tensor | None]] = []
        layers = list(self.net)
        i = 0
        while i < len(layers):
            layer = layers[i]
            if isinstance(layer, nn.Linear):
                weight, bias = layer.weight, layer.bias
                nxt = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(nxt, nn.BatchNorm1d) and nxt.track_running_stats:
                    scale = torch.rsqrt(nxt.running_var + nxt.eps)
                    if nxt.affine:
                        scale = scale * nxt.weight
                    shift = -nxt.running_mean * scale
                    if nxt.affine:
                        shift = shift + nxt.bias
                    if bias is not None:
                        shift = shift + bias * scale
                    weight, bias = weight * scale.unsqueeze(1), shift
                    i += 1
                folded.append((weight, bias))
            elif not isinstance(layer, FastDropout | nn.Dropout):
                folded.append(layer)
            i += 1
        return folded

    def _fold_inputs(self) -> list[torch.Tensor]:
        return [*self.net.parameters(), *self.net.buffers()]

    _fold_cache: tuple[tuple, list] | None = None

    def train(self, mode: bool = True) -> MLP:
        # each switch of mode (Trainer.predict's eval()) folds afresh
        self._fold_cache = self._table_cache = None
        return super().train(mode)
