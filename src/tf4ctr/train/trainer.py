"""A model-agnostic training loop.

The trainer sees an ``nn.Module`` that maps a :class:`FeatureInput` to a
:class:`ModelOutput`, an :class:`Objective`, and batch loaders; it knows
nothing about any particular model. Protocol (the paper's public code):
Adam, evaluation once per epoch, early stopping with patience on the monitor,
LR × factor on every non-improving evaluation, gradient-norm clipping, and
the best weights restored at the end.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tf4ctr.config import TrainConfig
from tf4ctr.framework.objective import Objective
from tf4ctr.nn import FeatureEmbedding, FeatureInput
from tf4ctr.nn.dropout import FastDropout
from tf4ctr.train.metrics import evaluate_predictions

log = logging.getLogger("tf4ctr")


def monitor_value(metrics: dict[str, float], monitor: str) -> float:
    """Turn a metrics dict into the one number early stopping maximises."""
    if monitor == "auc+gauc":
        # gAUC is undefined (nan) when no group has both labels, e.g. a tiny split
        gauc = metrics.get("gauc", math.nan)
        return metrics["auc"] if math.isnan(gauc) else metrics["auc"] + gauc
    if monitor == "logloss":
        return -metrics["logloss"]
    return metrics[monitor]


@dataclass
class Predictions:
    """Raw outputs of a pass over a split, in loader order."""

    label: np.ndarray
    logit: np.ndarray
    group: np.ndarray | None = None
    z_s: np.ndarray | None = None
    z_c: np.ndarray | None = None


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write a checkpoint so that a crash never leaves a truncated file."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def make_optimizers(model: nn.Module, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam over everything (the paper's setting), or, with ``sparse_embedding``,
    Adam for the dense layers plus a lazy row-wise Adam (``SparseAdam``) for the
    embedding tables, which then produce sparse gradients."""
    if not config.sparse_embedding:
        return [torch.optim.Adam(model.parameters(), lr=config.lr)]
    tables = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]
    for table in tables:
        table.sparse = True
    sparse_ids = {id(t.weight) for t in tables}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=config.lr)]
    if tables:
        optimizers.append(torch.optim.SparseAdam([t.weight for t in tables], lr=config.lr))
    return optimizers


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> float:
    """Clip the global gradient norm, sparse gradients included.

    ``torch.nn.utils.clip_grad_norm_`` rejects sparse gradients; here a sparse
    gradient counts by its (coalesced) stored values, which is the same norm.
    """
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in parameters):
        return float(nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True))
    grads = []
    for p in parameters:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    if not grads:
        return 0.0
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = max_norm / (total + 1e-6)
    if scale < 1:
        for g in grads:
            g.mul_(scale)
    return float(total)


class Trainer:
    """Trains and evaluates one model.

    Args:
        model: any module returning :class:`ModelOutput`.
        objective: the loss (Eq. 12 and friends).
        config: the ``train`` section.
        checkpoint_path: where the best weights are saved at every improvement
            (a plain ``state_dict``, loadable with ``weights_only=True``).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        config: TrainConfig,
        *,
        checkpoint_path: Path | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model.to(device)
        self.objective = objective
        self.config = config
        self.device = torch.device(device)
        self.checkpoint_path = checkpoint_path
        # The validation predictions of the latest epoch, for callbacks that need more than
        # the metrics (the difficulty counts of Figures 2 and 10) without predicting again.
        self.last_valid_predictions: Predictions | None = None
        self.optimizers = make_optimizers(self.model, config)
        for module in self.model.modules():
            if isinstance(module, FastDropout):
                module.fast = config.fast_dropout

    # -- one pass ---------------------------------------------------------

    def _inputs(self, batch: Any) -> FeatureInput:
        return FeatureInput(
            batch.categorical.to(self.device, non_blocking=True),
            batch.numeric.to(self.device, non_blocking=True),
        )

    @property
    def lr(self) -> float:
        return float(self.optimizers[0].param_groups[0]["lr"])

    def _param_groups(self):
        return [g for opt in self.optimizers for g in opt.param_groups]

    def train_epoch(self, loader: Iterable[Any], *, epoch: int = 1) -> dict[str, Any]:
        """One pass over the training data; returns mean losses and timing.

        With ``record_logit_grads`` the first epoch also returns, per batch, the
        size of the loss gradient reaching ``z_s`` and ``z_c`` (Figure 5), as the
        root mean square of the per-sample gradients (batch-size independent).
        """
        self.model.train()
        cfg = self.config
        sums: dict[str, float] = {}
        n_batches = 0
        start = time.perf_counter()
        bar = tqdm(
            loader,
            total=len(loader) if hasattr(loader, "__len__") else None,
            desc=f"epoch {epoch}",
            disable=not cfg.progress,
            leave=False,
            dynamic_ncols=True,
        )
        probe = cfg.record_logit_grads and epoch == 1
        grad_norms: dict[str, list[float]] = {"z_s": [], "z_c": []}
        for batch in bar:
            out = self.model(self._inputs(batch))
            probing = probe and out.z_s is not None and out.z_c is not None
            if probing:
                out.z_s.retain_grad()
                out.z_c.retain_grad()
            parts = self.objective(self.model, out, batch.label.to(self.device))
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            parts.total.backward()
            if probing:
                # RMS of the per-sample gradients: the loss is a batch mean, so the raw
                # norm would shrink with the batch size (and jump on a short last batch)
                for name, z in (("z_s", out.z_s), ("z_c", out.z_c)):
                    norm = 0.0 if z.grad is None else float(torch.linalg.vector_norm(z.grad))
                    grad_norms[name].append(norm * math.sqrt(z.numel()))
            if cfg.clip_grad_norm > 0:
                clip_grad_norm(self.model.parameters(), cfg.clip_grad_norm)
            for opt in self.optimizers:
                opt.step()
            n_batches += 1
            for name in ("total", "ctr", "twin_focus", "l2"):
                value = getattr(parts, name)
                if value is not None:
                    sums[name] = sums.get(name, 0.0) + float(value.detach())
            if n_batches % 5 == 1 or n_batches == len(bar):
                bar.set_postfix(loss=f"{sums['total'] / n_batches:.4f}")
            if not math.isfinite(sums["total"]):
                raise FloatingPointError(
                    f"training loss became {sums['total']} at epoch {epoch}, batch {n_batches}; "
                    "try a lower train.lr or train.clip_grad_norm"
                )
        bar.close()
        result: dict[str, Any] = {f"train_{k}_loss": v / max(n_batches, 1) for k, v in sums.items()}
        result["train_seconds"] = time.perf_counter() - start
        if grad_norms["z_s"]:
            result["logit_grad_norms"] = grad_norms
        return result

    @torch.inference_mode()
    def predict(self, loader: Iterable[Any], *, encoder_logits: bool = False) -> Predictions:
        """Logits for every sample of a loader (no shuffling expected)."""
        self.model.eval()
        labels, logits, groups, zs, zc = [], [], [], [], []
        for batch in loader:
            out = self.model(self._inputs(batch))
            logits.append(out.logit.float().cpu())
            labels.append(batch.label)
            if batch.group is not None:
                groups.append(batch.group)
            if encoder_logits and out.z_s is not None:
                zs.append(out.z_s.float().cpu())
                zc.append(out.z_c.float().cpu())

        def cat(xs: list[torch.Tensor]) -> np.ndarray | None:
            return torch.cat(xs).numpy() if xs else None

        return Predictions(
            label=cat(labels), logit=cat(logits), group=cat(groups), z_s=cat(zs), z_c=cat(zc)
        )

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """AUC, gAUC (when the data has groups) and log loss of one split."""
        return self._evaluate(loader)[0]

    def _evaluate(self, loader: Iterable[Any]) -> tuple[dict[str, float], Predictions]:
        start = time.perf_counter()
        pred = self.predict(loader)
        metrics = evaluate_predictions(pred.label, pred.logit, pred.group)
        metrics["seconds"] = time.perf_counter() - start
        return metrics, pred

    # -- the loop -----------------------------------------------------------

    def fit(
        self,
        train_loader: Iterable[Any],
        valid_loader: Iterable[Any],
        *,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    ) -> FitResult:
        """Train until early stopping or ``epochs``; the best weights are restored."""
        cfg = self.config
        result = FitResult()
        best_score = -math.inf
        best_state: dict[str, torch.Tensor] | None = None
        bad_epochs = 0
        for epoch in range(1, cfg.epochs + 1):
            record: dict[str, Any] = {"epoch": epoch, "lr": self.lr}
            record.update(self.train_epoch(train_loader, epoch=epoch))
            valid, self.last_valid_predictions = self._evaluate(valid_loader)
            record["valid"] = valid
            score = monitor_value(valid, cfg.monitor)
            # the first epoch is always the best so far, even with an undefined (nan) score
            improved = best_state is None or score > best_score
            record["improved"] = improved
            if improved:
                best_score, bad_epochs = score, 0
                result.best_epoch, result.best_valid = epoch, valid
                best_state = copy.deepcopy(self.model.state_dict())
                if self.checkpoint_path is not None:
                    atomic_torch_save(best_state, self.checkpoint_path)
            else:
                bad_epochs += 1
                for group in self._param_groups():
                    group["lr"] = max(group["lr"] * cfg.reduce_lr_factor, cfg.min_lr)
            result.history.append(record)
            log.info(
                "epoch %d: loss %.5f | valid %s | %.1fs train, %.1fs eval%s",
                epoch,
                record.get("train_total_loss", float("nan")),
                " ".join(f"{k} {v:.6f}" for k, v in valid.items() if k != "seconds"),
                record["train_seconds"],
                valid["seconds"],
                ""
                if improved
                else f" | no improvement ({bad_epochs}/{cfg.patience}), lr -> {self.lr:g}",
            )
            if on_epoch_end is not None:
                on_epoch_end(record)
            if not improved and bad_epochs >= cfg.patience:
                result.stopped_early = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return result
