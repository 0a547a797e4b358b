"""MaxViT (Tu et al., "MaxViT: Multi-Axis Vision Transformer", 2022), as torchvision builds
it: each layer is an MBConv, then attention within local windows, then attention across a
sparse grid, both with relative position biases."""

# ruff: noqa: N801, N806 (torchvision's names: MaxVit_T_Weights; B, G, P, D in the maths)
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import manygrad as mg

from ... import nn
from ...nn import functional as F
from ..ops.misc import Conv2dNormActivation, SqueezeExcitation
from ..ops.stochastic_depth import StochasticDepth
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _ovewrite_named_param,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = ["MaxVit", "MaxVit_T_Weights", "maxvit_t"]


def _get_conv_output_shape(
    input_size: tuple[int, int], kernel_size: int, stride: int, padding: int
) -> tuple[int, int]:
    return (
        (input_size[0] - kernel_size + 2 * padding) // stride + 1,
        (input_size[1] - kernel_size + 2 * padding) // stride + 1,
    )


def _make_block_input_shapes(input_size: tuple[int, int], n_blocks: int) -> list[tuple[int, int]]:
    """The grid each block sees (the stem and every block halve it)."""
    shapes = []
    shape = _get_conv_output_shape(input_size, 3, 2, 1)
    for _ in range(n_blocks):
        shape = _get_conv_output_shape(shape, 3, 2, 1)
        shapes.append(shape)
    return shapes


def _get_relative_position_index(height: int, width: int):
    """(h*w, h*w): the row of each pair's (dy, dx) offset in a (2h-1)(2w-1)-row table."""
    coords = mg.stack(mg.meshgrid(mg.arange(height), mg.arange(width), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (rel[:, :, 0] + (height - 1)) * (2 * width - 1) + (rel[:, :, 1] + (width - 1))


def _linspace(stop: float, n: int) -> list[float]:
    """``numpy.linspace(0, stop, n)`` as floats: the layers' stochastic depth rates."""
    if n == 1:
        return [0.0]
    values = [i * (stop / (n - 1)) for i in range(n)]
    if values:
        values[-1] = stop
    return values


class MBConv(nn.Module):
    """Pre-norm MBConv: norm, 1x1 expand, depthwise 3x3 (the stride), squeeze-excitation,
    1x1 project; the shortcut average-pooled (stride 2) and projected when the shape
    changes."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expansion_ratio: float,
        squeeze_ratio: float,
        stride: int,
        activation_layer: Callable[..., nn.Module],
        norm_layer: Callable[..., nn.Module],
        p_stochastic_dropout: float = 0.0,
    ):
        super().__init__()
        if stride != 1 or in_channels != out_channels:
            proj: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, stride=1, bias=True)]
            if stride == 2:
                proj.insert(0, nn.AvgPool2d(kernel_size=3, stride=stride, padding=1))
            self.proj = nn.Sequential(*proj)
        else:
            self.proj = nn.Identity()
        mid = int(out_channels * expansion_ratio)
        sqz = int(out_channels * squeeze_ratio)
        if p_stochastic_dropout:
            self.stochastic_depth = StochasticDepth(p_stochastic_dropout, mode="row")
        else:
            self.stochastic_depth = nn.Identity()
        conv = functools.partial(
            Conv2dNormActivation, activation_layer=activation_layer, norm_layer=norm_layer,
            inplace=None,
        )  # fmt: skip
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["pre_norm"] = norm_layer(in_channels)
        layers["conv_a"] = conv(in_channels, mid, kernel_size=1, stride=1, padding=0)
        layers["conv_b"] = conv(mid, mid, kernel_size=3, stride=stride, padding=1, groups=mid)
        layers["squeeze_excitation"] = SqueezeExcitation(mid, sqz, activation=nn.SiLU)
        layers["conv_c"] = nn.Conv2d(mid, out_channels, kernel_size=1, bias=True)
        self.layers = nn.Sequential(layers)

    def forward(self, x):
        return self.proj(x) + self.stochastic_depth(self.layers(x))


class RelativePositionalMultiHeadAttention(nn.Module):
    """Multi-head self-attention over the P tokens of each of G groups, [B, G, P, D], with
    a learned relative position bias.

    NOTE: the keys are scaled by ``feat_dim ** -0.5`` (not the head width's), as in
    torchvision and the checkpoint's training.
    """

    def __init__(self, feat_dim: int, head_dim: int, max_seq_len: int):
        super().__init__()
        if feat_dim % head_dim != 0:
            raise ValueError(f"feat_dim: {feat_dim} must be divisible by head_dim: {head_dim}")
        self.n_heads = feat_dim // head_dim
        self.head_dim = head_dim
        self.size = int(math.sqrt(max_seq_len))
        self.max_seq_len = max_seq_len
        self.to_qkv = nn.Linear(feat_dim, self.n_heads * self.head_dim * 3)
        self.scale_factor = feat_dim**-0.5
        self.merge = nn.Linear(self.head_dim * self.n_heads, feat_dim)
        self.relative_position_bias_table = nn.Parameter(
            mg.empty((2 * self.size - 1) * (2 * self.size - 1), self.n_heads, dtype=mg.float32)
        )
        self.register_buffer(
            "relative_position_index", _get_relative_position_index(self.size, self.size)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def get_relative_positional_bias(self):
        index = self.relative_position_index.view(-1)
        bias = self.relative_position_bias_table[index].view(self.max_seq_len, self.max_seq_len, -1)
        return bias.permute(2, 0, 1).contiguous().unsqueeze(0)

    def forward(self, x):
        B, G, P, D = x.shape
        H, DH = self.n_heads, self.head_dim
        q, k, v = mg.chunk(self.to_qkv(x), 3, dim=-1)
        q, k, v = (t.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4) for t in (q, k, v))
        k = k * self.scale_factor
        attn = F.softmax(q @ k.transpose(-2, -1) + self.get_relative_positional_bias(), dim=-1)
        out = (attn @ v).permute(0, 1, 3, 2, 4).reshape(B, G, P, D)
        return self.merge(out)


class SwapAxes(nn.Module):
    """The input with axes ``a`` and ``b`` swapped."""

    def __init__(self, a: int, b: int):
        super().__init__()
        self.a = a
        self.b = b

    def forward(self, x):
        return mg.swapaxes(x, self.a, self.b)


class WindowPartition(nn.Module):
    """[B, C, H, W] -> [B, (H/p)(W/p), p*p, C]: non-overlapping p x p windows."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x, p: int):
        B, C, H, W = x.shape
        x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(B, (H // p) * (W // p), p * p, C)


class WindowDepartition(nn.Module):
    """The inverse of ``WindowPartition``: [B, hp*wp, p*p, C] -> [B, C, hp*p, wp*p]."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, x, p: int, h_partitions: int, w_partitions: int):
        B, G, PP, C = x.shape
        x = x.reshape(B, h_partitions, w_partitions, p, p, C).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(B, C, h_partitions * p, w_partitions * p)


class PartitionAttentionLayer(nn.Module):
    """Attention and an MLP (pre-norm, residual) within windows ("window": blocks of
    ``partition_size`` x ``partition_size`` pixels) or across a grid ("grid": pixels
    ``grid_size / partition_size`` apart)."""

    def __init__(
        self,
        in_channels: int,
        head_dim: int,
        partition_size: int,
        partition_type: str,
        grid_size: tuple[int, int],
        mlp_ratio: int,
        activation_layer: Callable[..., nn.Module],
        norm_layer: Callable[..., nn.Module],
        attention_dropout: float,
        mlp_dropout: float,
        p_stochastic_dropout: float,
    ):
        super().__init__()
        self.n_heads = in_channels // head_dim
        self.head_dim = head_dim
        self.n_partitions = grid_size[0] // partition_size
        self.partition_type = partition_type
        self.grid_size = grid_size
        if partition_type not in ("grid", "window"):
            raise ValueError(
                f"partition_type must be either 'grid' or 'window', got {partition_type!r}"
            )
        if partition_type == "window":
            self.p, self.g = partition_size, self.n_partitions
        else:
            self.p, self.g = self.n_partitions, partition_size
        self.partition_op = WindowPartition()
        self.departition_op = WindowDepartition()
        grid = partition_type == "grid"
        self.partition_swap = SwapAxes(-2, -3) if grid else nn.Identity()
        self.departition_swap = SwapAxes(-2, -3) if grid else nn.Identity()
        self.attn_layer = nn.Sequential(
            norm_layer(in_channels),
            # partition_size ** 2 tokens either way (the grid's axes are swapped)
            RelativePositionalMultiHeadAttention(in_channels, head_dim, partition_size**2),
            nn.Dropout(attention_dropout),
        )
        self.mlp_layer = nn.Sequential(
            nn.LayerNorm(in_channels),
            nn.Linear(in_channels, in_channels * mlp_ratio),
            activation_layer(),
            nn.Linear(in_channels * mlp_ratio, in_channels),
            nn.Dropout(mlp_dropout),
        )
        self.stochastic_dropout = StochasticDepth(p_stochastic_dropout, mode="row")

    def forward(self, x):
        gh, gw = self.grid_size[0] // self.p, self.grid_size[1] // self.p
        if self.grid_size[0] % self.p or self.grid_size[1] % self.p:
            raise ValueError(
                f"Grid size must be divisible by partition size. Got grid size of "
                f"{self.grid_size} and partition size of {self.p}"
            )
        x = self.partition_swap(self.partition_op(x, self.p))
        x = x + self.stochastic_dropout(self.attn_layer(x))
        x = x + self.stochastic_dropout(self.mlp_layer(x))
        return self.departition_op(self.departition_swap(x), self.p, gh, gw)


class MaxVitLayer(nn.Module):
    """MBConv, then window attention, then grid attention (``layers``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        squeeze_ratio: float,
        expansion_ratio: float,
        stride: int,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        head_dim: int,
        mlp_ratio: int,
        mlp_dropout: float,
        attention_dropout: float,
        p_stochastic_dropout: float,
        partition_size: int,
        grid_size: tuple[int, int],
    ):
        super().__init__()
        attention = functools.partial(
            PartitionAttentionLayer, in_channels=out_channels, head_dim=head_dim,
            partition_size=partition_size, grid_size=grid_size, mlp_ratio=mlp_ratio,
            activation_layer=activation_layer, norm_layer=nn.LayerNorm,
            attention_dropout=attention_dropout, mlp_dropout=mlp_dropout,
            p_stochastic_dropout=p_stochastic_dropout,
        )  # fmt: skip
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["MBconv"] = MBConv(
            in_channels=in_channels, out_channels=out_channels, expansion_ratio=expansion_ratio,
            squeeze_ratio=squeeze_ratio, stride=stride, activation_layer=activation_layer,
            norm_layer=norm_layer, p_stochastic_dropout=p_stochastic_dropout,
        )  # fmt: skip
        layers["window_attention"] = attention(partition_type="window")
        layers["grid_attention"] = attention(partition_type="grid")
        self.layers = nn.Sequential(layers)

    def forward(self, x):
        return self.layers(x)


class MaxVitBlock(nn.Module):
    """``n_layers`` MaxViT layers; the first halves the grid (stride 2)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        squeeze_ratio: float,
        expansion_ratio: float,
        norm_layer: Callable[..., nn.Module],
        activation_layer: Callable[..., nn.Module],
        head_dim: int,
        mlp_ratio: int,
        mlp_dropout: float,
        attention_dropout: float,
        partition_size: int,
        input_grid_size: tuple[int, int],
        n_layers: int,
        p_stochastic: list[float],
    ):
        super().__init__()
        if len(p_stochastic) != n_layers:
            raise ValueError(
                f"p_stochastic must have length n_layers={n_layers}, got "
                f"p_stochastic={p_stochastic}."
            )
        self.layers = nn.ModuleList()
        self.grid_size = _get_conv_output_shape(input_grid_size, kernel_size=3, stride=2, padding=1)
        for idx, p in enumerate(p_stochastic):
            self.layers.append(
                MaxVitLayer(
                    in_channels=in_channels if idx == 0 else out_channels,
                    out_channels=out_channels, squeeze_ratio=squeeze_ratio,
                    expansion_ratio=expansion_ratio, stride=2 if idx == 0 else 1,
                    norm_layer=norm_layer, activation_layer=activation_layer, head_dim=head_dim,
                    mlp_ratio=mlp_ratio, mlp_dropout=mlp_dropout,
                    attention_dropout=attention_dropout, partition_size=partition_size,
                    grid_size=self.grid_size, p_stochastic_dropout=p,
                )
            )  # fmt: skip

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class MaxVit(nn.Module):
    """MaxViT for ``input_size`` images: a conv stem, blocks of MaxViT layers, a head
    (pool, LayerNorm, Linear, Tanh, Linear).

    Args:
        input_size: (H, W); every block's grid must divide by ``partition_size``.
        stem_channels: the stem's width. partition_size: window / grid side.
        block_channels, block_layers: width and layers per block. head_dim: per head.
        stochastic_depth_prob: the last layer's (linear from 0 over all layers).
        norm_layer: the convolutions' norm (default BatchNorm2d, eps 1e-3, momentum 0.01).
        activation_layer: default ``nn.GELU``.
        squeeze_ratio: default 0.25. expansion_ratio: default 4.
        mlp_ratio: default 4. mlp_dropout, attention_dropout: default 0.0.
        num_classes: outputs (default 1000).

    Example:
        >>> model = MaxVit((64, 64), 16, 2, [16, 32], [1, 1], 8, 0.0, num_classes=10)
    """

    def __init__(
        self,
        input_size: tuple[int, int],
        stem_channels: int,
        partition_size: int,
        block_channels: list[int],
        block_layers: list[int],
        head_dim: int,
        stochastic_depth_prob: float,
        norm_layer: Callable[..., nn.Module] | None = None,
        activation_layer: Callable[..., nn.Module] = nn.GELU,
        squeeze_ratio: float = 0.25,
        expansion_ratio: float = 4,
        mlp_ratio: int = 4,
        mlp_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        num_classes: int = 1000,
    ):
        super().__init__()
        if norm_layer is None:
            # the original's batch norm settings (TensorFlow)
            norm_layer = functools.partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
        sizes = _make_block_input_shapes(input_size, len(block_channels))
        for idx, size in enumerate(sizes):
            if size[0] % partition_size != 0 or size[1] % partition_size != 0:
                raise ValueError(
                    f"Input size {size} of block {idx} is not divisible by partition size "
                    f"{partition_size}. Consider changing the partition size or the input "
                    f"size.\nCurrent configuration yields the following block input sizes: "
                    f"{sizes}."
                )
        self.stem = nn.Sequential(
            Conv2dNormActivation(3, stem_channels, 3, stride=2, norm_layer=norm_layer,
                                 activation_layer=activation_layer, bias=False, inplace=None),
            Conv2dNormActivation(stem_channels, stem_channels, 3, stride=1, norm_layer=None,
                                 activation_layer=None, bias=True),
        )  # fmt: skip
        input_size = _get_conv_output_shape(input_size, kernel_size=3, stride=2, padding=1)
        self.partition_size = partition_size
        self.blocks = nn.ModuleList()
        in_channels = [stem_channels] + block_channels[:-1]
        p_stochastic = _linspace(stochastic_depth_prob, sum(block_layers))
        p_idx = 0
        for cin, cout, n in zip(in_channels, block_channels, block_layers):
            self.blocks.append(
                MaxVitBlock(
                    in_channels=cin, out_channels=cout, squeeze_ratio=squeeze_ratio,
                    expansion_ratio=expansion_ratio, norm_layer=norm_layer,
                    activation_layer=activation_layer, head_dim=head_dim, mlp_ratio=mlp_ratio,
                    mlp_dropout=mlp_dropout, attention_dropout=attention_dropout,
                    partition_size=partition_size, input_grid_size=input_size, n_layers=n,
                    p_stochastic=p_stochastic[p_idx : p_idx + n],
                )
            )  # fmt: skip
            input_size = self.blocks[-1].grid_size
            p_idx += n
        # Linear -> Tanh -> Linear: the original's pre-logits
        c = block_channels[-1]
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.LayerNorm(c),
            nn.Linear(c, c),
            nn.Tanh(),
            nn.Linear(c, num_classes, bias=False),
        )
        self._init_weights()

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)


def _maxvit(
    stem_channels: int,
    block_channels: list[int],
    block_layers: list[int],
    stochastic_depth_prob: float,
    partition_size: int,
    head_dim: int,
    weights=None,
    progress: bool = False,
    **kwargs: Any,
) -> MaxVit:
    if weights is not None:
        _set_num_classes(kwargs, weights)
        assert weights.meta["min_size"][0] == weights.meta["min_size"][1]
        _ovewrite_named_param(kwargs, "input_size", weights.meta["min_size"])
    input_size = kwargs.pop("input_size", (224, 224))
    return _build(
        lambda: MaxVit(
            stem_channels=stem_channels, block_channels=block_channels,
            block_layers=block_layers, stochastic_depth_prob=stochastic_depth_prob,
            head_dim=head_dim, partition_size=partition_size, input_size=input_size, **kwargs,
        ),
        weights,
        progress,
    )  # fmt: skip


class MaxVit_T_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        "https://download.pytorch.org/models/maxvit_t-bc5ab103.pth",
        30919624,
        83.7,
        96.722,
        min_size=(224, 224),
        crop_size=224,
        resize_size=224,
        interpolation="bicubic",
        recipe="https://github.com/pytorch/vision/tree/main/references/classification#maxvit",
        _ops=5.558,
        _file_size=118.769,
    )
    DEFAULT = IMAGENET1K_V1


@register_model()
@handle_legacy_interface(MaxVit_T_Weights.IMAGENET1K_V1)
def maxvit_t(
    *, weights: MaxVit_T_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MaxVit:
    """MaxViT-T: stem 64, blocks [64, 128, 256, 512] x [2, 2, 5, 2] layers, head dim 32,
    7 x 7 partitions, 224 x 224 inputs (``input_size=`` for others; the weights fix it).

    Args:
        weights: ``MaxVit_T_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``MaxVit`` (``input_size``, ``num_classes``, ``mlp_dropout``,
            ``attention_dropout``, ...).

    Example:
        >>> model = maxvit_t(num_classes=10)
    """
    weights = MaxVit_T_Weights.verify(weights)
    return _maxvit(
        stem_channels=64,
        block_channels=[64, 128, 256, 512],
        block_layers=[2, 2, 5, 2],
        head_dim=32,
        stochastic_depth_prob=0.2,
        partition_size=7,
        weights=weights,
        progress=progress,
        **kwargs,
    )
