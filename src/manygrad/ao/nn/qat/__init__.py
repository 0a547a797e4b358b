"""``torch.ao.nn.qat``: float layers for quantization-aware training, whose weight passes
through ``qconfig.weight()`` (a FakeQuantize) on every forward; ``prepare_qat`` swaps them in
and ``convert`` turns them into quantized modules.

Example:
    >>> model.qconfig = get_default_qat_qconfig("x86")
    >>> prepare_qat(model, inplace=True)       # Linear -> qat.Linear, Conv2d -> qat.Conv2d
"""

from __future__ import annotations

from .... import nn
from ....nn import functional as F


def _check_float(cls, mod) -> None:
    from ....nn.utils.parametrize import type_before_parametrizations

    t = type_before_parametrizations(mod)
    if t is not cls._FLOAT_MODULE:
        raise AssertionError(f"qat.{cls.__name__}.from_float only works for "
                             f"{cls._FLOAT_MODULE.__name__}, got {t.__name__}")  # fmt: skip
    if getattr(mod, "qconfig", None) is None:
        raise AssertionError(f"qat.{cls.__name__}.from_float: the input float module must have "
                             "a qconfig; set model.qconfig before prepare_qat")  # fmt: skip


def _set_qconfig(mod, qconfig) -> None:
    if not qconfig:
        raise AssertionError("qconfig must be provided for QAT module")
    mod.qconfig = qconfig
    mod.weight_fake_quant = qconfig.weight()


class Linear(nn.Linear):
    """``nn.Linear`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FLOAT_MODULE = nn.Linear
    _FUSED = False

    def __init__(self, in_features, out_features, bias=True, qconfig=None, device=None,
                 dtype=None):  # fmt: skip
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)
        _set_qconfig(self, qconfig)

    def forward(self, x):
        y = F.linear(x, self.weight_fake_quant(self.weight), self.bias)
        return F.relu(y) if self._FUSED else y

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        base = mod[0] if cls._FUSED else mod
        q = cls(base.in_features, base.out_features, base.bias is not None, qconfig=mod.qconfig)
        q.weight, q.bias = base.weight, base.bias
        return q

    def to_float(self):
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        lin.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            lin.bias = nn.Parameter(self.bias.detach())
        lin.train(self.training)
        return lin


class _ConvNd:
    """The QAT convolutions' shared constructor, forward and conversions (mixed into the
    float ``nn.ConvNd``)."""

    _FUSED = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", qconfig=None,
                 device=None, dtype=None):  # fmt: skip
        self._FLOAT_CONV_MODULE.__init__(self, in_channels, out_channels, kernel_size, stride,
                                         padding, dilation, groups, bias, padding_mode,
                                         device=device, dtype=dtype)  # fmt: skip
        _set_qconfig(self, qconfig)

    def forward(self, x):
        y = self._conv_forward(x, self.weight_fake_quant(self.weight), self.bias)
        return F.relu(y) if self._FUSED else y

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        b = mod[0] if cls._FUSED else mod
        q = cls(b.in_channels, b.out_channels, b.kernel_size, b.stride, b.padding, b.dilation,
                b.groups, b.bias is not None, b.padding_mode, qconfig=mod.qconfig)  # fmt: skip
        q.weight, q.bias = b.weight, b.bias
        return q

    def to_float(self):
        conv = self._FLOAT_CONV_MODULE(self.in_channels, self.out_channels, self.kernel_size,
                                       self.stride, self.padding, self.dilation, self.groups,
                                       self.bias is not None, self.padding_mode)  # fmt: skip
        conv.weight = nn.Parameter(self.weight.detach())
        if self.bias is not None:
            conv.bias = nn.Parameter(self.bias.detach())
        out = conv
        if self._FUSED:
            from ..intrinsic import ConvReLU1d, ConvReLU2d, ConvReLU3d

            fused = {nn.Conv1d: ConvReLU1d, nn.Conv2d: ConvReLU2d, nn.Conv3d: ConvReLU3d}
            out = fused[self._FLOAT_CONV_MODULE](conv, nn.ReLU())
        out.train(self.training)
        return out


class Conv1d(_ConvNd, nn.Conv1d):
    """``nn.Conv1d`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FLOAT_MODULE = _FLOAT_CONV_MODULE = nn.Conv1d


class Conv2d(_ConvNd, nn.Conv2d):
    """``nn.Conv2d`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FLOAT_MODULE = _FLOAT_CONV_MODULE = nn.Conv2d


class Conv3d(_ConvNd, nn.Conv3d):
    """``nn.Conv3d`` whose weight is fake-quantized (``weight_fake_quant``)."""

    _FLOAT_MODULE = _FLOAT_CONV_MODULE = nn.Conv3d


def _check_embedding_qconfig(cls, qconfig) -> None:
    from ...qtensor import per_channel_affine_float_qparams

    scheme = qconfig.weight().qscheme
    if scheme is not per_channel_affine_float_qparams:
        kind = "Embedding Bag" if cls.__name__ == "EmbeddingBag" else "Embedding"
        raise AssertionError(f"{kind} weights requires a qscheme of "
                             f"torch.per_channel_affine_float_qparams Got {scheme}")  # fmt: skip


class Embedding(nn.Embedding):
    """``nn.Embedding`` whose weight is fake-quantized per row with float qparams (QAT of
    embedding tables: ``default_embedding_qat_qconfig``).

    Example:
        >>> emb.qconfig = torch.ao.quantization.default_embedding_qat_qconfig
        >>> prepare_qat(model, mapping=get_embedding_qat_module_mappings(), inplace=True)
    """

    _FLOAT_MODULE = nn.Embedding

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 device=None, dtype=None, qconfig=None):  # fmt: skip
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, device=device, dtype=dtype)  # fmt: skip
        _set_qconfig(self, qconfig)
        _check_embedding_qconfig(type(self), qconfig)

    def forward(self, input):  # noqa: A002 - PyTorch's name
        return F.embedding(input, self.weight_fake_quant(self.weight), self.padding_idx,
                           self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)  # fmt: skip

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        _check_embedding_qconfig(cls, mod.qconfig)
        return cls(mod.num_embeddings, mod.embedding_dim, mod.padding_idx, mod.max_norm,
                   mod.norm_type, mod.scale_grad_by_freq, mod.sparse, mod.weight,
                   qconfig=mod.qconfig)  # fmt: skip

    def to_float(self):
        emb = nn.Embedding(self.num_embeddings, self.embedding_dim, self.padding_idx,
                           self.max_norm, self.norm_type, self.scale_grad_by_freq, self.sparse)  # fmt: skip
        emb.weight = nn.Parameter(self.weight.detach())
        emb.train(self.training)
        return emb


class EmbeddingBag(nn.EmbeddingBag):
    """``nn.EmbeddingBag`` whose weight is fake-quantized per row with float qparams."""

    _FLOAT_MODULE = nn.EmbeddingBag

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, qconfig=None, device=None,
                 dtype=None):  # fmt: skip
        super().__init__(num_embeddings, embedding_dim, max_norm, norm_type, scale_grad_by_freq,
                         mode, sparse, _weight, include_last_offset, padding_idx, device=device,
                         dtype=dtype)  # fmt: skip
        _set_qconfig(self, qconfig)
        _check_embedding_qconfig(type(self), qconfig)

    def forward(self, input, offsets=None, per_sample_weights=None):  # noqa: A002
        return F.embedding_bag(input, self.weight_fake_quant(self.weight), offsets,
                               self.max_norm, self.norm_type, self.scale_grad_by_freq,
                               self.mode, self.sparse, per_sample_weights,
                               self.include_last_offset, self.padding_idx)  # fmt: skip

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        _check_float(cls, mod)
        _check_embedding_qconfig(cls, mod.qconfig)
        return cls(mod.num_embeddings, mod.embedding_dim, mod.max_norm, mod.norm_type,
                   mod.scale_grad_by_freq, mod.mode, mod.sparse, mod.weight,
                   mod.include_last_offset, mod.padding_idx, qconfig=mod.qconfig)  # fmt: skip

    def to_float(self):
        bag = nn.EmbeddingBag(self.num_embeddings, self.embedding_dim, self.max_norm,
                              self.norm_type, self.scale_grad_by_freq, self.mode, self.sparse,
                              None, self.include_last_offset, self.padding_idx)  # fmt: skip
        bag.weight = nn.Parameter(self.weight.detach())
        bag.train(self.training)
        return bag


__all__ = ["Conv1d", "Conv2d", "Conv3d", "Embedding", "EmbeddingBag", "Linear"]
