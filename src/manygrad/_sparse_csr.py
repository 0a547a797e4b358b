"""The constructors of the sparse compressed layouts, as in PyTorch:
``mg.sparse_compressed_tensor`` and its four forms ``sparse_csr_tensor``,
``sparse_csc_tensor``, ``sparse_bsr_tensor`` and ``sparse_bsc_tensor``, with the size
inferred from the indices when not given and the layout's invariants checked on request.

The tensors themselves are ``SparseCompressedTensor`` (``_sparse_compressed``); a CSR
matrix keeps ``crow_indices`` (rows + 1,), where each row's entries start,
``col_indices`` (nnz,) and ``values`` (nnz,).

Example:
    >>> adj = mg.tensor([[0.0, 1.0], [1.0, 1.0]]).to_sparse_csr()
    >>> adj.crow_indices(), adj.col_indices()
    (tensor([0, 1, 3]), tensor([1, 0, 1]))
    >>> h = adj @ mg.ones(2, 4)  # or mg.sparse.mm(adj, x)
    >>> mg.sparse_bsr_tensor([0, 1], [1], mg.ones(1, 2, 2), (2, 4)).to_dense()
"""

from __future__ import annotations

import math

from . import dtypes as D
from ._sparse_compressed import (
    BLOCKED,
    INDEX_NAMES,
    ROW_MAJOR,
    SparseCompressedTensor,
)
from ._sparse_convert import from_coo, from_dense
from .errors import ShapeError
from .tensor import Tensor

# the old name: every compressed layout is one class
SparseCsrTensor = SparseCompressedTensor
_DTYPE_NAME = {"int32": "Int", "int64": "Long", "float32": "Float", "float64": "Double"}


def _sparse():
    from . import sparse

    return sparse


def _shape_checks(cidx, pidx, vals, size, layout: str) -> None:
    """PyTorch's checks of the indices' and values' shapes against ``size``, with its
    messages (cheap: no values are read)."""
    cname, pname = INDEX_NAMES[layout]
    nb = cidx.ndim - 1
    block = layout in BLOCKED
    if vals.ndim < nb + 1 + 2 * block:
        raise ShapeError(f"values must have dimensionality > sum of batch and block "
                         f"dimensionalities (={nb} + {2 * block}) but got {vals.ndim}")  # fmt: skip
    if len(size) < nb + 2:
        raise ShapeError(f"tensor dimensionality must be sum of batch, base, and dense "
                         f"dimensionalities (={nb} + 2 + {vals.ndim - nb - 1 - 2 * block}) "
                         f"but got {len(size)}")  # fmt: skip
    bh, bw = tuple(vals.shape[nb + 1 : nb + 3]) if block else (1, 1)
    for d, b in ((0, bh), (1, bw)):
        if b and size[nb + d] % b:
            raise ShapeError(f"tensor shape[{nb + d}] (={size[nb + d]}) must be divisible with "
                             f"blocksize[{d}] (={b}) as defined by values shape")  # fmt: skip
    row = layout in ROW_MAJOR
    what = ("rows" if row else "columns") + (" blocks" if block else "")
    what = what.replace("rows blocks", "row blocks").replace("columns blocks", "column blocks")
    ncomp = size[nb] // max(bh, 1) if row else size[nb + 1] // max(bw, 1)
    if cidx.shape[-1] != ncomp + 1:
        raise ShapeError(f"{cname}.shape[-1] must be equal to the number of {what} + 1 "
                         f"(={ncomp + 1}), but got {cidx.shape[-1]}")  # fmt: skip
    if pidx.shape[-1] != vals.shape[nb]:
        raise ShapeError(f"{pname}.shape[-1] must be equal to nnz (={vals.shape[nb]}) as defined "
                         f"by values.shape[{nb}], but got {pidx.shape[-1]}")  # fmt: skip
    if tuple(cidx.shape[:-1]) != tuple(size[:nb]) or tuple(pidx.shape[:-1]) != tuple(size[:nb]):
        raise ShapeError(f"all batch dimensions of {cname} ({tuple(cidx.shape[:-1])}), "
                         f"{pname} ({tuple(pidx.shape[:-1])}) and size ({tuple(size[:nb])}) "
                         "must be equal")  # fmt: skip


def check_compressed(cidx, pidx, size, layout: str) -> None:
    """PyTorch's index invariants of a compressed tensor (``check_invariants=True``), with
    its messages; ``size`` counts blocks for BSR and BSC."""
    cname, pname = INDEX_NAMES[layout]
    row = layout in ROW_MAJOR
    nb = cidx.ndim - 1
    c = cidx.cpu().numpy().reshape(-1, cidx.shape[-1])
    p = pidx.cpu().numpy().reshape(-1, pidx.shape[-1])
    nplain = size[nb + 1] if row else size[nb]
    plain_name, comp_name = ("ncols", "nrows") if row else ("nrows", "ncols")
    if (c[:, 0] != 0).any():
        raise RuntimeError(f"`{cname}[..., 0] == 0` is not satisfied.")
    if (c[:, -1] != p.shape[1]).any():
        raise RuntimeError(f"`{cname}[..., -1] == nnz` is not satisfied.")
    step = c[:, 1:] - c[:, :-1]
    if (step < 0).any() or (step > nplain).any():
        raise RuntimeError(f"`0 <= {cname}[..., 1:] - {cname}[..., :-1] <= {plain_name}` is not "
                           "satisfied.")  # fmt: skip
    if p.size and (p.min() < 0 or p.max() >= nplain):
        raise RuntimeError(f"`0 <= {pname} < {plain_name}` is not satisfied.")
    for b in range(c.shape[0]):
        for i in range(c.shape[1] - 1):
            seg = p[b, c[b, i] : c[b, i + 1]]
            if seg.size > 1 and (seg[1:] <= seg[:-1]).any():
                raise RuntimeError(
                    f"`{pname}[..., {cname}[..., i - 1]:{cname}[..., i]] for all i = 1, ..., "
                    f"{comp_name} are sorted and distinct along the last dimension values` is "
                    "not satisfied."
                )


def sparse_compressed_tensor(compressed_indices, plain_indices, values, size=None, *,
                             dtype=None, layout=None, device=None, pin_memory=False,
                             requires_grad: bool = False,
                             check_invariants=None) -> SparseCompressedTensor:  # fmt: skip
    """A sparse tensor in a compressed layout (``mg.sparse_csr``, ``sparse_csc``,
    ``sparse_bsr`` or ``sparse_bsc``) from its indices and values.

    Args:
        compressed_indices: (*batch, ncompressed + 1) where the entries of each compressed
            row (CSR, BSR) or column (CSC, BSC) start; int32 or int64.
        plain_indices: (*batch, nnz) the column (CSR, BSR) or row (CSC, BSC) of every entry.
        values: (*batch, nnz, *dense) for CSR/CSC, (*batch, nnz, bh, bw, *dense) for BSR/BSC.
        size: the full size (default: inferred from the indices and values, as PyTorch).
        dtype, device, requires_grad: as for ``mg.tensor``.
        layout: which compressed layout (required).
        check_invariants: check the layout's index rules (default: as
            ``mg.sparse.check_sparse_tensor_invariants`` says, off unless enabled).

    Example: ``mg.sparse_compressed_tensor([0, 1, 2], [1, 0], [3.0, 4.0], layout=mg.sparse_csc)``
    """
    lay = None if layout is None else str.__str__(layout)
    if lay not in INDEX_NAMES:
        raise RuntimeError(f"sparse_compressed_tensor expected sparse compressed tensor layout "
                           f"but got {'none' if layout is None else layout}")  # fmt: skip
    from .creation import tensor

    vals = values if isinstance(values, Tensor) else tensor(values, dtype=dtype, device=device)
    if dtype is not None and vals.dtype is not D.from_any(dtype):
        vals = vals.to(D.from_any(dtype))
    if device is not None:
        vals = vals.to(device)
    cname, pname = INDEX_NAMES[lay]
    cidx = compressed_indices
    cidx = cidx if isinstance(cidx, Tensor) else tensor(cidx, dtype=D.int64)
    pidx = plain_indices if isinstance(plain_indices, Tensor) else tensor(plain_indices,
                                                                          dtype=D.int64)  # fmt: skip
    if cidx.ndim != pidx.ndim:
        raise ShapeError(f"{cname} and {pname} dimensionalities must be equal but got "
                         f"{cidx.ndim} and {pidx.ndim}, respectively")  # fmt: skip
    if cidx.dtype is not pidx.dtype:
        names = (_DTYPE_NAME.get(t.dtype.name, t.dtype.name) for t in (cidx, pidx))
        raise RuntimeError(f"{cname} and {pname} must have the same dtype, bot got "
                           f"{next(names)} and {next(names)}, respectively")  # fmt: skip
    if cidx.dtype not in (D.int32, D.int64):
        raise RuntimeError(f"{cname} and {pname} must be an int32 or int64 type, but got: "
                           f"{cidx.dtype}")  # fmt: skip
    if cidx.ndim < 1:
        raise ShapeError(f"{cname} must have dimensionality >= 1 but got 0")
    cidx, pidx = cidx.to(vals.device), pidx.to(vals.device)
    nb = cidx.ndim - 1
    if size is None:
        size = _infer_size(cidx, pidx, vals, lay)
    size = tuple(int(s) for s in size)
    _shape_checks(cidx, pidx, vals, size, lay)
    if check_invariants or (check_invariants is None and _sparse()._CHECK[0]):
        check_compressed(cidx, pidx, _block_counts(size, vals, lay, nb), lay)
    if requires_grad:
        vals.requires_grad_(True)
    return SparseCompressedTensor(cidx, pidx, vals, size, lay)


def _block_counts(size, vals, layout, nb) -> tuple:
    """``size`` in blocks for the block layouts (what the index invariants count)."""
    if layout not in BLOCKED:
        return size
    bh, bw = vals.shape[nb + 1 : nb + 3]
    return size[:nb] + (size[nb] // max(bh, 1), size[nb + 1] // max(bw, 1))


def _infer_size(cidx, pidx, vals, layout: str) -> tuple:
    """PyTorch's size estimate: batch dims from the indices, the compressed dim from
    ``compressed_indices``, the plain dim one past the largest plain index, then the
    blocks' and dense dims from ``values``."""
    nb = cidx.ndim - 1
    block = layout in BLOCKED
    bh, bw = tuple(vals.shape[nb + 1 : nb + 3]) if block else (1, 1)
    ncomp = cidx.shape[-1] - 1
    nplain = int(pidx.amax()) + 1 if math.prod(pidx.shape) else 0
    rows, cols = (ncomp * bh, nplain * bw) if layout in ROW_MAJOR else (nplain * bh, ncomp * bw)
    dense = tuple(vals.shape[nb + 1 + 2 * block :])
    return tuple(cidx.shape[:-1]) + (rows, cols) + dense


def _build(layout, cidx, pidx, values, size, dtype, dev, requires_grad, check_invariants):
    return sparse_compressed_tensor(cidx, pidx, values, size, dtype=dtype, layout=layout,
                                    device=dev, requires_grad=requires_grad,
                                    check_invariants=check_invariants)  # fmt: skip


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, layout=None,
                      device=None, pin_memory=False, requires_grad: bool = False,
                      check_invariants=None) -> SparseCompressedTensor:  # fmt: skip
    """A CSR tensor from ``crow_indices``, ``col_indices`` and ``values`` (the arguments of
    ``mg.sparse_compressed_tensor``).

    Example: ``mg.sparse_csr_tensor([0, 1, 2], [1, 0], [3.0, 4.0])``
    """
    return _build("sparse_csr", crow_indices, col_indices, values, size, dtype, device,
                  requires_grad, check_invariants)  # fmt: skip


def sparse_csc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, layout=None,
                      device=None, pin_memory=False, requires_grad: bool = False,
                      check_invariants=None) -> SparseCompressedTensor:  # fmt: skip
    """A CSC tensor from ``ccol_indices``, ``row_indices`` and ``values``.

    Example: ``mg.sparse_csc_tensor([0, 1, 2], [1, 0], [3.0, 4.0])``
    """
    return _build("sparse_csc", ccol_indices, row_indices, values, size, dtype, device,
                  requires_grad, check_invariants)  # fmt: skip


def sparse_bsr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, layout=None,
                      device=None, pin_memory=False, requires_grad: bool = False,
                      check_invariants=None) -> SparseCompressedTensor:  # fmt: skip
    """A BSR tensor from ``crow_indices``, ``col_indices`` and blocks of ``values``.

    Example: ``mg.sparse_bsr_tensor([0, 1, 2], [1, 0], mg.ones(2, 2, 2))``
    """
    return _build("sparse_bsr", crow_indices, col_indices, values, size, dtype, device,
                  requires_grad, check_invariants)  # fmt: skip


def sparse_bsc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, layout=None,
                      device=None, pin_memory=False, requires_grad: bool = False,
                      check_invariants=None) -> SparseCompressedTensor:  # fmt: skip
    """A BSC tensor from ``ccol_indices``, ``row_indices`` and blocks of ``values``.

    Example: ``mg.sparse_bsc_tensor([0, 1, 2], [1, 0], mg.ones(2, 2, 2))``
    """
    return _build("sparse_bsc", ccol_indices, row_indices, values, size, dtype, device,
                  requires_grad, check_invariants)  # fmt: skip


def coo_to_csr(coo) -> SparseCompressedTensor:
    """A COO tensor with two sparse dims as CSR."""
    return from_coo(coo, "sparse_csr", None, "coo_to_sparse_csr")


def dense_to_csr(x: Tensor, dense_dim=None) -> SparseCompressedTensor:
    """A dense tensor's non-zero entries as CSR (leading dims past the last two minus
    ``dense_dim`` are batch dims)."""
    return from_dense(x, "sparse_csr", None, dense_dim, "dense_to_sparse_csr")
