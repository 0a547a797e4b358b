"""Quantized ``Embedding`` and ``EmbeddingBag`` (``torch.ao.nn.quantized``): quint8 weights
quantized per row with float scales and zero points (``per_channel_affine_float_qparams``,
from ``float_qparams_weight_only_qconfig``); float32 outputs.

Numerics as fbgemm's row-wise kernels: each row keeps ``scale`` and ``bias = -(zero_point *
scale)``; a looked-up row is ``fma(scale, q, bias)``, and a bag sums its rows as
``acc = fma(scale, q, acc + bias)`` (with ``per_sample_weights`` both scaled by the weight
first). As in PyTorch, the quantized ``EmbeddingBag`` sums whatever its ``mode``.

Example:
    >>> model.emb.qconfig = float_qparams_weight_only_qconfig
    >>> qmodel = convert(prepare(model))          # or quantize_dynamic(model, dtype=quint8)
"""

from __future__ import annotations

from .... import backend
from .... import dtypes as D
from ....creation import ones, zeros
from ....nn import Module
from ....tensor import Tensor
from ...qtensor import QTensor, per_channel_affine_float_qparams, quantize_per_channel
from .modules import quantize_weight


def _check_weight(name: str, w, shape=None) -> QTensor:
    if not isinstance(w, QTensor) or w.qscheme() is not per_channel_affine_float_qparams:
        got = w.qscheme() if isinstance(w, QTensor) else getattr(w, "dtype", type(w).__name__)
        raise RuntimeError(
            f"{name}: the weight must be quantized per row with float qparams "
            f"(per_channel_affine_float_qparams, quint8), got {got}; quantize it with "
            "float_qparams_weight_only_qconfig's observer"
        )
    if w.dtype is not D.quint8:
        raise NotImplementedError(f"{name}: weights of dtype {w.dtype} are not supported by "
                                  "manygrad; use torch.quint8")  # fmt: skip
    if shape is not None and tuple(w.shape) != tuple(shape):
        raise RuntimeError(f"{name}: expected a weight of shape {tuple(shape)}, got "
                           f"{tuple(w.shape)}")  # fmt: skip
    return w


class EmbeddingPackedParams(Module):
    """The ``_packed_params`` child: ``dtype`` and ``_packed_weight`` (the quantized weight)."""

    _version = 1

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=D.quint8):
        super().__init__()
        if dtype is not D.quint8:
            raise NotImplementedError(f"quantized embeddings of dtype {dtype} are not "
                                      "supported by manygrad; use torch.quint8")  # fmt: skip
        self.dtype = dtype
        w = quantize_per_channel(zeros(num_embeddings, embedding_dim), ones(num_embeddings),
                                 zeros(num_embeddings), 0, dtype)  # fmt: skip
        self.set_weight(w)

    def set_weight(self, weight: QTensor) -> None:
        self._weight = _check_weight("EmbeddingPackedParams", weight)

    def _get_name(self) -> str:
        return "EmbeddingPackedParams"

    def forward(self, x):
        return x

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "dtype"] = self.dtype
        destination[prefix + "_packed_weight"] = self._weight

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        for name in ("dtype", "_packed_weight"):
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            v = state_dict.pop(key)
            if name == "dtype":
                self.dtype = D.from_any(v)
                continue
            try:
                self._weight = _check_weight(key, v, self._weight.shape)
            except (RuntimeError, NotImplementedError) as e:
                error_msgs.append(str(e))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip


def _rows(w: QTensor):
    """Per-row float32 ``scale`` and ``bias = -(zero_point * scale)`` and the codes."""
    xp = backend.array_module(w._data)
    s = w._scale.astype(xp.float32)
    return w._data.astype(xp.float32), s, -(w._zp.astype(xp.float32) * s)


def _fma(a, b, c):
    xp = backend.array_module(a)
    # NOTE: the float64 product of float32 values is exact: one rounding, as a fused op
    return (a.astype(xp.float64) * b + c).astype(xp.float32)


def _indices(name: str, t, n: int):
    if not isinstance(t, Tensor) or t.is_floating_point() or t.is_quantized:
        raise TypeError(f"{name}: indices must be an integer tensor, got "
                        f"{getattr(t, 'dtype', type(t).__name__)}")  # fmt: skip
    idx = t._data.astype("int64")
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"{name}: index out of range: indices must be in [0, {n}), got "
                         f"[{int(idx.min())}, {int(idx.max())}]")  # fmt: skip
    return idx


class _EmbeddingBase(Module):
    _FLOAT = "Embedding"

    def _get_name(self) -> str:
        return "Quantized" + type(self).__name__

    def weight(self) -> QTensor:
        return self._packed_params._weight

    def set_weight(self, w: QTensor) -> None:
        self._packed_params.set_weight(_check_weight(self._get_name(), w,
                                                     (self.num_embeddings, self.embedding_dim)))  # fmt: skip

    def extra_repr(self) -> str:
        w = self.weight()
        return (f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, "
                f"dtype={self._packed_params.dtype}, qscheme={w.qscheme()}")  # fmt: skip

    def __repr__(self) -> str:
        # NOTE: PyTorch hides the _packed_params child
        return f"{self._get_name()}({self.extra_repr()})"

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        name = cls.__name__
        if type(mod).__name__ != name:
            raise TypeError(f"nnq.{name}.from_float only works for nn.{name}, got "
                            f"{type(mod).__name__}")  # fmt: skip
        qconfig = getattr(mod, "qconfig", None)
        if getattr(mod, "weight_fake_quant", None) is not None:  # NOTE: a QAT embedding
            obs = mod.weight_fake_quant
        elif qconfig is not None and qconfig.weight is not None:
            obs = qconfig.weight()
        else:
            from ...quantization.qconfig import float_qparams_weight_only_qconfig

            obs = float_qparams_weight_only_qconfig.weight()
        if obs.qscheme is not per_channel_affine_float_qparams:
            raise RuntimeError(f"{name} quantization is only supported with "
                               "float_qparams_weight_only_qconfig")  # fmt: skip
        if obs.dtype is not D.quint8:
            raise NotImplementedError(f"quantized {name}: dtype {obs.dtype} is not supported "
                                      "by manygrad; use torch.quint8")  # fmt: skip
        obs(mod.weight.detach())
        q = cls._like(mod)
        q.set_weight(quantize_weight(mod.weight, obs))
        return q


class Embedding(_EmbeddingBase):
    """Quantized ``nn.Embedding``: integer indices in, float32 rows out."""

    _version = 1

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx=None,
                 max_norm=None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, dtype=D.quint8):  # fmt: skip
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.dtype = dtype
        self._packed_params = EmbeddingPackedParams(num_embeddings, embedding_dim, dtype)
        if _weight is not None:
            self.set_weight(_weight)

    def forward(self, indices: Tensor) -> Tensor:
        idx = _indices(self._get_name(), indices, self.num_embeddings)
        q, s, b = _rows(self.weight())
        out = _fma(q[idx], s[idx][..., None], b[idx][..., None])
        return Tensor._wrap(out, indices._device)

    @classmethod
    def _like(cls, mod):
        return cls(mod.num_embeddings, mod.embedding_dim)


class EmbeddingBag(_EmbeddingBase):
    """Quantized ``nn.EmbeddingBag``: sums of looked-up rows per bag (as PyTorch's, whatever
    ``mode``), with optional ``per_sample_weights``."""

    _version = 1

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "sum",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 dtype=D.quint8):  # fmt: skip
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.mode, self.pruned_weights = mode, False
        self.include_last_offset, self.dtype = include_last_offset, dtype
        self._packed_params = EmbeddingPackedParams(num_embeddings, embedding_dim, dtype)
        if _weight is not None:
            self.set_weight(_weight)

    def forward(self, indices: Tensor, offsets=None, per_sample_weights=None,
                compressed_indices_mapping=None) -> Tensor:  # fmt: skip
        name = self._get_name()
        if compressed_indices_mapping is not None:
            raise NotImplementedError(f"{name}: pruned weights (compressed_indices_mapping) "
                                      "are not supported by manygrad")  # fmt: skip
        idx = _indices(name, indices, self.num_embeddings)
        xp = backend.array_module(idx)
        if idx.ndim == 2:
            if offsets is not None:
                raise ValueError(f"{name}: offsets must be None for 2-d indices (each row is "
                                 "a bag)")  # fmt: skip
            starts = list(range(0, idx.size + 1, idx.shape[1])) if idx.shape[1] else (
                [0] * (idx.shape[0] + 1))  # fmt: skip
            idx = idx.reshape(-1)
        elif idx.ndim == 1:
            if offsets is None:
                raise ValueError(f"{name}: 1-d indices need offsets (the start of each bag)")
            starts = [int(v) for v in offsets._data.reshape(-1)]
            if not self.include_last_offset:
                starts.append(idx.size)
        else:
            raise ValueError(f"{name}: indices must be 1-d (with offsets) or 2-d, got shape "
                             f"{tuple(indices.shape)}")  # fmt: skip
        q, s, b = _rows(self.weight())
        w = None
        if per_sample_weights is not None:
            w = per_sample_weights.detach()._data.astype(xp.float32).reshape(-1)
            if w.size != idx.size:
                raise ValueError(f"{name}: per_sample_weights needs one weight per index "
                                 f"({idx.size}), got {w.size}")  # fmt: skip
        nbags = len(starts) - 1
        out = xp.zeros((nbags, self.embedding_dim), xp.float32)
        lens = [starts[i + 1] - starts[i] for i in range(nbags)]
        # NOTE: bags advance together, position by position, in each bag's order
        for j in range(max(lens, default=0)):
            bags = [i for i in range(nbags) if lens[i] > j]
            at = xp.asarray([starts[i] + j for i in bags], dtype=xp.int64)
            r = idx[at]
            sc, bi = s[r], b[r]
            if w is not None:
                sc, bi = (sc * w[at]).astype(xp.float32), (bi * w[at]).astype(xp.float32)
            acc = (out[bags] + bi[:, None]).astype(xp.float32)
            out[bags] = _fma(q[r], sc[:, None], acc)
        return Tensor._wrap(out, indices._device)

    @classmethod
    def _like(cls, mod):
        return cls(mod.num_embeddings, mod.embedding_dim, mode=mod.mode,
                   include_last_offset=mod.include_last_offset)  # fmt: skip


__all__ = ["Embedding", "EmbeddingBag", "EmbeddingPackedParams"]
