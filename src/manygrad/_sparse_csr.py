"""Sparse CSR tensors (``mg.sparse_csr_tensor``, ``Tensor.to_sparse_csr``), as in PyTorch.

A CSR matrix keeps ``crow_indices`` (rows + 1,), where each row's entries start,,
``col_indices`` (nnz,) and ``values`` (nnz,). Its products go through the COO form (the
row of every entry expanded from ``crow_indices``), so gradients reach the dense operand and
the values as they do for ``mg.sparse_coo_tensor``.

Example:
    >>> adj = mg.tensor([[0.0, 1.0], [1.0, 1.0]]).to_sparse_csr()
    >>> adj.crow_indices(), adj.col_indices()
    (tensor([0, 1, 3]), tensor([1, 0, 1]))
    >>> h = adj @ mg.ones(2, 4)  # or mg.sparse.mm(adj, x)
"""

from __future__ import annotations

from . import backend
from . import dtypes as D
from ._sparse_common import SparseAttrs
from .errors import ShapeError
from .tensor import Tensor


def _sparse():
    from . import sparse

    return sparse


class SparseCsrTensor(SparseAttrs):
    """A 2-d matrix stored row by row: compressed row starts, column indices and values."""

    is_sparse = False
    is_sparse_csr = True

    def __init__(self, crow: Tensor, col: Tensor, values: Tensor, size: tuple):
        self._crow, self._col, self._vals, self._size = crow, col, values, tuple(size)

    @property
    def layout(self):
        return _sparse().sparse_csr

    # ------------------------------------------------------------------ properties

    @property
    def grad_fn(self):
        return self._vals.grad_fn

    def crow_indices(self) -> Tensor:
        return self._crow

    def col_indices(self) -> Tensor:
        return self._col

    def values(self) -> Tensor:
        return self._vals

    def _nnz(self) -> int:
        return self._vals.shape[0]

    def sparse_dim(self) -> int:
        return 2

    def dense_dim(self) -> int:
        return 0

    # ------------------------------------------------------------------ conversions
    def _rows(self):
        """The row of every entry (raw int64 array), from the compressed row starts."""
        crow = self._crow._data
        xp = backend.array_module(crow)
        with backend.device_scope(self._vals._device):
            counts = xp.diff(crow)
            return xp.repeat(xp.arange(self._size[0], dtype="int64"), counts)

    def to_sparse_coo(self):
        """The same entries as a COO tensor (coalesced: CSR keeps each row's columns sorted)."""
        dev = self._vals._device
        xp = backend.array_module(self._col._data)
        with backend.device_scope(dev):
            idx = xp.stack([self._rows(), self._col._data.astype("int64")])
        return _sparse().SparseCooTensor(Tensor._wrap(idx, dev), self._vals, self._size, True)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        """COO (the default layout), or this tensor for ``layout=mg.sparse_csr``."""
        if layout is not None and layout == "sparse_csr":
            return self
        if layout is not None and layout != "sparse_coo":
            raise NotImplementedError(
                f"to_sparse: layout {layout} is not supported for a CSR tensor; use "
                "mg.sparse_coo or mg.sparse_csr"
            )
        return self.to_sparse_coo()

    def to_sparse_csr(self, dense_dim=None) -> SparseCsrTensor:
        return self

    def to_dense(self, dtype=None, *, masked_grad=True) -> Tensor:
        """The dense matrix (differentiable in the values)."""
        out = self.to_sparse_coo().to_dense()
        return out if dtype is None else out.to(dtype)

    def _dense_array(self):
        return self.to_sparse_coo()._dense_array()

    def to(self, *args, **kwargs) -> SparseCsrTensor:
        vals = self._vals.to(*args, **kwargs)
        return SparseCsrTensor(self._crow.to(vals.device), self._col.to(vals.device), vals,
                               self._size)  # fmt: skip

    def cuda(self, device=None) -> SparseCsrTensor:
        return self.to("cuda" if device is None else device)

    def cpu(self) -> SparseCsrTensor:
        return self.to("cpu")

    def detach(self) -> SparseCsrTensor:
        return SparseCsrTensor(self._crow, self._col, self._vals.detach(), self._size)

    def clone(self) -> SparseCsrTensor:
        return SparseCsrTensor(self._crow.clone(), self._col.clone(), self._vals.clone(),
                               self._size)  # fmt: skip

    def _with_values(self, vals: Tensor) -> SparseCsrTensor:
        return SparseCsrTensor(self._crow, self._col, vals, self._size)

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
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return self._with_values(self._vals / other)
        return NotImplemented

    def __neg__(self) -> SparseCsrTensor:
        return self._with_values(-self._vals)

    def t(self):
        raise NotImplementedError(
            "t: the transpose of a CSR tensor is a CSC tensor, a layout manygrad lacks; "
            "use .to_sparse_coo().t() (or .to_dense().t())"
        )

    def __repr__(self) -> str:
        fields = (("crow_indices", self._crow), ("col_indices", self._col))
        return _sparse().sparse_repr(self, fields, False)


def check_csr(crow, col, nnz: int, size: tuple) -> None:
    """PyTorch's CSR invariants, with its messages (``check_invariants=True``)."""
    c = crow.cpu().numpy()
    k = col.cpu().numpy()
    if c.size != size[0] + 1:
        raise RuntimeError(f"crow_indices must have {size[0] + 1} entries (rows + 1), got "
                           f"{c.size}")  # fmt: skip
    if c[0] != 0:
        raise RuntimeError("`crow_indices[..., 0] == 0` is not satisfied.")
    if c[-1] != nnz:
        raise RuntimeError("`crow_indices[..., -1] == nnz` is not satisfied.")
    if (c[1:] < c[:-1]).any():
        raise RuntimeError(
            "`0 <= crow_indices[..., 1:] - crow_indices[..., :-1] <= ncols` is not satisfied."
        )
    if k.size and (k.min() < 0 or k.max() >= size[1]):
        raise RuntimeError("`0 <= col_indices < ncols` is not satisfied.")
    for r in range(size[0]):
        row = k[c[r] : c[r + 1]]
        if row.size > 1 and (row[1:] <= row[:-1]).any():
            raise RuntimeError(
                "`col_indices[..., crow_indices[..., i - 1]:crow_indices[..., i]] for all i = "
                "1, ..., nrows are sorted and distinct along the last dimension values` is not "
                "satisfied."
            )


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None,
                      device=None, requires_grad: bool = False, pin_memory=False,
                      check_invariants=None) -> SparseCsrTensor:  # fmt: skip
    """A sparse CSR matrix from its compressed row starts, column indices and values.

    Args:
        crow_indices: (rows + 1,) where each row's entries start in ``col_indices``/``values``.
        col_indices: (nnz,) the column of every entry, sorted within each row.
        values: (nnz,) the entries.
        size: (rows, cols) (default: rows from ``crow_indices``, one past the largest column).
        dtype, device, requires_grad: as for ``mg.tensor``.
        check_invariants: check the layout's rules (default: as
            ``mg.sparse.check_sparse_tensor_invariants`` says, off unless enabled).

    Example: ``mg.sparse_csr_tensor([0, 1, 3], [1, 0, 2], [2.0, 1.0, 3.0], (2, 3))``
    """
    from .creation import tensor

    vals = values if isinstance(values, Tensor) else tensor(values, dtype=dtype, device=device)
    if dtype is not None and vals.dtype is not D.from_any(dtype):
        vals = vals.to(D.from_any(dtype))
    if device is not None:
        vals = vals.to(device)

    def index(x, name):
        t = x if isinstance(x, Tensor) else tensor(x, dtype=D.int64)
        if t.dtype not in (D.int32, D.int64):
            raise TypeError(f"sparse_csr_tensor: {name} must be int32 or int64, got {t.dtype}")
        if t.ndim != 1:
            raise ShapeError(f"sparse_csr_tensor: {name} must be 1-d (batched CSR tensors are "
                             f"not supported), got shape {tuple(t.shape)}")  # fmt: skip
        return t.to(vals.device)

    crow, col = index(crow_indices, "crow_indices"), index(col_indices, "col_indices")
    if crow.dtype is not col.dtype:
        raise TypeError(f"sparse_csr_tensor: crow_indices ({crow.dtype}) and col_indices "
                        f"({col.dtype}) must have one dtype")  # fmt: skip
    if vals.ndim != 1 or vals.shape[0] != col.shape[0]:
        raise ShapeError(f"sparse_csr_tensor: values must be 1-d with one entry per column "
                         f"index ({col.shape[0]}), got shape {tuple(vals.shape)}")  # fmt: skip
    if crow.shape[0] < 1:
        raise ShapeError("sparse_csr_tensor: crow_indices needs at least one entry (rows + 1)")
    if size is None:
        ncols = int(col.amax()) + 1 if col.shape[0] else 0
        size = (crow.shape[0] - 1, ncols)
    size = tuple(int(s) for s in size)
    if len(size) != 2:
        raise ShapeError(f"sparse_csr_tensor: size must be (rows, cols), got {size}")
    if check_invariants or (check_invariants is None and _sparse()._CHECK[0]):
        check_csr(crow, col, vals.shape[0], size)
    elif crow.shape[0] != size[0] + 1:
        raise ShapeError(f"sparse_csr_tensor: crow_indices has {crow.shape[0]} entries, size "
                         f"{size} needs rows + 1 = {size[0] + 1}")  # fmt: skip
    if requires_grad:
        vals.requires_grad_(True)
    return SparseCsrTensor(crow, col, vals, size)


def coo_to_csr(coo) -> SparseCsrTensor:
    """A 2-d COO tensor (no dense dims) as CSR."""
    if coo.sparse_dim() != 2 or coo.dense_dim():
        raise ShapeError(f"to_sparse_csr: expected a 2-d sparse matrix without dense dims, got "
                         f"size {coo._size} with {coo.dense_dim()} dense dims")  # fmt: skip
    c = coo.coalesce()
    dev = c._vals._device
    idx = c._idx._data
    xp = backend.array_module(idx)
    with backend.device_scope(dev):
        counts = xp.bincount(idx[0], minlength=c._size[0])
        crow = xp.concatenate([xp.zeros(1, "int64"), xp.cumsum(counts)]).astype("int64")
        col = xp.ascontiguousarray(idx[1])
    return SparseCsrTensor(Tensor._wrap(crow, dev), Tensor._wrap(col, dev), c._vals, c._size)


def dense_to_csr(x: Tensor, dense_dim=None) -> SparseCsrTensor:
    """A dense 2-d tensor's non-zero entries as CSR."""
    if dense_dim:
        raise NotImplementedError("to_sparse_csr: dense_dim is not supported; manygrad's CSR "
                                  "tensors hold scalar values")  # fmt: skip
    if x.ndim != 2:
        raise ShapeError(f"to_sparse_csr: expected a 2-d tensor (batched CSR tensors are not "
                         f"supported), got shape {tuple(x.shape)}")  # fmt: skip
    return coo_to_csr(_sparse().to_sparse(x))
