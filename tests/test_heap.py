"""keep_freed_memory: glibc's thresholds raised once per process, unless declined."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

# the module alone, by its path: importing the package would import torch (seconds)
_PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("heap", sys.argv[1])
heap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(heap)
print(json.dumps({"applied": heap.keep_freed_memory(), "again": heap.keep_freed_memory()}))
"""


def _probe(system_malloc: str) -> dict:
    from tf4ctr.train import heap

    env = {**os.environ, "TF4CTR_SYSTEM_MALLOC": system_malloc}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, heap.__file__],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_applied_on_glibc_unless_declined():
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert _probe("") == {"applied": True, "again": True}
    assert _probe("1") == {"applied": False, "again": False}


def test_decided_once_per_process(monkeypatch):
    from tf4ctr.train import heap

    monkeypatch.setattr(heap, "_applied", None)
    monkeypatch.setenv("TF4CTR_SYSTEM_MALLOC", "1")
    assert heap.keep_freed_memory() is False
    monkeypatch.setenv("TF4CTR_SYSTEM_MALLOC", "0")
    assert heap.keep_freed_memory() is False  # the first answer stands


def test_falls_back_to_32_mb_where_glibc_refuses_more(monkeypatch):
    """Older glibc refuses an mmap threshold above half its 64 MB heap: the second try must
    ask for 32 MB, and the trim threshold is still set."""
    from tf4ctr.train import heap

    calls = []

    def mallopt(param, value):
        calls.append((param, value))
        return 0 if param == heap._M_MMAP_THRESHOLD and value > 32 * 2**20 else 1

    # a function takes the argtypes/restype the module sets, like ctypes' foreign function
    fake_libc = types.SimpleNamespace(mallopt=mallopt)

    monkeypatch.setattr(heap, "_applied", None)
    monkeypatch.setenv("TF4CTR_SYSTEM_MALLOC", "0")
    monkeypatch.setattr(heap.sys, "platform", "linux")
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: fake_libc)
    assert heap.keep_freed_memory() is True
    assert calls == [
        (heap._M_MMAP_THRESHOLD, heap.MMAP_THRESHOLD),
        (heap._M_MMAP_THRESHOLD, 32 * 2**20),
        (heap._M_TRIM_THRESHOLD, heap.TRIM_THRESHOLD),
    ]
