"""The model zoo. Importing this package registers every model."""

from tf4ctr.models import dnn, tf4ctr  # noqa: F401  (registration side effects)
from tf4ctr.models.registry import (
    available_models,
    build_model,
    check_model_config,
    model_defaults,
    register,
)

__all__ = ["available_models", "build_model", "check_model_config", "model_defaults", "register"]
