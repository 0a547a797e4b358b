"""The rest of PyTorch's sparse API on COO and compressed tensors: ``sparse_mask``, the
sparse-result products ``smm``/``hspmm``/``hsmm``/``sspaddmm``, ``sparse_resize_`` and
``sparse_resize_and_clear_``, and the ``*_indices_copy``/``values_copy`` functions.

Values are computed by the dense ops, so gradients reach the dense operands and the
values.

Example:
    >>> mask = mg.tensor([[1.0, 0.0], [0.0, 1.0]]).to_sparse()
    >>> mg.tensor([[5.0, 6.0], [7.0, 8.0]]).sparse_mask(mask).values()
    tensor([5., 8.])
    >>> mg.hspmm(mask, mg.ones(2, 3)).values()  # the rows the sparse operand stores
"""

from __future__ import annotations

from . import backend
from ._sparse_compressed import (
    BLOCKED,
    SparseCompressedTensor,
    layout_name,
    not_for_backend,
)
from .tensor import Tensor

_RESIZE_HINT = (
    " on a non-empty sparse tensor is not supported.\nYou could try the following options:\n"
    "1. If you need an empty sparse tensor of this size, call `x = torch.sparse_coo_tensor(size)`."
    "\n2. If you need to resize this tensor, you have the following options:\n"
    "    1. For both sparse and dense dimensions, keep the number of them constant and the size "
    "of them non-shrinking, and then try the same call again.\n"
    "    2. Or, create a new sparse tensor with the correct indices and values from this sparse "
    "tensor."
)


def _coo():
    from .sparse import SparseCooTensor

    return SparseCooTensor


def _ops():
    from . import ops

    return ops


# ---------------------------------------------------------------------------- sparse_mask


def sparse_mask(input, mask):  # noqa: A002
    """``input``'s entries at the positions ``mask`` stores, in ``mask``'s layout (COO or
    compressed) and order; differentiable in ``input``.

    Example: ``x.sparse_mask(adj)`` (the dense ``x`` read on a graph's edges)
    """
    if not isinstance(mask, (_coo(), SparseCompressedTensor)):
        raise not_for_backend("sparse_mask", mask)
    if isinstance(input, SparseCompressedTensor) and not isinstance(mask, SparseCompressedTensor):
        raise RuntimeError("sparse_mask_sparse_compressed expects mask to have sparse compressed "
                           f"layout, got {layout_name(mask)}")  # fmt: skip
    if tuple(input.shape) != tuple(mask._size):
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size "
                           f"{list(input.shape)} but mask has size {list(mask._size)}")  # fmt: skip
    dense = input if isinstance(input, Tensor) else input.to_dense()
    dev = dense._device
    if isinstance(mask, _coo()):
        idx = mask._idx.to(dev)
        vals = dense[tuple(idx[d] for d in range(mask.sparse_dim()))]
        return _coo()(idx, vals, mask._size, mask._coalesced)
    idx, _ = mask._block_coo()
    nb = mask._nbatch()
    grid = dense
    if mask._layout in BLOCKED:  # (*batch, Rb, Cb, bh, bw, *dense), as the values are stored
        (bh, bw), size = mask._blocksize(), mask._size
        shape = size[:nb] + (size[nb] // bh, bh, size[nb + 1] // bw, bw) + size[nb + 2 :]
        grid = dense.reshape(shape).movedim(nb + 1, nb + 2)
    with backend.device_scope(dev):
        parts = tuple(Tensor._wrap(idx[d], dev) for d in range(nb + 2))
    vals = grid[parts].reshape(tuple(mask._vals.shape[: nb + 1]) + tuple(grid.shape[nb + 2 :]))
    return SparseCompressedTensor(mask._cidx, mask._pidx, vals, mask._size, mask._layout)


# ---------------------------------------------------------------------------- products


def _check_mm(name: str, mat1, mat2, arg: int = 2) -> None:
    if mat1.sparse_dim() != 2 or mat1.ndim != 2:
        got = mat1.sparse_dim() if mat1.ndim == 2 else mat1.ndim
        raise RuntimeError(f"{name}: Argument #{arg}: matrices expected, got {got}D tensor")
    if mat2.ndim != 2:
        raise RuntimeError(f"{name}: Argument #{arg + 1}: matrices expected, got {mat2.ndim}D "
                           "tensor")  # fmt: skip
    if mat2.shape[0] != mat1._size[1]:
        raise RuntimeError(f"{name}: Argument #{arg + 1}: Expected dim 0 size {mat1._size[1]}, "
                           f"got {mat2.shape[0]}")  # fmt: skip
    if mat1.dtype is not mat2.dtype:
        raise RuntimeError(f"expected scalar type {_dt(mat1.dtype)} but found {_dt(mat2.dtype)}")


def _dt(dtype) -> str:
    names = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int"}
    return names.get(dtype.name, dtype.name)


def _rows(mat1, mat2):
    """The rows ``mat1`` stores (sorted, raw int64) and those rows of ``mat1 @ mat2``."""
    from .sparse import mm

    c = mat1.coalesce()
    dev = mat2._device
    with backend.device_scope(dev):
        xp = backend.array_module(c._idx._data)
        rows = xp.unique(c._idx._data[0]).astype("int64")
    picked = _ops().index_select(mm(c, mat2), 0, Tensor._wrap(rows, dev))
    return rows, picked


def hspmm(mat1, mat2):
    """``mat1 @ mat2`` for a sparse COO ``mat1``, as a COO tensor with one sparse dim: the
    rows ``mat1`` stores, each a dense row of the product.

    Example: ``mg.hspmm(adj, h).values()``
    """
    if not isinstance(mat1, _coo()):
        raise not_for_backend("hspmm", mat1)
    _check_mm("hspmm", mat1, mat2)
    rows, vals = _rows(mat1, mat2)
    idx = Tensor._wrap(rows.reshape(1, -1), mat2._device)
    return _coo()(idx, vals, (mat1._size[0], mat2.shape[1]), False)


hsmm = hspmm


def _spread(rows, vals: Tensor, size: tuple):
    """A COO tensor of every entry of the dense rows ``vals`` at ``rows``."""
    dev = vals._device
    ncols = size[1]
    with backend.device_scope(dev):
        xp = backend.array_module(rows)
        idx = xp.stack([xp.repeat(rows, ncols), xp.tile(xp.arange(ncols, dtype="int64"),
                                                        rows.size)])  # fmt: skip
    return _coo()(Tensor._wrap(idx, dev), vals.reshape(-1), size, False)


def smm(input, mat2):  # noqa: A002
    """``input @ mat2`` for a sparse COO ``input``, as a COO tensor holding every column of
    the rows ``input`` stores (``mg.sspaddmm`` with nothing to add).

    Example: ``mg.smm(adj, h).to_dense()``
    """
    if not isinstance(input, _coo()):
        raise RuntimeError("tensor.sspaddmm(...) can only be called on sparse tensors")
    _check_mm("sspaddmm", input, mat2)
    rows, vals = _rows(input, mat2)
    return _spread(rows, vals, (input._size[0], mat2.shape[1]))


def sspaddmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002
    """``beta * input + alpha * (mat1 @ mat2)`` for sparse COO ``input`` and ``mat1``: a COO
    tensor of ``input``'s entries followed by the product's rows that ``mat1`` stores
    (uncoalesced, as PyTorch's).

    Example: ``mg.sspaddmm(s, adj, h, beta=0.5)``
    """
    if not isinstance(input, _coo()) or not isinstance(mat1, _coo()):
        raise RuntimeError("sspaddmm: input and mat1 must be sparse COO tensors; convert with "
                           ".to_sparse()")  # fmt: skip
    _check_mm("sspaddmm", mat1, mat2)
    want = (mat1._size[0], mat2.shape[1])
    for d in (0, 1):
        if input._size[d] != want[d]:
            raise RuntimeError(f"sspaddmm: Argument #1: Expected dim {d} size {want[d]}, got "
                               f"{input._size[d]}")  # fmt: skip
    rows, vals = _rows(mat1, mat2)
    prod = _spread(rows, vals * alpha, want)
    ops = _ops()
    idx = ops.cat([input._idx.to(prod._idx.device), prod._idx], 1)
    return _coo()(idx, ops.cat([input._vals * beta, prod._vals]), want, False)


# ---------------------------------------------------------------------------- resizing


def sparse_resize_(s, size, sparse_dim: int, dense_dim: int, clear: bool = False):
    """Resize a COO tensor in place: any size while it holds no entries (or ``clear``),
    else only growing sizes with the same numbers of sparse and dense dims."""
    size = tuple(int(n) for n in size)
    if len(size) != sparse_dim + dense_dim:
        raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = "
                           f"{len(size)}, sparse_dim = {sparse_dim}, dense_dim = "
                           f"{dense_dim}")  # fmt: skip
    vals = s._vals
    dev = vals._device
    if clear or s._nnz() == 0:
        with backend.device_scope(dev):
            xp = backend.array_module(vals._data)
            s._idx = Tensor._wrap(xp.zeros((sparse_dim, 0), "int64"), dev)
            s._vals = Tensor._wrap(xp.zeros((0,) + size[sparse_dim:], vals._data.dtype), dev)
        s._size = size
        s._coalesced = True if clear else s._coalesced
        return s
    k, dd = s.sparse_dim(), s.dense_dim()
    for what, old, new in (("sparse", k, sparse_dim), ("dense", dd, dense_dim)):
        if old != new:
            raise RuntimeError(f"changing the number of {what} dimensions (from {old} to {new})"
                               + _RESIZE_HINT)  # fmt: skip
    for what, old, new in (("sparse", s._size[:k], size[:k]), ("dense", s._size[k:], size[k:])):
        if any(n < o for o, n in zip(old, new)):
            raise RuntimeError(f"shrinking the size of {what} dimensions (from {list(old)} to "
                               f"{list(new)})" + _RESIZE_HINT)  # fmt: skip
    if size[k:] != s._size[k:]:  # NOTE: grown dense dims: the values padded with zeros
        pad = []
        for o, n in zip(reversed(s._size[k:]), reversed(size[k:])):
            pad += [0, n - o]
        s._vals = _pad(vals, pad)
    s._size = size
    return s


def _pad(vals: Tensor, pad: list) -> Tensor:
    from .nn import functional as F

    return F.pad(vals, pad)


# ---------------------------------------------------------------------------- copies


def _copy(accessor: str):
    def fn(input):  # noqa: A002
        if isinstance(input, _coo()):
            raise not_for_backend(f"{accessor}_copy", input)
        return getattr(input, accessor)().clone()

    fn.__name__ = fn.__qualname__ = f"{accessor}_copy"
    fn.__doc__ = (f"A copy of ``input.{accessor}()`` for a compressed sparse tensor (as "
                  f"PyTorch, not for COO ones).\n\n    Example: ``mg.{accessor}_copy(s)``")  # fmt: skip
    return fn


crow_indices_copy = _copy("crow_indices")
col_indices_copy = _copy("col_indices")
ccol_indices_copy = _copy("ccol_indices")
row_indices_copy = _copy("row_indices")
indices_copy = _copy("indices")
values_copy = _copy("values")
