"""tf4ctr: the TF4CTR framework for click-through-rate prediction, in PyTorch.

Plug the Twin Focus loss into your own two-encoder model::

    from tf4ctr import TwinFocusLoss
    tf_loss = TwinFocusLoss(alpha=0.25, c=0.7, gamma=1.0)
    loss = bce(logit, y) + tf_loss(z_simple, z_complex, y)      # Eq. 12

or wrap any encoder pair in the whole framework with :class:`TwinModel`; or train and score
in-memory tables with :func:`fit`, :func:`load` and :class:`Run`.

The names below are imported on first use, so ``import tf4ctr`` (and ``tf4ctr --help``) does
not pay for importing torch.
"""

from __future__ import annotations

from tf4ctr._lazy import lazy_exports
from tf4ctr.errors import ConfigError, DataError, UserError

__version__ = "0.1.0"

_LAZY = {
    "fit": "tf4ctr.api",
    "load": "tf4ctr.api",
    "Run": "tf4ctr.api",
    "MLPEncoder": "tf4ctr.framework",
    "Objective": "tf4ctr.framework",
    "TwinFocusLoss": "tf4ctr.framework",
    "TwinModel": "tf4ctr.framework",
    "build_fusion": "tf4ctr.framework",
    "build_ssem": "tf4ctr.framework",
    "twin_focus_loss": "tf4ctr.framework",
    "FeatureInput": "tf4ctr.nn",
    "ModelOutput": "tf4ctr.nn",
}

__all__ = ["ConfigError", "DataError", "UserError", "__version__", *_LAZY]


__getattr__ = lazy_exports("tf4ctr", _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
