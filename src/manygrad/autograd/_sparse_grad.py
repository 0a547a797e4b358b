"""Sparse COO gradients in the graph walk (``nn.Embedding(sparse=True)`` and friends).

An op whose backward returns a ``SparseCooTensor`` (the rows it looked up and their
gradients) hands it on as is to a leaf, whose ``.grad`` then is that sparse tensor, as in
PyTorch. Accumulating follows PyTorch's rules: sparse into sparse keeps every entry
(the indices and values concatenated, uncoalesced), sparse into dense adds the rows in
place, and dense meeting sparse gives a dense gradient. A sparse gradient bound for a
non-leaf tensor (an op between the table and the lookup) is made dense first: the ops'
backward formulas take dense arrays only.
"""

from __future__ import annotations

from .. import backend
from ..sparse import SparseCooTensor
from ..tensor import Tensor


def rows(g, idx, shape, pad) -> SparseCooTensor:
    """The gradient of a row lookup ``w[idx]`` (``w`` of ``shape``) as a sparse tensor:
    the looked-up rows as indices, their gradients ``g`` as values, ``pad`` left out."""
    xp = backend.array_module(g)
    dev = backend.device_of(g)
    with backend.device_scope(dev):  # NOTE: also run outside the engine's GPU scope
        flat = idx.reshape(-1)
        vals = g.reshape(flat.shape[0], shape[1])
        if pad is None:  # NOTE: copies: g may be a broadcast view or another leaf's gradient
            flat, vals = flat.astype("int64"), vals.copy()
        else:  # NOTE: PyTorch drops the padding rows' entries (a size read on a GPU)
            keep = flat != pad
            flat, vals = flat[keep].astype("int64", copy=False), vals[keep]
        flat = xp.ascontiguousarray(flat.reshape(1, -1))
    return SparseCooTensor(Tensor._wrap(flat, dev), Tensor._wrap(vals, dev), tuple(shape))


def dense(g):
    """A gradient as a raw dense array (sparse ones made dense)."""
    return g._dense_array() if g.__class__ is SparseCooTensor else g


def add(prev, g):
    """``prev + g`` where either may be sparse (gradients that meet in one backward)."""
    if prev.__class__ is SparseCooTensor and g.__class__ is SparseCooTensor:
        return prev + g
    a, b = (x._data if isinstance(x, Tensor) else dense(x) for x in (prev, g))
    return a + b


def accumulate(prev, g, t: Tensor):
    """The new ``t.grad`` once ``g`` (sparse, or meeting a sparse ``prev``) is added."""
    if g.__class__ is SparseCooTensor:
        if prev is None:
            return g
        if prev.__class__ is SparseCooTensor:  # NOTE: in place, as PyTorch's ``grad += g``
            xp = backend.array_module(prev._vals._data)
            with backend.device_scope(t._device):
                idx = xp.concatenate([prev._idx._data, g._idx._data], axis=1)
                vals = xp.concatenate([prev._vals._data, g._vals._data])
            prev._idx = Tensor._wrap(idx, t._device)
            prev._vals = Tensor._wrap(vals, t._device)
            prev._coalesced = False
            return prev
        with backend.device_scope(t._device):
            if prev.grad_fn is not None or prev._data.base is not None:
                return Tensor._wrap(prev._data + g._dense_array(), t._device)
            idx = g._idx._data
            backend.index_add(prev._data, tuple(idx[d] for d in range(idx.shape[0])),
                              g._vals._data)  # fmt: skip
        return prev
    g = g._data if isinstance(g, Tensor) else g
    with backend.device_scope(t._device):
        return Tensor._wrap(prev._dense_array() + g, t._device)
