"""Keep freed memory in the process, so the next batch's tensors reuse it (glibc only).

A training step allocates and frees the same large activation tensors every batch (a
10,000 × 400 float tensor is 16 MB). glibc serves blocks that large with a fresh ``mmap``, or
trims them off the top of its heap when freed, so a step keeps touching new pages: thousands
of page faults a step on Frappe's MLP block, each zero-filling a 4 KB page in the kernel — a
pass over memory the arithmetic never asked for. Raising glibc's mmap and trim thresholds keeps
freed blocks on the heap for the next step. With ``benchmarks/tf4ctr_worker.py --model tf4ctr``
on Frappe_x1: page faults of a one-thread epoch 240-280k instead of 480-570k; on the idle
machine, six alternating pairs at two threads (benchmarks/results/heap_ab.txt), evaluation
123k instead of 106k samples/s (median; faster in 5 of 6 pairs), training 9.8 instead of
10.3 s an epoch (median, within the run-to-run spread), peak RSS the same.

The price: the process keeps its heap at its peak until it exits, rather than shrinking
between steps. Set ``TF4CTR_SYSTEM_MALLOC=1`` to leave the allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

from tf4ctr._env import env_flag

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks below this come from the heap and are reused; larger ones (a whole-split tensor
# at evaluation, say) still go straight back to the kernel when freed.
MMAP_THRESHOLD = 256 * 2**20
# free memory the heap may hold at its top before giving it back
TRIM_THRESHOLD = 1024 * 2**20

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True when they are set.

    False (and nothing changed) off Linux, on a C library without ``mallopt`` (musl), or
    when ``TF4CTR_SYSTEM_MALLOC=1``. Changes no result, only where freed memory goes.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if env_flag("TF4CTR_SYSTEM_MALLOC"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # some glibc versions refuse an mmap threshold above 32 MB (half their heap size)
    threshold = next((t for t in (MMAP_THRESHOLD, 32 * 2**20) if mallopt(_M_MMAP_THRESHOLD, t)), 0)
    _applied = bool(threshold) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    log.debug("glibc mmap threshold %d, trim threshold %d: %s", threshold, TRIM_THRESHOLD, _applied)
    return _applied
