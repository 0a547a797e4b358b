"""Sparse compressed tensors: PyTorch's CSR, CSC, BSR and BSC layouts in one class.

A compressed tensor of size ``(*batch, rows, cols, *dense)`` keeps
``compressed_indices`` (``*batch, ncompressed + 1``), where the entries of each compressed
row (CSR, BSR) or column (CSC, BSC) start; ``plain_indices`` (``*batch, nnz``), the column
(or row) of every entry; and ``values`` (``*batch, nnz, [bh, bw], *dense``), one scalar,
block (BSR, BSC) or dense slice per entry. Conversions and products go through the block
coordinates of the entries, so gradients reach the values as they do for COO tensors.

Example:
    >>> s = mg.tensor([[0.0, 2.0], [1.0, 0.0]]).to_sparse_csc()
    >>> s.ccol_indices(), s.row_indices(), s.values()
    (tensor([0, 1, 2]), tensor([1, 0]), tensor([1., 2.]))
    >>> s.to_sparse_bsr(1).to_dense()  # any layout to any other, and back
"""

from __future__ import annotations

import math

from . import backend
from ._sparse_common import SparseAttrs
from .errors import ShapeError
from .tensor import Tensor

ROW_MAJOR = ("sparse_csr", "sparse_bsr")
BLOCKED = ("sparse_bsr", "sparse_bsc")
COMPRESSED = ("sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc")
# PyTorch's names of the layouts in its messages
LAYOUT_NAME = {"strided": "Strided", "sparse_coo": "Sparse", "sparse_csr": "SparseCsr",
               "sparse_csc": "SparseCsc", "sparse_bsr": "SparseBsr",
               "sparse_bsc": "SparseBsc"}  # fmt: skip
INDEX_NAMES = {"sparse_csr": ("crow_indices", "col_indices"),
               "sparse_bsr": ("crow_indices", "col_indices"),
               "sparse_csc": ("ccol_indices", "row_indices"),
               "sparse_bsc": ("ccol_indices", "row_indices")}  # fmt: skip


def _sparse():
    from . import sparse

    return sparse


def to_layout(x, layout, blocksize, dense_dim, sparse_dim, op: str | None = None):
    """``x.to_sparse(layout=...)`` (see ``_sparse_convert.to_layout``)."""
    from ._sparse_convert import to_layout as convert

    return convert(x, layout, blocksize, dense_dim, sparse_dim, op)


def _ops():
    from . import ops

    return ops


def layout_name(x) -> str:
    """PyTorch's name of ``x``'s layout (``Strided``, ``Sparse``, ``SparseCsr``, ...)."""
    return LAYOUT_NAME.get(str.__str__(getattr(x, "layout", "strided")), "Strided")


def wrong_layout(op: str, wanted: str, x) -> RuntimeError:
    """PyTorch's error for an accessor called on a tensor of another layout."""
    return RuntimeError(f"{op} expected {wanted} tensor layout but got {layout_name(x)}")


def not_for_backend(op: str, x) -> NotImplementedError:
    """PyTorch's error for an op that has no kernel for ``x``'s layout (on the CPU)."""
    backend_name = {"Strided": "CPU", "Sparse": "SparseCPU"}.get(layout_name(x), "SparseCsrCPU")
    return NotImplementedError(
        f"Could not run 'aten::{op}' with arguments from the '{backend_name}' backend: "
        f"{op} is not defined for {layout_name(x)} tensors"
    )


class SparseCompressedTensor(SparseAttrs):
    """A (batch of) matrices stored as compressed indices, plain indices and values, in the
    layout ``mg.sparse_csr``, ``sparse_csc``, ``sparse_bsr`` or ``sparse_bsc``."""

    is_sparse = False

    def __init__(self, cidx: Tensor, pidx: Tensor, values: Tensor, size: tuple, layout=None):
        self._cidx, self._pidx, self._vals, self._size = cidx, pidx, values, tuple(size)
        self._layout = _sparse().sparse_csr if layout is None else getattr(_sparse(), layout)

    @property
    def layout(self):
        return self._layout

    @property
    def is_sparse_csr(self) -> bool:
        return self._layout == "sparse_csr"

    @property
    def grad_fn(self):
        return self._vals.grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._vals.is_leaf

    # ------------------------------------------------------------------ structure
    def _nbatch(self) -> int:
        return self._cidx.ndim - 1

    def _blocksize(self) -> tuple:
        """(bh, bw): the values' block shape, (1, 1) for CSR and CSC."""
        if self._layout not in BLOCKED:
            return (1, 1)
        nb = self._nbatch()
        return tuple(self._vals.shape[nb + 1 : nb + 3])

    def _grid(self) -> tuple:
        """(*batch, row blocks, column blocks)."""
        nb, (bh, bw) = self._nbatch(), self._blocksize()
        return self._size[:nb] + (self._size[nb] // bh, self._size[nb + 1] // bw)

    def sparse_dim(self) -> int:
        return 2

    def dense_dim(self) -> int:
        return self._vals.ndim - self._nbatch() - 1 - (2 if self._layout in BLOCKED else 0)

    def _nnz(self) -> int:
        return self._pidx.shape[-1]

    # ------------------------------------------------------------------ accessors
    def crow_indices(self) -> Tensor:
        if self._layout not in ROW_MAJOR:
            raise wrong_layout("crow_indices", "sparse row compressed", self)
        return self._cidx

    def col_indices(self) -> Tensor:
        if self._layout not in ROW_MAJOR:
            raise wrong_layout("col_indices", "sparse row compressed", self)
        return self._pidx

    def ccol_indices(self) -> Tensor:
        if self._layout in ROW_MAJOR:
            raise wrong_layout("ccol_indices", "sparse column compressed", self)
        return self._cidx

    def row_indices(self) -> Tensor:
        if self._layout in ROW_MAJOR:
            raise wrong_layout("row_indices", "sparse column compressed", self)
        return self._pidx

    def values(self) -> Tensor:
        return self._vals

    def indices(self):
        raise wrong_layout("indices", "sparse coordinate", self)

    def coalesce(self):
        raise wrong_layout("coalesce", "sparse coordinate", self)

    def is_coalesced(self):
        raise wrong_layout("is_coalesced", "sparse coordinate", self)

    def sparse_resize_(self, size, sparse_dim, dense_dim):
        raise not_for_backend("sparse_resize_", self)

    def sparse_resize_and_clear_(self, size, sparse_dim, dense_dim):
        raise not_for_backend("sparse_resize_and_clear_", self)

    # ------------------------------------------------------------------ conversions
    def _block_coo(self):
        """The stored entries as block coordinates: a raw int64 array (batch dims + 2, N)
        of (*batch, row block, column block) in storage order, and the values (N, ...)."""
        dev = self._vals._device
        c, p = self._cidx._data, self._pidx._data
        nb, nnz = c.ndim - 1, p.shape[-1]
        batch = self._size[:nb]
        nbatch, ncomp = math.prod(batch), c.shape[-1] - 1
        xp = backend.array_module(c)
        with backend.device_scope(dev):
            counts = xp.diff(c.reshape(nbatch, ncomp + 1).astype("int64"), axis=1).reshape(-1)
            comp = xp.repeat(xp.tile(xp.arange(ncomp, dtype="int64"), nbatch), counts)
            plain = p.reshape(-1).astype("int64")
            lin = xp.repeat(xp.arange(nbatch, dtype="int64"), nnz)
            rows = []
            for s in reversed(batch):
                rows.append(lin % s)
                lin = lin // s
            pair = [comp, plain] if self._layout in ROW_MAJOR else [plain, comp]
            idx = xp.stack(rows[::-1] + pair)
        vals = self._vals.reshape((nbatch * nnz,) + tuple(self._vals.shape[nb + 1 :]))
        return idx, vals

    def to_sparse_coo(self):
        """The entries as a COO tensor: the batch dims become sparse dims, blocks are
        spread into their elements (zeros inside a stored block stay stored)."""
        idx, vals = self._block_coo()
        dev = self._vals._device
        coo = _sparse().SparseCooTensor
        if self._layout not in BLOCKED:
            return coo(Tensor._wrap(idx, dev), vals, self._size, self._layout == "sparse_csr")
        (bh, bw), nb = self._blocksize(), self._nbatch()
        xp = backend.array_module(idx)
        with backend.device_scope(dev):
            idx = xp.repeat(idx, bh * bw, axis=1)
            inner = xp.arange(bh * bw, dtype="int64")
            inner = xp.tile(inner, idx.shape[1] // (bh * bw) if bh * bw else 0)
            idx[nb] = idx[nb] * bh + inner // bw
            idx[nb + 1] = idx[nb + 1] * bw + inner % bw
        vals = vals.reshape((-1,) + tuple(vals.shape[3:]))
        return coo(Tensor._wrap(idx, dev), vals, self._size, False)

    def to_dense(self, dtype=None, *, masked_grad=True) -> Tensor:
        """The dense tensor (differentiable in the values)."""
        idx, vals = self._block_coo()
        grid = self._grid()
        coo = _sparse().SparseCooTensor(Tensor._wrap(idx, self._vals._device), vals,
                                         grid + tuple(vals.shape[1:]), False)  # fmt: skip
        out = coo.to_dense()
        if self._layout in BLOCKED:  # (*batch, Rb, Cb, bh, bw, *dense) -> (*batch, R, C, ...)
            nb = self._nbatch()
            out = out.movedim(nb + 2, nb + 1).reshape(self._size)
        return out if dtype is None else out.to(dtype)

    def _dense_array(self):
        return self.to_dense().detach()._data

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """COO (the default), or the layout ``layout`` (``blocksize`` for BSR and BSC)."""
        return to_layout(self, layout, blocksize, dense_dim, sparse_dim)

    def to_sparse_csr(self, dense_dim=None):
        return to_layout(self, "sparse_csr", None, dense_dim, None, "to_sparse_csr")

    def to_sparse_csc(self, dense_dim=None):
        return to_layout(self, "sparse_csc", None, dense_dim, None, "to_sparse_csc")

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        return to_layout(self, "sparse_bsr", blocksize, dense_dim, None, "to_sparse_bsr")

    def to_sparse_bsc(self, blocksize, dense_dim=None):
        return to_layout(self, "sparse_bsc", blocksize, dense_dim, None, "to_sparse_bsc")

    # ------------------------------------------------------------------ copies, devices
    def _with_values(self, vals: Tensor) -> SparseCompressedTensor:
        return SparseCompressedTensor(self._cidx, self._pidx, vals, self._size, self._layout)

    def to(self, *args, **kwargs) -> SparseCompressedTensor:
        vals = self._vals.to(*args, **kwargs)
        dev = vals.device
        return SparseCompressedTensor(self._cidx.to(dev), self._pidx.to(dev), vals, self._size,
                                      self._layout)  # fmt: skip

    def cuda(self, device=None) -> SparseCompressedTensor:
        return self.to("cuda" if device is None else device)

    def cpu(self) -> SparseCompressedTensor:
        return self.to("cpu")

    def double(self):
        return self._with_values(self._vals.double())

    def float(self):
        return self._with_values(self._vals.float())

    def detach(self) -> SparseCompressedTensor:
        return self._with_values(self._vals.detach())

    def clone(self) -> SparseCompressedTensor:
        return SparseCompressedTensor(self._cidx.clone(), self._pidx.clone(), self._vals.clone(),
                                      self._size, self._layout)  # fmt: skip

    # ------------------------------------------------------------------ arithmetic
    def __matmul__(self, other):
        return _sparse().mm(self, other)

    def __rmatmul__(self, other):
        return _sparse().mm(other, self)

    def matmul(self, other):
        return _sparse().mm(self, other)

    mm = matmul

    def mv(self, vec: Tensor) -> Tensor:
        if vec.ndim != 1:
            raise ShapeError(f"mv: expected a 1-d vector, got shape {tuple(vec.shape)}")
        return _sparse().mm(self, vec)

    def __mul__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return self._with_values(self._vals * other)
        if isinstance(other, SparseCompressedTensor):
            return _combine(self, other, "mul")
        if isinstance(other, Tensor) and tuple(other.shape) == self._size:
            from ._sparse_extra import sparse_mask  # NOTE: the product where self stores

            return self._with_values(self._vals * sparse_mask(other, self)._vals)
        return NotImplemented

    __rmul__ = __mul__
    mul = __mul__

    def __add__(self, other):
        if isinstance(other, SparseCompressedTensor):
            return _combine(self, other, "add")
        if isinstance(other, Tensor):
            return other + self.to_dense()
        return NotImplemented

    add = __add__

    def __radd__(self, other):
        return other + self.to_dense() if isinstance(other, Tensor) else NotImplemented

    def __truediv__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return self._with_values(self._vals / other)
        return NotImplemented

    def __neg__(self) -> SparseCompressedTensor:
        return self._with_values(-self._vals)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        """The sum of all entries (a 0-d dense tensor), as PyTorch's compressed ``sum()``."""
        if dim is not None or keepdim:
            return self.to_dense().sum(dim, keepdim=keepdim, dtype=dtype)
        return self._vals.sum(dtype=dtype)

    def t(self) -> SparseCompressedTensor:
        """The transpose: CSR <-> CSC and BSR <-> BSC on the same indices (blocks
        transposed), as PyTorch's."""
        if self._nbatch() or self.dense_dim():
            raise RuntimeError(f"t() expects a 2-d {layout_name(self)} tensor without batch or "
                               f"dense dims, got size {self._size}")  # fmt: skip
        swap = {"sparse_csr": "sparse_csc", "sparse_csc": "sparse_csr",
                "sparse_bsr": "sparse_bsc", "sparse_bsc": "sparse_bsr"}  # fmt: skip
        layout = swap[str.__str__(self._layout)]
        vals = self._vals.transpose(-1, -2) if layout in BLOCKED else self._vals
        return SparseCompressedTensor(self._cidx, self._pidx, vals, self._size[::-1], layout)

    def __repr__(self) -> str:
        cname, pname = INDEX_NAMES[str.__str__(self._layout)]
        fields = ((cname, self._cidx), (pname, self._pidx))
        return _sparse().sparse_repr(self, fields, False)


def _apply(name: str):
    def method(self, *args, **kwargs):
        import manygrad

        return self._with_values(getattr(manygrad, name)(self._vals, *args, **kwargs))

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``mg.{name}`` of the stored values (zeros stay zeros), as PyTorch's."
    return method


def _unary_names():
    from ._sparse_ops import COALESCING, LINEAR

    return sorted(COALESCING | LINEAR)


for _name in _unary_names():
    setattr(SparseCompressedTensor, _name, _apply(_name))
del _name


def _combine(a: SparseCompressedTensor, b: SparseCompressedTensor, op: str):
    """``a + b`` or ``a * b`` of two compressed tensors of one layout and size (via COO)."""
    if a._layout != b._layout or a._size != b._size:
        raise RuntimeError(f"{op}: expected two sparse tensors of one layout and size, got "
                           f"{layout_name(a)} {a._size} and {layout_name(b)} "
                           f"{b._size}")  # fmt: skip
    if a._layout in BLOCKED and op == "add":  # NOTE: the blocks of the sum that hold a non-zero
        from ._sparse_convert import from_dense

        dense = a.to_dense() + b.to_dense()
        return from_dense(dense, a._layout, a._blocksize(), a.dense_dim(), "add")
    if a._layout in BLOCKED or a._nbatch():
        raise RuntimeError(f"{op}: not supported for batched or {layout_name(a)} tensors; use "
                           "s.to_dense()")  # fmt: skip
    from ._sparse_convert import assemble

    out = getattr(a.to_sparse_coo(), op)(b.to_sparse_coo()).coalesce()
    return assemble(out._idx._data, out._vals, a._size, str.__str__(a._layout))
