"""AFN+ (Cheng, Shen and Huang, "Adaptive Factorization Network: Learning
Adaptive-Order Feature Interactions", AAAI 2020): AFN in parallel with a DNN,
each on its own embedding table, their outputs combined by learned weights.

Composed with ``build_twin``: ``ser`` SSEM with both tables of the same width
(the AFN table on the simple side), the AFN encoder as z_s, the DNN as z_c,
and ``wsf`` fusion, w1·z_s + w2·z_c with w initialised to 0.5 as in the
authors' ensemble. Their ensemble layer also has a bias; WSF does not, which
loses nothing, since each encoder's own logit head carries a bias.

Not reproduced from the authors' code: it trains the ensemble weights on
stop-gradient logits and adds a separate log loss on each branch. Here the
fused logit trains everything jointly with ``loss: bce``; ``loss: tf``
(TF4CTR's Twin Focus loss) is the framework's way to add per-branch terms.
"""

from __future__ import annotations

from collections.abc import Sequence

from tf4ctr.framework import TwinModel
from tf4ctr.framework.compose import build_twin, mlp_spec
from tf4ctr.models.registry import register
from tf4ctr.nn.types import SchemaLike


@register("afn", "afn_plus", "afn+")
def build_afn(
    schema: SchemaLike,
    *,
    embedding_dim: int = 16,
    logarithmic_neurons: int = 600,
    afn_hidden_units: Sequence[int] = (400, 400, 400),
    ltl_batch_norm: bool = True,
    hidden_units: Sequence[int] = (400, 400, 400),
    activation: str = "relu",
    dropout: float = 0.2,
    batch_norm: bool = True,
) -> TwinModel:
    """AFN+ = ``ser`` SSEM (equal widths) + AFN encoder ∥ MLP + ``wsf`` fusion.

    ``logarithmic_neurons=600`` is the AFN authors' Frappe setting (see
    :class:`tf4ctr.nn.afn.AFNEncoder`); both MLPs are (400, 400, 400) as in
    the paper.
    """
    afn = {
        "name": "afn",
        "logarithmic_neurons": logarithmic_neurons,
        "afn_hidden_units": list(afn_hidden_units),
        "ltl_batch_norm": ltl_batch_norm,
    }
    return build_twin(
        schema,
        embedding_dim=embedding_dim,
        ssem="ser",
        fusion="wsf",
        simple_encoder=afn,
        complex_encoder=mlp_spec(hidden_units),
        simple_embedding_dim=embedding_dim,
        activation=activation,
        dropout=dropout,
        batch_norm=batch_norm,
    )
