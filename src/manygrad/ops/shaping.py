"""Building and rearranging tensors: diagonals, stacking, tiling, rotations, grids and
index sets (diag, diagonal, trace, diff, meshgrid, tile, kron, hstack/vstack/dstack,
atleast_*d, rot90, block_diag, cartesian_prod, combinations, tril/triu_indices,
repeat_interleave). Written as compositions of differentiable ops where possible."""

from __future__ import annotations

import itertools

from .. import backend
from .. import dtypes as D
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .arrange import flip, repeat
from .elementwise import cast, mul
from .indexing import _dim, getitem, index_select
from .movement import cat, expand, movedim, narrow, reshape, stack, transpose, unsqueeze

# ---------------------------------------------------------------------------- diagonals


def _diag_index(xp, rows: int, cols: int, offset: int):
    n = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
    i = xp.arange(n)
    return (i - min(offset, 0)), (i + max(offset, 0))


@backend.on_tensor_device
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the (``dim1``, ``dim2``) planes, as the last dim.

    Example: ``mg.diagonal(mg.eye(3), offset=1)`` is ``[0., 0.]``
    """
    d1, d2 = _dim(dim1, input.ndim, "diagonal"), _dim(dim2, input.ndim, "diagonal")
    if d1 == d2:
        raise ShapeError(f"diagonal: dim1 and dim2 must differ, got {dim1} and {dim2}")
    return Diagonal.apply(input, offset, d1, d2)


def _diag_view(xp, a, offset: int, d1: int, d2: int):
    """A writable view of ``a``'s diagonal (NumPy's own is read-only): the (d1, d2) planes
    moved last, cut to start at the offset, then one stride that steps both dims."""
    order = [d for d in range(a.ndim) if d not in (d1, d2)] + [d1, d2]
    y = a.transpose(order)
    y = y[..., :, offset:] if offset >= 0 else y[..., -offset:, :]
    n = max(0, min(y.shape[-2], y.shape[-1]))
    st = y.strides
    return xp.lib.stride_tricks.as_strided(y, y.shape[:-2] + (n,), st[:-2] + (st[-2] + st[-1],))


class Diagonal(Function):
    """``x.diagonal()``: a view, as in PyTorch (writes through it reach ``x``)."""

    complex_ok = True
    view = True

    def forward(self, x, offset, d1, d2):
        self.shape, self.args = x.shape, (offset, d1, d2)
        return _diag_view(backend.array_module(x), x, offset, d1, d2)

    def backward(self, g):
        xp = backend.array_module(g)
        gx = xp.zeros(self.shape, g.dtype)
        _diag_view(xp, gx, *self.args)[...] = g
        return gx

    def backward_graph(self, g):
        from .misc import diagonal_scatter

        return diagonal_scatter(g.new_zeros(self.shape), g, *self.args)


class DiagEmbed(Function):
    complex_ok = True  # moves or picks values: right for complex ones too

    def forward(self, x, offset):
        xp = backend.array_module(x)
        n = x.shape[-1] + abs(offset)
        self.r, self.c = _diag_index(xp, n, n, offset)
        out = xp.zeros(x.shape[:-1] + (n, n), x.dtype)
        out[..., self.r, self.c] = x
        return out

    def backward(self, g):
        return g[..., self.r, self.c], None

    def backward_graph(self, g):
        return getitem(g, (Ellipsis, self.r, self.c)), None


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Square matrices whose ``offset`` diagonal is ``input``'s last dim (placed at dims
    ``dim1``, ``dim2`` of the result)."""
    out = DiagEmbed.apply(input, int(offset))
    d1, d2 = _dim(dim1, input.ndim + 1, "diag_embed"), _dim(dim2, input.ndim + 1, "diag_embed")
    return movedim(out, (out.ndim - 2, out.ndim - 1), (d1, d2))


def diag(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: F811
    """A 1-d tensor as a diagonal matrix, or a matrix's diagonal as a 1-d tensor."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    raise ShapeError(f"diag: expected a 1-d or 2-d tensor, got shape {tuple(input.shape)}")


def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    return diag_embed(reshape(input, -1), offset)


def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal."""
    if input.ndim != 2:
        raise ShapeError(f"trace: expected a matrix, got shape {tuple(input.shape)}")
    s = diagonal(input).sum()
    return s if input.is_floating_point() else cast(s, D.int64)


# ---------------------------------------------------------------------------- differences


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:  # noqa: A002
    """The ``n``-th forward difference along ``dim``, after joining ``prepend``/``append``."""
    d = _dim(dim, input.ndim, "diff")
    x = input
    parts = [p for p in (prepend, x, append) if p is not None]
    if len(parts) > 1:
        x = cat(parts, d)
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        a, b = narrow(x, d, 1, m - 1), narrow(x, d, 0, m - 1)
        x = (a != b) if x.dtype is D.bool_ else a - b
    return x


# ---------------------------------------------------------------------------- grids


def _tensors(tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(tensors[0])
    return tuple(tensors)


def meshgrid(*tensors, indexing: str = "ij") -> tuple:
    """Coordinate grids from 1-d tensors; ``indexing="xy"`` swaps the first two dims."""
    ts = _tensors(tensors)
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    ts = [reshape(t, -1) for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t.shape[0] for t in ts)
    out = []
    for i, t in enumerate(ts):
        view = [1] * len(ts)
        view[i] = -1
        out.append(expand(reshape(t, *view), *shape))
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def cartesian_prod(*tensors) -> Tensor:
    """All tuples of one element from each 1-d tensor, as rows."""
    ts = _tensors(tensors)
    if len(ts) == 1:
        return ts[0]
    return stack([reshape(g, -1) for g in meshgrid(*ts, indexing="ij")], 1)


def combinations(input: Tensor, r: int = 2, with_replacement: bool = False) -> Tensor:  # noqa: A002
    """All length-``r`` combinations of a 1-d tensor's elements, as rows."""
    if input.ndim != 1:
        raise ShapeError(f"combinations: expected a 1-d tensor, got shape {tuple(input.shape)}")
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    combos = list(pick(range(input.shape[0]), r))
    if not combos:
        return reshape(input[:0], 0) if r != 0 else input[:0]
    xp = backend.array_module(input._data)
    with backend.device_scope(input._device):
        idx = xp.asarray(combos, dtype="int64")
    out = index_select(input, 0, Tensor._wrap(idx.reshape(-1), input._device))
    return reshape(out, len(combos), r)


def _tri_indices(row, col, offset, lower, dtype, device):
    from ..creation import tensor as _tensor

    dev = backend.device(device)
    xp = backend.xp_of(dev)
    with backend.device_scope(dev):
        fn = xp.tril_indices if lower else xp.triu_indices
        r, c = fn(row, offset, col)
        out = xp.stack([r, c]).astype(D.from_any(dtype or D.int64).np)
    return _tensor(out, device=dev) if dev.type == "cpu" else Tensor._wrap(out, dev)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of a ``row x col`` matrix's lower triangle."""
    return _tri_indices(row, col, offset, True, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None) -> Tensor:
    """The (2, N) row and column indices of a ``row x col`` matrix's upper triangle."""
    return _tri_indices(row, col, offset, False, dtype, device)


# ---------------------------------------------------------------------------- stacking


def atleast_1d(*tensors):
    ts = _tensors(tensors)
    out = tuple(reshape(t, 1) if t.ndim == 0 else t for t in ts)
    return out[0] if len(tensors) == 1 and isinstance(tensors[0], Tensor) else out


def atleast_2d(*tensors):
    ts = _tensors(tensors)
    out = tuple(reshape(t, 1, 1) if t.ndim == 0 else unsqueeze(t, 0) if t.ndim == 1 else t
                for t in ts)  # fmt: skip
    return out[0] if len(tensors) == 1 and isinstance(tensors[0], Tensor) else out


def _3d(t):
    if t.ndim == 0:
        return reshape(t, 1, 1, 1)
    if t.ndim == 1:
        return reshape(t, 1, -1, 1)
    if t.ndim == 2:
        return unsqueeze(t, -1)
    return t


def atleast_3d(*tensors):
    ts = _tensors(tensors)
    out = tuple(_3d(t) for t in ts)
    return out[0] if len(tensors) == 1 and isinstance(tensors[0], Tensor) else out


def _promoted(ts):
    dt = ts[0].dtype
    for t in ts[1:]:
        dt = D.result_type(Tensor._wrap(backend.array_module(t._data).zeros((), dt.np)), t)
    return [t if t.dtype is dt else cast(t, dt) for t in ts]


def hstack(tensors) -> Tensor:
    ts = _promoted(list(atleast_1d(*tensors)))
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    return cat(_promoted(list(atleast_2d(*tensors))), 0)


row_stack = vstack


def dstack(tensors) -> Tensor:
    return cat(_promoted(list(atleast_3d(*tensors))), 2)


def column_stack(tensors) -> Tensor:
    ts = [reshape(t, -1, 1) if t.ndim <= 1 else t for t in tensors]
    return cat(_promoted(ts), 1)


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix with the given tensors (0-, 1- or 2-d) as blocks."""
    ts = _promoted([reshape(t, 1, 1) if t.ndim == 0 else reshape(t, 1, -1) if t.ndim == 1
                    else t for t in tensors])  # fmt: skip
    if any(t.ndim != 2 for t in ts):
        raise ShapeError("block_diag: blocks must have at most 2 dims")
    cols = sum(t.shape[1] for t in ts)
    rows, left = [], 0
    xp = backend.array_module(ts[0]._data)
    for t in ts:
        right = cols - left - t.shape[1]
        with backend.device_scope(t._device):
            z = [Tensor._wrap(xp.zeros((t.shape[0], n), t._data.dtype), t._device)
                 for n in (left, right)]  # fmt: skip
        rows.append(cat([z[0], t, z[1]], 1))
        left += t.shape[1]
    return cat(rows, 0)


# ---------------------------------------------------------------------------- tiling


def tile(input: Tensor, dims) -> Tensor:
    """``input`` repeated ``dims[i]`` times along each dim (ones added in front as needed)."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, *dims)


def kron(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The Kronecker product: every entry of ``input`` times a block ``other``."""
    n = max(input.ndim, other.ndim)
    a = reshape(input, *((1,) * (n - input.ndim) + tuple(input.shape)))
    b = reshape(other, *((1,) * (n - other.ndim) + tuple(other.shape)))
    av = reshape(a, *[s for d in a.shape for s in (d, 1)])
    bv = reshape(b, *[s for d in b.shape for s in (1, d)])
    out = mul(av, bv)
    return reshape(out, *[p * q for p, q in zip(a.shape, b.shape)])


def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """``input`` rotated by 90 degrees ``k`` times in the plane of ``dims`` (from the first
    towards the second)."""
    if len(tuple(dims)) != 2:
        raise ShapeError(f"rot90: dims must be two different dims, got {tuple(dims)}")
    d0, d1 = (_dim(d, input.ndim, "rot90") for d in dims)
    if d0 == d1:
        raise ShapeError(f"rot90: dims must be two different dims, got {tuple(dims)}")
    k %= 4
    if k == 0:
        return input.clone()
    if k == 2:
        return flip(input, (d0, d1))
    if k == 1:
        return transpose(flip(input, (d1,)), d0, d1)
    return flip(transpose(input, d0, d1), (d1,))


def fliplr(input: Tensor) -> Tensor:
    return flip(input, (1,))


def flipud(input: Tensor) -> Tensor:
    return flip(input, (0,))


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None) -> Tensor:  # noqa: A002
    """Each element (or slice along ``dim``) repeated ``repeats`` times (an int or a 1-d
    tensor of per-element counts); with only an integer tensor, its values are counts."""
    if repeats is None:
        counts, input = input, None
    else:
        counts = repeats
    ref = counts if input is None else input
    xp = backend.array_module(ref._data)
    if isinstance(counts, Tensor):
        reps = [int(c) for c in counts.tolist()] if counts.ndim else int(counts.item())
    else:
        reps = int(counts)
    with backend.device_scope(ref._device):
        if input is None:
            idx = xp.repeat(xp.arange(len(reps)), reps).astype("int64")
            return Tensor._wrap(idx, ref._device)
        x = reshape(input, -1) if dim is None else input
        d = 0 if dim is None else _dim(dim, x.ndim, "repeat_interleave")
        idx = xp.repeat(xp.arange(x.shape[d]), reps)
    return index_select(x, d, Tensor._wrap(idx, ref._device))


# ---------------------------------------------------------------------------- aliases


def broadcast_to(input: Tensor, size) -> Tensor:
    return expand(input, tuple(size))


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    return transpose(input, axis0, axis1)


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    return transpose(input, dim0, dim1)


def moveaxis(input: Tensor, source, destination) -> Tensor:
    return movedim(input, source, destination)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices of ``input`` along ``dim``, as a tuple of tensors without that dim."""
    d = _dim(dim, input.ndim, "unbind")
    return tuple(getitem(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


from ._common import public  # noqa: E402

__all__ = public(globals())
