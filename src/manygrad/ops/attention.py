"""Attention: scaled dot-product attention (masks, causal, dropout, grouped-query) and the
packed causal attention the built-in GPT uses (q, k, v read from one projection)."""

from __future__ import annotations

import math

from .. import backend
from .. import dtypes as D
from ..autograd import Function, autocast_lower
from ..errors import DTypeError, ShapeError
from ..tensor import Tensor
from ._common import axis_sum, check_same_dtype
from .elementwise import _float_input
from .norm import _cdt

# ---------------------------------------------------------------------------- attention


class Attention(Function):
    """softmax(q k^T * scale + mask) v, with the probabilities saved for backward."""

    def reference(self, q, k, v, mask):
        from .elementwise import where
        from .nn import softmax

        if self.groups > 1:  # NOTE: grouped-query attention: each kv head serves `groups`
            k, v = k.repeat_interleave(self.groups, -3), v.repeat_interleave(self.groups, -3)
        # NOTE: the dropout mask that forward drew is a constant factor of the probabilities
        drop = 1.0 if self.drop is None else Tensor._wrap(self.drop.astype(q._data.dtype))
        s = (q @ k.transpose(-1, -2)) * self.scale
        seq_q, seq_k = s.shape[-2:]
        if self.causal:
            keep = Tensor._wrap(_causal_bias(s._data, seq_q, seq_k) == 0)
            s = where(keep, s, -math.inf)
        if mask is not None and mask.dtype is D.bool_:
            # NOTE: "safe" softmax: a row with every key masked gives zeros, as forward
            rows = Tensor._wrap(mask._data.any(axis=-1, keepdims=True))
            s = where(rows, where(mask, s, -math.inf), 0.0)
            return (softmax(s, -1) * rows * drop) @ v
        if mask is not None:
            s = s + mask
        return (softmax(s, -1) * drop) @ v

    def forward(self, q, k, v, mask, scale, causal, groups, dropout_p, gen):
        xp = backend.array_module(q)
        self.inputs, self.causal = (q, k, v, mask), causal
        out_dt, cdt = q.dtype, _cdt(q)
        q, k, v = (a.astype(cdt, copy=False) for a in (q, k, v))
        if groups > 1:
            k, v = xp.repeat(k, groups, axis=-3), xp.repeat(v, groups, axis=-3)
        s = xp.matmul(q, k.swapaxes(-1, -2))
        s *= scale
        seq_q, seq_k = s.shape[-2:]
        if causal:
            s += _causal_bias(s, seq_q, seq_k)
        if mask is not None:
            s = xp.where(mask, s, -math.inf) if mask.dtype == bool else s + mask.astype(cdt)
        # NOTE: "safe" softmax, as PyTorch's: a row with every key masked gives zeros
        m = s.max(axis=-1, keepdims=True)
        p = xp.exp(s - xp.where(xp.isfinite(m), m, 0))
        den = axis_sum(p, -1)
        p /= xp.where(den == 0, 1, den)
        self.drop = None
        if dropout_p > 0:
            keep = gen.random(p.shape, D.float32.np) >= dropout_p
            scale_d = 1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0
            self.drop = keep.astype(cdt) * scale_d
        pd = p if self.drop is None else p * self.drop
        self.q, self.k, self.v, self.p, self.pd = q, k, v, p, pd
        self.scale, self.groups = scale, groups
        return xp.matmul(pd, v).astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        g = g.astype(self.p.dtype, copy=False)
        nq, nk, nv, nm = self.needs_input_grad[:4]
        p = self.p
        gv = xp.matmul(self.pd.swapaxes(-1, -2), g) if nv else None
        gp = xp.matmul(g, self.v.swapaxes(-1, -2))
        if self.drop is not None:
            gp *= self.drop
        gs = p * (gp - axis_sum(gp, -1, p))
        gq = xp.matmul(gs, self.k) * self.scale if nq else None
        gk = xp.matmul(gs.swapaxes(-1, -2), self.q) * self.scale if nk else None
        if self.groups > 1:
            gk, gv = (None if a is None else _sum_groups(a, self.groups) for a in (gk, gv))
        return gq, gk, gv, (gs if nm else None)


_CAUSAL: dict = {}


def _causal_bias(like, seq_q, seq_k, transposed=False):
    """(seq_q, seq_k) additive mask in ``like``'s dtype and device: 0 on and below the
    diagonal, -inf above (contiguous (seq_k, seq_q) transpose if ``transposed``); built once
    per (sizes, dtype, device) and reused."""
    dev = backend.device_of(like)
    key = (seq_q, seq_k, like.dtype.str, dev, transposed)
    bias = _CAUSAL.get(key)
    if bias is None:
        xp = backend.array_module(like)
        with backend.device_scope(dev):
            keep = xp.tril(xp.ones((seq_q, seq_k), dtype=bool))
            bias = xp.where(keep, 0.0, -math.inf).astype(like.dtype)
            bias = _CAUSAL[key] = xp.ascontiguousarray(bias.T) if transposed else bias
    return bias


class PackedCausalAttention(Function):
    """Causal multi-head self-attention on packed projections ``qkv`` (B * T, 3 * C),
    laid out as [q | k | v] with the heads side by side; gives (B * T, C) in that layout.

    NOTE: the scores are kept transposed, (B, H, key, query): the softmax then reduces
    over a middle axis, which NumPy vectorises across the contiguous query axis (3x faster
    than reducing rows of 64). k and v are read in place as strided views of ``qkv``; only
    q (and, in backward, the output gradient) is copied, transposed, so that every GEMM
    has its second operand untransposed (NumPy's batched GEMMs run at half speed
    otherwise). The output and the gradient of ``qkv`` are written through strided views.
    """

    def forward(self, qkv, batch, n_head, dropout_p, gen):
        xp = backend.array_module(qkv)
        out_dt, cdt = qkv.dtype, _cdt(qkv)
        qkv = qkv.astype(cdt, copy=False)
        rows, c3 = qkv.shape
        b, h = batch, n_head
        t, e = rows // b, c3 // (3 * h)
        q, k, v = qkv.reshape(b, t, 3, h, e).transpose(2, 0, 3, 1, 4)  # (B, H, T, E) views
        qt = xp.empty((b, h, e, t), dtype=cdt)  # q transposed, times the score scale
        xp.multiply(q.swapaxes(-1, -2), 1.0 / math.sqrt(e), out=qt)
        st = xp.matmul(k, qt)  # st[.., j, i] = k_j . q_i / sqrt(E)
        st += _causal_bias(st, t, t, transposed=True)
        # NOTE: every query keeps its own key, so the max is finite: plain softmax
        st -= st.max(axis=-2, keepdims=True)
        pt = xp.exp(st, out=st)
        pt /= pt.sum(axis=-2, keepdims=True)
        self.drop = None
        if dropout_p > 0:
            keep = gen.random(pt.shape, D.float32.np) >= dropout_p
            self.drop = keep.astype(cdt) * (1.0 / (1.0 - dropout_p) if dropout_p < 1 else 0.0)
        pdt = pt if self.drop is None else pt * self.drop
        self.qkv, self.pt, self.pdt, self.heads = qkv, pt, pdt, (b, t, h, e)
        y = xp.empty((b, t, h, e), dtype=cdt)
        xp.matmul(pdt.swapaxes(-1, -2), v, out=y.transpose(0, 2, 1, 3))
        return y.reshape(rows, c3 // 3).astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        b, t, h, e = self.heads
        pt = self.pt
        q, k, v = self.qkv.reshape(b, t, 3, h, e).transpose(2, 0, 3, 1, 4)
        g4 = g.astype(pt.dtype, copy=False).reshape(b, t, h, e).transpose(0, 2, 1, 3)
        gt = xp.empty((b, h, e, t), dtype=pt.dtype)
        gt[...] = g4.swapaxes(-1, -2)
        gqkv = xp.empty((b, t, 3, h, e), dtype=pt.dtype)
        gq, gk, gv = gqkv.transpose(2, 0, 3, 1, 4)  # (B, H, T, E) views
        xp.matmul(self.pdt, g4, out=gv)
        gst = xp.matmul(v, gt)  # gradient of the transposed probabilities
        if self.drop is not None:
            gst *= self.drop
        # softmax backward in place: gs = p * (gp - sum_keys(gp * p)), times 1 / sqrt(E)
        gst -= xp.einsum("...ji,...ji->...i", gst, pt)[..., None, :]
        gst *= pt
        gst *= 1.0 / math.sqrt(e)
        xp.matmul(gst.swapaxes(-1, -2), k, out=gq)
        xp.matmul(gst, q, out=gk)
        return gqkv.reshape(b * t, 3 * h * e), None, None, None, None


def _packed_causal_attention(qkv: Tensor, batch: int, n_head: int, dropout_p: float = 0.0):
    """Causal self-attention of packed ``qkv`` (B * T, 3 * C) -> (B * T, C), as
    ``scaled_dot_product_attention(q, k, v, is_causal=True)`` on the heads split out."""
    rows, c3 = qkv.shape
    if c3 % (3 * n_head) or rows % batch:
        raise ShapeError(
            f"causal attention: packed qkv of shape {tuple(qkv.shape)} does not split into "
            f"batch {batch} x T rows and 3 x {n_head} heads"
        )
    if dropout_p == 0 and qkv.dtype in (D.bfloat16, D.float16):
        t, e = rows // batch, c3 // (3 * n_head)
        heads = qkv.reshape(batch, t, 3, n_head, e).permute(2, 0, 3, 1, 4)  # (3, B, H, T, E)
        q, k, v = heads[0], heads[1], heads[2]
        if _cudnn_takes(q, k, v, True):  # NOTE: views; their gradients flow back into qkv
            y = CudnnAttention.apply(q, k, v, 1.0 / math.sqrt(e), True)
            return y.permute(0, 2, 1, 3).reshape(rows, c3 // 3)
    gen = backend.generator(qkv._device) if dropout_p > 0 else None
    return PackedCausalAttention.apply(qkv, batch, n_head, dropout_p, gen)


def _sum_groups(a, groups):
    """Undo ``repeat(..., groups, axis=-3)``: sum each head's repeats."""
    shape = a.shape[:-3] + (a.shape[-3] // groups, groups) + a.shape[-2:]
    return a.reshape(shape).sum(axis=-3)


@autocast_lower()
def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """Attention ``softmax(q k^T * scale + mask) v`` over the last two dims.

    Vaswani et al., "Attention Is All You Need" (2017). Rows whose keys are all masked
    give zeros, as in PyTorch.

    Args:
        query: shape (..., L, E); key: (..., S, E); value: (..., S, Ev).
        attn_mask: bool (True = attend) or float (added to the scores), broadcastable to
            (..., L, S) (default None).
        dropout_p: dropout probability on the attention weights (default 0.0).
        is_causal: mask keys after each query (top-left aligned) (default False).
        scale: score scale (default None: 1 / sqrt(E)).
        enable_gqa: let query have a multiple of key/value's heads (dim -3) (default False).

    Example: ``out = F.scaled_dot_product_attention(q, k, v, is_causal=True)``.
    """
    op = "scaled_dot_product_attention"
    dispatch = getattr(attn_mask, "_sdpa_dispatch", None)
    if dispatch is not None:  # NOTE: an attention bias (nn.attention.bias.CausalBias)
        return dispatch(query, key, value, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)  # fmt: skip
    q, k, v = (_float_input(a) for a in (query, key, value))
    if not (q._data.dtype == k._data.dtype == v._data.dtype):
        check_same_dtype(op, ("query", q), ("key", k), ("value", v))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(f"{op}: query, key and value need at least 2 dims (..., L, E), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")  # fmt: skip
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"{op}: query (..., L, E) {tuple(q.shape)}, key (..., S, E) {tuple(k.shape)} and "
            f"value (..., S, Ev) {tuple(v.shape)} don't fit"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if (
        attn_mask is not None
        and attn_mask.dtype is not D.bool_
        and not attn_mask.is_floating_point()
    ):
        raise DTypeError(f"{op}: attn_mask must be bool or float, got {attn_mask.dtype}")
    groups = 1
    if enable_gqa and q.ndim >= 3 and k.ndim >= 3 and q.shape[-3] != k.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hq % hk or v.shape[-3] != hk:
            raise ShapeError(f"{op}: with enable_gqa the query heads ({hq}) must be a multiple "
                             f"of the key/value heads ({hk}, {v.shape[-3]})")  # fmt: skip
        groups = hq // hk
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if attn_mask is None and dropout_p == 0 and groups == 1 and _cudnn_takes(q, k, v, is_causal):
        return CudnnAttention.apply(q, k, v, sc, is_causal)
    gen = backend.generator(q._device) if dropout_p > 0 else None
    return Attention.apply(q, k, v, attn_mask, sc, is_causal, groups, dropout_p, gen)


def _cudnn_takes(q, k, v, causal) -> bool:
    """Flash attention through cuDNN: (B, H, S, D) bf16/fp16 of one shape family, head dim
    a multiple of 8 up to 256, causal only with as many queries as keys (top-left aligned
    as PyTorch's), forward and backward switched on (off until a GPU run verified them)."""
    if q.ndim != 4 or q.dtype not in (D.bfloat16, D.float16) or not (q.dtype == k.dtype == v.dtype):
        return False
    d = q.shape[-1]
    if d % 8 or d > 256 or v.shape[-1] != d or k.shape[:2] != q.shape[:2] or v.shape != k.shape:
        return False
    if causal and q.shape[-2] != k.shape[-2]:
        return False
    from ..kernels import fastpath

    return (fastpath.wired("cudnn.sdpa_train", q._data)
            and fastpath.enabled("cudnn.sdpa_grad"))  # fmt: skip


class CudnnAttention(Function):
    """``softmax(q kᵀ scale (+ causal mask)) v`` through cuDNN's flash attention: the
    forward keeps the output and the row log-sum-exp, the backward rebuilds the rest."""

    def reference(self, q, k, v):
        from .elementwise import where
        from .nn import softmax

        s = (q @ k.transpose(-1, -2)) * self.scale
        if self.causal:
            keep = Tensor._wrap(_causal_bias(s._data, *s.shape[-2:]) == 0)
            s = where(keep, s, -math.inf)
        return softmax(s, -1) @ v

    def forward(self, q, k, v, scale, causal):
        from ..kernels import fastpath

        self.scale, self.causal, self.inputs = scale, causal, (q, k, v)
        o, stats = fastpath.call("cudnn.sdpa_train", q, k, v, scale, causal)
        self.saved = (q, k, v, o, stats)
        return o

    def backward(self, g):
        from ..kernels import fastpath

        q, k, v, o, stats = self.saved
        return fastpath.call("cudnn.sdpa_grad", q, k, v, o, g, stats, self.scale, self.causal)


from ._common import public  # noqa: E402

__all__ = public(globals())
