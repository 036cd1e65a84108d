"""torch's dropout masks for a training step, drawn on a second thread: the same masks, sooner.

torch's CPU ``bernoulli_`` is serial: a 10,000 × 400 mask takes about as long at two threads
as at one, about as long as one of the layer's matrix products at two threads, and the other
core idles meanwhile. TF4CTR draws five such masks a step. Here the trainer tells
:class:`StepMasks` how many rows the step has; a second thread then draws that step's masks
from a private generator that starts from the default generator's state, in the order the
first step drew them, while the main thread computes. Each dropout takes its mask from the
queue, and after the forward pass the default generator is set to where the private one
ended — exactly where drawing the same masks in line would have left it. Masks, outputs and
everything after are therefore the same as with ``nn.functional.dropout`` (tests compare them
bit for bit).

It only switches on once the first step showed that its dropout masks are *all* the step
draws from the default generator (replaying them from the step's starting state must land on
the state the step ended in); a model that draws anything else (``nn.Dropout`` used directly,
random augmentation) keeps drawing in line. ``TF4CTR_NO_MASK_PREFETCH=1`` turns it off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from tf4ctr._env import env_flag

__all__ = ["StepMasks", "current_step_masks", "step_masks_active"]

log = logging.getLogger(__name__)

_current: StepMasks | None = None


def current_step_masks() -> StepMasks | None:
    return _current


@contextmanager
def step_masks_active(masks: StepMasks | None) -> Iterator[None]:
    """Make ``masks`` the one dropout layers consult, for the duration of a training epoch."""
    global _current
    previous, _current = _current, masks
    try:
        yield
    finally:
        _current = previous


def _noise(shape: tuple[int, ...], dtype: torch.dtype, p: float, generator: torch.Generator):
    """What ``nn.functional.dropout`` multiplies by on CPU: a Bernoulli(1 − p) draw per element,
    divided by 1 − p, in the input's dtype."""
    return torch.empty(shape, dtype=dtype).bernoulli_(1 - p, generator=generator).div_(1 - p)


class StepMasks:
    """One trainer's dropout masks, drawn a step ahead on a second thread (see the module)."""

    #: class-wide switch (benchmarks' A/B); the environment variable turns it off too
    enabled = True

    def __init__(self) -> None:
        self.plan: list[tuple[tuple[int, ...], float, torch.dtype]] | None = None
        self.disabled = env_flag("TF4CTR_NO_MASK_PREFETCH")
        self._rows = 0
        self._recording: list[tuple[tuple[int, ...], float, torch.dtype]] | None = None
        self._start_state: torch.Tensor | None = None
        self._generator = torch.Generator()
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        self._taken = 0

    def begin(self, rows: int) -> None:
        """A training step of ``rows`` rows starts: record its draws, or start drawing them."""
        if self.disabled or not StepMasks.enabled:
            return
        self._rows = rows
        if self.plan is None:
            self._recording = []
            self._start_state = torch.get_rng_state()
            return
        self._generator.set_state(torch.get_rng_state())
        jobs = [((rows, *shape), p, dtype) for shape, p, dtype in self.plan]
        out: queue.SimpleQueue = queue.SimpleQueue()
        generator = self._generator

        def draw() -> None:
            try:
                for shape, p, dtype in jobs:
                    out.put(_noise(shape, dtype, p, generator))
            except BaseException as exc:  # handed to the main thread, which raises it
                out.put(exc)

        self._queue, self._taken = out, 0
        self._thread = threading.Thread(target=draw, name="tf4ctr-dropout-masks", daemon=True)
        self._thread.start()

    def take(self, x: torch.Tensor, p: float) -> torch.Tensor | None:
        """The noise to multiply ``x`` by, or None: then the caller draws it as usual."""
        if self._recording is not None:
            self._recording.append((tuple(x.shape), p, x.dtype))
            return None
        if self._queue is None or self.plan is None:
            return None
        shape, plan_p, dtype = (
            self.plan[self._taken] if self._taken < len(self.plan) else ((), -1, None)
        )
        if (self._rows, *shape) != tuple(x.shape) or plan_p != p or dtype != x.dtype:
            self._stop("a dropout met in a different order or shape than in the first step")
            return None
        noise = self._queue.get()
        if isinstance(noise, BaseException):
            raise noise
        self._taken += 1
        return noise

    def end(self) -> None:
        """The forward pass is over: hand the generator state back, or check what was recorded."""
        if self._recording is not None:
            recorded, self._recording = self._recording, None
            replay = torch.Generator()
            replay.set_state(self._start_state)
            for shape, p, dtype in recorded:
                _noise(shape, dtype, p, replay)
            if (
                recorded
                and all(shape[0] == self._rows for shape, _, _ in recorded)
                and torch.equal(replay.get_state(), torch.get_rng_state())
            ):
                self.plan = [(shape[1:], p, dtype) for shape, p, dtype in recorded]
            else:
                self.disabled = True  # the step draws more than its masks: keep drawing in line
            return
        if self._thread is not None:
            self._hand_back()
            if self.plan is not None and self._taken != len(self.plan):
                self._stop("a step used fewer dropout masks than the first step")

    def _stop(self, why: str) -> None:
        """Give up prefetching for good; the run goes on with fresh masks drawn in line."""
        log.warning("dropout masks are drawn in line from now on: %s", why)
        if self._thread is not None:
            self._hand_back()
        self.disabled = True

    def _hand_back(self) -> None:
        """Wait for the drawing thread, then give the default generator the state it left."""
        assert self._thread is not None
        self._thread.join()
        self._thread, self._queue = None, None
        torch.set_rng_state(self._generator.get_state())
