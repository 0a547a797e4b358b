"""ONNX export rules for indexing: basic indexing (slices, ints, None), index arrays,
gather, index_select and scatter_add."""

from __future__ import annotations

import numpy as np

from .graph import INT64_MAX, UnsupportedOpError
from .rules import _indices, slice_axes
from .trace import rule


@rule("Slice")
def _slice(tr, node, args, kwargs, out):
    """Basic indexing: slices, ints (sliced, then squeezed) and None (unsqueezed)."""
    g, x = tr.g, args[0]
    idx = list(args[1])
    if Ellipsis in idx:
        i = idx.index(Ellipsis)
        used = sum(1 for it in idx if it is not None and it is not Ellipsis)
        idx[i : i + 1] = [slice(None)] * (x.ndim - used)
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    d = o = 0  # input dim, output dim
    for it in idx:
        if it is None:
            unsqueeze.append(o)
            o += 1
            continue
        if isinstance(it, slice):
            if it != slice(None) and it != slice(None, None, 1):
                st = 1 if it.step is None else int(it.step)
                starts.append(0 if it.start is None else int(it.start))
                ends.append(INT64_MAX if it.stop is None else int(it.stop))
                axes.append(d)
                steps.append(st)
            o += 1
        else:
            i = int(it)
            starts.append(i)
            ends.append(INT64_MAX if i == -1 else i + 1)
            axes.append(d)
            steps.append(1)
            squeeze.append(d)
        d += 1
    name = tr.name(x)
    if axes:
        name = slice_axes(g, name, starts, ends, axes, steps)
    if squeeze:
        name = g.op("Squeeze", [name, g.ints(squeeze, "axes")], "squeeze")
    if unsqueeze:
        name = g.op("Unsqueeze", [name, g.ints(unsqueeze, "axes")], "unsqueeze")
    return name if name != tr.name(x) else g.op("Identity", [name], "getitem")


@rule("Index")
def _index(tr, node, args, kwargs, out):
    """Integer-array indexing: one array is a Gather; several on adjacent dims a GatherND
    (their dims move to where the first one was, as NumPy and PyTorch place them)."""
    g, (x, idx) = tr.g, args
    arrays = [(d, it) for d, it in enumerate(idx) if not isinstance(it, slice)]
    if any(it != slice(None) for it in idx if isinstance(it, slice)) or any(
        a.dtype.kind == "b" for _, a in arrays
    ):  # fmt: skip
        raise UnsupportedOpError("onnx.export: the op Index (x[...] with index arrays) with "
                                 "slices or masks mixed in can't be exported; index in steps")  # fmt: skip
    dims = [d for d, _ in arrays]
    if len(arrays) == 1:
        d, a = arrays[0]
        return g.op("Gather", [tr.name(x), _indices(tr, a, "index")], "index", axis=d)
    if dims != list(range(dims[0], dims[0] + len(dims))):
        raise UnsupportedOpError("onnx.export: the op Index with index arrays on dims that are "
                                 "not adjacent can't be exported; index in steps")  # fmt: skip
    shape = np.broadcast_shapes(*(tuple(a.shape) for _, a in arrays))
    parts = []
    for _, a in arrays:
        n = g.op("Expand", [_indices(tr, a, "index"), g.ints(list(shape) or [1])])
        parts.append(g.op("Unsqueeze", [n, g.ints([-1])]))
    ind = g.op("Concat", parts, "index.nd", axis=-1)
    if not shape:
        ind = g.op("Reshape", [ind, g.ints([len(arrays)])])
    lead = dims[0]
    rest = [d for d in range(x.ndim) if d not in dims]
    xt = tr.name(x)
    if lead:
        xt = g.op("Transpose", [xt], perm=dims + rest)
    y = g.op("GatherND", [xt, ind], "index")
    if lead:  # (B..., before..., after...) -> (before..., B..., after...)
        nb = len(shape)
        perm = list(range(nb, nb + lead)) + list(range(nb)) + list(range(nb + lead, out.ndim))
        y = g.op("Transpose", [y], "index", perm=perm)
    return y


@rule("IndexSelect")
def _index_select(tr, node, args, kwargs, out):
    x, dim, index = args
    return tr.g.op("Gather", [tr.name(x), _indices(tr, index, "index_select")], axis=int(dim))


@rule("Gather")
def _gather(tr, node, args, kwargs, out):
    x, dim, index = args[:3]  # NOTE: then sparse_grad, which only shapes the gradient
    return tr.g.op("GatherElements", [tr.name(x), _indices(tr, index, "gather")], axis=int(dim))


@rule("ScatterAdd")
def _scatter_add(tr, node, args, kwargs, out):
    g, (x, dim, index, src) = tr.g, args
    s = tr.name(src)
    if tuple(src.shape) != tuple(index.shape):
        n = len(index.shape)
        s = slice_axes(g, s, [0] * n, list(index.shape), list(range(n)))
    ins = [tr.name(x), _indices(tr, index, "scatter_add"), s]
    return g.op("ScatterElements", ins, "scatter_add", axis=int(dim), reduction="add")


__all__: list[str] = []
