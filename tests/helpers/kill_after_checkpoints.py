"""Run the tf4ctr command line and SIGKILL this process right after its N-th checkpoint,
counted over every run it trains (a tune's trials one after another).

    KILL_AFTER_CHECKPOINTS=3 python tests/helpers/kill_after_checkpoints.py tune search.yaml

With two epochs a trial, N=3 lets the first trial finish and kills the second after its
first epoch: a known point, so the test of a killed tune needs no timing.
"""

from __future__ import annotations

import os
import signal
import sys

from tf4ctr.cli import main
from tf4ctr.run.record import add_after_checkpoint

_LIMIT = int(os.environ["KILL_AFTER_CHECKPOINTS"])
_seen = 0


def _count(epoch, path):
    global _seen
    _seen += 1
    if _seen == _LIMIT:
        os.kill(os.getpid(), signal.SIGKILL)


add_after_checkpoint(_count)
sys.exit(main(sys.argv[1:]))
