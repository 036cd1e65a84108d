"""Settings a layer takes when it is built, so no trainer has to walk the model to set them.

Two switches of the training config choose how a layer computes, not what: ``train.fast_dropout``
(where :class:`~tf4ctr.nn.dropout.FastDropout` draws its mask) and ``train.fold_embeddings``
(whether :class:`~tf4ctr.nn.mlp.MLP` folds its first layer into the embedding table when it
evaluates). The model builder (``tf4ctr.models.build_model(..., layer_options=...)``) opens
:func:`building_with` around the model's constructor, and those layers read
:func:`current_layer_options` in their ``__init__``. A model built outside it (by hand) has both
off: it drops and evaluates exactly as torch's own layers do. A context variable rather than a
constructor argument, so that every model's signature stays its hyperparameters alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class LayerOptions:
    """How the layers of a model being built compute (see the module docstring)."""

    #: FastDropout masks from tf4ctr's cheap generator instead of torch's Bernoulli draw
    fast_dropout: bool = False
    #: MLP evaluation folds the first Linear into the embedding table it reads
    fold_embeddings: bool = False


#: what a model built by hand gets
HAND_BUILT = LayerOptions()
_BUILDING: ContextVar[LayerOptions | None] = ContextVar("tf4ctr_layer_options", default=None)


def current_layer_options() -> LayerOptions:
    """The options of the model being built now (all off outside :func:`building_with`)."""
    return _BUILDING.get() or HAND_BUILT


@contextlib.contextmanager
def building_with(options: LayerOptions) -> Iterator[LayerOptions]:
    """Layers constructed inside the block take ``options``; the previous ones come back after."""
    token = _BUILDING.set(options)
    try:
        yield options
    finally:
        _BUILDING.reset(token)
