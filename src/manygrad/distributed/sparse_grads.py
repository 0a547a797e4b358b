"""Sparse gradients under ``DistributedDataParallel``: averaged as sparse tensors, as in PyTorch.

The tables of ``nn.Embedding(sparse=True)`` and ``EmbeddingBag(sparse=True)`` sit outside
the buckets; after backward every rank gathers all ranks' rows and values (one small
all-gather of the entry counts, then one of the padded indices and one of the values per
parameter) and writes the concatenation, scaled by 1/world size, as an uncoalesced sparse
``.grad``. A rank whose gradient for such a parameter came out dense makes every rank
reduce that one densely. Each function takes the ``Reducer`` as ``r``.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..sparse import SparseCooTensor
from ..tensor import Tensor
from .buckets import _dense

_WHAT = "DDP gradient all_reduce"


def reduce_sparse(r, scale: float, shadow: bool = False) -> None:
    """Average the expected-sparse gradients: gathered rows where every rank has a
    sparse (or no) gradient, an all-reduce of dense ones where any rank's is dense."""
    order = sorted(r.sparse)
    local = []
    for i in order:
        p, g = r.params[i], r.sparse[i]
        if shadow:
            g = None
        elif g is None:
            g = p.grad
        elif p.grad is not None:  # NOTE: accumulated earlier (under no_sync)
            both = p.grad.__class__ is SparseCooTensor and g.__class__ is SparseCooTensor
            g = p.grad + g if both else _dense(p.grad) + _dense(g)
        local.append(g)
    meta = np.array(
        [[0 if g is None else 1 if g.__class__ is SparseCooTensor else 2,
          g._vals.shape[0] if g.__class__ is SparseCooTensor else 0] for g in local],
        dtype=np.int64,
    ).reshape(len(order), 2)  # fmt: skip
    cpu = r.group.engine(backend.CPU)
    every = np.empty((r.group.size,) + meta.shape, np.int64)
    cpu.all_gather(meta, every, _WHAT + " (sparse sizes)", r._seq)
    for j, i in enumerate(order):
        p, g, kinds = r.params[i], local[j], every[:, j, 0]
        if not kinds.any():
            continue  # NOTE: no rank has a gradient for it: .grad stays None
        if (kinds == 2).any() or (kinds == 0).any() and not (kinds == 1).any():
            grad = _reduce_dense(r, p, g, scale)
        else:
            grad = _gather_rows(r, p, g, int(every[:, j, 1].max()), every[:, j, 1], scale)
        if not shadow:
            p.grad = grad


def _reduce_dense(r, p: Tensor, g, scale: float) -> Tensor:
    xp = backend.array_module(p._data)
    with backend.device_scope(p._device):
        flat = xp.zeros(p._data.shape, p._data.dtype) if g is None else _dense(g).copy()
        flat = xp.ascontiguousarray(flat.astype(p._data.dtype, copy=False))
        r.group.engine(p._device).all_reduce(flat, "sum", _WHAT, r._seq)
        flat *= scale
    return Tensor._wrap(flat, p._device)


def _gather_rows(r, p: Tensor, g, most: int, counts, scale: float):
    """Every rank's entries of a sparse gradient, padded to ``most`` for the gather."""
    xp = backend.array_module(p._data)
    n, dense_shape = r.group.size, tuple(p._data.shape[1:])
    eng = r.group.engine(p._device)
    with backend.device_scope(p._device):
        idx = xp.zeros((1, most), np.int64)
        vals = xp.zeros((most,) + dense_shape, p._data.dtype)
        if g is not None:
            k = g._vals.shape[0]
            idx[:, :k] = g._idx._data.reshape(1, k)
            vals[:k] = g._vals._data
        all_idx = xp.empty((n, 1, most), np.int64)
        all_vals = xp.empty((n, most) + dense_shape, p._data.dtype)
        eng.all_gather(idx, all_idx, _WHAT + " (sparse indices)", r._seq)
        eng.all_gather(vals, all_vals, _WHAT + " (sparse values)", r._seq)
        keep = [int(c) for c in counts]
        idx = xp.concatenate([all_idx[k, :, : keep[k]] for k in range(n)], axis=1)
        vals = xp.concatenate([all_vals[k, : keep[k]] for k in range(n)]) * scale
    return SparseCooTensor(Tensor._wrap(idx, p._device),
                           Tensor._wrap(vals.astype(p._data.dtype, copy=False), p._device),
                           tuple(p._data.shape))  # fmt: skip
