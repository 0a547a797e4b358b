"""``mg.cuda.Stream``, ``Event``, ``stream()``, ``current_stream()``: PyTorch's stream API.

On a GPU each ``Stream`` wraps a non-blocking ``cupy.cuda.Stream`` and ``with
mg.cuda.stream(s)`` makes it CuPy's current stream. Without a GPU (the CPU and the fake GPU
run every kernel at once, in order) streams are kept as objects with the same methods, so
code written for a GPU (warm-up on a side stream, ``wait_stream``) runs unchanged.
"""

from __future__ import annotations

import threading

from .. import backend

_LOCAL = threading.local()


def _cupy():
    return backend.cuda_module() if backend.cuda_available() else None


class Stream:
    """A queue of GPU work (``torch.cuda.Stream``).

    Args:
        device: the GPU (default: the current one).
        priority: accepted for PyTorch's signature (ignored).

    Example:
        >>> s = mg.cuda.Stream(); s.wait_stream(mg.cuda.current_stream())
        >>> with mg.cuda.stream(s): y = model(x)
    """

    def __init__(self, device=None, priority: int = 0, *, _wrap=None):
        self.device = device
        self.priority = priority
        cp = _cupy() if _wrap is None else None
        self._s = (
            _wrap
            if _wrap is not None
            else (cp.cuda.Stream(non_blocking=True) if cp is not None else None)
        )

    @property
    def cuda_stream(self) -> int:
        return 0 if self._s is None else self._s.ptr

    def wait_stream(self, stream: Stream) -> None:
        """Make later work on this stream wait for the work queued on ``stream`` so far."""
        if self._s is not None and stream._s is not None:
            self._s.wait_event(stream._s.record())

    def wait_event(self, event: Event) -> None:
        if self._s is not None and event._e is not None:
            self._s.wait_event(event._e)

    def record_event(self, event: Event | None = None) -> Event:
        event = Event() if event is None else event
        event.record(self)
        return event

    def query(self) -> bool:
        return True if self._s is None else self._s.done

    def synchronize(self) -> None:
        if self._s is not None:
            self._s.synchronize()

    def __enter__(self):
        _stack().append(self)
        if self._s is not None:
            self._s.__enter__()
        return self

    def __exit__(self, *exc):
        if self._s is not None:
            self._s.__exit__(*exc)
        _stack().pop()
        return False

    def __eq__(self, other) -> bool:
        if not isinstance(other, Stream):
            return False
        if self._s is None or other._s is None:
            return self is other
        return self._s.ptr == other._s.ptr

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<manygrad.cuda.Stream cuda_stream={self.cuda_stream:#x}>"


class Event:
    """A marker in a stream's work (``torch.cuda.Event``)."""

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess=False):
        cp = _cupy()
        self._e = cp.cuda.Event(block=blocking, disable_timing=not enable_timing) if cp else None

    def record(self, stream: Stream | None = None) -> None:
        s = current_stream() if stream is None else stream
        if self._e is not None and s._s is not None:
            self._e.record(s._s)

    def wait(self, stream: Stream | None = None) -> None:
        (current_stream() if stream is None else stream).wait_event(self)

    def query(self) -> bool:
        return True if self._e is None else self._e.done

    def synchronize(self) -> None:
        if self._e is not None:
            self._e.synchronize()

    def elapsed_time(self, end: Event) -> float:
        if self._e is None or end._e is None:
            return 0.0
        return _cupy().cuda.get_elapsed_time(self._e, end._e)


def _stack() -> list:
    st = getattr(_LOCAL, "stack", None)
    if st is None:
        st = _LOCAL.stack = []
    return st


_DEFAULT: dict = {}


def default_stream(device=None) -> Stream:
    """The device's default stream."""
    s = _DEFAULT.get("s")
    if s is None:
        cp = _cupy()
        s = _DEFAULT["s"] = Stream(_wrap=cp.cuda.Stream.null if cp else None)
    return s


def current_stream(device=None) -> Stream:
    """The stream that new work goes to (``torch.cuda.current_stream``)."""
    st = _stack()
    return st[-1] if st else default_stream(device)


class stream:  # noqa: N801 - PyTorch's name
    """``with mg.cuda.stream(s):`` queues the work inside on ``s`` (None: no change)."""

    def __init__(self, s: Stream | None):
        self.s = s

    def __enter__(self):
        if self.s is not None:
            self.s.__enter__()
        return self.s

    def __exit__(self, *exc):
        if self.s is not None:
            self.s.__exit__(*exc)
        return False
