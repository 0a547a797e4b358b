"""ONNX export rules for the layer ops: convolution, pooling, normalisation, softmax,
attention, embedding, padding and the other arrangement ops."""

from __future__ import annotations

import math

import numpy as np

from .graph import INT64_MAX, INT64_MIN, UnsupportedOpError, onnx_dtype
from .rules import _indices, slice_axes
from .trace import host_array, rule


def _unbatched(tr, x, batched: bool) -> str:
    name = tr.name(x)
    return name if batched else tr.g.op("Unsqueeze", [name, tr.g.ints([0])])


def _rebatch(tr, y: str, batched: bool, hint: str) -> str:
    return y if batched else tr.g.op("Squeeze", [y, tr.g.ints([0])], hint)


# ---------------------------------------------------------------------------- convolution
@rule("Conv", "ConvTranspose")
def _conv(tr, node, args, kwargs, out):
    x, w, b = args
    geo, nd = kwargs["geom"], w.ndim - 2
    batched = x.ndim == w.ndim
    pt, pb, pl, pr = geo.pads
    k, s, d = [geo.kh, geo.kw], [geo.sh, geo.sw], [geo.dh, geo.dw]
    pads = [pt, pl, pb, pr]
    if nd == 1:
        k, s, d, pads = k[1:], s[1:], d[1:], [pl, pr]
    attrs = dict(kernel_shape=k, strides=s, dilations=d, pads=pads, group=geo.G)
    transposed = type(node).op_name == "ConvTranspose"
    if transposed:  # NOTE: geom describes the forward conv whose input-gradient this is
        ins, outs = [geo.Ho, geo.Wo], [geo.H, geo.W]
        full = [(n - 1) * st - a - z + dl * (kk - 1) + 1
                for n, st, a, z, dl, kk in zip(ins, [geo.sh, geo.sw], [pt, pl], [pb, pr],
                                               [geo.dh, geo.dw], [geo.kh, geo.kw])]  # fmt: skip
        extra = [o - f for o, f in zip(outs, full)]
        attrs["output_padding"] = extra[1:] if nd == 1 else extra
    names = [_unbatched(tr, x, batched), tr.name(w)] + ([tr.name(b)] if b is not None else [])
    y = tr.g.op("ConvTranspose" if transposed else "Conv", names, "conv", **attrs)
    return _rebatch(tr, y, batched, "conv")


# ---------------------------------------------------------------------------- pooling
def _as_4d(tr, x, shape4):
    """``x`` as the (N, C, H, W) that the pooling ops work on (1-d: H = 1; unbatched: N = 1),
    and the function that takes a result back to ``x``'s layout."""
    g, name, xs = tr.g, tr.name(x), tuple(x.shape)
    one_d = x.ndim == 2 or (x.ndim == 3 and tuple(shape4) == xs[:2] + (1,) + xs[2:])
    batched = x.ndim == (3 if one_d else 4)
    axes = ([] if batched else [0]) + ([2] if one_d else [])
    if axes:
        name = g.op("Unsqueeze", [name, g.ints(axes)])

    def back(y, hint):
        return g.op("Squeeze", [y, g.ints(axes)], hint) if axes else y

    return name, back


@rule("MaxPool", "AvgPool")
def _pool(tr, node, args, kwargs, out):
    x, geo = args[0], kwargs["geom"]
    name, back = _as_4d(tr, x, geo.shape)
    k, s, p, d = (list(v) for v in (geo.k, geo.s, geo.p, geo.d))
    # NOTE: ceil_mode only where it changes the output size (ONNX rounds as PyTorch then)
    floor = [(n + 2 * p_ - dd * (kk - 1) - 1) // ss + 1
             for n, p_, dd, kk, ss in zip(geo.shape[2:], p, d, k, s)]  # fmt: skip
    attrs = dict(kernel_shape=k, strides=s, pads=p + p, ceil_mode=int(floor != list(geo.out)))
    if type(node).op_name == "MaxPool":
        y = tr.g.op("MaxPool", [name], "maxpool", dilations=d, **attrs)
    else:
        if kwargs.get("divisor_override"):
            raise UnsupportedOpError("onnx.export: the op AvgPool with divisor_override has "
                                     "no ONNX form; divide the sum pool yourself")  # fmt: skip
        cip = int(bool(kwargs["count_include_pad"]))
        y = tr.g.op("AveragePool", [name], "avgpool", count_include_pad=cip, **attrs)
    return back(y, "pool")


@rule("AdaptiveAvgPool")
def _adaptive(tr, node, args, kwargs, out):
    from ..ops.pool import _adaptive_matrix

    g, x = tr.g, args[0]
    (_, _, h, w), (ho, wo) = kwargs["shape4"], kwargs["out"]
    name, back = _as_4d(tr, x, kwargs["shape4"])
    if (ho, wo) == (1, 1):
        y = g.op("GlobalAveragePool", [name], "adaptive_avg_pool")
    elif h % ho == 0 and w % wo == 0:
        k = [h // ho, w // wo]
        y = g.op("AveragePool", [name], "adaptive_avg_pool", kernel_shape=k, strides=k)
    else:  # NOTE: uneven windows: y = Ph x Pw^T with PyTorch's window weights
        dt = np.dtype(out._data.dtype)
        ph = g.const(_adaptive_matrix(np, h, ho, dt), "pool_rows")
        pwt = g.const(_adaptive_matrix(np, w, wo, dt).T.copy(), "pool_cols")
        y = g.op("MatMul", [g.op("MatMul", [ph, name]), pwt], "adaptive_avg_pool")
    return back(y, "adaptive_avg_pool")


# ---------------------------------------------------------------------------- normalisation
@rule("LayerNorm")
def _layer_norm(tr, node, args, kwargs, out):
    g, (x, w, b, nshape, eps) = tr.g, args
    dt = out._data.dtype
    scale = tr.name(w) if w is not None else g.const(np.ones(nshape, dt), "ones")
    ins = [tr.name(x), scale] + ([tr.name(b)] if b is not None else [])
    return g.op("LayerNormalization", ins, "layer_norm", axis=-len(nshape), epsilon=float(eps))


@rule("RMSNorm")
def _rms_norm(tr, node, args, kwargs, out):
    g, (x, w, nshape, eps) = tr.g, args
    dt, name = out._data.dtype, tr.name(x)
    axes = list(range(x.ndim - len(nshape), x.ndim))
    ms = g.axes_op("ReduceMean", g.op("Mul", [name, name]), axes, "rms.ms", 18, keepdims=1)
    r = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, g.scalar(eps, dt)])])])
    y = g.op("Mul", [name, r], "rms_norm")
    return g.op("Mul", [y, tr.name(w)], "rms_norm.scale") if w is not None else y


@rule("BatchNorm")
def _batch_norm(tr, node, args, kwargs, out):
    g, (x, w, b, running, training, _momentum, eps) = tr.g, args
    if training or running is None:
        raise UnsupportedOpError("onnx.export: the op BatchNorm in training mode (batch "
                                 "statistics) can't be exported; call model.eval() first")  # fmt: skip
    dt, c = out._data.dtype, x.shape[1]
    scale = tr.name(w) if w is not None else g.const(np.ones(c, dt), "ones")
    bias = tr.name(b) if b is not None else g.const(np.zeros(c, dt), "zeros")
    mean, var = (tr.name(a) for a in running)
    return g.op("BatchNormalization", [tr.name(x), scale, bias, mean, var], "batch_norm",
                epsilon=float(eps))  # fmt: skip


@rule("GroupNorm")
def _group_norm(tr, node, args, kwargs, out):
    g, (x, w, b, groups, eps) = tr.g, args
    dt, name = out._data.dtype, tr.name(x)
    xg = g.op("Reshape", [name, g.ints([0, groups, -1])])
    mean = g.axes_op("ReduceMean", xg, [2], "gn.mean", 18, keepdims=1)
    c = g.op("Sub", [xg, mean])
    var = g.axes_op("ReduceMean", g.op("Mul", [c, c]), [2], "gn.var", 18, keepdims=1)
    y = g.op("Div", [c, g.op("Sqrt", [g.op("Add", [var, g.scalar(eps, dt)])])])
    y = g.op("Reshape", [y, g.op("Shape", [name])], "group_norm")
    pshape = [x.shape[1]] + [1] * (x.ndim - 2)
    if w is not None:
        y = g.op("Mul", [y, g.op("Reshape", [tr.name(w), g.ints(pshape)])])
    if b is not None:
        y = g.op("Add", [y, g.op("Reshape", [tr.name(b), g.ints(pshape)])])
    return y


# ---------------------------------------------------------------------------- softmax, embedding
@rule("Softmax")
def _softmax(tr, node, args, kwargs, out):
    x, axis, log = args
    if axis is None:  # a 0-d tensor
        return tr.g.op("Identity" if not log else "Sub", [tr.name(x)] * (1 + bool(log)))
    return tr.g.op("LogSoftmax" if log else "Softmax", [tr.name(x)], "softmax", axis=int(axis))


@rule("Embedding")
def _embedding(tr, node, args, kwargs, out):
    w, idx = args[:2]
    return tr.g.op("Gather", [tr.name(w), _indices(tr, idx, "embedding")], "embedding", axis=0)


@rule("Dropout")
def _dropout(tr, node, args, kwargs, out):
    raise UnsupportedOpError("onnx.export: the op Dropout ran in training mode; export runs the "
                             "model in eval mode, so call F.dropout(x, p, training=self.training)")  # fmt: skip


# ---------------------------------------------------------------------------- attention
def _attend(tr, q, k, v, scale, causal, mask, dt, like_shape):
    g = tr.g
    kt = g.op("Transpose", [k], perm=list(range(len(like_shape) - 2)) + [len(like_shape) - 1,
                                                                         len(like_shape) - 2])  # fmt: skip
    s = g.op("Mul", [g.op("MatMul", [q, kt]), g.scalar(scale, dt)], "scores")
    if causal:  # -inf above the diagonal, sized from the scores so the lengths stay free
        qk = slice_axes(g, g.op("Shape", [s]), [-2], [INT64_MAX], [0], hint="seq_lengths")
        full = g.op("Expand", [g.scalar(-np.inf, dt), qk])
        s = g.op("Add", [s, g.op("Trilu", [full, g.ints(1, "k")], "causal_bias", upper=1)])
    if mask is not None:
        m, m_t = mask
        if host_array(m_t).dtype == np.bool_ if not hasattr(m_t, "_data") else (
            m_t._data.dtype == np.bool_):  # fmt: skip
            s = g.op("Where", [m, s, g.scalar(-np.inf, dt)])
        else:
            s = g.op("Add", [s, m])
    p = g.op("Softmax", [s], "attn", axis=-1)
    # NOTE: rows whose keys are all masked give zeros (as PyTorch), not NaN
    p = g.op("Where", [g.op("IsNaN", [p]), g.scalar(0, dt), p])
    return g.op("MatMul", [p, v], "attention")


def _no_dropout(p: float) -> None:
    if p:
        raise UnsupportedOpError(
            f"onnx.export: the op Attention ran with dropout_p={p}; pass dropout_p=0.0 when "
            "not training (e.g. dropout_p=self.p if self.training else 0.0)"
        )


@rule("Attention")
def _attention(tr, node, args, kwargs, out):
    q, k, v, mask, scale, causal, groups, dropout_p, _ = args
    _no_dropout(dropout_p)
    g, dt = tr.g, out._data.dtype
    kn, vn = tr.name(k), tr.name(v)
    if groups > 1:  # each key/value head serves `groups` query heads, in order

        def rep(n, t):
            sh = list(t.shape)
            u = g.op("Unsqueeze", [n, g.ints([len(sh) - 2])])
            e = g.op("Expand", [u, g.ints([1] * (len(sh) - 2) + [groups, 1, 1])])
            return g.op("Reshape", [e, g.ints([0] * (len(sh) - 3) + [-1] + sh[-2:])])

        kn, vn = rep(kn, k), rep(vn, v)
    mk = None if mask is None else (tr.name(mask), mask)
    shape = tuple(q.shape[:-1]) + (k.shape[-2],)
    return _attend(tr, tr.name(q), kn, vn, scale, causal, mk, dt, shape)


@rule("PackedCausalAttention")
def _packed(tr, node, args, kwargs, out):
    qkv, batch, h, dropout_p = args[:4]
    _no_dropout(dropout_p)
    g, dt = tr.g, out._data.dtype
    rows, c3 = qkv.shape
    t, e = rows // batch, c3 // (3 * h)
    sym = tr.sym_dim(t)  # a dynamic sequence length: read from the input at run time
    target = g.ints([-1, t, 3, h, e]) if sym is None else g.op(
        "Concat", [g.ints([-1]), sym, g.ints([3, h, e])], axis=0)  # fmt: skip
    x = g.op("Reshape", [tr.name(qkv), target])
    x = g.op("Transpose", [x], perm=[2, 0, 3, 1, 4])  # (3, B, H, T, E)
    q, k, v = (g.op("Squeeze", [p, g.ints([0])]) for p in g.op(
        "Split", [x, g.ints([1, 1, 1])], n_out=3, axis=0))  # fmt: skip
    y = _attend(tr, q, k, v, 1.0 / math.sqrt(e), True, None, dt, (batch, h, t, t))
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])  # (B, T, H, E)
    return g.op("Reshape", [y, g.ints([-1, h * e])], "attention")


# ---------------------------------------------------------------------------- arrangement
_PAD = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@rule("Pad")
def _pad(tr, node, args, kwargs, out):
    g, (x, pairs, mode, value) = tr.g, args
    if mode == "circular" and g.opset < 19:
        raise UnsupportedOpError("onnx.export: the op Pad in circular mode needs opset 19+")
    pads = [p[0] for p in pairs] + [p[1] for p in pairs]
    ins = [tr.name(x), g.ints(pads, "pads")]
    if mode == "constant":
        ins.append(g.scalar(value, out._data.dtype))
    return g.op("Pad", ins, "pad", mode=_PAD[mode])


@rule("Flip")
def _flip(tr, node, args, kwargs, out):
    dims = list(args[1])
    n = len(dims)
    return slice_axes(tr.g, tr.name(args[0]), [-1] * n, [INT64_MIN] * n, dims, [-1] * n, "flip")


@rule("Roll")
def _roll(tr, node, args, kwargs, out):
    g, (x, shifts, dims) = tr.g, args
    name = tr.name(x)
    if dims is None:
        flat = g.op("Reshape", [name, g.ints([-1])])
        n = x.numel()
        s = int(shifts) % n if n else 0
        y = g.op("Concat", [slice_axes(g, flat, [n - s], [n], [0]),
                            slice_axes(g, flat, [0], [n - s], [0])], axis=0)  # fmt: skip
        return g.op("Reshape", [y, g.ints(list(x.shape))], "roll")
    shifts = shifts if isinstance(shifts, tuple) else (shifts,)
    dims = dims if isinstance(dims, tuple) else (dims,)
    for s, d in zip(shifts, dims):
        n = x.shape[d]
        s = int(s) % n if n else 0
        if s:
            name = g.op("Concat", [slice_axes(g, name, [n - s], [n], [d]),
                                   slice_axes(g, name, [0], [n - s], [d])], "roll", axis=d)  # fmt: skip
    return name if name != tr.name(x) else g.op("Identity", [name], "roll")


@rule("Repeat")
def _repeat(tr, node, args, kwargs, out):
    g, (x, reps) = tr.g, args
    name = tr.name(x)
    if len(reps) > x.ndim:
        name = g.op("Unsqueeze", [name, g.ints(list(range(len(reps) - x.ndim)))])
    return g.op("Tile", [name, g.ints(list(reps), "repeats")], "repeat")


@rule("Tri")
def _tri(tr, node, args, kwargs, out):
    x, k, upper = args
    return tr.g.op("Trilu", [tr.name(x), tr.g.ints(int(k), "k")], "tri", upper=int(bool(upper)))


@rule("MaskedFill")
def _masked_fill(tr, node, args, kwargs, out):
    x, mask, value = args
    g = tr.g
    m = tr.name(mask, "masked_fill")
    if (mask._data.dtype if hasattr(mask, "_data") else host_array(mask).dtype) != np.bool_:
        m = g.op("Cast", [m], to=onnx_dtype(np.bool_))
    v = tr.value(value, out, "masked_fill")
    if hasattr(value, "_data") and value._data.dtype != out._data.dtype:
        v = g.op("Cast", [v], to=onnx_dtype(out._data.dtype))
    return g.op("Where", [m, v, tr.name(x)], "masked_fill")


__all__: list[str] = []
