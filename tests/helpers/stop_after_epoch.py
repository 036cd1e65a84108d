"""Run the tf4ctr command line, and send this process a signal right after epoch K's checkpoint.

    STOP_AFTER_EPOCH=2 STOP_SIGNAL=KILL python tests/helpers/stop_after_epoch.py train --config r.yaml

The signal arrives at a known point (the checkpoint of epoch K is on disk), so a test of
kill / Ctrl-C / SIGTERM and resume needs no timing. Counting is per process: in a grid the
K-th checkpoint of the first cell that reaches it.
"""

from __future__ import annotations

import os
import signal
import sys

from tf4ctr.cli import main
from tf4ctr.run.record import add_after_checkpoint

_EPOCH = int(os.environ["STOP_AFTER_EPOCH"])
_SIGNAL = getattr(signal, "SIG" + os.environ.get("STOP_SIGNAL", "KILL"))


def _signal_after(epoch, path):
    if epoch == _EPOCH:
        os.kill(os.getpid(), _SIGNAL)


add_after_checkpoint(_signal_after)
sys.exit(main(sys.argv[1:]))
