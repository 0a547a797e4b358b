"""Segment reductions: ``segment_reduce`` (PyTorch's name and rules).

The segments are runs of consecutive entries along one axis. Each entry learns its segment
number from the offsets (a scatter and a cumulative sum), and the reductions run as
whole-array operations: scatter-add for sum and mean, a segmented scan of log2(n) steps for
max, min and prod. No host synchronisation, except for the checks that ``unsafe=True``
skips.
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd import Function
from ..errors import DTypeNotImplementedError, ShapeError
from ..tensor import Tensor
from .indexing import _dim

__all__ = ["segment_reduce"]

_REDUCE = ("sum", "mean", "max", "min", "prod")
_FLOATS = ("float16", "bfloat16", "float32", "float64")
_DEFAULT_INITIAL = {"max": -math.inf, "min": math.inf, "prod": 1.0, "sum": 0.0, "mean": 0.0}


def _seg_scan(xp, v, seg, op):
    """Inclusive scan of ``op`` along axis 1 of ``v`` (O, N, I) that restarts where the
    segment number ``seg`` (O, N) changes (Hillis & Steele's doubling: log2(N) steps)."""
    d, n = 1, v.shape[1]
    while d < n:
        same = (seg[:, d:] == seg[:, :-d])[..., None]
        v = xp.concatenate([v[:, :d], xp.where(same, op(v[:, d:], v[:, :-d]), v[:, d:])], 1)
        d *= 2
    return v


def _per_entry(xp, a, seg_c):
    """``a`` (O, S + 1, I) read at each entry's segment (O, N): (O, N, I)."""
    idx = xp.broadcast_to(seg_c[..., None], seg_c.shape + (a.shape[2],))
    return xp.take_along_axis(a, idx, axis=1)


class SegmentReduce(Function):
    """``data`` (O, N, I) reduced over the segments ``offs`` (O, S + 1) of axis 1."""

    def forward(self, x, offs, shape, reduce, initial):
        xp = backend.array_module(x)
        o, n, s = offs.shape[0], x.shape[1], offs.shape[1] - 1
        # NOTE: entry j lies in segment (number of offsets <= j) - 1; entries before the
        # first offset or after the last get -1 or S, and gradient 0
        hits = xp.zeros((o, n + 1), "int64")
        backend.index_add(hits, (xp.arange(o)[:, None], offs), 1)
        seg = xp.cumsum(hits, axis=1)[:, :n] - 1
        valid = (seg >= 0) & (seg < s)
        self.seg_c = xp.where(valid, seg, s)
        self.seg, self.valid, self.rows = seg, valid, xp.arange(o)[:, None]
        self.lens = xp.maximum(offs[:, 1:] - offs[:, :-1], 0)
        self.offs, self.reduce = offs, reduce
        dt = x.dtype
        init = xp.asarray(_DEFAULT_INITIAL[reduce] if initial is None else initial).astype(dt)
        self.init = init
        full = (o, s, x.shape[2])
        if reduce in ("sum", "mean"):
            acc = xp.zeros((o, s + 1, x.shape[2]), dt) + init
            backend.index_add(acc, (self.rows, self.seg_c), x)
            out = acc[:, :s]
            if reduce == "mean":
                lens = self.lens[..., None]
                empty = init if initial is not None else xp.asarray(math.nan).astype(dt)
                out = xp.where(lens > 0, out / xp.maximum(lens, 1).astype(dt), empty)
        elif n == 0:
            out = xp.zeros(full, dt) + init
        else:
            op = {"max": xp.maximum, "min": xp.minimum, "prod": xp.multiply}[reduce]
            scan = _seg_scan(xp, x, seg, op)
            last = xp.clip(offs[:, 1:] - 1, 0, n - 1)[..., None]
            red = xp.take_along_axis(scan, xp.broadcast_to(last, full), axis=1)
            out = xp.where(self.lens[..., None] > 0, op(init, red), init)
        out = out.astype(dt, copy=False)
        if reduce != "sum":
            self.x = x
            self.out = out
        return out.reshape(shape)

    def backward(self, g):
        xp = backend.array_module(g)
        o, s = self.lens.shape
        g = g.reshape(o, s, -1)
        pad = xp.zeros((o, 1, g.shape[2]), g.dtype)
        r = self.reduce
        if r == "mean":
            g = g / xp.maximum(self.lens, 1)[..., None].astype(g.dtype)
        ge = _per_entry(xp, xp.concatenate([g, pad], 1), self.seg_c)
        if r in ("sum", "mean"):
            return ge * self.valid[..., None], None, None, None, None
        x = self.x
        oe = _per_entry(xp, xp.concatenate([self.out, pad.astype(x.dtype)], 1), self.seg_c)
        if r in ("max", "min"):
            hit = (xp.isnan(x) | (x == oe)) & self.valid[..., None]
            # NOTE: as PyTorch: ties share a positive gradient evenly and each keeps a
            # negative one whole
            count = xp.cumsum(hit.astype("int64"), axis=1)
            count = xp.concatenate([xp.zeros_like(count[:, :1]), count], 1)
            ends = xp.broadcast_to(self.offs[..., None], self.offs.shape + (x.shape[2],))
            count = xp.take_along_axis(count, ends, axis=1)
            count = count[:, 1:] - count[:, :-1]
            ce = _per_entry(xp, xp.concatenate([count, pad.astype("int64")], 1), self.seg_c)
            gi = xp.where(hit, ge, 0)
            gi = xp.where(hit & (ce >= 2) & (gi > 0), gi / xp.maximum(ce, 1).astype(g.dtype), gi)
            return gi.astype(g.dtype, copy=False), None, None, None, None
        # prod: g * out / x, and for a zero (or NaN) entry the product of the others
        special = xp.isnan(x) | (x == 0)
        reg = ge * oe / xp.where(special, 1, x)
        seg, one = self.seg, xp.ones_like(x[:, :1])
        pre = _seg_scan(xp, x, seg, xp.multiply)
        suf = _seg_scan(xp, x[:, ::-1], seg[:, ::-1], xp.multiply)[:, ::-1]
        same_prev = (seg[:, 1:] == seg[:, :-1])[..., None]
        before = xp.concatenate([one, xp.where(same_prev, pre[:, :-1], 1)], 1)
        after = xp.concatenate([xp.where(same_prev, suf[:, 1:], 1), one], 1)
        others = self.init * before * after
        gi = xp.where(self.valid[..., None], xp.where(special, ge * others, reg), 0)
        return gi.astype(g.dtype, copy=False), None, None, None, None


def _check_offsets(lens_or_offs, name: str, data: Tensor, axis: int):
    t = lens_or_offs
    if not isinstance(t, Tensor):
        raise TypeError(f"segment_reduce: {name} must be a tensor of ints, got {type(t).__name__}")
    if t.dtype.name not in ("int32", "int64"):
        raise DTypeNotImplementedError(
            f"segment_reduce: {name} must be int32 or int64, got {t.dtype}; cast it, e.g. "
            f"{name}.long()"
        )
    if t.device != data.device:
        raise RuntimeError(
            f"segment_reduce: expected data and {name} on the same device, got {data.device} "
            f"and {t.device}; move {name} with {name}.to(data.device)"
        )
    if data.ndim < t.ndim:
        raise RuntimeError(
            f"segment_reduce: {name} has {t.ndim} dims but data only {data.ndim}; {name} "
            "has the shape data.shape[:axis] + (segments,)"
        )
    if axis != t.ndim - 1:
        raise RuntimeError(
            f"segment_reduce: expected axis to be the last dimension of {name} but got "
            f"{axis}; {name} of shape data.shape[:axis] + (segments,) has {t.ndim} dims"
        )
    if tuple(t.shape[:-1]) != tuple(data.shape[:axis]):
        raise RuntimeError(
            f"segment_reduce: {name} of shape {tuple(t.shape)} does not fit data of shape "
            f"{tuple(data.shape)} at axis {axis}; its leading dims must be data.shape[:axis]"
        )


@backend.on_tensor_device
def segment_reduce(
    data: Tensor,
    reduce: str,
    *,
    lengths: Tensor | None = None,
    indices: Tensor | None = None,
    offsets: Tensor | None = None,
    axis: int = 0,
    unsafe: bool = False,
    initial=None,
) -> Tensor:
    """Reduce runs of consecutive entries ("segments") of ``data`` along ``axis``.

    The segments are given by ``lengths`` (each segment's size) or by ``offsets`` (segment
    i spans ``offsets[..., i]`` to ``offsets[..., i + 1]``); for ``axis > 0`` they have the
    shape ``data.shape[:axis] + (segments,)`` (``+ 1`` for offsets), one row of segments per
    leading index. An empty segment gives ``initial``, or the reduction's identity (0 for
    sum, 1 for prod, -inf for max, inf for min, NaN for mean). A non-empty one starts from
    ``initial`` when it is given (mean then divides by the segment's length).

    Args:
        data: a floating-point tensor.
        reduce: "sum", "mean", "max", "min" or "prod".
        lengths: the segments' lengths (int32/int64), summing to ``data.size(axis)``.
        indices: not supported (as in PyTorch).
        offsets: the segments' boundaries (int32/int64), used when ``lengths`` is None.
        axis: the axis to reduce. Default: 0.
        unsafe: skip the checks of ``lengths`` / ``offsets`` (which read them on the host).
        initial: the value each reduction starts from. Default: None.

    Example:
        >>> data = mg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> mg.segment_reduce(data, "max", lengths=mg.tensor([2, 1]))  # [[3, 4], [5, 6]]
    """
    if not isinstance(data, Tensor):
        raise TypeError(f"segment_reduce: data must be a tensor, got {type(data).__name__}")
    if reduce not in _REDUCE:
        raise RuntimeError(
            f"segment_reduce: reduce must be one of {', '.join(map(repr, _REDUCE))}, got {reduce!r}"
        )
    if data.dtype.name not in _FLOATS:
        raise DTypeNotImplementedError(
            f"segment_reduce: data must be floating point ({', '.join(_FLOATS)}), got "
            f"{data.dtype}; cast it, e.g. data.float()"
        )
    if indices is not None:
        raise RuntimeError(
            "segment_reduce: indices based reduction is not supported (nor by PyTorch); "
            "give lengths or offsets"
        )
    if lengths is None and offsets is None:
        raise RuntimeError("segment_reduce: either lengths or offsets must be given")
    if initial is not None and (isinstance(initial, complex) or isinstance(initial, Tensor)):
        raise TypeError(f"segment_reduce: initial must be a real number, got {initial!r}")
    ax = _dim(axis, data.ndim, "segment_reduce")
    xp = backend.array_module(data._data)
    n = data.shape[ax] if data.ndim else 1
    if lengths is not None:
        _check_offsets(lengths, "lengths", data, ax)
        ln = lengths._data.astype("int64")
        if not unsafe:
            if ln.size and bool((ln < 0).any()):
                raise RuntimeError("segment_reduce: lengths contains negative value!")
            if not bool((ln.sum(-1) == n).all()):
                raise RuntimeError(
                    "segment_reduce: expected all rows of lengths along axis to sum to "
                    f"data.size({ax}) = {n} when unsafe=False; got sums "
                    f"{backend.to_numpy(ln.sum(-1)).tolist()}"
                )
        offs = xp.concatenate([xp.zeros(ln.shape[:-1] + (1,), "int64"), xp.cumsum(ln, -1)], -1)
    else:
        _check_offsets(offsets, "offsets", data, ax)
        offs = offsets._data.astype("int64")
        if offs.shape[-1] < 1:
            raise ShapeError("segment_reduce: offsets needs at least one entry along axis")
        ordered = (offs[..., 1:] >= offs[..., :-1]).all() & (offs >= 0).all() & (offs <= n).all()
        if not unsafe and offs.size and not bool(ordered):
            raise RuntimeError(
                "segment_reduce: offsets must be non-decreasing and within [0, "
                f"data.size({ax}) = {n}] along axis"
            )
    lead = math.prod(data.shape[:ax])
    offs = xp.clip(offs.reshape(lead, offs.shape[-1]), 0, n)
    shape = tuple(data.shape[:ax]) + (offs.shape[1] - 1,) + tuple(data.shape[ax + 1 :])
    x = data.reshape(lead, n, math.prod(data.shape[ax + 1 :]))
    return SegmentReduce.apply(x, offs, shape, reduce, initial)
