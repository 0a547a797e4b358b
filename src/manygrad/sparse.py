"""Sparse COO tensors (``mg.sparse_coo_tensor``) and ``mg.sparse.mm``, as in PyTorch.

A sparse tensor keeps ``indices`` (sparse_dim, nnz) and ``values`` (nnz, *dense_dims);
its products and conversions are compositions of differentiable ops (``index_select``,
``index_add``), so gradients reach the dense operand and the values (graph networks).

Example:
    >>> adj = mg.sparse_coo_tensor(mg.tensor([[0, 1], [1, 0]]), mg.ones(2), (2, 2))
    >>> h = mg.sparse.mm(adj, x)  # or adj @ x
"""

from __future__ import annotations

import math

from . import backend
from . import dtypes as D
from ._sparse_common import SparseAttrs
from ._sparse_ops import SparseMath
from .errors import ShapeError
from .tensor import Tensor


class layout(str):  # noqa: N801 - PyTorch's name
    """How a tensor's elements are stored, as ``torch.layout``: ``mg.strided`` (dense) or
    ``mg.sparse_coo``; the compressed and blocked layouts are named for comparisons and
    refused by the constructors. A ``str`` whose value is the name, so ``t.layout ==
    "strided"`` holds too."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{D.display_module}.{str.__str__(self)}"

    __str__ = __repr__


strided = layout("strided")
sparse_coo = layout("sparse_coo")
sparse_csr = layout("sparse_csr")
sparse_csc = layout("sparse_csc")
sparse_bsr = layout("sparse_bsr")
sparse_bsc = layout("sparse_bsc")
jagged = layout("jagged")
_mkldnn = layout("_mkldnn")


def _ops():
    from . import ops

    return ops


def _csr():
    from . import _sparse_csr

    return _sparse_csr


def _extra():
    from . import _sparse_extra

    return _sparse_extra


def _wrong_layout(op: str, wanted: str, x):
    from ._sparse_compressed import wrong_layout

    return wrong_layout(op, wanted, x)


# whether constructors check their indices (check_sparse_tensor_invariants)
_CHECK = [False]


class SparseCooTensor(SparseMath, SparseAttrs):
    """A tensor stored as coordinates and values (duplicates add up, as in PyTorch)."""

    is_sparse = True
    layout = sparse_coo

    def __init__(self, indices: Tensor, values: Tensor, size: tuple, coalesced: bool = False):
        self._idx, self._vals, self._size = indices, values, tuple(size)
        # NOTE: as PyTorch, at most one entry is coalesced whatever the caller says
        self._coalesced = coalesced or values.shape[0] <= 1

    # ------------------------------------------------------------------ properties
    def sparse_dim(self) -> int:
        return self._idx.shape[0]

    def dense_dim(self) -> int:
        return self._vals.ndim - 1

    def _nnz(self) -> int:
        return self._vals.shape[0]

    def indices(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError(
                "Cannot get indices on an uncoalesced tensor, please call .coalesce() first"
            )
        return self._idx

    def values(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError(
                "Cannot get values on an uncoalesced tensor, please call .coalesce() first"
            )
        return self._vals

    def _indices(self) -> Tensor:
        """The indices as stored, duplicates and all (no coalescing needed)."""
        return self._idx

    def _values(self) -> Tensor:
        """The values as stored, one per stored index."""
        return self._vals

    def _linear(self):
        """Row-major positions of the entries within the sparse dims (raw int64 array)."""
        xp = backend.array_module(self._idx._data)
        idx = self._idx._data
        lin = xp.zeros(idx.shape[1], "int64")
        for d in range(idx.shape[0]):
            lin = lin * self._size[d] + idx[d]
        return lin

    def is_coalesced(self) -> bool:
        return self._coalesced

    def coalesce(self) -> SparseCooTensor:
        """Duplicates summed, entries sorted by position."""
        if self._coalesced:
            return self
        dev = self._vals._device
        vals = self._vals
        with backend.device_scope(dev):
            xp = backend.array_module(self._idx._data)
            uniq, inv = xp.unique(self._linear(), return_inverse=True)
            rows = []
            rest = uniq
            for d in reversed(range(self.sparse_dim())):
                rows.append(rest % self._size[d])
                rest = rest // self._size[d]
            idx = xp.stack(rows[::-1]) if rows else xp.zeros((0, uniq.size), "int64")
            shape = (int(uniq.size),) + tuple(vals.shape[1:])
            zeros = Tensor._wrap(xp.zeros(shape, vals._data.dtype), dev)
            pos = Tensor._wrap(inv.reshape(-1).astype("int64"), dev)
            idx = Tensor._wrap(idx.astype("int64"), dev)
        vals = _ops().index_add(zeros, 0, pos, vals)
        return SparseCooTensor(idx, vals, self._size, True)

    def to_dense(self) -> Tensor:
        """The dense tensor (differentiable in the values)."""
        vals = self._vals
        dev = vals._device
        n = math.prod(self._size[: self.sparse_dim()])
        with backend.device_scope(dev):
            xp = backend.array_module(vals._data)
            base = Tensor._wrap(xp.zeros((n,) + tuple(vals.shape[1:]), vals._data.dtype), dev)
            lin = Tensor._wrap(self._linear(), dev)
        return _ops().index_add(base, 0, lin, vals).reshape(self._size)

    def _dense_array(self):
        """The dense form as a raw array (no graph): gradients and optimizer updates."""
        vals = self._vals._data
        xp = backend.array_module(vals)
        with backend.device_scope(self._vals._device):
            out = xp.zeros((math.prod(self._size[: self.sparse_dim()]),) + vals.shape[1:],
                           vals.dtype)  # fmt: skip
            backend.index_add(out, self._linear(), vals)
        return out.reshape(self._size)

    def zero_(self) -> SparseCooTensor:
        """Drop every entry in place (``optimizer.zero_grad(set_to_none=False)``)."""
        dev, vals = self._vals._device, self._vals._data
        with backend.device_scope(dev):
            xp = backend.array_module(vals)
            self._idx = Tensor._wrap(xp.zeros((self.sparse_dim(), 0), "int64"), dev)
            self._vals = Tensor._wrap(xp.zeros((0,) + vals.shape[1:], vals.dtype), dev)
        self._coalesced = True
        return self

    def clone(self) -> SparseCooTensor:
        return SparseCooTensor(self._idx.clone(), self._vals.clone(), self._size,
                               self._coalesced)  # fmt: skip

    def to(self, *args, **kwargs) -> SparseCooTensor:
        vals = self._vals.to(*args, **kwargs)
        idx = self._idx.to(vals.device)
        return SparseCooTensor(idx, vals, self._size, self._coalesced)

    def cuda(self, device=None) -> SparseCooTensor:
        return self.to("cuda" if device is None else device)

    def cpu(self) -> SparseCooTensor:
        return self.to("cpu")

    def detach(self) -> SparseCooTensor:
        return SparseCooTensor(self._idx, self._vals.detach(), self._size, self._coalesced)

    def to_sparse_coo(self) -> SparseCooTensor:
        return self

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """This tensor (COO), or its form in the compressed ``layout`` (``blocksize`` for
        ``mg.sparse_bsr`` and ``mg.sparse_bsc``)."""
        from ._sparse_compressed import to_layout

        return to_layout(self, layout, blocksize, dense_dim, sparse_dim)

    def to_sparse_csr(self, dense_dim=None):
        """The same matrix (two sparse dims, any dense dims) in the CSR layout."""
        return _csr().coo_to_csr(self)

    def to_sparse_csc(self, dense_dim=None):
        """The same matrix in the CSC layout (``mg.sparse_csc_tensor``)."""
        return self.to_sparse(layout=sparse_csc)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        """The same matrix in the BSR layout, blocks of ``blocksize`` that hold a non-zero."""
        return self.to_sparse(layout=sparse_bsr, blocksize=blocksize)

    def to_sparse_bsc(self, blocksize, dense_dim=None):
        """The same matrix in the BSC layout, blocks of ``blocksize`` that hold a non-zero."""
        return self.to_sparse(layout=sparse_bsc, blocksize=blocksize)

    # the compressed layouts' accessors and the sparse-result products (``_sparse_extra``)
    def crow_indices(self):
        raise _wrong_layout("crow_indices", "sparse row compressed", self)

    def col_indices(self):
        raise _wrong_layout("col_indices", "sparse row compressed", self)

    def ccol_indices(self):
        raise _wrong_layout("ccol_indices", "sparse column compressed", self)

    def row_indices(self):
        raise _wrong_layout("row_indices", "sparse column compressed", self)

    def sparse_mask(self, mask):
        return _extra().sparse_mask(self, mask)

    def sparse_resize_(self, size, sparse_dim: int, dense_dim: int):
        return _extra().sparse_resize_(self, size, sparse_dim, dense_dim)

    def sparse_resize_and_clear_(self, size, sparse_dim: int, dense_dim: int):
        return _extra().sparse_resize_(self, size, sparse_dim, dense_dim, clear=True)

    def smm(self, mat2):
        return _extra().smm(self, mat2)

    def hspmm(self, mat2):
        return _extra().hspmm(self, mat2)

    def sspaddmm(self, mat1, mat2, *, beta=1, alpha=1):
        return _extra().sspaddmm(self, mat1, mat2, beta=beta, alpha=alpha)

    def t(self) -> SparseCooTensor:
        """The transpose of a 2-d sparse matrix."""
        if self.sparse_dim() != 2 or self.dense_dim():
            raise ShapeError("t: expected a 2-d sparse matrix without dense dims")
        idx = self._idx.flip(0)
        return SparseCooTensor(idx, self._vals, self._size[::-1], False)

    def __matmul__(self, other):
        return mm(self, other)

    def _with_values(self, vals: Tensor) -> SparseCooTensor:
        return SparseCooTensor(self._idx, vals, self._size, self._coalesced)

    def __mul__(self, other):
        """Times a number, a 0-d tensor, a dense tensor that broadcasts to this shape (its
        entries at the stored positions) or a sparse tensor of the same size (the product
        where both store an entry): a sparse tensor, as in PyTorch."""
        if isinstance(other, (int, float)):
            return self._with_values(self._vals * other)
        if isinstance(other, SparseCooTensor):
            return _sparse_mul(self, other)
        if not isinstance(other, Tensor):
            return NotImplemented
        if other.ndim == 0:
            return self._with_values(self._vals * other)
        if other.ndim > self.ndim:
            raise ShapeError(f"sparse mul: a {other.ndim}-d tensor does not broadcast to the "
                             f"sparse tensor's size {self._size}")  # fmt: skip
        full = other.expand(self._size)
        picked = full[tuple(self._idx[d] for d in range(self.sparse_dim()))]
        return self._with_values(self._vals * picked)

    __rmul__ = __mul__
    mul = __mul__

    def __neg__(self) -> SparseCooTensor:
        return self._with_values(-self._vals)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        """As ``mg.sparse.sum`` (``keepdim`` is refused, as PyTorch refuses it)."""
        if keepdim:
            raise RuntimeError("sum: keepdim=True is not supported for sparse tensors")
        src = self if dtype is None else self.to(D.from_any(dtype))
        return sum(src, dim)

    def index_select(self, dim: int, index: Tensor) -> SparseCooTensor:
        """The slices ``index`` along ``dim`` (repeats allowed), grouped in ``index``'s
        order as PyTorch does; differentiable in the values."""
        nd, k = self.ndim, self.sparse_dim()
        if not -nd <= dim < nd:
            raise IndexError(f"index_select: dim {dim} is out of range for a {nd}-d tensor")
        dim %= nd
        ops = _ops()
        if dim >= k:
            vals = ops.index_select(self._vals, dim - k + 1, index)
            return SparseCooTensor(self._idx, vals, self._size[:dim] + (index.numel(),)
                                   + self._size[dim + 1:], self._coalesced)  # fmt: skip
        dev = self._vals._device
        with backend.device_scope(dev):
            xp = backend.array_module(self._idx._data)
            key = self._idx._data[dim]
            order = xp.argsort(key, kind="stable")
            sel = index._data.reshape(-1).astype("int64")
            starts = xp.searchsorted(key[order], sel, side="left")
            counts = xp.searchsorted(key[order], sel, side="right") - starts
            out_pos = xp.repeat(xp.arange(sel.size, dtype="int64"), counts)
            first = xp.repeat(starts - (xp.cumsum(counts) - counts), counts)
            take = order[first + xp.arange(out_pos.size, dtype="int64")]
            take = Tensor._wrap(take.astype("int64"), dev)
            out_pos = Tensor._wrap(out_pos, dev)
        idx = ops.index_select(self._idx, 1, take)
        idx = ops.cat([idx[:dim], out_pos.unsqueeze(0), idx[dim + 1 :]], 0)
        size = self._size[:dim] + (int(sel.size),) + self._size[dim + 1 :]
        return SparseCooTensor(idx, ops.index_select(self._vals, 0, take), size, False)

    def __repr__(self) -> str:
        return sparse_repr(self, (("indices", self._idx),), True)


def sparse_repr(t, index_fields, values_own_line: bool) -> str:
    """PyTorch's layout of a sparse tensor's repr: the index tensors, the values (without
    their dtype), then size, nnz, dtype, device, layout and grad_fn, wrapped at the width."""
    from ._tensor_str import add_suffixes, tensor_str

    def field(head: str, text: str) -> str:  # continuation lines under the field's text
        lines = (head + text.replace("\n", "\n" + " " * len(head))).split("\n")
        return "\n".join(line.rstrip() for line in lines)  # NOTE: blank between blocks

    lines = [field(("tensor(" if i == 0 else "       ") + f"{name}=", repr(x))
             for i, (name, x) in enumerate(index_fields)]  # fmt: skip
    vals = t._vals
    body = "tensor(" + tensor_str(vals._data, 7) + ")"
    lines.append(field("       values=", body))
    extra = [f"size={t._size}", f"nnz={t._nnz()}"]
    if vals.dtype is not D.get_default_dtype() and vals.dtype not in (D.int64, D.bool_):
        extra.append(f"dtype={vals.dtype}")
    if vals._device.type != "cpu":
        extra.append(f"device='{vals._device}'")
    extra.append(f"layout=torch.{str.__str__(t.layout)}")
    if vals.grad_fn is not None:
        extra.append(f"grad_fn=<{vals.grad_fn.name()}>")
    elif vals.requires_grad:
        extra.append("requires_grad=True")
    text = ",\n".join(lines)
    if values_own_line:
        text, extra = text + ",\n       " + extra[0], extra[1:]
    return add_suffixes(text, extra, 7)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      requires_grad: bool = False, check_invariants=None,
                      is_coalesced=None) -> SparseCooTensor:  # fmt: skip
    """A sparse COO tensor from ``indices`` (sparse_dim, nnz) and ``values`` (nnz, ...).

    Args:
        indices: integer coordinates, one row per sparse dim.
        values: one value (or dense block) per coordinate.
        size: the full shape (default: one past the largest index in each sparse dim).
        dtype, device, requires_grad: as for ``mg.tensor``.
        check_invariants: check that the indices fit ``size`` (default: as
            ``mg.sparse.check_sparse_tensor_invariants`` says, off unless enabled).

    Example: ``mg.sparse_coo_tensor([[0, 1, 1], [2, 0, 2]], [3.0, 4.0, 5.0], (2, 3))``
    """
    from .creation import tensor

    vals = values if isinstance(values, Tensor) else tensor(values, dtype=dtype, device=device)
    if dtype is not None and vals.dtype is not D.from_any(dtype):
        vals = vals.to(D.from_any(dtype))
    if device is not None:
        vals = vals.to(device)
    idx = indices if isinstance(indices, Tensor) else tensor(indices, dtype=D.int64)
    idx = idx.to(vals.device).long() if idx.device != vals.device or idx.dtype != D.int64 else idx
    if idx.ndim != 2:
        raise ShapeError(f"sparse_coo_tensor: indices must be 2-d (sparse_dim, nnz), got shape "
                         f"{tuple(idx.shape)}")  # fmt: skip
    if vals.ndim < 1 or vals.shape[0] != idx.shape[1]:
        raise ShapeError(f"sparse_coo_tensor: values must have nnz={idx.shape[1]} rows, got "
                         f"shape {tuple(vals.shape)}")  # fmt: skip
    if size is None:
        if idx.shape[1] == 0:
            raise ShapeError("sparse_coo_tensor: give size= for a tensor without entries")
        top = [int(v) + 1 for v in idx.amax(1).tolist()]
        size = tuple(top) + tuple(vals.shape[1:])
    size = tuple(int(s) for s in size)
    if len(size) != idx.shape[0] + vals.ndim - 1:
        raise ShapeError(f"sparse_coo_tensor: size {size} has {len(size)} dims, expected "
                         f"{idx.shape[0]} sparse + {vals.ndim - 1} dense")  # fmt: skip
    if check_invariants or (check_invariants is None and _CHECK[0]):
        _check_coo(idx, size)
    if requires_grad:
        vals.requires_grad_(True)
    return SparseCooTensor(idx, vals, size, bool(is_coalesced))


def _check_coo(idx: Tensor, size: tuple) -> None:
    """PyTorch's COO invariant (``check_invariants=True``), with its message."""
    if idx.shape[1] == 0:
        return
    a = idx.cpu().numpy()
    for d in range(a.shape[0]):
        lo, hi = int(a[d].min()), int(a[d].max())
        if lo < 0:
            raise RuntimeError(f"found negative index {lo} for dim {d}")
        if hi >= size[d]:
            raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is "
                               f"{size[d]} but found index {hi}")  # fmt: skip


def to_sparse(x: Tensor, sparse_dim: int | None = None) -> SparseCooTensor:
    """The non-zero entries of a dense tensor as a coalesced sparse tensor.

    Args:
        x: the dense tensor.
        sparse_dim: how many leading dims are sparse (default: all); the rest stay dense
            blocks in ``values``, kept wherever any of their entries is non-zero.

    Example:
        >>> mg.tensor([[0, 0], [9, 10]]).to_sparse(1).values()
        tensor([[ 9, 10]])
    """
    k = x.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 <= k <= x.ndim or (k == 0 and x.ndim > 0):
        raise ShapeError(f"to_sparse: sparse_dim must be in 1..{x.ndim} for a {x.ndim}-d "
                         f"tensor, got {sparse_dim}")  # fmt: skip
    mask = x.detach() != 0
    if k < x.ndim:
        mask = mask.any(dim=tuple(range(k, x.ndim)))
    nz = _ops().nonzero(mask)
    vals = x[tuple(nz[:, d] for d in range(k))] if x.ndim else x.reshape(1)
    return SparseCooTensor(nz.mT.contiguous(), vals, tuple(x.shape), True)


def mm(mat1, mat2) -> Tensor:
    """``sparse @ dense`` (or ``dense @ sparse``) as a dense tensor; gradients reach the
    dense operand and the sparse values."""
    ops = _ops()
    if mat1.__class__ is _csr().SparseCsrTensor:
        mat1 = _compressed_operand(mat1, mat2, True)
    if mat2.__class__ is _csr().SparseCsrTensor:
        mat2 = _compressed_operand(mat2, mat1, False)
    if (
        isinstance(mat1, SparseCooTensor)
        and not isinstance(mat2, SparseCooTensor)
        and (isinstance(mat2, Tensor) and mat2.ndim == 1)
    ):
        return mm(mat1, mat2.unsqueeze(1)).squeeze(1)
    if isinstance(mat1, SparseCooTensor) and isinstance(mat2, SparseCooTensor):
        return mm(mat1, mat2.to_dense())
    if isinstance(mat2, SparseCooTensor):
        return mm(mat2.t(), mat1.mT).mT
    if not isinstance(mat1, SparseCooTensor):
        return ops.matmul(mat1, mat2)
    if mat1.sparse_dim() != 2 or mat1.dense_dim() or mat2.ndim != 2:
        raise ShapeError(f"sparse.mm: expected a 2-d sparse matrix and a 2-d dense one, got "
                         f"{mat1._size} and {tuple(mat2.shape)}")  # fmt: skip
    if mat1._size[1] != mat2.shape[0]:
        raise ShapeError(f"sparse.mm: shapes {mat1._size} and {tuple(mat2.shape)} don't fit")
    rows, cols = mat1._idx[0], mat1._idx[1]
    vals = mat1._vals
    if vals.dtype is not mat2.dtype:
        vals = vals.to(mat2.dtype)
    picked = ops.index_select(mat2, 0, cols) * vals.unsqueeze(1)
    dev = mat2._device
    with backend.device_scope(dev):
        xp = backend.array_module(mat2._data)
        out = Tensor._wrap(xp.zeros((mat1._size[0], mat2.shape[1]), mat2._data.dtype), dev)
    return ops.index_add(out, 0, rows, picked)


spmm = mm


def _compressed_operand(s, other, left: bool):
    """A compressed matrix in a product, as COO; refused where PyTorch's CPU build refuses
    it (BSC on the left, BSR on the right, batched or hybrid matrices)."""
    from ._sparse_compressed import layout_name

    name = layout_name(s)
    if (name == "SparseBsc" and left) or (name == "SparseBsr" and not left):
        vec = left and isinstance(other, Tensor) and other.ndim == 1
        if vec:
            raise RuntimeError(f"torch.addmv: operation not supported for mat with {name} layout")
        ops = f"Strided + {name} @ Strided" if left else f"Strided + Strided @ {name}"
        raise RuntimeError(f"addmm: computation on CPU is not implemented for {ops}")
    if s._nbatch() or s.dense_dim():
        raise RuntimeError(f"mm: batched or hybrid {name} tensors (size {s._size}) are not "
                           "supported in products, as in PyTorch; use s.to_dense()")  # fmt: skip
    return s.to_sparse_coo()


def FloatTensor(indices, values, size=None) -> SparseCooTensor:  # noqa: N802 - PyTorch's name
    """The legacy constructor ``torch.sparse.FloatTensor(indices, values, size)``."""
    from . import dtypes as _D

    return sparse_coo_tensor(indices, values, size, dtype=_D.float32)


def DoubleTensor(indices, values, size=None) -> SparseCooTensor:  # noqa: N802 - PyTorch's name
    """The legacy constructor ``torch.sparse.DoubleTensor(indices, values, size)``."""
    from . import dtypes as _D

    return sparse_coo_tensor(indices, values, size, dtype=_D.float64)


def _sparse_mul(a: SparseCooTensor, b: SparseCooTensor) -> SparseCooTensor:
    """The elementwise product of two sparse tensors of one size: their common entries."""
    if a._size != b._size:
        raise ShapeError(f"sparse mul: sizes {a._size} and {b._size} differ")
    coalesced = a._coalesced and b._coalesced
    a, b = a.coalesce(), b.coalesce()
    dev = a._vals._device
    with backend.device_scope(dev):
        xp = backend.array_module(a._idx._data)
        _, ia, ib = xp.intersect1d(a._linear(), b._linear(), return_indices=True)
        ia = Tensor._wrap(ia.astype("int64"), dev)
        ib = Tensor._wrap(ib.astype("int64"), dev)
    ops = _ops()
    vals = ops.index_select(a._vals, 0, ia) * ops.index_select(b._vals, 0, ib)
    return SparseCooTensor(ops.index_select(a._idx, 1, ia), vals, a._size, coalesced)


def sum(input: SparseCooTensor, dim=None):  # noqa: A001, A002
    """The sum of a sparse tensor's entries, or over ``dim`` (an int or a tuple): a sparse
    tensor while some sparse dims remain, else a dense one, as in PyTorch.

    Example: ``deg = mg.sparse.sum(adj, dim=1).to_dense()``
    """
    if dim is None:
        return input._vals.sum()
    nd, k = input.ndim, input.sparse_dim()
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    for d in dims:
        if not -nd <= d < nd:
            raise IndexError(f"sparse.sum: dim {d} is out of range for a {nd}-d tensor")
    dims = {d % nd for d in dims}
    vals = input._vals
    dense_dims = tuple(d - k + 1 for d in sorted(dims) if d >= k)
    if dense_dims:
        vals = vals.sum(dense_dims)
    keep = [d for d in range(k) if d not in dims]
    if not keep:
        return vals.sum(0)
    idx = input._idx if len(keep) == k else input._idx[keep]
    return SparseCooTensor(idx, vals, _kept(input._size, dims), False).coalesce()


def _kept(size: tuple, dims: set) -> tuple:
    return tuple(s for d, s in enumerate(size) if d not in dims)


def addmm(mat: Tensor, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """``beta * mat + alpha * (mat1 @ mat2)`` with a sparse ``mat1``."""
    return mat * beta + mm(mat1, mat2) * alpha


def _softmax(input, dim: int, dtype, log: bool, name: str):
    if not isinstance(input, SparseCooTensor):
        raise NotImplementedError(
            f"sparse.{name}: expected a sparse COO tensor, got "
            f"{getattr(input, 'layout', type(input).__name__)}; convert with .to_sparse_coo()"
        )
    ops = _ops()
    nd = input.ndim
    if not -nd <= dim < nd:
        raise IndexError(f"sparse.{name}: dim {dim} is out of range for a {nd}-d tensor")
    dim %= nd
    x = input.coalesce()
    vals = x._vals if dtype is None else x._vals.to(D.from_any(dtype))
    k = x.sparse_dim()
    if dim >= k:  # a dense dim: an ordinary softmax inside every stored block
        fn = ops.log_softmax if log else ops.softmax
        return SparseCooTensor(x._idx, fn(vals, dim - k + 1), x._size, True)
    dev = vals._device
    with backend.device_scope(dev):
        xp = backend.array_module(x._idx._data)
        key = xp.zeros(x._idx.shape[1], "int64")  # the position without ``dim``
        for d in range(k):
            if d != dim:
                key = key * x._size[d] + x._idx._data[d]
        _, inv = xp.unique(key, return_inverse=True)
        ngroups = int(inv.max()) + 1 if inv.size else 0
        group = Tensor._wrap(inv.reshape(-1).astype("int64"), dev)
        zeros = Tensor._wrap(xp.zeros((ngroups,) + tuple(vals.shape[1:]), vals._data.dtype), dev)
    top = vals.detach()
    if top.ndim > 1:
        gidx = group.reshape((-1,) + (1,) * (top.ndim - 1)).expand(top.shape)
    else:
        gidx = group
    top = zeros.scatter_reduce(0, gidx, top, "amax", include_self=False)[group]
    shifted = vals - top
    e = shifted.exp()
    total = ops.index_add(zeros, 0, group, e)[group]
    out = shifted - total.log() if log else e / total
    return SparseCooTensor(x._idx, out, x._size, True)


def softmax(input: SparseCooTensor, dim: int, *, dtype=None) -> SparseCooTensor:
    """Softmax over the stored entries along ``dim`` (the missing ones count as -inf and
    stay missing); differentiable in the values.

    Example: ``mg.sparse.softmax(adj, 1)`` (row-normalised attention over a graph's edges)
    """
    return _softmax(input, dim, dtype, False, "softmax")


def log_softmax(input: SparseCooTensor, dim: int, *, dtype=None) -> SparseCooTensor:
    """Log-softmax over the stored entries along ``dim``, as ``mg.sparse.softmax``."""
    return _softmax(input, dim, dtype, True, "log_softmax")


def spdiags(diagonals: Tensor, offsets: Tensor, shape, layout=None):
    """A sparse matrix of ``shape`` from diagonals: row ``k`` of ``diagonals`` lies on the
    diagonal ``offsets[k]`` (above the main one when positive), its entry ``j`` in column
    ``j``; entries that fall outside the matrix are dropped.

    Example: ``mg.sparse.spdiags(mg.ones(2, 3), mg.tensor([0, -1]), (3, 3))``
    """
    if diagonals.ndim != 2 or offsets.ndim != 1 or offsets.shape[0] != diagonals.shape[0]:
        raise ShapeError(f"spdiags: expected diagonals (m, n) and offsets (m,), got shapes "
                         f"{tuple(diagonals.shape)} and {tuple(offsets.shape)}")  # fmt: skip
    rows, cols = (int(s) for s in shape)
    offs = [int(o) for o in offsets.tolist()]
    if len(set(offs)) != len(offs):
        raise ValueError(f"spdiags: offsets {offs} repeat a diagonal")
    r_idx, c_idx, take_k, take_j = [], [], [], []
    for k, off in enumerate(offs):
        for j in range(max(0, off), min(cols, diagonals.shape[1], rows + off)):
            r_idx.append(j - off)
            c_idx.append(j)
            take_k.append(k)
            take_j.append(j)
    from .creation import tensor

    dev = diagonals.device
    idx = tensor([r_idx, c_idx], dtype=D.int64, device=dev).reshape(2, -1)
    vals = diagonals[tensor(take_k, dtype=D.int64, device=dev),
                     tensor(take_j, dtype=D.int64, device=dev)]  # fmt: skip
    out = SparseCooTensor(idx, vals, (rows, cols), False)
    if layout is None or layout == "sparse_coo":
        return out
    if layout in ("sparse_csr", "sparse_csc"):
        return out.to_sparse(layout=layout)
    raise NotImplementedError(f"spdiags: layout {layout} is not supported; use mg.sparse_coo, "
                              "mg.sparse_csr or mg.sparse_csc")  # fmt: skip


def sampled_addmm(input, mat1: Tensor, mat2: Tensor, *, beta=1.0, alpha=1.0, out=None):
    """``beta * input + alpha * (mat1 @ mat2)`` at the entries ``input`` (a CSR matrix)
    stores only: a CSR matrix of the same sparsity, differentiable in all three.

    Example: ``mg.sparse.sampled_addmm(mask_csr, q, k.mT)`` (attention scores on a graph)
    """
    csr_cls = _csr().SparseCsrTensor
    if input.__class__ is not csr_cls:
        raise NotImplementedError("sparse.sampled_addmm: input must be a sparse CSR tensor "
                                  "(convert with .to_sparse_csr())")  # fmt: skip
    if out is not None:
        raise NotImplementedError("sparse.sampled_addmm: out= is not supported")
    if (
        mat1.ndim != 2
        or mat2.ndim != 2
        or mat1.shape[1] != mat2.shape[0]
        or ((mat1.shape[0], mat2.shape[1]) != input._size)
    ):
        raise ShapeError(f"sparse.sampled_addmm: mat1 {tuple(mat1.shape)} @ mat2 "
                         f"{tuple(mat2.shape)} must give input's size {input._size}")  # fmt: skip
    if input.layout != "sparse_csr" or input._nbatch() or input.dense_dim():
        raise NotImplementedError("sparse.sampled_addmm: input must be a 2-d sparse CSR tensor "
                                  "without batch or dense dims")  # fmt: skip
    dev = input._vals._device
    idx, _ = input._block_coo()
    rows, cols = Tensor._wrap(idx[0], dev), Tensor._wrap(idx[1], dev)
    picked = (mat1[rows] * mat2.mT[cols]).sum(-1)
    vals = input._vals * beta + picked * alpha
    return input._with_values(vals)


class check_sparse_tensor_invariants:  # noqa: N801 - PyTorch's name
    """Check sparse constructors' indices (``sparse_coo_tensor``, ``sparse_csr_tensor``)
    everywhere (``enable()``), inside a ``with`` block or a decorated function.

    Example:
        >>> with mg.sparse.check_sparse_tensor_invariants():
        ...     mg.sparse_coo_tensor([[0, 5]], [1.0, 2.0], (3,))  # raises: index 5 >= size 3
    """

    def __init__(self, enable: bool = True):
        self.state, self.saved = bool(enable), None

    @staticmethod
    def is_enabled() -> bool:
        return _CHECK[0]

    @staticmethod
    def enable() -> None:
        _CHECK[0] = True

    @staticmethod
    def disable() -> None:
        _CHECK[0] = False

    def __enter__(self):
        if self.saved is not None:
            raise RuntimeError("check_sparse_tensor_invariants: this context is already active")
        self.saved = _CHECK[0]
        _CHECK[0] = self.state
        return self

    def __exit__(self, *exc):
        _CHECK[0] = self.saved
        self.saved = None

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with check_sparse_tensor_invariants(self.state):
                return fn(*args, **kwargs)

        return wrapper


from ._sparse_compressed import SparseCompressedTensor  # noqa: E402
from ._sparse_csr import (  # noqa: E402
    SparseCsrTensor,
    sparse_bsc_tensor,
    sparse_bsr_tensor,
    sparse_compressed_tensor,
    sparse_csc_tensor,
    sparse_csr_tensor,
)

__all__ = [
    "DoubleTensor",
    "FloatTensor",
    "SparseCompressedTensor",
    "SparseCooTensor",
    "SparseCsrTensor",
    "addmm",
    "check_sparse_tensor_invariants",
    "log_softmax",
    "mm",
    "sampled_addmm",
    "softmax",
    "sparse_bsc_tensor",
    "sparse_bsr_tensor",
    "sparse_compressed_tensor",
    "sparse_coo_tensor",
    "sparse_csc_tensor",
    "sparse_csr_tensor",
    "spdiags",
    "spmm",
    "sum",
    "to_sparse",
]
