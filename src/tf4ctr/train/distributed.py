"""Data-parallel training on PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --standalone --nproc_per_node=N -m tf4ctr train --config C`` starts N processes;
each trains the same model on a disjoint slice of every global batch (the global batch stays
``train.batch_size``), DDP averages the gradients, and every rank therefore holds the same
weights after every step. Evaluation is split by whole batches and gathered back in order,
so every rank computes the same metrics as one process scoring the same weights, and takes
the same early-stopping and learning-rate decisions. Only rank 0 writes the run directory.
Backend: gloo on CPU, NCCL on GPU.

Sparse embedding tables (``train.sparse_embedding``) stay outside DDP, which knows sparse
gradients only from ``nn.Embedding``: after each backward the ranks exchange their touched
rows and gradients (:meth:`World.mean_sparse_gradients`), and the lazy Adam then makes the
same update on every rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["World", "world"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_writer(self) -> bool:
        """Whether this process writes files (rank 0, or the only process)."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Overwrite each tensor with rank 0's, in place."""
        if self.distributed:
            for t in tensors:
                dist.broadcast(t.data, src=0)

    def mean_sparse_gradients(self, parameters: list[torch.Tensor]) -> None:
        """Replace each parameter's sparse gradient by the mean over ranks, coalesced: what DDP
        does for a dense one (the sum over ranks divided by their number), on the rows only.

        Every rank's touched rows and their values are gathered (their counts first, then both
        padded to the longest), concatenated in rank order and summed per row, so every rank
        ends with the same gradient, bit for bit.
        """
        if not self.distributed:
            return
        for p in parameters:
            grad = p.grad
            if grad is None:
                grad = torch.sparse_coo_tensor(
                    torch.zeros(1, 0, dtype=torch.long), p.new_zeros(0, *p.shape[1:]), p.shape
                )
            grad = grad.coalesce()
            rows, values = grad._indices()[0], grad._values()
            counts = [torch.zeros(1, dtype=torch.long) for _ in range(self.size)]
            dist.all_gather(counts, torch.tensor([rows.numel()]))
            longest = int(max(c.item() for c in counts))
            padded_rows = rows.new_zeros(longest)
            padded_rows[: rows.numel()] = rows
            padded_values = values.new_zeros(longest, *values.shape[1:])
            padded_values[: rows.numel()] = values
            all_rows = [torch.empty_like(padded_rows) for _ in range(self.size)]
            all_values = [torch.empty_like(padded_values) for _ in range(self.size)]
            dist.all_gather(all_rows, padded_rows)
            dist.all_gather(all_values, padded_values)
            kept = [int(c.item()) for c in counts]
            rows = torch.cat([r[:n] for r, n in zip(all_rows, kept, strict=True)])
            values = torch.cat([v[:n] for v, n in zip(all_values, kept, strict=True)])
            p.grad = torch.sparse_coo_tensor(
                rows.unsqueeze(0), values.div_(self.size), p.shape, check_invariants=False
            ).coalesce()


def world(device: torch.device | None = None) -> World:
    """This process's place: set up the process group when torchrun started several."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size())
