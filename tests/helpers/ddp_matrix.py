"""Under torchrun: train several models for a few DDP steps each, in one process group.

    torchrun --standalone --nproc_per_node=2 tests/helpers/ddp_matrix.py

Each case is a model, a loss, an embedding L2 and whether the data has a numeric field. A
case passes when DDP trains it (DDP stops a step in which a parameter got no gradient) and
every rank ends with the same parameters; it prints ``ok <case>``. Any failure raises.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch

from tf4ctr.config import LossConfig, TrainConfig
from tf4ctr.data import BatchLoader
from tf4ctr.data.preprocess import EncodedSplit
from tf4ctr.models import build_model
from tf4ctr.run import build_objective, layer_options
from tf4ctr.train import Trainer
from tf4ctr.train.distributed import world

# (model, loss, embedding_l2, numeric field?): the default TF4CTR config of the issue
# (no numeric field, no L2), twin models whose heads only z_s / z_c read, single-logit
# models under the other losses, CL4CTR's auxiliary loss
CASES = [
    ("tf4ctr", "tf", 0.0, False),
    ("tf4ctr", "tf", 0.1, True),
    ("tf4ctr", "bce", 0.0, True),
    ("dcn", "bce", 0.0, False),
    ("edcn", "focal", 0.1, True),
    ("gdcn", "tf", 0.0, True),
    ("tf4ctr_deepfm", "rce", 0.0, False),
    ("dnn", "focal", 0.0, False),
    ("cl4ctr", "bce", 0.1, False),
    ("finalmlp", "tf", 0.0, True),
]


@dataclass
class Schema:
    vocab_sizes: list
    numeric: tuple = ()


def _split(numeric: bool, n: int = 256) -> EncodedSplit:
    rng = np.random.default_rng(0)
    vocab = [7, 12, 5]
    cat = np.stack([rng.integers(0, v, n) for v in vocab], 1).astype(np.int32)
    num = rng.random((n, 1 if numeric else 0)).astype(np.float32)
    label = (rng.random(n) < 0.4).astype(np.float32)
    return EncodedSplit(categorical=cat, numeric=num, label=label)


def parameter_digest(model: torch.nn.Module) -> str:
    """The parameters' bytes (batch-norm running statistics are each rank's own until DDP
    broadcasts rank 0's at the next forward)."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    torch.set_num_threads(1)
    w = world()
    assert w.distributed, "run under torchrun with 2 processes"
    for name, loss, l2, numeric in CASES:
        case = f"{name} loss={loss} embedding_l2={l2} numeric={numeric}"
        torch.manual_seed(0)
        schema = Schema([7, 12, 5], ("n1",) if numeric else ())
        model = build_model(name, schema, layer_options=layer_options(TrainConfig()))
        objective = build_objective(LossConfig(name=loss, embedding_l2=l2))
        trainer = Trainer(model, objective, TrainConfig(progress=False), world=w)
        loader = BatchLoader(_split(numeric), 64, shuffle=True, seed=1, shard=(w.rank, w.size))
        trainer.train_epoch(loader)  # 4 steps: DDP refuses the 2nd if one had an unused one
        digests = w.gather(parameter_digest(model))
        assert len(set(digests)) == 1, f"{case}: ranks hold different weights"
        if w.is_writer:
            print(f"ok {case}", flush=True)
    if w.is_writer:
        print(f"{len(CASES)} cases trained")
    w.barrier()
    torch.distributed.destroy_process_group()  # an undestroyed gloo group can abort at exit
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Under load a rank once aborted ("terminate called without an active exception") after
    # its cases: leave without the interpreter's teardown of torch's threads
    os._exit(code)
