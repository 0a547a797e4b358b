"""Attention: ``MultiheadAttention`` and the ``TransformerEncoderLayer`` built on it
(Vaswani et al., 2017), with PyTorch's parameter names so that state dicts interchange."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable

from ... import backend, creation
from ... import dtypes as D
from ... import ops as F
from ...errors import ShapeError
from ...tensor import Tensor
from .. import init
from ..containers import ModuleList
from ..dropout import Dropout
from ..linear import Linear
from ..module import Module
from ..normalization import LayerNorm
from ..parameter import Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """``Linear`` under the name PyTorch gives MultiheadAttention's output projection."""


def _raw_mask(mask, dtype, what: str):
    """A float additive mask array (0 or -inf for bool masks) of ``dtype``."""
    arr = mask._data if isinstance(mask, Tensor) else mask
    if not backend.is_array(arr):
        raise TypeError(f"multi_head_attention: {what} must be a Tensor, got {type(mask)}")
    xp = backend.array_module(arr)
    if arr.dtype == bool:
        return xp.where(arr, -math.inf, 0.0).astype(dtype)
    if arr.dtype.kind != "f":
        raise TypeError(f"multi_head_attention: {what} must be bool or float, got {arr.dtype}")
    return arr.astype(dtype, copy=False)


def _pad_last(arr, xp):
    """Append one zero column to a mask array (for bias_k/bias_v and add_zero_attn)."""
    return xp.concatenate([arr, xp.zeros(arr.shape[:-1] + (1,), arr.dtype)], axis=-1)


class MultiheadAttention(Module):
    """Multi-head scaled dot-product attention with input and output projections.

    Args:
        embed_dim: model width E (split into ``num_heads`` heads of E / num_heads).
        num_heads: number of heads.
        dropout: dropout on the attention weights in training (default 0.0).
        bias: learn in_proj_bias and out_proj.bias (default True).
        add_bias_kv: learn an extra key/value position (default False).
        add_zero_attn: append a zero key/value position (default False).
        kdim, vdim: key/value widths when they differ from E (default E).
        batch_first: inputs are (N, L, E) instead of (L, N, E) (default False).

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns (output, weights or None).
    Bool masks mark positions that may NOT be attended; float masks are added to scores.

    Example:
        >>> mha = mg.nn.MultiheadAttention(16, 4, batch_first=True)
        >>> out, w = mha(x, x, x)  # x: (N, L, 16)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                f"({num_heads})"
            )
        kw = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def _project(self, query, key, value):
        e, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None,) * 3 if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one matmul
                qkv = F.linear(query, w, b)
                return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
            wq, wk, wv = w[:e], w[e : 2 * e], w[2 * e :]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):  # fmt: skip
        batched = query.dim() == 3
        if query.dim() not in (2, 3) or key.dim() != query.dim() or value.dim() != query.dim():
            raise ShapeError(
                f"MultiheadAttention: expected query, key and value all 2-D (unbatched) or "
                f"3-D, got shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        same = query is key and key is value
        if not batched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if same:
            key = value = query
        n, lq, e = query.shape
        if e != self.embed_dim:
            raise ShapeError(
                f"MultiheadAttention: query has width {e}, expected embed_dim={self.embed_dim}"
            )
        q, k, v = self._project(query, key, value)
        h, d = self.num_heads, self.head_dim
        xp = backend.array_module(q._data)
        dt = q._data.dtype
        mask = None
        if attn_mask is None and is_causal:
            s0 = k.shape[1]
            attn_mask = Tensor._wrap(xp.triu(xp.ones((lq, s0), dtype=bool), 1), q._device)
        if attn_mask is not None:
            mask = _raw_mask(attn_mask, dt, "attn_mask")
            if mask.ndim == 3:
                mask = mask.reshape(n, h, lq, mask.shape[-1])
        kpm = None
        if key_padding_mask is not None:
            kpm = _raw_mask(key_padding_mask, dt, "key_padding_mask")
            kpm = kpm.reshape(n, 1, 1, kpm.shape[-1])
        if self.bias_k is not None:
            k = F.cat([k, self.bias_k.expand(n, 1, e)], dim=1)
            v = F.cat([v, self.bias_v.expand(n, 1, e)], dim=1)
            mask = None if mask is None else _pad_last(mask, xp)
            kpm = None if kpm is None else _pad_last(kpm, xp)
        q = q.reshape(n, lq, h, d).transpose(1, 2)
        k = k.reshape(n, k.shape[1], h, d).transpose(1, 2)
        v = v.reshape(n, v.shape[1], h, d).transpose(1, 2)
        if self.add_zero_attn:
            z = creation.zeros(n, h, 1, d, dtype=q.dtype, device=q.device)
            k, v = F.cat([k, z], dim=2), F.cat([v, z], dim=2)
            mask = None if mask is None else _pad_last(mask, xp)
            kpm = None if kpm is None else _pad_last(kpm, xp)
        if kpm is not None:
            mask = kpm if mask is None else mask + kpm
        p = self.dropout if self.training else 0.0
        weights = None
        if not need_weights and hasattr(F, "scaled_dot_product_attention"):
            m = None if mask is None else Tensor._wrap(mask, q._device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p)
        else:
            scores = F.matmul(q * (1.0 / math.sqrt(d)), k.transpose(-2, -1))
            if mask is not None:
                scores = scores + Tensor._wrap(mask, q._device)
            attn = F.softmax(scores, -1)
            if p > 0:
                attn = F.dropout(attn, p, True)
            out = F.matmul(attn, v)
            if need_weights:
                weights = attn.mean(1) if average_attn_weights else attn
        out = self.out_proj(out.transpose(1, 2).reshape(n, lq, e))
        if not batched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _activation(name) -> Callable:
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {name}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward network, each with residual and LayerNorm.

    Args:
        d_model: model width.
        nhead: attention heads.
        dim_feedforward: hidden width of the feed-forward network (default 2048).
        dropout: dropout rate (default 0.1).
        activation: "relu" (default), "gelu" or a callable.
        layer_norm_eps: LayerNorm eps (default 1e-5).
        batch_first: inputs are (N, L, E) (default False: (L, N, E)).
        norm_first: pre-norm (LayerNorm before each block) instead of post-norm (default).
        bias: learn biases in Linear and LayerNorm layers (default True).

    Example:
        >>> layer = mg.nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        >>> layer(mg.randn(2, 10, 32)).shape
        manygrad.Size([2, 10, 32])
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)  # fmt: skip
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation) if isinstance(activation, str) else activation
        act = self.activation  # NOTE: PyTorch's flag, read by TransformerEncoder
        from .. import functional as nnf

        self.activation_relu_or_gelu = (
            1 if act in (F.relu, nnf.relu) or type(act).__name__ == "ReLU"
            else 2 if act in (F.gelu, nnf.gelu) or type(act).__name__ == "GELU" else 0
        )  # fmt: skip

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool = False) -> Tensor:  # fmt: skip
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer``, then an optional norm.

    Args:
        encoder_layer: the layer to copy (e.g. a ``TransformerEncoderLayer``).
        num_layers: how many copies.
        norm: a final normalisation module (default None).

    Example:
        >>> enc = mg.nn.TransformerEncoder(mg.nn.TransformerEncoderLayer(32, 4), 2)
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = self.use_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check
        why_not = _why_no_nested(encoder_layer)
        if enable_nested_tensor and why_not:
            warnings.warn(f"enable_nested_tensor is True, but self.use_nested_tensor is False "
                          f"because {why_not}", stacklevel=2)  # fmt: skip
            self.use_nested_tensor = False

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:  # fmt: skip
        # NOTE: PyTorch's inference path (eval, no gradients, a left-aligned padding mask)
        # runs the valid tokens as nested tensors and pads the result with zeros before the
        # final norm: the same values at valid positions, zeros at padded ones; so here
        pad = self._nested_padding(src, mask, src_key_padding_mask)
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))  # fmt: skip
        if pad is not None:
            x = x.masked_fill(pad.unsqueeze(-1), 0.0)
        if self.norm is not None:
            x = self.norm(x)
        return x

    def _nested_padding(self, src, mask, padding_mask):
        """The (N, L) bool mask of padded positions when PyTorch would take its nested-tensor
        inference path, else None."""
        from ...amp import is_autocast_enabled
        from ...autograd import is_grad_enabled

        first = self.layers[0] if len(self.layers) else None
        if (not getattr(self, "use_nested_tensor", False) or first is None or first.training
                or src.dim() != 3 or padding_mask is None or mask is not None
                or is_autocast_enabled()):  # fmt: skip
            return None
        if is_grad_enabled() and (src.requires_grad or any(
                p.requires_grad for p in first.parameters())):  # fmt: skip
            return None
        pad = padding_mask if padding_mask.dtype is D.bool_ else padding_mask != 0
        if pad.dim() != 2:
            return None
        if getattr(self, "mask_check", True):  # valid tokens first in every row
            valid = pad.logical_not().to(D.int64)
            if bool((valid[:, 1:] > valid[:, :-1]).any()):
                return None
        return pad


def _why_no_nested(layer) -> str:
    """Why PyTorch's encoder would not run ``layer`` copies on nested tensors ('' if it
    would)."""
    name = "encoder_layer"
    if not isinstance(layer, TransformerEncoderLayer):
        return f"{name} was not TransformerEncoderLayer"
    attn = layer.self_attn
    if layer.norm_first:
        return f"{name}.norm_first was True"
    if not attn.batch_first:
        return (f"{name}.self_attn.batch_first was not True(use batch_first for better "
                "inference performance)")  # fmt: skip
    if not getattr(attn, "_qkv_same_embed_dim", True):
        return f"{name}.self_attn._qkv_same_embed_dim was not True"
    if getattr(attn, "in_proj_bias", None) is None:
        return f"{name}.self_attn was passed bias=False"
    if not getattr(layer, "activation_relu_or_gelu", 0):
        return f"{name}.activation_relu_or_gelu was not True"
    if layer.norm1.eps != layer.norm2.eps:
        return f"{name}.norm1.eps was not equal to {name}.norm2.eps"
    if attn.num_heads % 2 == 1:
        return f"{name}.self_attn.num_heads is odd"
    return ""


# ---------------------------------------------------------------------------- torch.nn.attention


class SDPBackend:
    """The attention implementations ``sdpa_kernel`` can name (PyTorch's enum values)."""

    ERROR, MATH, FLASH_ATTENTION, EFFICIENT_ATTENTION, CUDNN_ATTENTION, OVERRIDEABLE = (
        -1, 0, 1, 2, 3, 4)  # fmt: skip


_SDP_FLAG = {SDPBackend.MATH: "math", SDPBackend.FLASH_ATTENTION: "flash",
             SDPBackend.EFFICIENT_ATTENTION: "mem_efficient",
             SDPBackend.CUDNN_ATTENTION: "cudnn"}  # fmt: skip


class sdpa_kernel:  # noqa: N801 - PyTorch's name
    """``with sdpa_kernel(SDPBackend.MATH):`` allows only the named implementations inside
    the block, as ``torch.backends.cuda.sdp_kernel`` flags record them. manygrad picks its
    own kernels (docs/kernels.md), so the choice is recorded and read back, not enforced."""

    def __init__(self, backends, set_priority: bool = False):
        self.backends = backends if isinstance(backends, (list, tuple)) else [backends]

    def __enter__(self):
        from ...backends import cuda

        self.prev = dict(cuda._sdp)
        for b, flag in _SDP_FLAG.items():
            cuda._sdp[flag] = b in self.backends
        return self

    def __exit__(self, *exc):
        from ...backends import cuda

        cuda._sdp.update(self.prev)
        return False


class _Weights:
    """The attributes ``MultiheadAttention.forward`` reads, from explicit weights (for the
    functional form)."""

    _project = MultiheadAttention._project

    def __init__(self, **kw):
        self.__dict__.update(kw)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False):  # fmt: skip
    """``nn.MultiheadAttention``'s computation with its weights passed in (PyTorch's
    ``F.multi_head_attention_forward``): inputs ``(L, N, E)`` or unbatched ``(L, E)``;
    returns ``(output, weights or None)``."""
    if static_k is not None or static_v is not None:
        raise NotImplementedError(
            "multi_head_attention_forward: static_k/static_v are not supported; pass the "
            "keys and values as key/value"
        )
    e = embed_dim_to_check
    if query.shape[-1] != e:
        raise ShapeError(
            f"multi_head_attention_forward: was expecting embedding dimension of {e}, but got "
            f"{query.shape[-1]}"
        )
    if e % num_heads:
        raise ValueError(f"embed_dim {e} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight and (q_proj_weight is None or k_proj_weight is None
                                     or v_proj_weight is None):  # fmt: skip
        raise ValueError("use_separate_proj_weight is True but q/k/v_proj_weight is None")

    def out_proj(x):
        return F.linear(x, out_proj_weight, out_proj_bias)

    w = _Weights(
        embed_dim=e, num_heads=num_heads, head_dim=e // num_heads, dropout=dropout_p,
        training=training, batch_first=False,
        _qkv_same_embed_dim=not use_separate_proj_weight, in_proj_weight=in_proj_weight,
        in_proj_bias=in_proj_bias, q_proj_weight=q_proj_weight, k_proj_weight=k_proj_weight,
        v_proj_weight=v_proj_weight, bias_k=bias_k, bias_v=bias_v,
        add_zero_attn=add_zero_attn, out_proj=out_proj,
    )  # fmt: skip
    return MultiheadAttention.forward(w, query, key, value, key_padding_mask=key_padding_mask,
                                      need_weights=need_weights, attn_mask=attn_mask,
                                      average_attn_weights=average_attn_weights,
                                      is_causal=is_causal)  # fmt: skip
