"""Data-parallel training on PyTorch's own engine: torchrun + DistributedDataParallel.

``torchrun --standalone --nproc_per_node=N -m tf4ctr train --config C`` starts N processes;
each trains the same model on a disjoint slice of every global batch (the global batch stays
``train.batch_size``), DDP averages the gradients, and every rank therefore holds the same
weights after every step. Evaluation is split by whole batches and gathered back in order,
so every rank computes the same metrics as one process scoring the same weights, and takes
the same early-stopping and learning-rate decisions. Only rank 0 writes the run directory.
Backend: gloo on CPU, NCCL on GPU.
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


def world(device: torch.device | None = None) -> World:
    """This process's place: set up the process group when torchrun started several."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    if not dist.is_initialized():
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return World(dist.get_rank(), dist.get_world_size())
