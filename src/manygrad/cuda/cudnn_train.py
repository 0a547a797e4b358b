"""cuDNN for training: conv2d's input and weight gradients, flash attention's forward with
its softmax statistics and its backward, as graphs described by ``cudnn_graphs`` and run
on CuPy arrays; each beside its reference (what a GPU run compares it with, and what runs
when cuDNN refuses a call).

UNVERIFIED on a GPU, as ``cudnn_graphs.execute``: the ops (``F.conv2d``,
``F.scaled_dot_product_attention``) take these paths only where the fast paths
``cudnn.conv2d*`` / ``cudnn.sdpa_*`` are wired, which is off until a GPU run verified them.
"""

from __future__ import annotations

from .. import backend
from .cudnn_graphs import (
    conv2d_dgrad,
    conv2d_wgrad,
    execute,
    scores,
    sdpa_backward,
    sdpa_forward,
)


def _c(a):
    return backend.array_module(a).ascontiguousarray(a)


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, dilation=1):
    """``dx`` of ``conv2d(x, w)`` from ``dy`` (fast path ``cudnn.conv2d_dgrad``)."""
    desc = conv2d_dgrad(dy.shape, w.shape, x_shape, dy.dtype, stride, padding, dilation)
    dx = backend.array_module(dy).empty(tuple(x_shape), dy.dtype)
    execute(desc, {"dy": _c(dy), "w": _c(w), "dx": dx})
    return dx


def conv2d_backward_weight(x, dy, w_shape, stride=1, padding=0, dilation=1):
    """``dw`` of ``conv2d(x, w)`` from ``dy`` (fast path ``cudnn.conv2d_wgrad``)."""
    desc = conv2d_wgrad(x.shape, dy.shape, w_shape, x.dtype, stride, padding, dilation)
    dw = backend.array_module(x).empty(tuple(w_shape), x.dtype)
    execute(desc, {"x": _c(x), "dy": _c(dy), "dw": dw})
    return dw


def _conv_grads_reference(x, w, dy, stride, padding, dilation):
    from .. import autograd
    from ..kernels import fastpath
    from ..nn import functional as F
    from ..tensor import Tensor

    dev = backend.device_of(dy)
    xt = Tensor._wrap(x, dev).requires_grad_()
    wt = Tensor._wrap(w, dev).requires_grad_()
    with autograd.enable_grad(), fastpath.plain():
        y = F.conv2d(xt, wt, None, stride, padding, dilation)
        y.backward(Tensor._wrap(dy, dev))
    return xt.grad._data, wt.grad._data


def conv2d_backward_data_reference(dy, w, x_shape, stride=1, padding=0, dilation=1):
    """The reference: manygrad's own convolution's input gradient."""
    x = backend.array_module(dy).zeros(tuple(x_shape), dy.dtype)
    return _conv_grads_reference(x, w, dy, stride, padding, dilation)[0]


def conv2d_backward_weight_reference(x, dy, w_shape, stride=1, padding=0, dilation=1):
    """The reference: manygrad's own convolution's weight gradient."""
    w = backend.array_module(x).zeros(tuple(w_shape), x.dtype)
    return _conv_grads_reference(x, w, dy, stride, padding, dilation)[1]


def sdpa_train(q, k, v, scale=None, causal=False):
    """Attention forward for training on (B, H, S, D) arrays: ``(o, stats)``, stats the
    float32 log-sum-exp of each row of scaled scores (fast path ``cudnn.sdpa_train``)."""
    b, h, s_q, d = q.shape
    desc = sdpa_forward(b, h, s_q, k.shape[2], d, q.dtype, scale, causal, layout="BHSD",
                        training=True)  # fmt: skip
    xp = backend.array_module(q)
    o, stats = xp.empty(q.shape, q.dtype), xp.empty((b, h, s_q, 1), xp.float32)
    execute(desc, {"q": _c(q), "k": _c(k), "v": _c(v), "o": o, "stats": stats})
    return o, stats


def sdpa_grad(q, k, v, o, do, stats, scale=None, causal=False):
    """``(dq, dk, dv)`` of attention from the forward's output and stats (fast path
    ``cudnn.sdpa_grad``)."""
    b, h, s_q, d = q.shape
    desc = sdpa_backward(b, h, s_q, k.shape[2], d, q.dtype, scale, causal, layout="BHSD")
    xp = backend.array_module(q)
    dq, dk, dv = xp.empty(q.shape, q.dtype), xp.empty(k.shape, k.dtype), xp.empty(v.shape, v.dtype)
    execute(desc, {"q": _c(q), "k": _c(k), "v": _c(v), "o": _c(o), "dO": _c(do),
                   "stats": _c(stats), "dQ": dq, "dK": dk, "dV": dv})  # fmt: skip
    return dq, dk, dv


def sdpa_train_reference(q, k, v, scale=None, causal=False):
    """The reference of ``sdpa_train``: softmax in float32, stats its row log-sum-exp."""
    xp = backend.array_module(q)
    s, _ = scores(q, k, scale, causal)
    m = s.max(axis=-1, keepdims=True)
    e = xp.exp(s - m)
    den = e.sum(axis=-1, keepdims=True)
    o = backend.matmul(e / den, v.astype(xp.float32)).astype(q.dtype, copy=False)
    return o, (m + xp.log(den)).astype(xp.float32)


def sdpa_grad_reference(q, k, v, o, do, stats, scale=None, causal=False):
    """The reference of ``sdpa_grad``: probabilities rebuilt from the stats, in float32."""
    xp = backend.array_module(q)
    f32 = xp.float32
    s, scale = scores(q, k, scale, causal)
    p = xp.exp(s - stats)
    do32 = do.astype(f32)
    dv = backend.matmul(xp.swapaxes(p, -1, -2), do32)
    dp = backend.matmul(do32, xp.swapaxes(v.astype(f32), -1, -2))
    delta = (do32 * o.astype(f32)).sum(axis=-1, keepdims=True)
    ds = p * (dp - delta) * f32(scale)
    dq = backend.matmul(ds, k.astype(f32))
    dk = backend.matmul(xp.swapaxes(ds, -1, -2), q.astype(f32))
    return tuple(g.astype(t.dtype, copy=False) for g, t in ((dq, q), (dk, k), (dv, v)))
