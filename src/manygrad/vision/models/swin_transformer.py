"""Swin Transformer (Liu et al., "Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows", 2021) and Swin Transformer V2 (Liu et al., "Swin Transformer V2: Scaling
Up Capacity and Resolution", 2022), as torchvision builds them: attention inside windows
that shift every other block, patch merging between stages; V2's post-norm blocks, cosine
attention and log-spaced continuous position bias."""

# ruff: noqa: N801, N806 (torchvision's names: Swin_T_Weights; B, H, W, C in the maths)
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import manygrad as mg

from ... import nn
from ...nn import functional as F
from ..ops.misc import MLP, Permute
from ..ops.stochastic_depth import StochasticDepth
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "SwinTransformer",
    "Swin_T_Weights",
    "Swin_S_Weights",
    "Swin_B_Weights",
    "Swin_V2_T_Weights",
    "Swin_V2_S_Weights",
    "Swin_V2_B_Weights",
    "swin_t",
    "swin_s",
    "swin_b",
    "swin_v2_t",
    "swin_v2_s",
    "swin_v2_b",
]


def _patch_merging_pad(x):
    """[..., H, W, C] -> [..., H/2, W/2, 4C]: each 2x2 neighbourhood's pixels side by side
    (odd sides padded with zeros)."""
    H, W, _ = x.shape[-3:]
    x = F.pad(x, (0, 0, 0, W % 2, 0, H % 2))
    x0 = x[..., 0::2, 0::2, :]
    x1 = x[..., 1::2, 0::2, :]
    x2 = x[..., 0::2, 1::2, :]
    x3 = x[..., 1::2, 1::2, :]
    return mg.cat([x0, x1, x2, x3], -1)


def _get_relative_position_bias(
    relative_position_bias_table, relative_position_index, window_size: list[int]
):
    """(1, heads, N, N) bias, N = window area: the table's row for each pair's offset."""
    n = window_size[0] * window_size[1]
    bias = relative_position_bias_table[relative_position_index].view(n, n, -1)
    return bias.permute(2, 0, 1).contiguous().unsqueeze(0)


class PatchMerging(nn.Module):
    """Halve H and W, double C: 2x2 patches concatenated, LayerNorm(4C), Linear(4C, 2C)."""

    def __init__(self, dim: int, norm_layer: Callable[..., nn.Module] = nn.LayerNorm):
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x):
        return self.reduction(self.norm(_patch_merging_pad(x)))


class PatchMergingV2(nn.Module):
    """V2's patch merging: the norm after the reduction, LayerNorm(2C)."""

    def __init__(self, dim: int, norm_layer: Callable[..., nn.Module] = nn.LayerNorm):
        super().__init__()
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(2 * dim)

    def forward(self, x):
        return self.norm(self.reduction(_patch_merging_pad(x)))


def _shift_mask(ph: int, pw: int, window_size, shift_size, device):
    """(windows, N, N): -100 between tokens that the cyclic shift brought together from
    different image regions, 0 elsewhere."""
    region = mg.zeros((ph, pw), device=device)
    h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]), (-shift_size[0], None))
    w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]), (-shift_size[1], None))
    count = 0
    for h0, h1 in h_slices:
        for w0, w1 in w_slices:
            region[h0:h1, w0:w1] = count
            count += 1
    nh, nw = ph // window_size[0], pw // window_size[1]
    region = region.view(nh, window_size[0], nw, window_size[1]).permute(0, 2, 1, 3)
    region = region.reshape(nh * nw, window_size[0] * window_size[1])
    diff = region.unsqueeze(1) - region.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def shifted_window_attention(
    input,  # noqa: A002 - torchvision's name
    qkv_weight,
    proj_weight,
    relative_position_bias,
    window_size: list[int],
    num_heads: int,
    shift_size: list[int],
    attention_dropout: float = 0.0,
    dropout: float = 0.0,
    qkv_bias=None,
    proj_bias=None,
    logit_scale=None,
    training: bool = True,
):
    """Multi-head self-attention inside (shifted) windows with a relative position bias.

    The [B, H, W, C] input is padded to whole windows and rolled by ``-shift_size``; each
    window attends within itself (tokens from different regions of the roll masked apart),
    then the roll and the padding are undone. With ``logit_scale`` (V2): cosine attention
    scaled by ``exp(min(logit_scale, log 100))``, and no key bias.

    Args:
        input: [B, H, W, C].
        qkv_weight, proj_weight: [3C, C] and [C, C]; qkv_bias, proj_bias: default None.
        relative_position_bias: [1, heads, N, N], N the window area.
        window_size, shift_size: two ints each.
        num_heads: heads (dividing C).
        attention_dropout, dropout: on the attention weights and the output (default 0).
        logit_scale: V2's [heads, 1, 1] log scales (default None: scaled dot products).
        training: apply the dropouts (default True).

    Returns:
        [B, H, W, C].
    """
    B, H, W, C = input.shape
    pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
    x = F.pad(input, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift_size = list(shift_size)
    # a window that covers the whole map needs no shift
    if window_size[0] >= pad_H:
        shift_size[0] = 0
    if window_size[1] >= pad_W:
        shift_size[1] = 0
    shifted = sum(shift_size) > 0
    if shifted:
        x = mg.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))

    # partition into windows: (B * windows, N, C)
    nh, nw = pad_H // window_size[0], pad_W // window_size[1]
    num_windows = nh * nw
    n = window_size[0] * window_size[1]
    x = x.view(B, nh, window_size[0], nw, window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * num_windows, n, C)

    if logit_scale is not None and qkv_bias is not None:
        # NOTE: V2 has no key bias: its third of the bias is zeroed (kept out of the graph)
        length = qkv_bias.numel() // 3
        qkv_bias = mg.cat([qkv_bias[:length], mg.zeros_like(qkv_bias[length : 2 * length]),
                           qkv_bias[2 * length :]])  # fmt: skip
    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), n, 3, num_heads, C // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    if logit_scale is not None:
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * mg.clamp(logit_scale, max=math.log(100.0)).exp()
    else:
        attn = (q * (C // num_heads) ** -0.5).matmul(k.transpose(-2, -1))
    attn = attn + relative_position_bias

    if shifted:
        mask = _shift_mask(pad_H, pad_W, window_size, shift_size, x.device).to(attn.dtype)
        attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, n, n)
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, num_heads, n, n)

    attn = F.dropout(F.softmax(attn, dim=-1), p=attention_dropout, training=training)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), n, C)
    x = F.dropout(F.linear(x, proj_weight, proj_bias), p=dropout, training=training)

    # undo the windows, the roll and the padding
    x = x.view(B, nh, nw, window_size[0], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)
    if shifted:
        x = mg.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    return x[:, :H, :W, :].contiguous()


class ShiftedWindowAttention(nn.Module):
    """Window attention (``qkv``, ``proj``) with a learned table of relative position
    biases (``relative_position_bias_table``, one row per 2-d offset)."""

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        if len(window_size) != 2 or len(shift_size) != 2:
            raise ValueError(
                f"window_size and shift_size must be of length 2, got {window_size} and "
                f"{shift_size}"
            )
        self.window_size = window_size
        self.shift_size = shift_size
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        self.define_relative_position_bias_table()
        self.define_relative_position_index()

    def define_relative_position_bias_table(self):
        wh, ww = self.window_size
        self.relative_position_bias_table = nn.Parameter(
            mg.zeros((2 * wh - 1) * (2 * ww - 1), self.num_heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def define_relative_position_index(self):
        # each pair of window positions -> the row of its (dy, dx) offset in the table
        wh, ww = self.window_size
        coords = mg.stack(mg.meshgrid(mg.arange(wh), mg.arange(ww), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        index = (rel[:, :, 0] + (wh - 1)) * (2 * ww - 1) + (rel[:, :, 1] + (ww - 1))
        self.register_buffer("relative_position_index", index.flatten())

    def get_relative_position_bias(self):
        return _get_relative_position_bias(
            self.relative_position_bias_table, self.relative_position_index, self.window_size
        )

    def forward(self, x):
        return shifted_window_attention(
            x, self.qkv.weight, self.proj.weight, self.get_relative_position_bias(),
            self.window_size, self.num_heads, shift_size=self.shift_size,
            attention_dropout=self.attention_dropout, dropout=self.dropout,
            qkv_bias=self.qkv.bias, proj_bias=self.proj.bias, training=self.training,
        )  # fmt: skip


class ShiftedWindowAttentionV2(ShiftedWindowAttention):
    """V2's window attention: cosine similarity with a learned per-head ``logit_scale``,
    and biases from a small MLP (``cpb_mlp``) of log-spaced relative coordinates."""

    def __init__(
        self,
        dim: int,
        window_size: list[int],
        shift_size: list[int],
        num_heads: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        attention_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__(
            dim, window_size, shift_size, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias,
            attention_dropout=attention_dropout, dropout=dropout,
        )  # fmt: skip
        self.logit_scale = nn.Parameter(mg.log(10 * mg.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_heads, bias=False),
        )
        if qkv_bias:
            length = self.qkv.bias.numel() // 3
            with mg.no_grad():
                self.qkv.bias[length : 2 * length].zero_()

    def define_relative_position_bias_table(self):
        # offsets scaled to [-8, 8], then sign(t) * log2(|t| + 1) / 3
        wh, ww = self.window_size
        dh = mg.arange(-(wh - 1), wh, dtype=mg.float32) / (wh - 1)
        dw = mg.arange(-(ww - 1), ww, dtype=mg.float32) / (ww - 1)
        table = mg.stack(mg.meshgrid(dh, dw, indexing="ij")).permute(1, 2, 0).unsqueeze(0) * 8
        table = mg.sign(table) * mg.log2(mg.abs(table) + 1.0) / 3.0
        self.register_buffer("relative_coords_table", table.contiguous())

    def get_relative_position_bias(self):
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = _get_relative_position_bias(table, self.relative_position_index, self.window_size)
        return 16 * mg.sigmoid(bias)

    def forward(self, x):
        return shifted_window_attention(
            x, self.qkv.weight, self.proj.weight, self.get_relative_position_bias(),
            self.window_size, self.num_heads, shift_size=self.shift_size,
            attention_dropout=self.attention_dropout, dropout=self.dropout,
            qkv_bias=self.qkv.bias, proj_bias=self.proj.bias, logit_scale=self.logit_scale,
            training=self.training,
        )  # fmt: skip


class SwinTransformerBlock(nn.Module):
    """Pre-norm block: x + drop(attn(norm1(x))), then + drop(mlp(norm2(.)))."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: list[int],
        shift_size: list[int],
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        attn_layer: Callable[..., nn.Module] = ShiftedWindowAttention,
    ):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = attn_layer(dim, window_size, shift_size, num_heads,
                               attention_dropout=attention_dropout, dropout=dropout)  # fmt: skip
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.norm2 = norm_layer(dim)
        self.mlp = MLP(dim, [int(dim * mlp_ratio), dim], activation_layer=nn.GELU, inplace=None,
                       dropout=dropout)  # fmt: skip
        for m in self.mlp.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x):
        x = x + self.stochastic_depth(self.attn(self.norm1(x)))
        return x + self.stochastic_depth(self.mlp(self.norm2(x)))


class SwinTransformerBlockV2(SwinTransformerBlock):
    """V2's block: the norms after the attention and the MLP (res-post-norm)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: list[int],
        shift_size: list[int],
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
        attn_layer: Callable[..., nn.Module] = ShiftedWindowAttentionV2,
    ):
        super().__init__(
            dim, num_heads, window_size, shift_size, mlp_ratio=mlp_ratio, dropout=dropout,
            attention_dropout=attention_dropout, stochastic_depth_prob=stochastic_depth_prob,
            norm_layer=norm_layer, attn_layer=attn_layer,
        )  # fmt: skip

    def forward(self, x):
        x = x + self.stochastic_depth(self.norm1(self.attn(x)))
        return x + self.stochastic_depth(self.norm2(self.mlp(x)))


class SwinTransformer(nn.Module):
    """Swin Transformer: ``patch_size`` patch embedding, stages of blocks (windows shifted
    by half a window in every other block), patch merging between stages, norm, average
    pool, ``head``.

    Args:
        patch_size: two ints. embed_dim: the first stage's width (doubling per stage).
        depths, num_heads: blocks and heads per stage.
        window_size: two ints.
        mlp_ratio: default 4.0. dropout, attention_dropout: default 0.0.
        stochastic_depth_prob: the last block's (linear from 0) (default 0.1).
        num_classes: outputs (default 1000).
        norm_layer: default ``nn.LayerNorm`` (eps 1e-5).
        block: default ``SwinTransformerBlock``.
        downsample_layer: default ``PatchMerging``.

    Example:
        >>> model = SwinTransformer([4, 4], 16, [2, 2], [2, 4], [4, 4], num_classes=10)
    """

    def __init__(
        self,
        patch_size: list[int],
        embed_dim: int,
        depths: list[int],
        num_heads: list[int],
        window_size: list[int],
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.1,
        num_classes: int = 1000,
        norm_layer: Callable[..., nn.Module] | None = None,
        block: Callable[..., nn.Module] | None = None,
        downsample_layer: Callable[..., nn.Module] = PatchMerging,
    ):
        super().__init__()
        self.num_classes = num_classes
        block = SwinTransformerBlock if block is None else block
        if norm_layer is None:
            norm_layer = functools.partial(nn.LayerNorm, eps=1e-5)
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(3, embed_dim, kernel_size=tuple(patch_size), stride=tuple(patch_size)),
                Permute([0, 2, 3, 1]),
                norm_layer(embed_dim),
            )
        ]
        total = sum(depths)
        block_id = 0
        for i_stage, depth in enumerate(depths):
            dim = embed_dim * 2**i_stage
            stage = []
            for i_layer in range(depth):
                sd_prob = stochastic_depth_prob * float(block_id) / (total - 1)
                shift = [0 if i_layer % 2 == 0 else w // 2 for w in window_size]
                stage.append(
                    block(
                        dim, num_heads[i_stage], window_size=window_size, shift_size=shift,
                        mlp_ratio=mlp_ratio, dropout=dropout, attention_dropout=attention_dropout,
                        stochastic_depth_prob=sd_prob, norm_layer=norm_layer,
                    )
                )  # fmt: skip
                block_id += 1
            layers.append(nn.Sequential(*stage))
            if i_stage < len(depths) - 1:
                layers.append(downsample_layer(dim, norm_layer))
        self.features = nn.Sequential(*layers)
        num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = norm_layer(num_features)
        self.permute = Permute([0, 3, 1, 2])  # B H W C -> B C H W
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.head = nn.Linear(num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.permute(self.norm(self.features(x)))
        return self.head(self.flatten(self.avgpool(x)))


def _swin_transformer(
    patch_size, embed_dim, depths, num_heads, window_size, stochastic_depth_prob, weights,
    progress, **kwargs: Any,
) -> SwinTransformer:  # fmt: skip
    _set_num_classes(kwargs, weights)
    return _build(
        lambda: SwinTransformer(
            patch_size=patch_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
            window_size=window_size, stochastic_depth_prob=stochastic_depth_prob, **kwargs,
        ),
        weights,
        progress,
    )  # fmt: skip


_URL = "https://download.pytorch.org/models/"


# a checkpoint per line: file, num_params, acc@1, acc@5, GFLOPs (_ops), MB (_file_size)
def _w(file: str, num_params: int, acc1: float, acc5: float, ops: float, size: float, **kw):
    return _imagenet_weights(_URL + file, num_params, acc1, acc5, _ops=ops, _file_size=size, **kw)


_RECIPE = "https://github.com/pytorch/vision/tree/main/references/classification#swintransformer"


# fmt: off
class Swin_T_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_t-704ceda3.pth", 28288354, 81.474, 95.776, 4.491, 108.19,
                       min_size=(224, 224), resize_size=232, interpolation="bicubic",
                       recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V1


class Swin_S_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_s-5e29d889.pth", 49606258, 83.196, 96.36, 8.741, 189.786,
                       min_size=(224, 224), resize_size=246, interpolation="bicubic",
                       recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V1


class Swin_B_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_b-68c6b09e.pth", 87768224, 83.582, 96.64, 15.431, 335.364,
                       min_size=(224, 224), resize_size=238, interpolation="bicubic",
                       recipe=_RECIPE)
    DEFAULT = IMAGENET1K_V1


class Swin_V2_T_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_v2_t-b137f0e2.pth", 28351570, 82.072, 96.132, 5.94, 108.626,
                       min_size=(256, 256), crop_size=256, resize_size=260, interpolation="bicubic",
                       recipe=_RECIPE + "-v2")
    DEFAULT = IMAGENET1K_V1


class Swin_V2_S_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_v2_s-637d8ceb.pth", 49737442, 83.712, 96.816, 11.546, 190.675,
                       min_size=(256, 256), crop_size=256, resize_size=260, interpolation="bicubic",
                       recipe=_RECIPE + "-v2")
    DEFAULT = IMAGENET1K_V1


class Swin_V2_B_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("swin_v2_b-781e5279.pth", 87930848, 84.112, 96.864, 20.325, 336.372,
                       min_size=(256, 256), crop_size=256, resize_size=272, interpolation="bicubic",
                       recipe=_RECIPE + "-v2")
    DEFAULT = IMAGENET1K_V1
# fmt: on


@register_model()
@handle_legacy_interface(Swin_T_Weights.IMAGENET1K_V1)
def swin_t(
    *, weights: Swin_T_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """Swin-T: embed dim 96, depths [2, 2, 6, 2], heads [3, 6, 12, 24], window 7x7.

    Args:
        weights: ``Swin_T_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``SwinTransformer`` (``num_classes``, ``dropout``,
            ``attention_dropout``, ``mlp_ratio``, ``norm_layer``, ...; stochastic depth 0.2).

    Example:
        >>> model = swin_t(num_classes=10)
    """
    weights = Swin_T_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=[7, 7],
        stochastic_depth_prob=0.2,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Swin_S_Weights.IMAGENET1K_V1)
def swin_s(
    *, weights: Swin_S_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """Swin-S: embed dim 96, depths [2, 2, 18, 2], heads [3, 6, 12, 24], window 7x7
    (arguments as ``swin_t``; stochastic depth 0.3)."""
    weights = Swin_S_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=96,
        depths=[2, 2, 18, 2],
        num_heads=[3, 6, 12, 24],
        window_size=[7, 7],
        stochastic_depth_prob=0.3,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Swin_B_Weights.IMAGENET1K_V1)
def swin_b(
    *, weights: Swin_B_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """Swin-B: embed dim 128, depths [2, 2, 18, 2], heads [4, 8, 16, 32], window 7x7
    (arguments as ``swin_t``; stochastic depth 0.5)."""
    weights = Swin_B_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=[7, 7],
        stochastic_depth_prob=0.5,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Swin_V2_T_Weights.IMAGENET1K_V1)
def swin_v2_t(
    *, weights: Swin_V2_T_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """SwinV2-T: embed dim 96, depths [2, 2, 6, 2], heads [3, 6, 12, 24], window 8x8
    (arguments as ``swin_t``; stochastic depth 0.2)."""
    weights = Swin_V2_T_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=[8, 8],
        stochastic_depth_prob=0.2,
        weights=weights,
        progress=progress,
        block=SwinTransformerBlockV2,
        downsample_layer=PatchMergingV2,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Swin_V2_S_Weights.IMAGENET1K_V1)
def swin_v2_s(
    *, weights: Swin_V2_S_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """SwinV2-S: embed dim 96, depths [2, 2, 18, 2], heads [3, 6, 12, 24], window 8x8
    (arguments as ``swin_t``; stochastic depth 0.3)."""
    weights = Swin_V2_S_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=96,
        depths=[2, 2, 18, 2],
        num_heads=[3, 6, 12, 24],
        window_size=[8, 8],
        stochastic_depth_prob=0.3,
        weights=weights,
        progress=progress,
        block=SwinTransformerBlockV2,
        downsample_layer=PatchMergingV2,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(Swin_V2_B_Weights.IMAGENET1K_V1)
def swin_v2_b(
    *, weights: Swin_V2_B_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer:
    """SwinV2-B: embed dim 128, depths [2, 2, 18, 2], heads [4, 8, 16, 32], window 8x8
    (arguments as ``swin_t``; stochastic depth 0.5)."""
    weights = Swin_V2_B_Weights.verify(weights)
    return _swin_transformer(
        patch_size=[4, 4],
        embed_dim=128,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        window_size=[8, 8],
        stochastic_depth_prob=0.5,
        weights=weights,
        progress=progress,
        block=SwinTransformerBlockV2,
        downsample_layer=PatchMergingV2,
        **kwargs,
    )
