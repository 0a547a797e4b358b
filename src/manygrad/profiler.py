"""``torch.profiler``: where a model's time goes, op by op.

Inside ``with profile() as prof:`` every manygrad op (forward and backward) and every
``record_function`` block is timed on the host. ``prof.key_averages().table()`` sums them by
name; ``prof.export_chrome_trace(path)`` writes a trace for chrome://tracing or Perfetto.
On a GPU the times are those of the host side (launching the kernels): synchronize, or
time whole steps with ``manygrad bench``, to see the GPU's own time.

Example:
    >>> with mg.profiler.profile() as prof:
    ...     model(x).sum().backward()
    >>> print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
"""

from __future__ import annotations

import enum
import json
import os
import socket
import threading
import time

from . import autograd


class ProfilerActivity(enum.Enum):
    CPU = 0
    CUDA = 1
    XPU = 2
    MTIA = 3


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0):
    """PyTorch's step schedule: skip ``skip_first`` steps, then cycles of ``wait`` idle,
    ``warmup`` and ``active`` recorded steps (``repeat`` cycles, 0 for no end)."""

    def action(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat and step >= cycle * repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD_AND_SAVE if pos == cycle - 1 else ProfilerAction.RECORD

    return action


class FunctionEvent:
    """One timed op or ``record_function`` block (times in microseconds)."""

    __slots__ = ("name", "start_us", "end_us", "shapes", "children_us", "thread")

    def __init__(self, name, start_us, end_us, shapes=None):
        self.name, self.start_us, self.end_us, self.shapes = name, start_us, end_us, shapes
        self.children_us = 0.0
        self.thread = threading.get_ident()

    @property
    def key(self) -> str:
        return self.name

    @property
    def count(self) -> int:
        return 1

    @property
    def cpu_time_total(self) -> float:
        return self.end_us - self.start_us

    @property
    def self_cpu_time_total(self) -> float:
        return self.cpu_time_total - self.children_us


class FunctionEventAvg:
    """The events of one name (and input shapes, when grouped by them), summed."""

    def __init__(self, key, input_shapes=None):
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    def add(self, e: FunctionEvent) -> None:
        self.count += 1
        self.cpu_time_total += e.cpu_time_total
        self.self_cpu_time_total += e.self_cpu_time_total

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """Events or their averages, with PyTorch's ``table``."""

    def table(self, sort_by: str | None = None, row_limit: int = 100, header=None,
              top_level_events_only: bool = False, **_) -> str:  # fmt: skip
        rows = list(self)
        key = {"cpu_time_total": "cpu_time_total", "self_cpu_time_total": "self_cpu_time_total",
               "cpu_time": "cpu_time", "count": "count"}.get(sort_by or "", None)  # fmt: skip
        if sort_by and key is None and not sort_by.startswith(("cuda", "device", "xpu")):
            raise ValueError(f"table: can't sort by {sort_by!r}; use cpu_time_total, "
                             "self_cpu_time_total, cpu_time or count")  # fmt: skip
        if key:
            rows.sort(key=lambda r: getattr(r, key), reverse=True)
        rows = rows[:row_limit] if row_limit and row_limit > 0 else rows
        total = sum(r.self_cpu_time_total for r in self) or 1.0
        shapes = any(getattr(r, "input_shapes", None) for r in rows)
        width = max([len("Name")] + [len(r.key) for r in rows]) + 2
        cols = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
        head = "Name".ljust(width) + "".join(c.rjust(14) for c in cols)
        head += "  Input Shapes" if shapes else ""
        line = "-" * len(head)
        out = [line, head, line]
        for r in rows:
            name, count = r.key, r.count
            avg = r.cpu_time_total / max(count, 1)
            cells = [f"{100 * r.self_cpu_time_total / total:.2f}%", _fmt_us(r.self_cpu_time_total),
                     f"{100 * r.cpu_time_total / total:.2f}%", _fmt_us(r.cpu_time_total),
                     _fmt_us(avg), str(count)]  # fmt: skip
            row = name.ljust(width) + "".join(c.rjust(14) for c in cells)
            if shapes:
                row += f"  {getattr(r, 'input_shapes', '')}"
            out.append(row)
        out += [line, f"Self CPU time total: {_fmt_us(total)}"]
        return "\n".join(out)

    def total_average(self) -> FunctionEventAvg:
        avg = FunctionEventAvg("Total")
        for e in self:
            avg.count += e.count
            avg.cpu_time_total += e.cpu_time_total
            avg.self_cpu_time_total += e.self_cpu_time_total
        return avg


class _Recorder:
    """What ``Function.apply`` and the backward pass call while a profiler records."""

    def __init__(self, record_shapes: bool):
        self.events: list[FunctionEvent] = []
        self.stack: list[FunctionEvent] = []  # open record_function blocks
        self.record_shapes = record_shapes
        self.origin = time.perf_counter_ns()
        self.clock = time.perf_counter_ns

    def _us(self, ns: int) -> float:
        return (ns - self.origin) / 1e3

    def op(self, name: str, t0: int, inputs) -> None:
        end = time.perf_counter_ns()
        shapes = None
        if self.record_shapes:
            shapes = [list(getattr(a, "shape", ())) for a in inputs if hasattr(a, "shape")]
        e = FunctionEvent(name, self._us(t0), self._us(end), shapes)
        self.events.append(e)
        if self.stack:
            self.stack[-1].children_us += e.cpu_time_total


class profile:  # noqa: N801 - PyTorch's name
    """Record the ops run inside the block (see the module's docs).

    Args:
        activities: accepted (``ProfilerActivity.CPU``, ``CUDA``); manygrad times the host.
        schedule: a ``schedule(...)``; then only its RECORD steps are kept, and
            ``on_trace_ready(prof)`` runs at the end of each active cycle.
        record_shapes: keep the input shapes of each op (``group_by_input_shape``).
    """

    def __init__(self, activities=None, *, schedule=None, on_trace_ready=None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False, with_modules: bool = False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False,
                 use_cuda=None, enabled: bool = True, **_):  # fmt: skip
        self.schedule, self.on_trace_ready = schedule, on_trace_ready
        self.record_shapes, self.enabled = record_shapes, enabled
        self.step_num = 0
        self._rec: _Recorder | None = None
        self._kept: list[FunctionEvent] = []

    # ------------------------------------------------------------------ recording
    def _recording(self) -> bool:
        return self.schedule is None or self.schedule(self.step_num) in (
            ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)  # fmt: skip

    def _attach(self) -> None:
        if autograd._profile is not None and autograd._profile is not self._rec:
            raise RuntimeError("profile: another profiler is already recording")
        if self._rec is None:
            self._rec = _Recorder(self.record_shapes)
        autograd._profile = self._rec if self._recording() else None

    def start(self) -> None:
        if self.enabled:
            self._attach()

    def stop(self) -> None:
        if self._rec is not None:
            self._kept.extend(self._rec.events)
            self._rec.events = []
        if autograd._profile is self._rec:
            autograd._profile = None
        if self.on_trace_ready is not None and self.schedule is None and self.enabled:
            self.on_trace_ready(self)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def step(self) -> None:
        """Mark the end of a training step (for ``schedule``)."""
        if not self.enabled:
            return
        action = self.schedule(self.step_num) if self.schedule else None
        if self._rec is not None:
            self._kept.extend(self._rec.events)
            self._rec.events = []
        if action is ProfilerAction.RECORD_AND_SAVE and self.on_trace_ready is not None:
            self.on_trace_ready(self)
        self.step_num += 1
        self._attach()

    # ------------------------------------------------------------------ results
    def events(self) -> EventList:
        rec = self._rec.events if self._rec is not None else []
        return EventList(self._kept + rec)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0,
                     **_) -> EventList:  # fmt: skip
        groups: dict = {}
        for e in self.events():
            shapes = str(e.shapes) if group_by_input_shape and e.shapes is not None else None
            k = (e.name, shapes)
            if k not in groups:
                groups[k] = FunctionEventAvg(e.name, shapes)
            groups[k].add(e)
        return EventList(groups.values())

    def export_chrome_trace(self, path: str) -> None:
        """The events as a Chrome trace (JSON), written atomically."""
        pid = os.getpid()
        trace = {"traceEvents": [
            {"name": e.name, "ph": "X", "ts": e.start_us, "dur": e.cpu_time_total, "pid": pid,
             "tid": e.thread, "cat": "cpu_op",
             **({"args": {"Input Dims": e.shapes}} if e.shapes is not None else {})}
            for e in self.events()]}  # fmt: skip
        tmp = f"{path}.tmp{pid}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(trace, f)
        os.replace(tmp, path)


class record_function:  # noqa: N801 - PyTorch's name
    """``with record_function("data"):`` times the block under that name (nested ops count
    as its children). Also a decorator."""

    def __init__(self, name: str, args=None):
        self.name = name
        self._event = None

    def __enter__(self):
        rec = autograd._profile
        if rec is not None:
            self._rec, self._t0 = rec, rec.clock()
            self._event = FunctionEvent(self.name, rec._us(self._t0), rec._us(self._t0))
            rec.stack.append(self._event)
        return self

    def __exit__(self, *exc):
        e = self._event
        if e is not None:
            rec = self._rec
            e.end_us = rec._us(rec.clock())
            rec.stack.pop()
            rec.events.append(e)
            if rec.stack:
                rec.stack[-1].children_us += e.cpu_time_total
            self._event = None
        return False

    def __call__(self, fn):
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = fn.__name__, fn.__doc__
        return wrapped


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None,
                              use_gzip: bool = False):  # fmt: skip
    """An ``on_trace_ready`` that writes each trace to ``dir_name`` as
    ``<worker>.<ms>.pt.trace.json`` (TensorBoard's profiler plugin reads these)."""
    worker = worker_name or f"{socket.gethostname()}_{os.getpid()}"

    def handler(prof: profile) -> None:
        os.makedirs(dir_name, exist_ok=True)
        name = f"{worker}.{int(time.time() * 1000)}.pt.trace.json"
        prof.export_chrome_trace(os.path.join(dir_name, name))

    return handler


__all__ = [
    "profile", "record_function", "schedule", "tensorboard_trace_handler", "ProfilerActivity",
    "ProfilerAction", "EventList", "FunctionEvent", "FunctionEventAvg",
]  # fmt: skip
