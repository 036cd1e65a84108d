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

import tf4ctr.run as run
from tf4ctr.cli import main

_EPOCH = int(os.environ["STOP_AFTER_EPOCH"])
_SIGNAL = getattr(signal, "SIG" + os.environ.get("STOP_SIGNAL", "KILL"))
_save = run.atomic_torch_save


def _save_then_signal(obj, path):
    _save(obj, path)
    if isinstance(obj, dict) and obj.get("fit", {}).get("epoch") == _EPOCH:
        os.kill(os.getpid(), _SIGNAL)


run.atomic_torch_save = _save_then_signal
sys.exit(main(sys.argv[1:]))
