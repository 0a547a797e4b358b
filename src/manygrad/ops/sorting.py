"""Sorting and order statistics: sort, argsort, topk, kthvalue, median, mode, quantile,
unique, searchsorted, bucketize, nonzero, bincount, histc.

Values are picked with ``gather`` from computed indices, so their gradients (first and
higher order) come from gather's; indices are plain int64 tensors.
"""

from __future__ import annotations

from .. import _meta, backend, return_types
from ..cpu import _sortscan
from ..errors import ShapeError
from ..tensor import Tensor
from . import _cpu_order
from .indexing import _dim, gather
from .reduce import _need_float, _no_identity


def _result(name, values, indices):
    """PyTorch's ``torch.return_types.<name>``: a tuple with ``.values`` and ``.indices``."""
    return getattr(return_types, name)((values, indices))


def _wrap(a, x: Tensor) -> Tensor:
    return Tensor._wrap(a, x._device)


def _argsort(xp, a, axis, descending, stable=True):
    """Indices that sort ``a`` along ``axis``; NaN counts as the largest value and ties
    keep their order (descending too), as PyTorch's stable sort does."""
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    n = a.shape[axis]
    rev = xp.flip(xp.argsort(xp.flip(a, axis), axis=axis, kind="stable"), axis)
    return (n - 1) - rev


def _as2(x):
    return x.reshape(1) if x.ndim == 0 else x


def _rows(x: Tensor, d: int):
    """``x``'s values as rows along ``d`` (a 2-d array), and a function that puts an array
    of rows (rows, m) back as a tensor with ``m`` entries along ``d``."""
    xp = backend.array_module(x._data)
    lead = tuple(x.shape[:d]) + tuple(x.shape[d + 1 :])

    def back(r):
        r = xp.moveaxis(r.reshape(lead + r.shape[-1:]), -1, d)
        return Tensor._wrap(xp.ascontiguousarray(r), x._device)

    return xp, xp.moveaxis(x._data, d, -1).reshape(-1, x.shape[d]), back


def _cpu_ties(x: Tensor) -> bool:
    """Whether ties among ``x``'s values are ordered as PyTorch's CPU kernels order them
    (``_cpu_order``): on the CPU, for real values. PyTorch's CUDA kernels order them
    otherwise, and reading the values back would stall a GPU."""
    return x._device.type == "cpu" and x.ndim > 0 and x._data.dtype.kind != "c"


@backend.on_tensor_device
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort ``input`` along ``dim`` (int64).

    Example: ``mg.argsort(mg.tensor([3.0, 1.0, 2.0]))`` gives ``[1, 2, 0]``.
    """
    d = _dim(dim, input.ndim, "argsort")
    xp = backend.array_module(input._data)
    idx = _argsort(xp, _as2(input._data), d, descending).astype("int64")
    return _wrap(idx.reshape(input.shape), input)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """``(values, indices)`` of ``input`` sorted along ``dim``; NaN sorts as the largest.

    Example: ``values, indices = mg.sort(x, dim=1, descending=True)``
    """
    idx = argsort(input, dim, descending)
    if input.ndim == 0:
        return _result("sort", input.clone(), idx)
    return _result("sort", gather(input, dim, idx), idx)


def msort(input: Tensor) -> Tensor:
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (or smallest) entries along ``dim`` and their indices."""
    d = _dim(dim, input.ndim, "topk")
    n = input.shape[d] if input.ndim else 1
    if not 0 <= k <= n:
        raise ShapeError(f"topk: k={k} is out of range for dim {d} of size {n}")
    if k and _cpu_ties(input):  # NOTE: equal values (and sorted=False) in PyTorch's order
        xp, a, back = _rows(input, d)
        # NOTE: PyTorch's own selection, replayed in C: every row, ties included
        top = _sortscan.topk(a, k, largest, sorted)
        if top is None:
            full = _stable_top(xp, a, k + 1, largest)
            if full is None:
                _, full, _ = _rows(argsort(input, d, descending=largest), d)
            top = _cpu_order.topk_order(xp, a, full, k, largest, sorted)
        idx = back(top)
    else:
        idx = argsort(input, d, descending=largest)
        idx = idx.narrow(d, 0, k) if input.ndim else idx
    vals = gather(input, d, idx) if input.ndim else input.clone()
    return _result("topk", vals, idx)


def _stable_top(xp, a, m: int, largest: bool):
    """The first ``m`` columns of the rows' stable order (descending for ``largest``) of a
    2-d NumPy array without sorting whole rows; None where a full sort is the way (short
    rows, NaN, bools).

    NOTE: a full stable argsort made topk(k=10) of 192 rows of 384 take 4.2 ms against
    PyTorch's 0.17 ms. A partition finds each row's m smallest keys; where values equal to
    the m-th one lie beyond them, the stable order takes the first of them by index (redone
    for those rows); only the m candidates are then sorted, stably, in index order."""
    n = a.shape[1]
    kind = a.dtype.kind
    if m * 4 > n or kind not in "iuf" or (kind == "f" and xp.isnan(a.max())):
        return None
    key = (-a if kind == "f" else ~a) if largest else a  # NOTE: ~ reverses ints, no overflow
    cand = xp.argpartition(key, m - 1, axis=1)[:, :m]
    thr = xp.take_along_axis(key, cand, 1).max(1, keepdims=True)
    over = xp.flatnonzero((key <= thr).sum(1) != m)
    if over.size:
        k, t = key[over], thr[over]
        eq = k == t
        room = m - (k < t).sum(1, keepdims=True)
        sel = (k < t) | (eq & (xp.cumsum(eq, axis=1) <= room))
        cand[over] = xp.nonzero(sel)[1].reshape(over.size, m)
    cand.sort(axis=1)
    order = xp.argsort(xp.take_along_axis(key, cand, 1), axis=1, kind="stable")
    return xp.take_along_axis(cand, order, 1)


def _pick(x: Tensor, d: int, pos, keepdim: bool, name: str, descending=False):
    """Values and indices at sorted position ``pos`` (int or raw array, keepdim shape)."""
    xp = backend.array_module(x._data)
    with backend.device_scope(x._device):
        order = _argsort(xp, x._data, d, descending).astype("int64")
        if isinstance(pos, int):
            sel = order.take(xp.asarray([pos]), axis=d)
        else:
            sel = xp.take_along_axis(order, pos, axis=d)
    idx = _wrap(sel, x)
    vals = gather(x, d, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return _result(name, vals, idx)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest entry (1-based) along ``dim`` and its index."""
    if input.ndim == 0:
        return kthvalue(input.reshape(1), k, 0, False)
    d = _dim(dim, input.ndim, "kthvalue")
    _no_identity("kthvalue", input, d)
    if not 1 <= k <= input.shape[d]:
        raise ShapeError(f"kthvalue: k={k} is out of range for dim {d} of size {input.shape[d]}")
    if not _cpu_ties(input) or not input._data.size:
        return _pick(input, d, k - 1, keepdim, "kthvalue")
    xp, a, back = _rows(input, d)  # NOTE: the index among equal values PyTorch's CPU picks
    pick = _sortscan.select(a, "kthvalue", k - 1)
    if pick is None:
        pick = _cpu_order.kthvalue_order(xp, a, _argsort(xp, a, -1, False), k)
    idx = back(pick[:, None])
    vals = gather(input, d, idx)
    if not keepdim:
        vals, idx = vals.squeeze(d), idx.squeeze(d)
    return _result("kthvalue", vals, idx)


def _median(x: Tensor, dim, keepdim: bool, ignore_nan: bool, name: str):
    if dim is None:
        if not x._data.size:  # NOTE: PyTorch's median of no values: NaN (ints: their min)
            xp = backend.array_module(x._data)
            dt = x._data.dtype
            fill = float("nan") if dt.kind in "fcV" else xp.iinfo(dt).min if dt.kind in "iu" else 0
            with backend.device_scope(x._device):
                return _wrap(xp.full((), fill, dt), x)
        out = _median(x.reshape(-1), 0, False, ignore_nan, name)
        return out.values
    if x.ndim == 0:
        return _median(x.reshape(1), 0, False, ignore_nan, name)
    d = _dim(dim, x.ndim, name)
    _need_float(name, x, "b", not_implemented=True)
    _no_identity("median", x, d)
    if _cpu_ties(x):  # NOTE: one selection per row in C instead of a full argsort
        xp, a, back = _rows(x, d)
        pick = _sortscan.select(a, name)
        if pick is not None:
            idx = back(pick[:, None])
            vals = gather(x, d, idx)
            if not keepdim:
                vals, idx = vals.squeeze(d), idx.squeeze(d)
            return _result(name, vals, idx)
    xp = backend.array_module(x._data)
    n = x.shape[d]
    with backend.device_scope(x._device):
        m = (~xp.isnan(x._data)).sum(axis=d, keepdims=True) if x.is_floating_point() else None
        if m is None:
            pos = xp.full(x.shape[:d] + (1,) + x.shape[d + 1 :], (n - 1) // 2, "int64")
        elif ignore_nan:  # NOTE: the lower median of the non-NaN values (NaN if none)
            pos = xp.maximum((m - 1) // 2, 0).astype("int64")
        else:  # NOTE: a row with NaN has median NaN: the first NaN in sorted order
            pos = xp.where(m < n, m, (n - 1) // 2).astype("int64")
    return _pick(x, d, pos, keepdim, name)


def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median; over all elements (a 0-d tensor) or ``(values, indices)`` along
    ``dim``. NaN propagates."""
    return _median(input, dim, keepdim, False, "median")


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """As ``median``, ignoring NaN."""
    return _median(input, dim, keepdim, True, "nanmedian")


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """The most frequent value along ``dim`` (the smallest among equally frequent ones)
    and the index of its last occurrence."""
    if input.ndim == 0:
        return _result(
            "mode",
            input.clone(),
            _wrap(backend.array_module(input._data).zeros((), "int64"), input),
        )
    d = _dim(dim, input.ndim, "mode")
    _no_identity("mode", input, d)
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        a = xp.moveaxis(input._data, d, -1)
        n = a.shape[-1]
        rows = a.reshape(-1, n)
        r = rows.shape[0]
        # NOTE: runs of equal values in each sorted row, counted with one bincount over
        # row-offset run ids (O(n log n) time, O(n) memory, the same on GPUs)
        order = xp.argsort(rows, axis=-1, kind="stable")
        srt = xp.take_along_axis(rows, order, -1)
        new = xp.ones(srt.shape, bool)
        if n > 1:
            new[:, 1:] = srt[:, 1:] != srt[:, :-1]
        run = xp.cumsum(new, -1) - 1 + (xp.arange(r) * n)[:, None]
        count = xp.bincount(run.reshape(-1), minlength=r * n)[run]
        # the smallest value among the most frequent: the first sorted position with the
        # top count; its last occurrence in the input ends the run (stable sort)
        start = xp.argmax(count == count.max(-1, keepdims=True), -1)[:, None]
        top = xp.take_along_axis(count, start, -1)
        last = xp.take_along_axis(order, start + top - 1, -1)
        if _cpu_ties(input):  # NOTE: the index among equal values PyTorch's CPU reports
            last = _cpu_order.mode_order(xp, rows, last, top[:, 0])
        last = last.reshape(a.shape[:-1] + (1,))
        idx = xp.moveaxis(last, -1, d).astype("int64")
    it = _wrap(idx, input)
    vals = gather(input, d, it)
    if not keepdim:
        vals, it = vals.squeeze(d), it.squeeze(d)
    return _result("mode", vals, it)


@backend.on_tensor_device
def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """The ``q``-quantiles (``q`` a float or 1-d tensor in [0, 1]) along ``dim``, with
    PyTorch's interpolations: linear, lower, higher, midpoint, nearest. A row holding NaN
    gives NaN (``nanquantile`` skips NaN instead)."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


@backend.on_tensor_device
def nanquantile(input: Tensor, q, dim=None, keepdim: bool = False, *, interpolation="linear"):
    """``quantile`` of the values that are not NaN (NaN for a row of NaN only)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def _quantile(x, q, dim, keepdim, interpolation, skip_nan, op):
    modes = ("linear", "lower", "higher", "midpoint", "nearest")
    if interpolation not in modes:
        raise ValueError(f"{op}: interpolation must be one of {modes}, got {interpolation!r}")
    if not x._data.size:
        raise ShapeError(f"quantile() input tensor must be non-empty (got shape {tuple(x.shape)})")
    if dim is None:
        out = _quantile(x.reshape(-1), q, 0, False, interpolation, skip_nan, op)
        if keepdim:
            lead = out.shape[:1] if isinstance(q, Tensor) and q.ndim == 1 else ()
            out = out.reshape(lead + (1,) * x.ndim)
        return out
    d = _dim(dim, x.ndim, op)
    xp = backend.array_module(x._data)
    dt = x._data.dtype
    qs = q._data if isinstance(q, Tensor) else xp.asarray(q, dtype=dt)
    if bool(((qs < 0) | (qs > 1)).any()):
        raise ValueError(f"{op}: q values must lie in [0, 1]")
    qv = qs.reshape(-1).astype(dt)
    # NOTE: sorting puts NaN last; a row's ranks run over its valid values
    vals = sort(x, d).values.movedim(d, -1)
    n = x.shape[d]
    valid = (~xp.isnan(xp.moveaxis(x._data, d, -1))).sum(axis=-1, keepdims=True)
    count = valid if skip_nan else xp.full_like(valid, n)
    pos = qv * (xp.maximum(count, 1) - 1).astype(dt)
    lo = xp.floor(pos).astype("int64")
    hi = xp.ceil(pos).astype("int64")
    if interpolation == "lower":
        hi = lo
    elif interpolation == "higher":
        lo = hi
    elif interpolation == "nearest":
        lo = hi = xp.round(pos).astype("int64")
    a = vals.gather(-1, _wrap(lo, x))
    b = vals.gather(-1, _wrap(hi, x))
    if interpolation == "midpoint":
        w = xp.where(hi > lo, 0.5, 0.0).astype(dt)
    else:
        w = (pos - lo).astype(dt)
    out = a + (b - a) * _wrap(w, x)
    undefined = valid == 0 if skip_nan else valid < n
    if bool(undefined.any()):
        from .elementwise import where

        out = where(_wrap(xp.broadcast_to(undefined, out.shape), x), float("nan"), out)
    out = out.movedim(-1, 0)
    if keepdim:
        out = out.unsqueeze(d + 1)
    if not isinstance(q, Tensor) or q.ndim == 0:
        out = out.squeeze(0)
    return out


@backend.on_tensor_device
def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):  # fmt: skip
    """The distinct values of ``input`` (sorted), with optional inverse indices and counts.

    Example: ``vals, inv = mg.unique(labels, return_inverse=True)``
    """
    _meta.refuse_data_dependent(input, "unique")
    xp = backend.array_module(input._data)
    if dim is None:
        vals, inv, cnt = xp.unique(input._data.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(input.shape)
    else:
        d = _dim(dim, input.ndim, "unique")
        vals, inv, cnt = xp.unique(input._data, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    out = [_wrap(vals, input)]
    if return_inverse:
        out.append(_wrap(inv.astype("int64"), input))
    if return_counts:
        out.append(_wrap(cnt.astype("int64"), input))
    return out[0] if len(out) == 1 else tuple(out)


@backend.on_tensor_device
def unique_consecutive(input: Tensor, return_inverse=False, return_counts=False, dim=None):
    """Collapse runs of equal consecutive values (flattened when ``dim`` is None), or of
    equal consecutive slices along ``dim`` (CTC's greedy decoding over time)."""
    _meta.refuse_data_dependent(input, "unique_consecutive")
    xp = backend.array_module(input._data)
    if dim is None:
        a = input._data.reshape(-1)
        changed = a[1:] != a[:-1]
    else:
        d = _dim(dim, input.ndim, "unique_consecutive")
        a = xp.moveaxis(input._data, d, 0)
        changed = (a[1:] != a[:-1]).any(axis=tuple(range(1, a.ndim)))
    new = xp.concatenate([xp.ones(min(a.shape[0], 1), bool), changed])
    vals = a[new] if dim is None else xp.moveaxis(a[new], 0, d)
    out = [_wrap(xp.ascontiguousarray(vals), input)]
    if return_inverse:
        shape = input.shape if dim is None else (a.shape[0],)
        out.append(_wrap((xp.cumsum(new) - 1).astype("int64").reshape(shape), input))
    if return_counts:
        starts = xp.nonzero(new)[0]
        out.append(_wrap(xp.diff(xp.concatenate([starts, xp.asarray([a.shape[0]])])), input))
    return out[0] if len(out) == 1 else tuple(out)


def _batched_searchsorted(xp, sd, v, right: bool):
    """Row-wise searchsorted: each row's queries sorted in with its sequence (one stable
    batched argsort), counting the sequence entries before each query."""
    n, m = sd.shape[-1], v.shape[-1]
    rows = sd.reshape(-1, n)
    q = v.reshape(-1, m).astype(rows.dtype)
    # NOTE: a stable sort keeps the first block ahead on ties: queries first for side
    # "left" (they go before equal entries), the sequence first for "right"
    both = xp.concatenate([rows, q] if right else [q, rows], -1)
    order = xp.argsort(both, axis=-1, kind="stable")
    is_seq = (order < n) if right else (order >= m)
    before = xp.cumsum(is_seq, -1)
    where = xp.argsort(order, axis=-1, kind="stable")  # sorted position of each slot
    slots = where[:, n:] if right else where[:, :m]
    return xp.take_along_axis(before, slots, -1).reshape(v.shape)


@backend.on_tensor_device
def searchsorted(sorted_sequence: Tensor, input, *, out_int32: bool = False,  # noqa: A002
                 right: bool = False, side=None, sorter=None) -> Tensor:  # fmt: skip
    """Indices where ``input`` would be inserted into ``sorted_sequence`` (last dim) to keep
    it sorted; ``right=True`` (or ``side="right"``) places equal values after."""
    s = sorted_sequence
    xp = backend.array_module(s._data)
    if side is not None:
        right = side == "right"
    scalar = not isinstance(input, Tensor)
    v = xp.asarray(input, dtype=s._data.dtype) if scalar else input._data
    sd = s._data
    if sorter is not None:
        sd = xp.take_along_axis(sd, sorter._data, -1)
    if sd.ndim == 1:
        out = xp.searchsorted(sd, v, side="right" if right else "left")
    else:
        if sd.shape[:-1] != v.shape[:-1]:
            raise ShapeError(
                f"searchsorted: leading dims of sorted_sequence {tuple(s.shape)} and input "
                f"{tuple(v.shape)} must match"
            )
        out = _batched_searchsorted(xp, sd, v, right)
    return _wrap(xp.asarray(out).astype("int32" if out_int32 else "int64"), s)


def bucketize(input, boundaries: Tensor, *, out_int32: bool = False, right: bool = False):  # noqa: A002
    """The bucket of each value: ``boundaries[i-1] < x <= boundaries[i]`` (``right=False``)."""
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


@backend.on_tensor_device
def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of non-zero entries: an ``(n, ndim)`` int64 tensor, or one tensor per dim."""
    _meta.refuse_data_dependent(input, "nonzero")
    xp = backend.array_module(input._data)
    idx = xp.nonzero(input._data.reshape(1) if input.ndim == 0 else input._data)
    if as_tuple:
        return tuple(_wrap(i.astype("int64"), input) for i in idx)
    if input.ndim == 0:
        return _wrap(xp.zeros((int(idx[0].size), 0), "int64"), input)
    return _wrap(xp.stack(idx, axis=1).astype("int64"), input)


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


@backend.on_tensor_device
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    xp = backend.array_module(input._data)
    axes = (
        None
        if dim is None or (not isinstance(dim, int) and len(dim) == 0)  # NOTE: () is all
        else tuple(
            _dim(d, input.ndim, "count_nonzero") for d in ((dim,) if isinstance(dim, int) else dim)
        )
    )
    return _wrap(xp.asarray((input._data != 0).sum(axis=axes)).astype("int64"), input)


@backend.on_tensor_device
def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """Counts of each value of a 1-d non-negative integer tensor (weighted sums with
    ``weights``)."""
    _meta.refuse_data_dependent(input, "bincount")
    if input.ndim != 1 or input.is_floating_point():
        raise ShapeError(
            f"bincount: expected a 1-d integer tensor, got {input.dtype} {tuple(input.shape)}"
        )
    xp = backend.array_module(input._data)
    if input._device.type == "cpu" and input._data.size and input._data.min() < 0:
        raise ShapeError("bincount: expected non-negative values, got a negative one")
    w = None if weights is None else weights._data
    out = xp.bincount(input._data, weights=w, minlength=minlength)
    if weights is None:
        dt = "int64"
    else:
        dt = w.dtype if w.dtype.kind == "f" else "float64"
    return _wrap(out.astype(dt), input)


@backend.on_tensor_device
def histc(input: Tensor, bins: int = 100, min=0, max=0) -> Tensor:  # noqa: A002
    """A histogram of ``bins`` equal bins over [min, max] (the data's range when both are
    0); values outside are ignored. Same dtype as ``input``."""
    xp = backend.array_module(input._data)
    a = input._data.reshape(-1)
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    a = a[(a >= lo) & (a <= hi)]
    # NOTE: PyTorch's bin: floor((v - lo) * bins / (hi - lo)), the top edge in the last bin
    b = ((a.astype("float64") - lo) * bins / (hi - lo)).astype("int64")
    b = xp.minimum(b, bins - 1)
    return _wrap(xp.bincount(b, minlength=bins).astype(input._data.dtype), input)


from ._common import public  # noqa: E402

__all__ = public(globals())
