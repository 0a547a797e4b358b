"""The sparse tensors' methods on a dense ``Tensor``, as PyTorch has them there: the
conversions to the compressed layouts, ``sparse_mask``, and the sparse accessors
(``indices``, ``values``, ``crow_indices``, ...), which a dense tensor refuses with
PyTorch's errors.

Example:
    >>> mg.eye(4).to_sparse_bsr((2, 2)).values().shape
    (2, 2, 2)
"""

from __future__ import annotations


def _dense_refused(op: str, x):
    """PyTorch's error for a sparse accessor called on a dense tensor."""
    from ._sparse_compressed import not_for_backend, wrong_layout

    wanted = {"coalesce": "sparse coordinate", "is_coalesced": "sparse coordinate",
              "indices": "sparse coordinate", "values": "sparse",
              "crow_indices": "sparse row compressed", "col_indices": "sparse row compressed",
              "ccol_indices": "sparse column compressed",
              "row_indices": "sparse column compressed"}.get(op)  # fmt: skip
    return not_for_backend(op, x) if wanted is None else wrong_layout(op, wanted, x)


def _to(x, layout: str, blocksize, dense_dim):
    from ._sparse_compressed import to_layout

    return to_layout(x, layout, blocksize, dense_dim, None, f"dense_to_{layout}")


class SparseTensorMethods:
    """``to_sparse_csc``/``bsr``/``bsc``, ``sparse_mask`` and the refused sparse accessors."""

    __slots__ = ()

    def to_sparse_csc(self, dense_dim=None):
        """The non-zero entries as a sparse CSC tensor (``mg.sparse_csc_tensor``)."""
        return _to(self, "sparse_csc", None, dense_dim)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        """The ``blocksize`` blocks that hold a non-zero, as a sparse BSR tensor."""
        return _to(self, "sparse_bsr", blocksize, dense_dim)

    def to_sparse_bsc(self, blocksize, dense_dim=None):
        """The ``blocksize`` blocks that hold a non-zero, as a sparse BSC tensor."""
        return _to(self, "sparse_bsc", blocksize, dense_dim)

    def sparse_mask(self, mask):
        """This tensor's entries where the sparse ``mask`` stores one, in ``mask``'s layout
        (differentiable): ``x.sparse_mask(adj)``."""
        from ._sparse_extra import sparse_mask

        return sparse_mask(self, mask)

    # the sparse tensors' accessors, refused on a dense tensor with PyTorch's errors
    def coalesce(self):
        raise _dense_refused("coalesce", self)

    def is_coalesced(self):
        raise _dense_refused("is_coalesced", self)

    def indices(self):
        raise _dense_refused("indices", self)

    def values(self):
        raise _dense_refused("values", self)

    def crow_indices(self):
        raise _dense_refused("crow_indices", self)

    def col_indices(self):
        raise _dense_refused("col_indices", self)

    def ccol_indices(self):
        raise _dense_refused("ccol_indices", self)

    def row_indices(self):
        raise _dense_refused("row_indices", self)

    def _nnz(self):
        raise _dense_refused("_nnz", self)

    def _values(self):
        raise _dense_refused("_values", self)

    def _indices(self):
        raise _dense_refused("_indices", self)

    def sparse_resize_(self, size, sparse_dim, dense_dim):
        raise _dense_refused("sparse_resize_", self)

    def sparse_resize_and_clear_(self, size, sparse_dim, dense_dim):
        raise _dense_refused("sparse_resize_and_clear_", self)

    def smm(self, mat2):
        from ._sparse_extra import smm

        return smm(self, mat2)

    def sspaddmm(self, mat1, mat2, *, beta=1, alpha=1):
        raise RuntimeError("sspaddmm: self must be a sparse COO tensor (as in PyTorch, whose "
                           "dense form fails an internal assert); convert with .to_sparse()")  # fmt: skip
