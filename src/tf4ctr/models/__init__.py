"""The model zoo. Importing this package registers every model and encoder."""

from tf4ctr.models import (  # noqa: F401  (registration side effects)
    afn,
    autoint,
    cl4ctr,
    dcn,
    dcnv2,
    deepfm,
    dnn,
    dualmlp,
    edcn,
    eulernet,
    finalmlp,
    finalnet,
    gdcn,
    tf4ctr,
    tf4ctr_variants,
    widedeep,
    xdeepfm,
)
from tf4ctr.models.registry import (
    available_models,
    build_model,
    check_model_config,
    model_defaults,
    register,
)

__all__ = ["available_models", "build_model", "check_model_config", "model_defaults", "register"]
