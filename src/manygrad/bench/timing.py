"""Correct timing on CPUs and GPUs: warm-up, device synchronisation, enough calls per
repeat that the clock and the sync are negligible, median of repeats with its spread."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from .. import backend


@dataclass
class Timing:
    """Seconds per call: median over repeats, with the quartiles as the spread."""

    per_call: list[float] = field(default_factory=list)
    calls_per_repeat: int = 1
    overhead: float = 0.0  # the harness's own share of a repeat (clock, loop, sync)

    @property
    def median(self) -> float:
        return statistics.median(self.per_call)

    @property
    def spread(self) -> tuple[float, float]:
        if len(self.per_call) < 2:
            return self.median, self.median
        q = statistics.quantiles(self.per_call, n=4)
        return q[0], q[2]

    @property
    def spread_pct(self) -> float:
        lo, hi = self.spread
        return 100.0 * (hi - lo) / self.median if self.median else 0.0


def _sync_for(device):
    d = backend.device(device)
    if d.type == "cuda":
        return lambda: backend.synchronize(d)
    return lambda: None


def _repeat(fn, n, sync) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(n >> 3):  # NOTE: unrolled, so loop bookkeeping stays far below 1%
        fn(), fn(), fn(), fn(), fn(), fn(), fn(), fn()
    for _ in range(n & 7):
        fn()
    sync()
    return time.perf_counter() - t0


def measure(fn, device="cpu", repeats: int = 7, warmup: int = 2,
            min_repeat_s: float = 0.05, max_calls: int = 1 << 16, sync=None) -> Timing:  # fmt: skip
    """Time ``fn()`` on ``device``.

    Args:
        fn: the work; it must enqueue its device work (GPU calls are asynchronous).
        repeats: timed repeats (default 7); the median is reported.
        warmup: untimed calls first (default 2): compilation, allocator, caches.
        min_repeat_s: each repeat runs enough calls to last this long (default 0.05 s), so
            the clock, the loop and the one synchronisation per repeat cost well under 1%.
        sync: how to wait for the device (default: manygrad's synchronize for ``device``).
    """
    sync = sync or _sync_for(device)
    for _ in range(warmup):
        fn()
    sync()
    n = 1
    while True:  # calibrate the calls per repeat
        dt = _repeat(fn, n, sync)
        if dt >= min_repeat_s or n >= max_calls:
            break
        n = min(max_calls, max(n * 2, int(n * min_repeat_s / max(dt, 1e-9) * 1.2)))
    per_call = [_repeat(fn, n, sync) / n for _ in range(repeats)]
    empty = min(_repeat(_noop, n, sync) for _ in range(3))
    t = Timing(per_call, n)
    t.overhead = empty / (t.median * n) if t.median else 0.0
    return t


def _noop():
    return None
