"""Scatter-style ops: scatter, scatter_reduce, index_add / index_copy / index_fill,
masked_select / masked_scatter, take, take_along_dim (PyTorch's names and rules)."""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..cpu import _sortscan
from ..cpu._index_add import flat_at
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from .indexing import (
    _check_bounds,
    _check_index,
    _dim,
    _index_array,
    _mesh,
    gather,
    getitem,
    index_select,
)

# ---------------------------------------------------------------------------- scatter


class Scatter(Function):
    """``out = x; out[mesh(index)] = src`` (src a raw array or a Python value)."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index, src):
        xp = backend.array_module(x)
        self.mesh = _mesh(xp, index, dim)
        self.part = tuple(slice(0, n) for n in index.shape)
        self.src_shape = getattr(src, "shape", None)
        out = x.copy()
        out[self.mesh] = src[self.part] if backend.is_array(src) else src
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        gx = g.copy()
        gx[self.mesh] = 0
        gs = None
        if len(self.needs_input_grad) > 3 and self.needs_input_grad[3]:
            gs = xp.zeros(self.src_shape, g.dtype)
            gs[self.part] = g[self.mesh]
        return gx, None, None, gs

    def backward_graph(self, g):
        keep = backend.array_module(g._data).ones(g.shape, bool)
        keep[self.mesh] = False
        gs = None
        if self.src_shape is not None:
            # NOTE: src larger than index: first derivative only (the mesh's arrays are an
            # open grid, so the index's shape is read from the part it covers)
            if tuple(self.src_shape) != tuple(sl.stop for sl in self.part):
                return NotImplemented
            gs = getitem(g, self.mesh)
        return g * Tensor._wrap(keep), None, None, gs


def _prep(x: Tensor, dim, index, op: str, src=None):
    if x.ndim == 0:
        raise ShapeError(f"{op}: 0-d tensors are not supported; unsqueeze them first")
    idx = _index_array(x, index, op)
    d = _dim(dim, x.ndim, op)
    if isinstance(src, Tensor):
        if src.dtype is not x.dtype:
            raise DTypeError(
                f"{op}: src has dtype {src.dtype} but the input has {x.dtype}; cast one, "
                "e.g. src.to(x.dtype)"
            )
        if src.ndim != x.ndim:
            raise ShapeError(f"{op}: src must have as many dims as the input, got src shape "
                             f"{tuple(src.shape)} for input shape {tuple(x.shape)}")  # fmt: skip
    _check_index(x, idx, d, op, src if isinstance(src, Tensor) else None)
    return d, idx


@backend.on_tensor_device
def scatter(input: Tensor, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:  # noqa: A002
    """A copy of ``input`` with ``src`` (a tensor or a number) written at ``index`` along
    ``dim``: ``out[index[i][j]][j] = src[i][j]`` for ``dim=0``.

    ``reduce="add"`` / ``"multiply"`` combine instead of writing (as ``scatter_reduce``).
    Example: ``mg.zeros(2, 3).scatter(1, mg.tensor([[2], [0]]), 1.0)``
    """
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: give src (a tensor) or value (a number)")
    if reduce is not None:
        modes = {"add": "sum", "multiply": "prod"}
        if reduce not in modes:
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        if not isinstance(src, Tensor):
            xp = backend.array_module(input._data)
            src = Tensor._wrap(xp.full(tuple(_index_array(input, index, "scatter").shape), src,
                                       input._data.dtype), input._device)  # fmt: skip
        return scatter_reduce(input, dim, index, src, modes[reduce])
    d, idx = _prep(input, dim, index, "scatter", src)
    if isinstance(src, Tensor):
        return Scatter.apply(input, d, idx, src)
    return Scatter.apply(input, d, idx, src)


class ScatterReduce(Function):
    def forward(self, x, dim, index, src, reduce, include_self):
        xp = backend.array_module(x)
        mesh = _mesh(xp, index, dim)
        part = tuple(slice(0, n) for n in index.shape)
        s = src[part]
        self.mesh, self.part, self.src_shape = mesh, part, src.shape
        self.reduce, self.inc = reduce, include_self
        # NOTE: on NumPy arrays the combining runs in C, in index order (cpu/_sortscan.py)
        self.at = at = (index, dim) if _np_fast(xp, x) else None
        # NOTE: how many values land on each position: for means, for positions without
        # input's own value and for the GPU paths
        hit = None
        if reduce == "mean" or not include_self or (reduce != "sum" and at is None):
            hit = xp.zeros(x.shape, "int64")
            _add_at(hit, mesh, 1, at)
        self.hit = hit
        if reduce in ("sum", "mean"):
            out = x.copy()
            if not include_self:
                _set_at(out, mesh, 0, at)
            _add_at(out, mesh, s, at, src)
            if reduce == "mean":
                c = xp.maximum(hit + (1 if include_self else 0), 1)
                if x.dtype.kind == "f":
                    # NOTE: a float32 division, as float32 / int64 in float64 then rounded
                    # (double rounding of a quotient is exact from 53 bits), without the
                    # float64 temporaries
                    out = out / c.astype(x.dtype)
                else:
                    out = out // c
                self.cnt = c
        elif reduce == "prod":
            out = _scatter_prod(xp, x, mesh, s, include_self, hit, at and (*at, src))
            self.x, self.s, self.out = x, s, out
        else:
            out = _scatter_ext(xp, x, mesh, s, include_self, hit, reduce == "amax",
                               at and (*at, src))  # fmt: skip
            self.x, self.s, self.out = x, s, out
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        mesh, r, at = self.mesh, self.reduce, self.at
        keep = _keep_self(self.hit, self.inc)  # where x's own value is part of the result
        if r == "sum":
            gx, gsp = g * keep, _take_at(g, mesh, at)
        elif r == "mean":
            gx, gsp = g * keep / self.cnt, _take_at(g / self.cnt, mesh, at)
        elif r == "prod":
            # NOTE: the product of the other values, as PyTorch computes it: zeros masked
            # to 1 and products taken again, so that a single zero gets the product of the
            # rest (two zeros at one position give 0)
            x, s, inc, hit = self.x, self.s, self.inc, self.hit
            mx = xp.where(x == 0, 1, x)
            gx = xp.where(
                keep, g * _scatter_prod(xp, mx, mesh, s, inc, hit, at and (*at, s)) / mx, 0
            )
            zero = s == 0
            nz = xp.zeros(x.shape, "int64")
            _add_at(nz, mesh, zero.astype("int64"), at)
            single = zero & (_take_at(nz, mesh, at) == 1)
            s1 = xp.where(single, 1, s)
            rest = _scatter_prod(xp, x, mesh, s1, inc, hit, at and (*at, s1))
            gsp = xp.where(single, _take_at(g * rest, mesh, at),
                           _take_at(g * self.out, mesh, at) / xp.where(zero, 1, s))  # fmt: skip
        else:  # amax / amin: shared evenly among the values equal to the result
            # NOTE: as in PyTorch, input's own value counts as a tie even where
            # include_self=False leaves it out of the result (it then gets no gradient)
            own = (self.x == self.out) & keep
            ties = (self.x == self.out).astype(g.dtype)
            hits = self.s == _take_at(self.out, mesh, at)
            _add_at(ties, mesh, hits.astype(g.dtype), at)
            share = g / xp.maximum(ties, 1)
            gx = share * own
            gsp = _take_at(share, mesh, at) * hits
        gs = xp.zeros(self.src_shape, g.dtype)
        gs[self.part] = gsp
        return gx.astype(g.dtype, copy=False), None, None, gs.astype(g.dtype, copy=False)

    def backward_graph(self, g):
        r, mesh = self.reduce, self.mesh
        if r == "prod" or tuple(self.src_shape) != tuple(mesh[0].shape):
            return NotImplemented  # NOTE: first derivative only
        xp = backend.array_module(g._data)
        keep = _keep_self(self.hit, self.inc)
        dt = g._data.dtype
        if r == "sum":
            gx = g * 1 if keep is True else g * Tensor._wrap(keep)
            return gx, None, None, getitem(g, mesh)
        if r == "mean":
            inv = Tensor._wrap((1 / self.cnt).astype(dt))
            return g * Tensor._wrap(keep / self.cnt), None, None, getitem(g * inv, mesh)
        own = (self.x == self.out) & keep
        ties = (self.x == self.out).astype(dt)
        backend.index_add(ties, mesh, (self.s == self.out[mesh]).astype(dt))
        share = Tensor._wrap((1 / xp.maximum(ties, 1)).astype(dt))
        hit = Tensor._wrap((self.s == self.out[mesh]).astype(dt))
        return g * share * Tensor._wrap(own), None, None, getitem(g * share, mesh) * hit


def _keep_self(hit, inc):
    return True if hit is None else (hit == 0) | inc


def _add_at(target, mesh, values, at, full=None) -> None:
    """``backend.index_add(target, mesh, values)``: in C where ``at`` (the scatter's index
    and dim) is given and the dtype fits; ``full``: the values before their cut to the
    index's shape (the C loop reads them in place)."""
    src = values if full is None else full
    if at is None or not _sortscan.scatter(target, at[0], src, at[1], "sum"):
        backend.index_add(target, mesh, values)


def _set_at(target, mesh, value, at) -> None:
    """``target[mesh] = value`` (a number), in C where ``at`` is given."""
    if at is None or not _sortscan.scatter(target, at[0], value, at[1], "set"):
        target[mesh] = value


def _take_at(a, mesh, at):
    """``a[mesh]``: in C where ``at`` is given and the index spans ``a`` outside its dim
    (NumPy's fancy indexing builds the broadcast index arrays first)."""
    if at is not None:
        index, dim = at
        if all(n == m or d == dim for d, (n, m) in enumerate(zip(index.shape, a.shape))):
            out = _sortscan.take(a, index, dim)
            if out is not None:
                return out
    return a[mesh]


_AT_OPS = {"add": "sum", "multiply": "prod", "maximum": "amax", "minimum": "amin"}


def _ufunc_at(xp, ufunc, target, mesh, values, scatter=None) -> None:
    """``ufunc.at(target, mesh, values)`` on NumPy arrays: in C from ``scatter`` (index,
    dim, src: the scatter the mesh was made from), else through flat positions.

    NOTE: the C loop (cpu/_sortscan.py) combines in the same order as ufunc.at without
    building the flat positions: scatter_reduce amax of 98K values into (256, 640) 1.7 ms
    -> ~0.5 ms (PyTorch 0.8)."""
    if scatter is not None:
        index, dim, src = scatter
        if _sortscan.scatter(target, index, src, dim, _AT_OPS[ufunc.__name__]):
            return
    if not flat_at(ufunc, target, mesh, values):
        ufunc.at(target, mesh, values)


def _np_fast(xp, x) -> bool:
    """NumPy arrays of 32/64-bit floats or of integers: ``ufunc.at``'s fast loops.

    NOTE: these replace the GPU paths below on the CPU: a (256, 640) float32
    scatter_reduce "amax" of 98K values took 30 ms in the two sorts, against 1.4 ms in
    PyTorch, and "prod" 12 ms through logarithms (0.5 ms). ``maximum.at`` keeps the first
    of equal values and ``multiply.at`` multiplies in index order, as PyTorch's CPU kernel."""
    k = x.dtype.kind
    return xp is backend.np and (k in "iu" or (k == "f" and x.dtype.itemsize >= 4))


def _scatter_ext(xp, x, mesh, s, include_self, hit, is_max, scatter=None):
    """Max (or min) of the values scattered to each position, without ``ufunc.at`` (which
    CuPy lacks): sort by value, then by target, and keep each target's last value."""
    if _np_fast(xp, x):
        out = x.copy()
        if not include_self:
            if x.dtype.kind == "f":
                fill = -xp.inf if is_max else xp.inf
            else:
                fill = xp.iinfo(x.dtype).min if is_max else xp.iinfo(x.dtype).max
            _set_at(out, mesh, fill, scatter and scatter[:2])
        _ufunc_at(xp, xp.maximum if is_max else xp.minimum, out, mesh, s, scatter)
        return out
    flat = xp.ravel_multi_index(tuple(xp.broadcast_to(m, s.shape).ravel() for m in mesh),
                                x.shape)  # fmt: skip
    v = s.ravel()
    # NOTE: ~v reverses the order of integers and bools without overflow (-v wraps at the
    # minimum of a signed type and for unsigned ones, and bools have no negative)
    order = xp.argsort(v if is_max else -v if v.dtype.kind in "fc" else ~v, kind="stable")
    order = order[xp.argsort(flat[order], kind="stable")]
    t, v = flat[order], v[order]
    last = xp.concatenate([t[1:] != t[:-1], xp.ones(min(t.size, 1), bool)])
    out = x.copy().ravel()
    best = out.copy()
    best[t[last]] = v[last]
    pick = xp.maximum if is_max else xp.minimum
    hitf = hit.ravel() > 0
    if include_self:
        out = xp.where(hitf, pick(out, best), out)
    else:
        out = xp.where(hitf, best, out)
    return out.reshape(x.shape)


def _scatter_prod(xp, x, mesh, s, include_self, hit, scatter=None):
    """Products of the values scattered to each position, from sums of logarithms of their
    magnitudes, counts of negatives and of zeros (``index_add`` only, as on GPUs)."""
    if _np_fast(xp, x):
        out = x.copy()
        if not include_self:
            _set_at(out, mesh, 1, scatter and scatter[:2])
        _ufunc_at(xp, xp.multiply, out, mesh, s, scatter)
        return out
    wide = "float64"
    logs = xp.zeros(x.shape, wide)
    neg = xp.zeros(x.shape, "int64")
    zero = xp.zeros(x.shape, "int64")
    a = s.astype(wide)
    with backend.quiet_float_errors():
        backend.index_add(logs, mesh, xp.log(xp.abs(xp.where(a == 0, 1, a))))
    backend.index_add(neg, mesh, (a < 0).astype("int64"))
    backend.index_add(zero, mesh, (a == 0).astype("int64"))
    p = xp.exp(logs) * xp.where(neg % 2 == 1, -1.0, 1.0) * (zero == 0)
    if x.dtype.kind in "iu":
        p = xp.round(p)
    base = x.astype(wide) if include_self else 1.0
    out = xp.where(hit > 0, base * p, x.astype(wide))
    return out.astype(x.dtype)


_REDUCE = ("sum", "prod", "mean", "amax", "amin")


@backend.on_tensor_device
def scatter_reduce(input: Tensor, dim: int, index, src: Tensor, reduce: str, *,  # noqa: A002
                   include_self: bool = True) -> Tensor:  # fmt: skip
    """A copy of ``input`` with ``src`` combined in at ``index`` along ``dim`` by ``reduce``
    (sum, prod, mean, amax, amin), with or without ``input``'s own values.

    Example: ``mg.zeros(3).scatter_reduce(0, idx, vals, "amax", include_self=False)``
    """
    if reduce not in _REDUCE:
        raise ValueError(f"scatter_reduce: reduce must be one of {_REDUCE}, got {reduce!r}")
    d, idx = _prep(input, dim, index, "scatter_reduce", src)
    return ScatterReduce.apply(input, d, idx, src, reduce, bool(include_self))


# ---------------------------------------------------------------------------- index_*


class IndexPut(Function):
    """``index_add`` (accumulate) or ``index_copy`` (write) along one dim."""

    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index, src, alpha, accumulate):
        self.dim, self.index = dim, index
        self.idx = (slice(None),) * dim + (index,)
        self.accumulate, self.alpha = accumulate, alpha
        out = x.copy()
        if accumulate:
            backend.index_add(out, self.idx, src if alpha == 1 else src * alpha)
        else:
            out[self.idx] = src
        return out

    def backward(self, g):
        if self.accumulate:
            gs = g[self.idx]
            return g, None, None, (gs if self.alpha == 1 else gs * self.alpha)
        gx = g.copy()
        gx[self.idx] = 0
        return gx, None, None, g[self.idx]

    def backward_graph(self, g):
        gs = index_select(g, self.dim, Tensor._wrap(self.index))
        if self.accumulate:
            return g, None, None, (gs if self.alpha == 1 else gs * self.alpha)
        keep = backend.array_module(g._data).ones(g.shape, bool)
        keep[self.idx] = False
        return g * Tensor._wrap(keep), None, None, gs


def _index1(x: Tensor, dim, index, op: str):
    if x.ndim == 0:
        x = x.reshape(1)
    idx = _index_array(x, index, op)
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise ShapeError(f"{op}: index must be a 1-d integer tensor, got shape "
                         f"{tuple(idx.shape)} and dtype {idx.dtype}")  # fmt: skip
    return _dim(dim, x.ndim, op), idx.reshape(-1)


def _source(x: Tensor, d: int, idx, source: Tensor, op: str) -> Tensor:
    want = x.shape[:d] + (idx.shape[0],) + x.shape[d + 1 :]
    if tuple(source.shape) != tuple(want) and source.numel() == 1 and len(want) == 1:
        source = source.reshape(want)
    if tuple(source.shape) != tuple(want):
        raise ShapeError(f"{op}: source must have shape {tuple(want)} (the input's with dim "
                         f"{d} as long as the index), got {tuple(source.shape)}")  # fmt: skip
    if source.dtype is not x.dtype:
        raise DTypeError(f"{op}: source has dtype {source.dtype} but the input has {x.dtype}")
    return source


@backend.on_tensor_device
def index_add(input: Tensor, dim: int, index, source: Tensor, *, alpha=1) -> Tensor:  # noqa: A002
    """A copy of ``input`` with ``alpha * source`` added at rows ``index`` of ``dim``
    (repeated indices accumulate)."""
    x = input.reshape(1) if input.ndim == 0 else input
    d, idx = _index1(x, dim, index, "index_add")
    _check_bounds(x, idx, d, "index_add")
    out = IndexPut.apply(x, d, idx, _source(x, d, idx, source, "index_add"), alpha, True)
    return out.reshape(input.shape)


@backend.on_tensor_device
def index_copy(input: Tensor, dim: int, index, source: Tensor) -> Tensor:  # noqa: A002
    """A copy of ``input`` with rows ``index`` of ``dim`` replaced by ``source``'s."""
    x = input.reshape(1) if input.ndim == 0 else input
    d, idx = _index1(x, dim, index, "index_copy")
    _check_bounds(x, idx, d, "index_copy")
    out = IndexPut.apply(x, d, idx, _source(x, d, idx, source, "index_copy"), 1, False)
    return out.reshape(input.shape)


class IndexFill(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, dim, index, value):
        self.idx = (slice(None),) * dim + (index,)
        out = x.copy()
        out[self.idx] = value
        return out

    def backward(self, g):
        gx = g.copy()
        gx[self.idx] = 0
        return gx, None, None, None

    def backward_graph(self, g):
        keep = backend.array_module(g._data).ones(g.shape, bool)
        keep[self.idx] = False
        return g * Tensor._wrap(keep), None, None, None


@backend.on_tensor_device
def index_fill(input: Tensor, dim: int, index, value) -> Tensor:  # noqa: A002
    """A copy of ``input`` with rows ``index`` of ``dim`` set to ``value``."""
    x = input.reshape(1) if input.ndim == 0 else input
    d, idx = _index1(x, dim, index, "index_fill")
    if isinstance(value, Tensor):
        value = value._data.reshape(())
    return IndexFill.apply(x, d, idx, value).reshape(input.shape)


# ---------------------------------------------------------------------------- masks, take


def _mask(x: Tensor, mask, op: str):
    m = _index_array(x, mask, op)
    if m.dtype.kind != "b":
        raise DTypeError(f"{op}: mask must be a bool tensor, got dtype {m.dtype}")
    return m


def _broadcast_shape(a: tuple, b: tuple, op: str) -> tuple:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise ShapeError(f"{op}: shapes {a} and {b} do not broadcast")
    return tuple(max(x, y) if 0 not in (x, y) else 0 for x, y in zip(a, b))


@backend.on_tensor_device
def masked_select(input: Tensor, mask) -> Tensor:  # noqa: A002
    """The entries of ``input`` where ``mask`` (broadcast with it) is True, as a 1-d tensor."""
    m = _mask(input, mask, "masked_select")
    xp = backend.array_module(m)
    shape = _broadcast_shape(tuple(input.shape), tuple(m.shape), "masked_select")
    x = input.expand(*shape) if tuple(input.shape) != tuple(shape) else input
    return getitem(x, Tensor._wrap(xp.broadcast_to(m, shape), input._device))


class MaskedScatter(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, mask, source):
        xp = backend.array_module(x)
        self.mask = xp.broadcast_to(mask, x.shape)
        self.n = int(self.mask.sum())
        self.src_shape = source.shape
        if source.size < self.n:
            raise ShapeError(f"masked_scatter: source has {source.size} elements, the mask "
                             f"selects {self.n}")  # fmt: skip
        out = x.copy()
        out[self.mask] = source.reshape(-1)[: self.n]
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        gs = xp.zeros(self.src_shape, g.dtype).reshape(-1)
        gs[: self.n] = g[self.mask]
        return g * ~self.mask, None, gs.reshape(self.src_shape)

    def backward_graph(self, g):
        n = 1
        for d in self.src_shape:
            n *= d
        if n != self.n:
            return NotImplemented  # NOTE: a source longer than the mask: first derivative only
        gs = getitem(g, self.mask).reshape(self.src_shape)
        return g * Tensor._wrap(~self.mask), None, gs


@backend.on_tensor_device
def masked_scatter(input: Tensor, mask, source: Tensor) -> Tensor:  # noqa: A002
    """A copy of ``input`` with the positions where ``mask`` is True filled, in order, by
    ``source``'s elements."""
    m = _mask(input, mask, "masked_scatter")
    if source.dtype is not input.dtype:
        raise DTypeError(f"masked_scatter: source has dtype {source.dtype}, input {input.dtype}")
    if tuple(m.shape) != tuple(input.shape):  # NOTE: input and mask broadcast together
        shape = _broadcast_shape(tuple(input.shape), tuple(m.shape), "masked_scatter")
        if shape != tuple(input.shape):
            input = input.expand(shape)  # noqa: A001
        if shape != tuple(m.shape):
            m = backend.array_module(m).broadcast_to(m, shape)
    return MaskedScatter.apply(input, m, source)


@backend.on_tensor_device
def take(input: Tensor, index) -> Tensor:  # noqa: A002
    """``input.flatten()[index]``, shaped like ``index``."""
    idx = _index_array(input, index, "take")
    flat = input.reshape(-1)
    out = index_select(flat, 0, Tensor._wrap(idx.reshape(-1), input._device))
    return out.reshape(tuple(idx.shape))


@backend.on_tensor_device
def take_along_dim(input: Tensor, indices, dim=None) -> Tensor:  # noqa: A002
    """``gather`` with broadcasting: values of ``input`` at ``indices`` along ``dim`` (of
    the flattened input when ``dim`` is None)."""
    idx = _index_array(input, indices, "take_along_dim")
    if dim is None:
        _check_bounds(input.reshape(-1), idx, 0, "take_along_dim")
        return take(input, Tensor._wrap(idx.reshape(-1), input._device))
    d = _dim(dim, input.ndim, "take_along_dim")
    if idx.ndim != input.ndim:
        raise ShapeError(f"take_along_dim: indices need {input.ndim} dims, got {idx.ndim}")
    xs, ids = list(input.shape), list(idx.shape)
    shape = [max(a, b) for a, b in zip(xs, ids)]
    xshape, ishape = list(shape), list(shape)
    xshape[d], ishape[d] = xs[d], ids[d]
    x = input.expand(*xshape) if xshape != xs else input
    xp = backend.array_module(idx)
    idx = xp.broadcast_to(idx, tuple(ishape))
    if xs[d]:  # NOTE: PyTorch's take_along_dim takes each index modulo the dim's size
        idx = xp.remainder(idx, xs[d])
    return gather(x, d, Tensor._wrap(xp.ascontiguousarray(idx), input._device))


from ._common import public  # noqa: E402

__all__ = public(globals())
