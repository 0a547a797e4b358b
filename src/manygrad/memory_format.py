"""Memory formats (``mg.contiguous_format``, ``channels_last``, ``channels_last_3d``,
``preserve_format``), as PyTorch names them.

A memory format is a layout, not a value: ``x.contiguous(memory_format=mg.channels_last)``
returns the same numbers with NHWC strides (channels innermost), and
``x.is_contiguous(memory_format=...)`` tells the layout apart. Ops accept any layout.

Example:
    >>> x = mg.randn(8, 3, 32, 32).contiguous(memory_format=mg.channels_last)
    >>> x.stride()
    (3072, 1, 96, 3)
"""

from __future__ import annotations

from . import backend
from .autograd import Function


class memory_format:  # noqa: N801 - PyTorch's name
    """A tensor layout (``mg.contiguous_format``, ``channels_last``, ...)."""

    def __init__(self, name: str, order: tuple | None):
        self.name, self.order = name, order

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))


# NOTE: order: the dims from outermost to innermost in memory (None: row-major / as is)
contiguous_format = memory_format("contiguous_format", None)
preserve_format = memory_format("preserve_format", None)
channels_last = memory_format("channels_last", (0, 2, 3, 1))
channels_last_3d = memory_format("channels_last_3d", (0, 2, 3, 4, 1))
_ALL = {f.name: f for f in (contiguous_format, preserve_format, channels_last, channels_last_3d)}


def _by_name(name: str) -> memory_format:
    return _ALL[name]


def _check(fmt, ndim: int, op: str) -> None:
    if not isinstance(fmt, memory_format):
        raise TypeError(f"{op}: memory_format must be e.g. torch.channels_last, got {fmt!r}")
    if fmt.order is not None and len(fmt.order) != ndim:
        raise RuntimeError(
            f"required rank {len(fmt.order)} tensor to use {fmt.name} format, got rank {ndim}"
        )


def _inverse(order):
    inv = [0] * len(order)
    for i, o in enumerate(order):
        inv[o] = i
    return tuple(inv)


class ToLayout(Function):
    """A copy of ``a`` laid out in ``order`` (identity gradient)."""

    complex_ok = True

    def forward(self, a, order):
        xp = backend.array_module(a)
        return xp.ascontiguousarray(a.transpose(order)).transpose(_inverse(order))

    def backward(self, g):
        return g, None

    def backward_graph(self, g):
        return g, None


def to_format(t, fmt, op: str = "contiguous", copy: bool = False):
    """``t`` in layout ``fmt`` (itself when already so and not ``copy``)."""
    if fmt is None or fmt is preserve_format:
        from .ops import clone

        return clone(t) if copy else t
    _check(fmt, t.ndim, op)
    if fmt.order is None:
        if is_format(t, fmt) and not copy:
            return t
        return ToLayout.apply(t, tuple(range(t.ndim)))
    if is_format(t, fmt) and not copy:
        return t
    return ToLayout.apply(t, fmt.order)


def is_format(t, fmt) -> bool:
    """Whether ``t``'s strides are those of layout ``fmt`` (size-1 dims ignored)."""
    if fmt is None or fmt is contiguous_format:
        return bool(t._data.flags.c_contiguous)
    if not isinstance(fmt, memory_format):
        _check(fmt, t.ndim, "is_contiguous")
    if fmt.order is None:
        return True
    if len(fmt.order) != t.ndim:
        return False  # as PyTorch: a tensor of another rank is not in that layout
    shape, strides = t._data.shape, t._data.strides
    expect = t._data.itemsize
    for d in reversed(fmt.order):
        if shape[d] != 1 and strides[d] != expect:
            return False
        expect *= shape[d]
    return True
