"""tf4ctr: the TF4CTR framework for click-through-rate prediction, in PyTorch.

Plug the Twin Focus loss into your own two-encoder model::

    from tf4ctr import TwinFocusLoss
    tf_loss = TwinFocusLoss(alpha=0.25, c=0.7, gamma=1.0)
    loss = bce(logit, y) + tf_loss(z_simple, z_complex, y)      # Eq. 12

or wrap any encoder pair in the whole framework with :class:`TwinModel`.

The names below are imported on first use, so ``import tf4ctr`` (and ``tf4ctr --help``) does
not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from tf4ctr.errors import ConfigError, DataError, UserError

__version__ = "0.1.0"

_LAZY = {
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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf4ctr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
