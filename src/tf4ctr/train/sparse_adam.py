"""Lazy row-wise Adam for the embedding tables: ``torch.optim.SparseAdam``'s update, on rows.

``SparseAdam`` builds three sparse tensors a step per table (``sparse_mask`` of each moment,
then a sparse add into each moment and into the weight) and coalesces the gradient; at a
Criteo batch (~50k distinct rows of two tables) that is most of the table update's time.
:class:`RowSparseAdam` reads the touched rows of each moment with one ``index_select``,
computes the same expressions in the same order, and writes them back with
``index_copy_``: every value is the same bit for bit (tests/test_sparse_adam.py), the
state (``step``, ``exp_avg``, ``exp_avg_sq``) and its ``state_dict`` are SparseAdam's, so a
checkpoint of one loads into the other.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RowSparseAdam"]


class RowSparseAdam(torch.optim.SparseAdam):
    """``torch.optim.SparseAdam`` (lazy Adam: only the rows a step touched move; one step
    count per table for the bias correction) computed on dense row blocks."""

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = float(group["lr"]), group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("RowSparseAdam needs sparse gradients; use Adam for dense")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                grad = p.grad.coalesce()  # free when the table built it coalesced
                values = grad._values()
                if values.numel() == 0:
                    continue
                if group.get("maximize", False):
                    values = -values
                rows = grad._indices()[0]
                _update_rows(
                    p, state["exp_avg"], state["exp_avg_sq"], rows, values,
                    step=state["step"], lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                )  # fmt: skip
        return loss


def _update_rows(
    param: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    rows: torch.Tensor,
    grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> None:
    """One lazy Adam update of ``rows`` (distinct), as ``torch.optim._functional.sparse_adam``
    writes it: m += (g − m)(1 − β1); v += (g² − v)(1 − β2); p −= step_size · m / (√v + ε)."""
    old_m = exp_avg.index_select(0, rows)
    new_m = grad.sub(old_m).mul_(1 - beta1).add_(old_m)
    exp_avg.index_copy_(0, rows, new_m)
    old_v = exp_avg_sq.index_select(0, rows)
    new_v = grad.pow(2).sub_(old_v).mul_(1 - beta2).add_(old_v)
    exp_avg_sq.index_copy_(0, rows, new_v)
    denom = new_v.sqrt_().add_(eps)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    update = -step_size * new_m.div_(denom)
    param.index_copy_(0, rows, param.index_select(0, rows).add_(update))
