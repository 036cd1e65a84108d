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
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tf4ctr.config import TrainConfig
from tf4ctr.errors import UserError
from tf4ctr.fileio import atomic_torch_save  # noqa: F401  (re-exported)
from tf4ctr.framework.objective import Objective
from tf4ctr.nn import FeatureEmbedding, FeatureInput
from tf4ctr.nn.step_masks import StepMasks, step_masks_active
from tf4ctr.progress import show_bars
from tf4ctr.train.distributed import World
from tf4ctr.train.heap import keep_freed_memory
from tf4ctr.train.metrics import evaluate_predictions
from tf4ctr.train.sparse_adam import RowSparseAdam

log = logging.getLogger("tf4ctr")


def monitor_value(metrics: dict[str, float], monitor: str) -> float:
    """Turn a metrics dict into the one number early stopping maximises."""
    if monitor == "auc+gauc":
        # gAUC is undefined (nan) when no group has both labels, e.g. a tiny split
        gauc = metrics.get("gauc", math.nan)
        return metrics["auc"] if math.isnan(gauc) else metrics["auc"] + gauc
    if monitor == "logloss":
        return -metrics["logloss"]
    if monitor == "auc-logloss":
        return metrics["auc"] - metrics["logloss"]
    return metrics[monitor]


@dataclass
class Predictions:
    """Raw outputs of a pass over a split, in loader order."""

    label: np.ndarray
    logit: np.ndarray
    group: np.ndarray | None = None
    z_s: np.ndarray | None = None
    z_c: np.ndarray | None = None


class TrainingDiverged(UserError):
    """A loss, gradient, weight or prediction became NaN or infinite."""


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


@dataclass
class FitState:
    """Where :meth:`Trainer.fit` stands after ``epoch`` complete epochs: enough to go on.

    ``best_state`` is None while the model's current weights are the best ones (saving a
    second copy in the checkpoint would be wasted bytes).
    """

    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    best_valid: dict[str, float] = field(default_factory=dict)
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    #: the optimizers' state dicts that went with ``best_state`` (None with it)
    best_optimizers: list[dict[str, Any]] | None = None
    stopped_early: bool = False
    #: the training loader's draw counter (:attr:`BatchLoader.epoch`) after ``epoch``
    loader_epoch: int | None = None


def prediction_metrics(pred: Predictions, where: str = "") -> dict[str, float]:
    """AUC, gAUC (with groups) and logloss of predictions; NaN or infinite logits are an error
    (``where``, e.g. a file, is named in it)."""
    finite = np.isfinite(pred.logit)
    if not finite.all():
        raise TrainingDiverged(
            f"{where}the model predicts NaN or infinity for {int((~finite).sum())} of "
            f"{finite.size} rows; its weights or the input's numeric values are too large"
        )
    return evaluate_predictions(pred.label, pred.logit, pred.group)


def seconds_per_epoch(epochs: list[dict[str, Any]]) -> float | None:
    """THE seconds per epoch of a run: the median training seconds of its epoch records
    (the upper median for an even count; the first epoch's warm-up does not sway it)."""
    seconds = sorted(e["train_seconds"] for e in epochs)
    return seconds[len(seconds) // 2] if seconds else None


def rng_state() -> dict[str, Any]:
    """Every global random state a training epoch draws from (dropout, shuffles of models)."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def non_finite_parameters(model: nn.Module) -> list[str]:
    """Names of the parameters and buffers holding a NaN or an infinity."""
    return [
        name
        for name, t in [*model.named_parameters(), *model.named_buffers()]
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def make_optimizers(model: nn.Module, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """Adam over everything (the paper's setting), or, with ``sparse_embedding``,
    Adam for the dense layers plus a lazy row-wise Adam (``SparseAdam``'s update,
    :class:`RowSparseAdam`) for the embedding tables, which then produce sparse gradients."""
    if not config.sparse_embedding:
        return [torch.optim.Adam(model.parameters(), lr=config.lr)]
    weights = sparse_table_weights(model)
    sparse_ids = {id(w) for w in weights}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    optimizers: list[torch.optim.Optimizer] = [torch.optim.Adam(dense, lr=config.lr)]
    if weights:
        optimizers.append(RowSparseAdam(weights, lr=config.lr))
    return optimizers


def sparse_table_weights(model: nn.Module) -> list[torch.Tensor]:
    """Switch every embedding table of ``model`` to sparse gradients; their weights."""
    tables = [m for m in model.modules() if isinstance(m, FeatureEmbedding)]
    for table in tables:
        table.sparse = True
    return [t.weight for t in tables]


@torch.no_grad()
def clip_grad_norm(parameters: Iterable[torch.Tensor], max_norm: float) -> float:
    """Clip the global gradient norm, sparse gradients included; returns the norm before.

    ``max_norm=inf`` only measures it.

    ``torch.nn.utils.clip_grad_norm_`` rejects sparse gradients; here a sparse
    gradient counts by its (coalesced) stored values, which is the same norm.
    """
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in parameters):
        if math.isinf(max_norm):  # the norm only (a finiteness check), no scaling pass
            if not parameters:
                return 0.0
            norms = torch.stack([torch.linalg.vector_norm(p.grad) for p in parameters])
            return float(torch.linalg.vector_norm(norms))
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
        device: where the model trains and scores.
        world: this process's rank among torchrun's (training wraps the model in DDP and
            evaluation is shared out by batches when there are several).
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        config: TrainConfig,
        *,
        device: torch.device | str = "cpu",
        world: World | None = None,
    ) -> None:
        keep_freed_memory()  # each step's activations reuse the last step's memory
        self.model = model.to(device)
        objective.freeze_unreached(self.model)  # before DDP lists what it reduces
        self.world = world or World()
        # the module the training step runs: DDP's wrapper averages gradients across ranks
        self.train_model: nn.Module = self.model
        #: the sparse tables' weights, whose gradients the ranks exchange themselves
        self._sparse_weights: list[torch.Tensor] = []
        if self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            if config.sparse_embedding:
                # DDP takes sparse gradients only from nn.Embedding: the tables stay outside
                # it (their rows are exchanged after backward, World.mean_sparse_gradients)
                self._sparse_weights = sparse_table_weights(self.model)
                ignored = {id(w) for w in self._sparse_weights}
                names = [n for n, p in self.model.named_parameters() if id(p) in ignored]
                DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
                    self.model, names
                )
                self.world.broadcast_tensors(self._sparse_weights)  # DDP broadcasts the rest
            ids = [self.model_device_index()] if torch.device(device).type == "cuda" else None
            self.train_model = DistributedDataParallel(self.model, device_ids=ids)
        self.objective = objective
        self.config = config
        self.device = torch.device(device)
        # The validation predictions of the latest epoch, for callbacks that need more than
        # the metrics (the difficulty counts of Figures 2 and 10) without predicting again.
        self.last_valid_predictions: Predictions | None = None
        self.optimizers = make_optimizers(self.model, config)
        # torch's dropout masks drawn a step ahead on a second thread (CPU only: on a GPU the
        # mask is no serial bottleneck); the same masks, so the same run
        self._step_masks = StepMasks() if self.device.type == "cpu" else None

    # -- one pass ---------------------------------------------------------

    def _inputs(self, batch: Any) -> FeatureInput:
        return FeatureInput(
            batch.categorical.to(self.device, non_blocking=True),
            batch.numeric.to(self.device, non_blocking=True),
        )

    def model_device_index(self) -> int:
        return next(self.model.parameters()).device.index or 0

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
        start = time.perf_counter()
        bar = tqdm(
            loader,
            total=len(loader) if hasattr(loader, "__len__") else None,
            desc=f"epoch {epoch}",
            disable=not show_bars(cfg.progress),
            leave=False,
            dynamic_ncols=True,
        )
        probe = cfg.record_logit_grads and epoch == 1
        grad_norms: dict[str, list[float]] = {"z_s": [], "z_c": []}
        with step_masks_active(self._step_masks):
            n_batches = self._train_steps(bar, probe, grad_norms, sums, epoch)
        bar.close()
        if bad := non_finite_parameters(self.model):
            raise self._diverged(
                f"parameter {bad[0]} holds NaN or infinity", epoch, n_batches, at_end=True
            )
        result: dict[str, Any] = {f"train_{k}_loss": v / max(n_batches, 1) for k, v in sums.items()}
        result["train_seconds"] = time.perf_counter() - start
        if grad_norms["z_s"]:
            result["logit_grad_norms"] = grad_norms
        return result

    def _train_steps(
        self,
        bar: Any,
        probe: bool,
        grad_norms: dict[str, list[float]],
        sums: dict[str, float],
        epoch: int,
    ) -> int:
        """The steps of one epoch; returns how many ran."""
        cfg = self.config
        n_batches = 0
        masks = self._step_masks
        for batch in bar:
            if masks is not None:
                masks.begin(len(batch.label))
            out = self.train_model(self._inputs(batch))
            if masks is not None:
                masks.end()
            probing = probe and out.z_s is not None and out.z_c is not None
            if probing:
                out.z_s.retain_grad()
                out.z_c.retain_grad()
            parts = self.objective(self.model, out, batch.label.to(self.device))
            for opt in self.optimizers:
                opt.zero_grad(set_to_none=True)
            parts.total.backward()
            if self._sparse_weights:
                self.world.mean_sparse_gradients(self._sparse_weights)
            if probing:
                # RMS of the per-sample gradients: the loss is a batch mean, so the raw
                # norm would shrink with the batch size (and jump on a short last batch)
                for name, z in (("z_s", out.z_s), ("z_c", out.z_c)):
                    norm = 0.0 if z.grad is None else float(torch.linalg.vector_norm(z.grad))
                    grad_norms[name].append(norm * math.sqrt(z.numel()))
            n_batches += 1
            loss = float(parts.total.detach())
            # under DDP a rank's own loss is not the others': the (all-reduced) gradient
            # norm below is the check every rank agrees on
            if not math.isfinite(loss) and not self.world.distributed:
                raise self._diverged(f"the training loss is {loss}", epoch, n_batches)
            # The global gradient norm doubles as the finiteness check of every gradient
            # (one reduction; clipping computes it anyway).
            norm = clip_grad_norm(self.model.parameters(), cfg.clip_grad_norm or math.inf)
            if not math.isfinite(norm):
                raise self._diverged(f"the gradient norm is {norm}", epoch, n_batches)
            for opt in self.optimizers:
                opt.step()
            for name in ("total", "ctr", "twin_focus", "l2"):
                value = getattr(parts, name)
                if value is not None:
                    sums[name] = sums.get(name, 0.0) + (
                        loss if name == "total" else float(value.detach())
                    )
            if n_batches % 5 == 1 or n_batches == len(bar):
                bar.set_postfix(loss=f"{sums['total'] / n_batches:.4f}")
        return n_batches

    def _diverged(
        self, what: str, epoch: int, step: int, *, at_end: bool = False
    ) -> TrainingDiverged:
        where = f"after epoch {epoch}" if at_end else f"at epoch {epoch}, step {step}"
        clip = "" if self.config.clip_grad_norm > 0 else ", set train.clip_grad_norm (e.g. 10)"
        return TrainingDiverged(
            f"training diverged: {what} {where} (train.lr is {self.lr:g}); try a lower "
            f"train.lr{clip}, or check numeric columns for extreme values"
        )

    #: Rows per forward pass when predicting on a CPU. A loader batch (65,536 rows by default)
    #: is scored in slices this size, so each layer's activations (2,048 × 400 floats, 3 MB)
    #: stay in cache and reuse the memory training freed, instead of passes over 90 MB tensors
    #: that a process's first evaluation must also page in. On Frappe_x1
    #: (benchmarks/eval_rows.py, results/eval_rows.json): the first evaluation 2-23 % faster,
    #: later ones 0-8 %. A power of two keeps every slice aligned with the matrix kernels' row
    #: blocks, so each row's logit is computed exactly as in the whole batch (every zoo model
    #: is checked bit for bit in tests/test_trainer.py; slices of 97 rows would change the last
    #: digits). An accelerator scores whole batches: it wants the larger products.
    cpu_forward_rows = 2048

    @torch.inference_mode()
    def predict(self, loader: Iterable[Any], *, encoder_logits: bool = False) -> Predictions:
        """Logits for every sample of a loader (no shuffling expected)."""
        self.model.eval()
        rank, size = self.world.rank, self.world.size
        mine: list[tuple[int, dict[str, torch.Tensor]]] = []
        for i, batch in enumerate(loader):
            if i % size != rank:  # whole batches per rank: the same sums as one process
                continue
            inputs = self._inputs(batch)
            rows = len(batch.label)
            step = self.cpu_forward_rows if self.device.type == "cpu" else rows
            scored: dict[str, list[torch.Tensor]] = {"logit": [], "z_s": [], "z_c": []}
            for start in range(0, max(rows, 1), max(step, 1)):  # an empty batch: one empty pass
                out = self.model(FeatureInput(*(t[start : start + step] for t in inputs)))
                scored["logit"].append(out.logit.float().cpu())
                if encoder_logits and out.z_s is not None:
                    scored["z_s"].append(out.z_s.float().cpu())
                    scored["z_c"].append(out.z_c.float().cpu())
            part = {name: torch.cat(xs) for name, xs in scored.items() if xs}
            part["label"] = batch.label
            if batch.group is not None:
                part["group"] = batch.group
            mine.append((i, part))
        if self.world.distributed:
            mine = sorted((x for r in self.world.gather(mine) for x in r), key=lambda x: x[0])
        parts = [p for _, p in mine]

        def cat(name: str) -> np.ndarray | None:
            xs = [p[name] for p in parts if name in p]
            return torch.cat(xs).numpy() if xs else None

        return Predictions(
            label=cat("label"),
            logit=cat("logit"),
            group=cat("group"),
            z_s=cat("z_s"),
            z_c=cat("z_c"),
        )

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """AUC, gAUC (when the data has groups) and log loss of one split."""
        return self._evaluate(loader)[0]

    def _evaluate(self, loader: Iterable[Any]) -> tuple[dict[str, float], Predictions]:
        start = time.perf_counter()
        pred = self.predict(loader)
        metrics = prediction_metrics(pred)
        metrics["seconds"] = time.perf_counter() - start
        return metrics, pred

    # -- the loop -----------------------------------------------------------

    def fit(
        self,
        train_loader: Iterable[Any],
        valid_loader: Iterable[Any],
        *,
        on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
        on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
        state: FitState | None = None,
    ) -> FitResult:
        """Train until early stopping or ``epochs``; the best weights are restored.

        ``on_checkpoint`` receives, after every epoch (and after ``on_epoch_end``), a
        checkpoint from which :meth:`load_checkpoint` continues exactly where this epoch
        ended. ``state`` is what :meth:`load_checkpoint` returned: fit then starts with the
        epoch after it, drawing the same shuffles and dropout masks it would have drawn.
        """
        cfg = self.config
        st = state or FitState()
        if st.loader_epoch is not None and hasattr(train_loader, "set_epoch"):
            # A loader's shuffle is a function of (seed, its draw counter) alone; the counter
            # is restored as saved rather than derived from the epoch, since tqdm.auto's bar
            # draws one extra (unused) iterator per epoch.
            train_loader.set_epoch(st.loader_epoch)
        while not st.stopped_early and st.epoch < cfg.epochs:
            st.epoch += 1
            epoch = st.epoch
            record: dict[str, Any] = {"epoch": epoch, "lr": self.lr}
            record.update(self.train_epoch(train_loader, epoch=epoch))
            valid, self.last_valid_predictions = self._evaluate(valid_loader)
            record["valid"] = valid
            score = monitor_value(valid, cfg.monitor)
            # the first epoch is always the best so far, even with an undefined (nan) score
            improved = st.best_epoch == 0 or score > st.best_score
            record["improved"] = improved
            if improved:
                st.best_score, st.bad_epochs = score, 0
                st.best_epoch, st.best_valid = epoch, valid
                st.best_state = None  # the current weights are the best
                st.best_optimizers = None
            else:
                if st.best_state is None:
                    # the previous epoch's weights were the best: hold them from now on
                    st.best_state = self._best_so_far
                    st.best_optimizers = self._best_optimizers_so_far
                st.bad_epochs += 1
                for group in self._param_groups():
                    group["lr"] = max(group["lr"] * cfg.reduce_lr_factor, cfg.min_lr)
            self._hold_current_as_best(st)
            st.history.append(record)
            log.info(
                "epoch %d: loss %.5f | valid %s | %.1fs train, %.1fs eval%s",
                epoch,
                record.get("train_total_loss", float("nan")),
                " ".join(f"{k} {v:.6f}" for k, v in valid.items() if k != "seconds"),
                record["train_seconds"],
                valid["seconds"],
                ""
                if improved
                else f" | no improvement ({st.bad_epochs}/{cfg.patience}), lr -> {self.lr:g}",
            )
            st.stopped_early = not improved and st.bad_epochs >= cfg.patience
            st.loader_epoch = getattr(train_loader, "epoch", None)
            if on_epoch_end is not None:
                on_epoch_end(record)
            if on_checkpoint is not None:
                on_checkpoint(self.checkpoint(st))
        if st.best_state is not None:
            self.model.load_state_dict(st.best_state)
            # resumed from a checkpoint written before optimizer states were kept: unknown
            self.best_optimizers_known = st.best_optimizers is not None
        self._best_optimizers = st.best_optimizers
        return FitResult(
            history=st.history,
            best_epoch=st.best_epoch,
            best_valid=st.best_valid,
            stopped_early=st.stopped_early,
        )

    # -- checkpoints ----------------------------------------------------------

    _best_so_far: dict[str, torch.Tensor] | None = None
    _best_optimizers_so_far: list[dict[str, Any]] | None = None
    _best_optimizers: list[dict[str, Any]] | None = None
    #: after fit: whether :meth:`best_optimizer_states` knows the best epoch's states
    best_optimizers_known: bool = True

    def best_optimizer_states(self) -> list[dict[str, Any]]:
        """After :meth:`fit`: the optimizers' state dicts as they were after the best epoch,
        whose weights fit restored (a run directory's optimizer.pt). The optimizers themselves
        keep their last state and learning rate."""
        if self._best_optimizers is not None:
            return self._best_optimizers
        return [opt.state_dict() for opt in self.optimizers]

    def _hold_current_as_best(self, state: FitState) -> None:
        # copies of the current weights and optimizer states while they are the best: the
        # next epoch may not improve, and then these are the ones restored at the end
        current_is_best = state.best_state is None
        self._best_so_far = copy.deepcopy(self.model.state_dict()) if current_is_best else None
        self._best_optimizers_so_far = (
            [copy.deepcopy(opt.state_dict()) for opt in self.optimizers]
            if current_is_best
            else None
        )

    def checkpoint(self, state: FitState) -> dict[str, Any]:
        """Everything :meth:`fit` needs to continue after ``state.epoch``.

        The model, every optimizer (dense Adam and the lazy sparse one; the learning rate
        lives in their param groups), the fit state (early stopping, history, best
        weights when they are not the current ones) and every global RNG state.
        """
        held = ("best_state", "best_optimizers")
        fit = {k: getattr(state, k) for k in FitState.__dataclass_fields__ if k not in held}
        return {
            "format": 1,
            "model": self.model.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "fit": fit,
            "best_model": state.best_state,
            "best_optimizers": state.best_optimizers,
            "rng": rng_state(),
        }

    def load_checkpoint(self, checkpoint: dict[str, Any]) -> FitState:
        """Restore a :meth:`checkpoint` (saved on any device); returns the state for :meth:`fit`."""
        self.model.load_state_dict(checkpoint["model"])
        saved = checkpoint["optimizers"]
        if len(saved) != len(self.optimizers):
            raise UserError(
                f"the checkpoint has {len(saved)} optimizer(s), this run {len(self.optimizers)}"
                " (train.sparse_embedding differs)"
            )
        for opt, opt_state in zip(self.optimizers, saved, strict=True):
            opt.load_state_dict(opt_state)
        state = FitState(
            **checkpoint["fit"],
            best_state=checkpoint["best_model"],
            best_optimizers=checkpoint.get("best_optimizers"),  # absent before 2026-12-07
        )
        self._hold_current_as_best(state)
        set_rng_state(checkpoint["rng"])
        return state
