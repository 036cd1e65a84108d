"""``train.device``: where a model trains and scores (auto, cpu, cuda, cuda:N)."""

from __future__ import annotations

import torch

from tf4ctr.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(spec: str = "auto", *, origin: str = "") -> torch.device:
    """``auto`` is the first CUDA device when torch sees one, else the CPU.

    Asking for CUDA on a machine without it is a ConfigError (``origin`` says where the
    setting came from), not a crash in the middle of training.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"{origin}train.device: {spec} asked for, but this torch sees no CUDA device "
                "(use auto or cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{origin}train.device: {spec} asked for, but there are only "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return device
