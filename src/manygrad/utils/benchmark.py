"""``torch.utils.benchmark``: time a statement the way PyTorch's benchmark scripts do, with
``Timer`` (``timeit``, ``blocked_autorange``, ``adaptive_autorange``), the ``Measurement``
it returns (median, IQR, a warning when the machine was noisy) and ``Compare`` tables.

On a GPU the clock waits for queued kernels (``mg.cuda.synchronize``) before each reading,
so the time is the GPU's, not the launch's.

Example:
    >>> from manygrad.utils import benchmark
    >>> t = benchmark.Timer("x @ x", setup="x = mg.randn(256, 256)", globals={"mg": mg})
    >>> m = t.blocked_autorange(min_run_time=0.2)
    >>> m.median                      # seconds per run
"""

from __future__ import annotations

import enum
import math
import textwrap
import time
import timeit as _timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Compare", "Language", "Measurement", "TaskSpec", "Timer", "select_unit", "timer",
           "trim_sigfig"]  # fmt: skip

_MAX_SIGNIFICANT_FIGURES = 4
_MIN_CONFIDENCE_INTERVAL = 25e-9  # seconds: clock resolution and jitter


def timer() -> float:
    """``time.perf_counter()``, after the GPU's queued work when one is in use."""
    from .. import cuda

    if cuda.is_available() and cuda.is_initialized():
        cuda.synchronize()
    return time.perf_counter()


class Language(enum.Enum):
    PYTHON = 0
    CPP = 1


@dataclass(frozen=True)
class TaskSpec:
    """What was timed: the statement, its setup and the labels for reports."""

    stmt: str
    setup: str
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        if "\n" not in self.stmt:
            return self.stmt + (f": {self.sub_label}" if self.sub_label else "")
        return f"stmt:{f' ({self.sub_label})' if self.sub_label else ''}\n" + textwrap.indent(
            self.stmt, "  "
        )

    def summarize(self) -> str:
        lines = [self.title]
        if self.description:
            lines.append(self.description)
        if self.setup and self.setup != "pass":
            if "\n" in self.setup:
                lines += ["setup:", textwrap.indent(self.setup, "  ")]
            else:
                lines.append(f"setup: {self.setup}")
        return "\n".join(lines)


def select_unit(t: float) -> tuple[str, float]:
    """The unit to show ``t`` seconds in and its size: ("ns", 1e-9) ... ("s", 1)."""
    time_unit = {-3: "ns", -2: "us", -1: "ms"}.get(int(math.log10(t) // 3) if t > 0 else -3, "s")
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1}[time_unit]
    return time_unit, scale


def trim_sigfig(x: float, n: int) -> float:
    """``x`` rounded to ``n`` significant figures."""
    if x == 0:
        return 0.0
    magnitude = int(math.ceil(math.log10(abs(x))))
    scale = 10 ** (magnitude - n)
    return float(round(x / scale) * scale)


@dataclass
class Measurement:
    """Times of ``number_per_run`` runs each (``raw_times``, seconds) of ``task_spec``;
    ``times`` are per run."""

    number_per_run: int
    raw_times: list[float]
    task_spec: TaskSpec
    metadata: dict[str, Any] | None = None
    _sorted: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._sorted = sorted(self.times)

    @property
    def times(self) -> list[float]:
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self) -> float:
        return float(np.median(self._sorted))

    @property
    def mean(self) -> float:
        return float(np.mean(self._sorted))

    @property
    def iqr(self) -> float:
        return float(np.percentile(self._sorted, 75) - np.percentile(self._sorted, 25))

    @property
    def title(self) -> str:
        return self.task_spec.title

    @property
    def env(self) -> str | None:
        return self.task_spec.env

    @property
    def has_warnings(self) -> bool:
        return bool(self._warnings())

    @property
    def significant_figures(self) -> int:
        """How many figures of the median the spread of the middle half supports (1-4)."""
        n = len(self._sorted)
        middle = self._sorted[n // 4 : int(math.ceil(3 * n / 4))] or self._sorted
        ci = max(1.645 * float(np.std(middle)) / math.sqrt(len(middle)), _MIN_CONFIDENCE_INTERVAL)
        figures = int(math.floor(math.log10(self.median / ci))) if self.median > 0 else 1
        return min(max(figures, 1), _MAX_SIGNIFICANT_FIGURES)

    def _warnings(self) -> list[str]:
        if len(self._sorted) < 4 or self.median <= 0:
            return []
        rel = self.iqr / self.median
        if rel <= 0.1:
            return []
        return [
            f"WARNING: Interquartile range is {rel * 100:.1f}% of the median measurement.",
            "         This suggests significant environmental influence.",
        ]

    def __repr__(self) -> str:
        unit, scale = select_unit(self.median)
        n = len(self._sorted)
        threads = self.task_spec.num_threads
        lines = [f"<{__name__}.Measurement object at {hex(id(self))}>", self.task_spec.summarize()]
        if n > 1:
            q25, q75 = (float(np.percentile(self._sorted, q)) for q in (25, 75))
            lines += [
                f"  Median: {self.median / scale:.2f} {unit}",
                f"  IQR:    {self.iqr / scale:.2f} {unit} ({q25 / scale:.2f} to {q75 / scale:.2f})",
                f"  {n} measurements, {self.number_per_run} runs per measurement, {threads} "
                f"thread{'s' if threads != 1 else ''}",
            ]
        else:
            lines += [
                f"  {self.median / scale:.2f} {unit}",
                f"  1 measurement, {self.number_per_run} runs , {threads} "
                f"thread{'s' if threads != 1 else ''}",
            ]
        lines += ["  " + w for w in self._warnings()]
        return "\n".join(lines)


class Timer:
    """Time ``stmt`` (Python source) after ``setup``, in a namespace made from ``globals``.

    Args:
        stmt, setup: Python source strings (``setup`` runs once per measurement loop).
        timer: the clock (default: ``timer``, which waits for the GPU).
        globals: names the statement uses.
        label, sub_label, description, env: labels for ``Measurement`` and ``Compare``.
        num_threads: CPU threads while timing (restored after).
    """

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "",
                 timer: Callable[[], float] = timer, globals: dict[str, Any] | None = None,  # noqa: A002
                 label: str | None = None, sub_label: str | None = None,
                 description: str | None = None, env: str | None = None, num_threads: int = 1,
                 language: Language | str = Language.PYTHON) -> None:  # fmt: skip
        if language not in (Language.PYTHON, "py", "python"):
            raise ValueError("Timer: only Python statements are supported (language='python')")
        if not isinstance(stmt, str):
            raise ValueError(f"Timer: stmt must be a string of Python source, got {type(stmt)}")
        if global_setup:
            raise ValueError("Timer: global_setup is for C++ statements; use setup=")
        self._task_spec = TaskSpec(textwrap.dedent(stmt).strip() or "pass",
                                   textwrap.dedent(setup).strip() or "pass", global_setup, label,
                                   sub_label, description, env, num_threads)  # fmt: skip
        self._timer = _timeit.Timer(self._task_spec.stmt, self._task_spec.setup, timer,
                                    globals=dict(globals or {}))  # fmt: skip

    def _timeit(self, number: int) -> float:
        from .. import get_num_threads, set_num_threads

        before = get_num_threads()
        set_num_threads(self._task_spec.num_threads)
        try:
            return max(self._timer.timeit(number), 1e-9)
        finally:
            set_num_threads(before)

    def timeit(self, number: int = 1000000) -> Measurement:
        """One measurement of ``number`` runs (after a warm-up of ``number // 100``)."""
        self._timeit(max(number // 100, 2))
        return Measurement(number, [self._timeit(number)], self._task_spec)

    def repeat(self, repeat: int = -1, number: int = -1):
        raise NotImplementedError("Timer.repeat: use blocked_autorange or adaptive_autorange")

    def autorange(self, callback=None):
        raise NotImplementedError("Timer.autorange: use blocked_autorange or adaptive_autorange")

    def _block_size(self, min_run_time: float) -> int:
        """Runs per block: a power of 10 whose block dwarfs the clock's overhead and takes
        at least a hundredth of ``min_run_time`` (so that there are several blocks)."""
        overhead = float(np.median([self._timeit(0) for _ in range(5)]))
        number = 1
        while True:
            taken = self._timeit(number)
            if overhead / taken <= 1e-3 and taken >= min_run_time / 100:
                return number
            if taken * 10 > min_run_time / 2 or number * 10 > 2147483647:
                return number
            number *= 10

    def blocked_autorange(self, callback: Callable[[int, float], Any] | None = None,
                          min_run_time: float = 0.2) -> Measurement:  # fmt: skip
        """Blocks of runs, each long enough to dwarf the clock's overhead, until
        ``min_run_time`` seconds are spent; one time per block."""
        number = self._block_size(min_run_time)
        times, total = [], 0.0
        while total < min_run_time or not times:
            t = self._timeit(number)
            total += t
            if callback is not None:
                callback(number, t)
            times.append(t)
        return Measurement(number, times, self._task_spec)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01,
                           max_run_time: float = 10.0,
                           callback: Callable[[int, float], Any] | None = None) -> Measurement:  # fmt: skip
        """Blocks of runs until the IQR is within ``threshold`` of the median (after at
        least ``min_run_time`` seconds and 3 blocks) or ``max_run_time`` seconds are spent."""
        number = self._block_size(min_run_time=0.05)
        times, total = [], 0.0
        while True:
            t = self._timeit(number)
            total += t
            if callback is not None:
                callback(number, t)
            times.append(t)
            if len(times) > 3 and total >= min_run_time:
                m = Measurement(number, times, self._task_spec)
                if m.iqr / m.median <= threshold:
                    return m
            if total >= max_run_time:
                return Measurement(number, times, self._task_spec)


class Compare:
    """A table of ``Measurement`` medians: one table per label, one row per sub-label,
    one column per description, a section per thread count.

    Example:
        >>> benchmark.Compare([m_cpu, m_gpu]).print()
    """

    def __init__(self, results: list[Measurement]) -> None:
        self._results = list(results)
        self._trim = False
        self._colorize = False

    def trim_significant_figures(self) -> None:
        self._trim = True

    def colorize(self, rowwise: bool = False) -> None:
        self._colorize = True  # NOTE: accepted; the table is plain text

    def extend_results(self, results: list[Measurement]) -> None:
        self._results.extend(results)

    def __str__(self) -> str:
        out = []
        labels: dict[str | None, list[Measurement]] = {}
        for m in self._results:
            labels.setdefault(m.task_spec.label, []).append(m)
        for label, ms in labels.items():
            out.append(self._table(label, ms))
        return "\n".join(out)

    def _table(self, label, ms: list[Measurement]) -> str:
        unit, scale = select_unit(min(m.median for m in ms))
        cols = list(dict.fromkeys(m.task_spec.description or "" for m in ms))
        rows = list(dict.fromkeys(m.task_spec.sub_label or m.task_spec.stmt for m in ms))
        threads = sorted({m.task_spec.num_threads for m in ms})
        cell = {}
        for m in ms:
            v = m.median / scale
            if self._trim:
                v = trim_sigfig(v, m.significant_figures)
            key = (m.task_spec.num_threads, m.task_spec.sub_label or m.task_spec.stmt,
                   m.task_spec.description or "")  # fmt: skip
            cell[key] = f"{v:.1f}" if v >= 10 else f"{v:.3g}"
        w0 = max(len(r) for r in rows) + 2
        widths = [max(len(c), *(len(cell.get((t, r, c), "")) for t in threads for r in rows)) + 2
                  for c in cols]  # fmt: skip
        header = " " * w0 + "|" + "|".join(c.center(w) for c, w in zip(cols, widths))
        lines = [f"[{'-' * 2} {label or ''} {'-' * 2}]".replace("--  --", "----"), header]
        for t in threads:
            lines.append(f"{t} threads: " + "-" * max(len(header) - 12, 4))
            for r in rows:
                vals = [cell.get((t, r, c), "").center(w) for c, w in zip(cols, widths)]
                lines.append(r.rjust(w0 - 2) + "  |" + "|".join(vals))
        lines += ["", f"Times are in {_UNIT_NAMES[unit]} ({unit}).", ""]
        return "\n".join(lines)

    def print(self) -> None:
        print(str(self))


_UNIT_NAMES = {"ns": "nanoseconds", "us": "microseconds", "ms": "milliseconds", "s": "seconds"}
