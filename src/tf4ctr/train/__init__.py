"""Training, evaluation and metrics, independent of any particular model."""

from tf4ctr.train.metrics import (
    auc,
    evaluate_predictions,
    group_auc,
    log_loss,
    log_loss_from_logits,
)
from tf4ctr.train.trainer import FitResult, Predictions, Trainer, monitor_value

__all__ = [
    "FitResult",
    "Predictions",
    "Trainer",
    "auc",
    "evaluate_predictions",
    "group_auc",
    "log_loss",
    "log_loss_from_logits",
    "monitor_value",
]
