"""The order of a training epoch: a full shuffle, or a block shuffle for data read from disk.

A full shuffle (one permutation of every row) makes each batch gather rows from anywhere in
the split. From memory that costs nothing; from a memory-mapped cache that is not in the page
cache it costs a random disk read per row and column. A block shuffle keeps the reads close:
the split is cut into blocks of ``block_rows`` consecutive rows, the blocks are put in a
random order, and each run of ``buffer_blocks`` blocks of that order (a buffer) is shuffled
row by row before its batches are cut. Every row is still seen once an epoch, but a batch
draws from one buffer only, so an epoch reads each column file a buffer at a time.
"""

from __future__ import annotations

import torch

__all__ = ["block_order"]


def block_order(
    n: int, block_rows: int, buffer_blocks: int, generator: torch.Generator
) -> torch.Tensor:
    """A block-shuffled order of ``range(n)`` (int64): blocks permuted, rows shuffled within
    each buffer of ``buffer_blocks`` consecutive blocks of that permutation."""
    if block_rows < 1 or buffer_blocks < 1:
        raise ValueError(
            f"block_rows and buffer_blocks must be >= 1, got {block_rows}, {buffer_blocks}"
        )
    blocks = torch.randperm(-(-n // block_rows), generator=generator)
    order = torch.empty(n, dtype=torch.long)
    at = 0
    for first in range(0, len(blocks), buffer_blocks):
        starts = blocks[first : first + buffer_blocks] * block_rows
        lengths = (n - starts).clamp(max=block_rows)
        total = int(lengths.sum())
        # the rows of the buffer's blocks, block after block: each block's start repeated over
        # its length, plus the position inside the block
        offsets = torch.arange(total) - torch.repeat_interleave(
            lengths.cumsum(0) - lengths, lengths
        )
        rows = torch.repeat_interleave(starts, lengths) + offsets
        order[at : at + total] = rows[torch.randperm(total, generator=generator)]
        at += total
    return order
