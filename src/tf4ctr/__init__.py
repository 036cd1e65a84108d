"""tf4ctr: the TF4CTR framework for click-through-rate prediction, in PyTorch.

Plug the Twin Focus loss into your own two-encoder model::

    from tf4ctr import TwinFocusLoss
    tf_loss = TwinFocusLoss(alpha=0.25, c=0.7, gamma=1.0)
    loss = bce(logit, y) + tf_loss(z_simple, z_complex, y)      # Eq. 12

or wrap any encoder pair in the whole framework with :class:`TwinModel`.
"""

from tf4ctr.errors import ConfigError, DataError, UserError
from tf4ctr.framework import (
    MLPEncoder,
    Objective,
    TwinFocusLoss,
    TwinModel,
    build_fusion,
    build_ssem,
    twin_focus_loss,
)
from tf4ctr.nn import FeatureInput, ModelOutput

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "FeatureInput",
    "MLPEncoder",
    "ModelOutput",
    "Objective",
    "TwinFocusLoss",
    "TwinModel",
    "UserError",
    "__version__",
    "build_fusion",
    "build_ssem",
    "twin_focus_loss",
]
