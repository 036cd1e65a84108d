"""Under torchrun: a few steps of sparse-embedding training, its weights written for the test.

    SPARSE_DDP_OUT=DIR torchrun --standalone --nproc_per_node=2 tests/helpers/sparse_ddp.py

Two cases on the tiny data of tests/test_distributed.py's sparse test (``sparse_case`` there
builds the same model, data and steps in one process): embedding L2 0 (rank 0 saves the
weights, which one process must match) and 0.1 (the ranks must only agree). Each rank writes
the sha256 of its parameters per case, so the test sees that the ranks hold the same tables.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.helpers.ddp_matrix import parameter_digest  # noqa: E402
from tests.helpers.sparse_case import STEPS, build, loader  # noqa: E402
from tf4ctr.train import Trainer  # noqa: E402
from tf4ctr.train.distributed import world  # noqa: E402


def main() -> int:
    torch.set_num_threads(1)
    w = world()
    assert w.distributed, "run under torchrun with 2 processes"
    out = Path(os.environ["SPARSE_DDP_OUT"])
    for l2 in (0.0, 0.1):
        model, objective, config = build(l2)
        trainer = Trainer(model, objective, config, world=w)
        trainer.train_epoch(loader(shard=(w.rank, w.size), steps=STEPS))
        (out / f"rank{w.rank}-l2{l2}.sha256").write_text(parameter_digest(model))
        if w.is_writer and l2 == 0.0:
            torch.save(model.state_dict(), out / "two-ranks.pt")
    w.barrier()
    torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # as ddp_matrix.py: no interpreter teardown of torch's threads
