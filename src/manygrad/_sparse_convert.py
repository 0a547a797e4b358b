"""Conversions into the sparse compressed layouts: from dense, COO and other compressed
tensors, with PyTorch's rules (which pairs convert, blocksize and dense_dim) and messages.

Every conversion ends in ``assemble``: distinct block coordinates sorted into the layout's
order, the compressed indices counted per batch, and the values gathered by a
differentiable ``index_select`` (so gradients reach the source's values).

Example:
    >>> s = mg.eye(4).to_sparse_bsr((2, 2))  # from_dense
    >>> s.to_sparse(layout=mg.sparse_bsc).ccol_indices()  # from_compressed
    tensor([0, 1, 2])
"""

from __future__ import annotations

import math

from . import backend
from ._sparse_compressed import (
    BLOCKED,
    COMPRESSED,
    LAYOUT_NAME,
    ROW_MAJOR,
    SparseCompressedTensor,
)
from .tensor import Tensor


def _ops():
    from . import ops

    return ops


# ---------------------------------------------------------------------------- building


def assemble(idx, vals: Tensor, size: tuple, layout: str, nbatch: int | None = None,
             blocksize=(1, 1)) -> SparseCompressedTensor:  # fmt: skip
    """A compressed tensor from distinct block coordinates ``idx`` (raw int64 array,
    (*batch, row block, column block) by N) and their values (N, ...), sorted into the
    layout's order; every batch must hold the same number of entries, as in PyTorch."""
    nb = idx.shape[0] - 2 if nbatch is None else nbatch
    dev = vals._device
    bh, bw = blocksize
    batch = tuple(size[:nb])
    grid = (size[nb] // bh, size[nb + 1] // bw)
    row_major = layout in ROW_MAJOR
    ncomp, nplain = grid if row_major else grid[::-1]
    comp, plain = (idx[nb], idx[nb + 1]) if row_major else (idx[nb + 1], idx[nb])
    nbat = math.prod(batch)
    xp = backend.array_module(idx)
    with backend.device_scope(dev):
        blin = xp.zeros(idx.shape[1], "int64")
        for d in range(nb):
            blin = blin * batch[d] + idx[d]
        order = xp.argsort((blin * ncomp + comp) * max(nplain, 1) + plain, kind="stable")
        per = xp.bincount(blin, minlength=nbat) if idx.shape[1] else xp.zeros(nbat, "int64")
        total = idx.shape[1]
        nnz = total // nbat if nbat else 0
        if nbat and (total % nbat or bool((per != nnz).any())):
            raise RuntimeError("Expect the same number of specified elements per batch.")
        counts = xp.bincount(blin * ncomp + comp, minlength=nbat * ncomp)[: nbat * ncomp]
        counts = counts.reshape(nbat, ncomp).astype("int64")
        cidx = xp.concatenate([xp.zeros((nbat, 1), "int64"), xp.cumsum(counts, axis=1)], 1)
        cidx = Tensor._wrap(xp.ascontiguousarray(cidx.reshape(batch + (ncomp + 1,))), dev)
        pidx = Tensor._wrap(xp.ascontiguousarray(plain[order].reshape(batch + (nnz,))), dev)
        order = Tensor._wrap(order.astype("int64"), dev)
    vals = _ops().index_select(vals, 0, order)
    vals = vals.reshape(batch + (nnz,) + tuple(vals.shape[1:]))
    return SparseCompressedTensor(cidx, pidx, vals, size, layout)


def _blocksize(blocksize, op: str):
    if blocksize is None:
        return None
    bs = (int(blocksize),) * 2 if isinstance(blocksize, int) else tuple(int(b) for b in blocksize)
    if len(bs) != 2:
        raise RuntimeError(f"{op}: blocksize needs to be a tuple of size 2, but got {len(bs)}")
    return bs


def from_dense(x: Tensor, layout: str, blocksize, dense_dim, op: str):
    """A dense tensor's non-zero entries (blocks with a non-zero) in a compressed layout."""
    dd = 0 if dense_dim is None else int(dense_dim)
    nd = x.ndim
    if not 0 <= dd <= nd - 2:
        raise RuntimeError(f"{op}: dense_dim argument must be in [0,{nd - 2}] range, but {dd} "
                           "is given")  # fmt: skip
    nb = nd - 2 - dd
    bh, bw = blocksize if layout in BLOCKED else (1, 1)
    r, c = x.shape[nb], x.shape[nb + 1]
    if r % bh or c % bw:
        raise RuntimeError(f"{op}: tensor sparse size ({r},{c}) must be divisible by given "
                           f"blocksize ({bh},{bw})")  # fmt: skip
    xb = x
    if layout in BLOCKED:  # (*batch, Rb, Cb, bh, bw, *dense)
        shape = tuple(x.shape[:nb]) + (r // bh, bh, c // bw, bw) + tuple(x.shape[nb + 2 :])
        xb = x.reshape(shape).movedim(nb + 1, nb + 2)
    mask = xb.detach() != 0
    if mask.ndim > nb + 2:
        mask = mask.any(dim=tuple(range(nb + 2, mask.ndim)))
    nz = _ops().nonzero(mask)
    vals = xb[tuple(nz[:, d] for d in range(nb + 2))]
    return assemble(nz._data.T, vals, tuple(x.shape), layout, nb, (bh, bw))


def from_coo(coo, layout: str, blocksize, op: str):
    """A COO tensor with two sparse dims (and any dense dims) in a compressed layout."""
    if coo.sparse_dim() != 2:
        raise RuntimeError(f"coo_to_{layout}: conversion from Sparse to {LAYOUT_NAME[layout]} "
                           "for input tensors with sparse_dim()!=2 is not supported")  # fmt: skip
    if layout in BLOCKED:
        return from_dense(coo.to_dense(), layout, blocksize, coo.dense_dim(), op)
    c = coo.coalesce()
    return assemble(c._idx._data, c._vals, c._size, layout, 0)


def from_compressed(s: SparseCompressedTensor, layout: str, blocksize, op: str):
    """Another compressed layout of ``s`` (CSR <-> CSC and BSR <-> BSC keep the stored
    entries; CSR/CSC -> BSR/BSC keep the blocks that hold a non-zero)."""
    src = str.__str__(s._layout)
    if src in BLOCKED:
        if layout not in BLOCKED:
            raise RuntimeError(f"sparse_compressed_to_{layout}: expected SparseCsr or SparseCsc "
                               f"layout but got {LAYOUT_NAME[src]}")  # fmt: skip
        if blocksize is not None and tuple(blocksize) != s._blocksize():
            name = op if layout == src else f"sparse_compressed_to_{layout}"
            raise RuntimeError(f"{name}: conversion from {LAYOUT_NAME[src]} to "
                               f"{LAYOUT_NAME[layout]} with blocksize changed from "
                               f"{list(s._blocksize())} to {list(blocksize)} is not "
                               "supported")  # fmt: skip
    elif layout in BLOCKED:
        return from_dense(s.to_dense(), layout, blocksize, s.dense_dim(), op)
    if layout == src:
        return s
    idx, vals = s._block_coo()
    return assemble(idx, vals, s._size, layout, s._nbatch(), s._blocksize())


def to_layout(x, layout, blocksize, dense_dim, sparse_dim, op: str | None = None):
    """``x.to_sparse(layout=..., blocksize=..., dense_dim=...)`` for a dense, COO or
    compressed ``x``, with PyTorch's rules and messages."""
    lay = "sparse_coo" if layout is None else str.__str__(layout)
    src = str.__str__(getattr(x, "layout", "strided"))
    if lay == "strided":
        return x.to_dense()
    if lay == "sparse_coo":
        if blocksize is not None:
            raise RuntimeError(f"{op or 'dense_to_sparse'}: conversion from "
                               f"{LAYOUT_NAME.get(src, src)} to Sparse with blocksize argument "
                               "given is not supported")  # fmt: skip
        if src in COMPRESSED:
            return x.to_sparse_coo()
        if src == "sparse_coo":
            return x
        return None  # NOTE: the dense tensor's own COO path (sparse_dim, dense_dim)
    if lay not in COMPRESSED:
        raise RuntimeError(f"to_sparse: unsupported layout {layout}")
    opname = op or ("dense_to_sparse" if src == "strided" else f"{src}_to_sparse")
    if sparse_dim is not None:
        raise TypeError("to_sparse() takes sparse_dim only for the COO layout; pass "
                        "dense_dim= (and layout=) for the compressed ones")  # fmt: skip
    bs = _blocksize(blocksize, opname)
    if lay in BLOCKED and bs is None and src not in BLOCKED:
        raise RuntimeError(f"{opname}: conversion from {LAYOUT_NAME[src]} to "
                           f"{LAYOUT_NAME[lay]} without blocksize argument given is not "
                           "supported")  # fmt: skip
    if lay not in BLOCKED and bs is not None:
        raise RuntimeError(f"{opname}: conversion from {LAYOUT_NAME[src]} to "
                           f"{LAYOUT_NAME[lay]} with blocksize argument given is not "
                           "supported")  # fmt: skip
    if src == "strided":
        return from_dense(x, lay, bs, dense_dim, op or f"dense_to_{lay}")
    if src == "sparse_coo":
        return from_coo(x, lay, bs, op or f"coo_to_{lay}")
    return from_compressed(x, lay, bs, op or f"sparse_compressed_to_{lay}")
