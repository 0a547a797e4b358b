"""Video Swin Transformer (Liu et al., "Video Swin Transformer", 2022), as torchvision
builds it: the image Swin's blocks and patch merging with attention inside 3-d (T, H, W)
windows that shift every other block, and a 3-d patch embedding."""

# ruff: noqa: N801 (torchvision's class names: Swin3D_T_Weights, ...)
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import manygrad as mg

from .... import nn
from ....nn import functional as F
from .._api import (
    WeightsEnum,
    _build,
    _ovewrite_named_param,
    handle_legacy_interface,
    register_model,
)
from ..swin_transformer import PatchMerging, SwinTransformerBlock
from ._presets import _kinetics_weights

__all__ = [
    "SwinTransformer3d",
    "Swin3D_T_Weights",
    "Swin3D_S_Weights",
    "Swin3D_B_Weights",
    "swin3d_t",
    "swin3d_s",
    "swin3d_b",
]


def _get_window_and_shift_size(
    shift_size: list[int], size_dhw: list[int], window_size: list[int]
) -> tuple[list[int], list[int]]:
    """Shrink a window to the input where the input is smaller (and drop its shift there);
    the lists are changed in place, as torchvision does."""
    for i in range(3):
        if size_dhw[i] <= window_size[i]:
            window_size[i] = size_dhw[i]
            shift_size[i] = 0
    return window_size, shift_size


def _get_relative_position_bias(
    relative_position_bias_table, relative_position_index, window_size: list[int]
):
    """(1, heads, N, N) bias, N the window's volume: the table's row for each pair's 3-d
    offset (the index's first N rows and columns when the window shrank)."""
    n = window_size[0] * window_size[1] * window_size[2]
    bias = relative_position_bias_table[relative_position_index[:n, :n].flatten()]
    return bias.view(n, n, -1).permute(2, 0, 1).contiguous().unsqueeze(0)


def _compute_pad_size_3d(
    size_dhw: tuple[int, int, int], patch_size: tuple[int, int, int]
) -> tuple[int, int, int]:
    """The padding that makes each of (T, H, W) a multiple of the patch (window) size."""
    pad = [(patch_size[i] - size_dhw[i] % patch_size[i]) % patch_size[i] for i in range(3)]
    return pad[0], pad[1], pad[2]


def _compute_attention_mask_3d(
    x,
    size_dhw: tuple[int, int, int],
    window_size: tuple[int, int, int],
    shift_size: tuple[int, int, int],
):
    """(windows, N, N): -100 between tokens that the cyclic shift brought together from
    different regions of the clip, 0 elsewhere."""
    region = x.new_zeros(*size_dhw)
    slices = [
        ((0, -window_size[i]), (-window_size[i], -shift_size[i]), (-shift_size[i], None))
        for i in range(3)
    ]
    count = 0
    for d in slices[0]:
        for h in slices[1]:
            for w in slices[2]:
                region[d[0] : d[1], h[0] : h[1], w[0] : w[1]] = count
                count += 1
    nt, nh, nw = (size_dhw[i] // window_size[i] for i in range(3))
    region = region.view(nt, window_size[0], nh, window_size[1], nw, window_size[2])
    region = region.permute(0, 2, 4, 1, 3, 5).reshape(
        nt * nh * nw, window_size[0] * window_size[1] * window_size[2]
    )
    diff = region.unsqueeze(1) - region.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


def shifted_window_attention_3d(
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
    training: bool = True,
):
    """Multi-head self-attention inside (shifted) 3-d windows with a relative position bias.

    The [B, T, H, W, C] input is padded to whole windows and rolled by ``-shift_size``; each
    window attends within itself (tokens from different regions of the roll masked apart),
    then the roll and the padding are undone.

    Args:
        input: [B, T, H, W, C].
        qkv_weight, proj_weight: [3C, C] and [C, C]; qkv_bias, proj_bias: default None.
        relative_position_bias: [1, heads, N, N], N the window's volume.
        window_size, shift_size: three ints each (T, H, W).
        num_heads: heads (dividing C).
        attention_dropout, dropout: on the attention weights and the output (default 0).
        training: apply the dropouts (default True).

    Returns:
        [B, T, H, W, C].
    """
    b, t, h, w, c = input.shape
    pad = _compute_pad_size_3d((t, h, w), tuple(window_size))
    x = F.pad(input, (0, 0, 0, pad[2], 0, pad[1], 0, pad[0]))
    _, tp, hp, wp, _ = x.shape
    padded = (tp, hp, wp)
    shifted = sum(shift_size) > 0
    if shifted:
        x = mg.roll(x, shifts=tuple(-s for s in shift_size), dims=(1, 2, 3))

    # partition into windows: (B * windows, N, C)
    nt, nh, nw = (padded[i] // window_size[i] for i in range(3))
    num_windows = nt * nh * nw
    n = window_size[0] * window_size[1] * window_size[2]
    x = x.view(b, nt, window_size[0], nh, window_size[1], nw, window_size[2], c)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b * num_windows, n, c)

    qkv = F.linear(x, qkv_weight, qkv_bias)
    qkv = qkv.reshape(x.size(0), n, 3, num_heads, c // num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    attn = (q * (c // num_heads) ** -0.5).matmul(k.transpose(-2, -1))
    attn = attn + relative_position_bias
    if shifted:
        mask = _compute_attention_mask_3d(x, padded, tuple(window_size), tuple(shift_size))
        attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, n, n)
        attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, num_heads, n, n)
    attn = F.dropout(F.softmax(attn, dim=-1), p=attention_dropout, training=training)
    x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), n, c)
    x = F.dropout(F.linear(x, proj_weight, proj_bias), p=dropout, training=training)

    # undo the windows, the roll and the padding
    x = x.view(b, nt, nh, nw, window_size[0], window_size[1], window_size[2], c)
    x = x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, tp, hp, wp, c)
    if shifted:
        x = mg.roll(x, shifts=tuple(shift_size), dims=(1, 2, 3))
    return x[:, :t, :h, :w, :].contiguous()


class ShiftedWindowAttention3d(nn.Module):
    """3-d window attention (``qkv``, ``proj``) with a learned table of relative position
    biases (``relative_position_bias_table``, one row per 3-d offset)."""

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
        if len(window_size) != 3 or len(shift_size) != 3:
            raise ValueError(
                f"ShiftedWindowAttention3d: window_size and shift_size must be of length 3 "
                f"(T, H, W), got {window_size} and {shift_size}"
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

    def define_relative_position_bias_table(self) -> None:
        wd, wh, ww = self.window_size
        rows = (2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1)
        self.relative_position_bias_table = nn.Parameter(mg.zeros(rows, self.num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def define_relative_position_index(self) -> None:
        # each pair of window positions -> the row of its (dt, dy, dx) offset in the table
        wd, wh, ww = self.window_size
        grids = mg.meshgrid(mg.arange(wd), mg.arange(wh), mg.arange(ww), indexing="ij")
        coords = mg.stack(grids).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        index = (
            (rel[:, :, 0] + (wd - 1)) * ((2 * wh - 1) * (2 * ww - 1))
            + (rel[:, :, 1] + (wh - 1)) * (2 * ww - 1)
            + (rel[:, :, 2] + (ww - 1))
        )
        self.register_buffer("relative_position_index", index)  # (N, N), not flattened

    def get_relative_position_bias(self, window_size: list[int]):
        return _get_relative_position_bias(
            self.relative_position_bias_table, self.relative_position_index, window_size
        )

    def forward(self, x):
        _, t, h, w, _ = x.shape
        window_size, shift_size = _get_window_and_shift_size(
            list(self.shift_size), [t, h, w], list(self.window_size)
        )
        return shifted_window_attention_3d(
            x, self.qkv.weight, self.proj.weight, self.get_relative_position_bias(window_size),
            window_size, self.num_heads, shift_size=shift_size,
            attention_dropout=self.attention_dropout, dropout=self.dropout,
            qkv_bias=self.qkv.bias, proj_bias=self.proj.bias, training=self.training,
        )  # fmt: skip


class PatchEmbed3d(nn.Module):
    """Clip to patch tokens: pad (T, H, W) to whole patches, a strided 3-d convolution
    (``proj``), channels last, and an optional norm.

    Args:
        patch_size: three ints (T, H, W).
        in_channels: default 3. embed_dim: default 96.
        norm_layer: default None (no norm).
    """

    def __init__(
        self,
        patch_size: list[int],
        in_channels: int = 3,
        embed_dim: int = 96,
        norm_layer: Callable[..., nn.Module] | None = None,
    ):
        super().__init__()
        self.tuple_patch_size = (patch_size[0], patch_size[1], patch_size[2])
        self.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=self.tuple_patch_size,
                              stride=self.tuple_patch_size)  # fmt: skip
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def forward(self, x):
        _, _, t, h, w = x.size()
        pad = _compute_pad_size_3d((t, h, w), self.tuple_patch_size)
        x = self.proj(F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0])))
        return self.norm(x.permute(0, 2, 3, 4, 1))  # (B, T, H, W, C)


class SwinTransformer3d(nn.Module):
    """Video Swin: 3-d patch embedding, stages of blocks (windows shifted by half a window
    in every other block), patch merging (in H and W) between stages, norm, average pool
    over (T, H, W), ``head``.

    Args:
        patch_size: three ints. embed_dim: the first stage's width (doubling per stage).
        depths, num_heads: blocks and heads per stage.
        window_size: three ints (T, H, W).
        mlp_ratio: default 4.0. dropout, attention_dropout: default 0.0.
        stochastic_depth_prob: the last block's (linear from 0) (default 0.1).
        num_classes: default 400.
        norm_layer: default ``nn.LayerNorm`` (eps 1e-5).
        block: default ``SwinTransformerBlock`` with 3-d window attention.
        downsample_layer: default ``PatchMerging``.
        patch_embed: default ``PatchEmbed3d``.

    Example:
        >>> model = SwinTransformer3d([2, 4, 4], 16, [2, 2], [2, 4], [2, 4, 4], num_classes=5)
        >>> model(mg.randn(1, 3, 2, 32, 32)).shape
        manygrad.Size([1, 5])
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
        num_classes: int = 400,
        norm_layer: Callable[..., nn.Module] | None = None,
        block: Callable[..., nn.Module] | None = None,
        downsample_layer: Callable[..., nn.Module] = PatchMerging,
        patch_embed: Callable[..., nn.Module] | None = None,
    ):
        super().__init__()
        self.num_classes = num_classes
        if block is None:
            block = functools.partial(SwinTransformerBlock, attn_layer=ShiftedWindowAttention3d)
        if norm_layer is None:
            norm_layer = functools.partial(nn.LayerNorm, eps=1e-5)
        if patch_embed is None:
            patch_embed = PatchEmbed3d
        self.patch_embed = patch_embed(patch_size=patch_size, embed_dim=embed_dim,
                                       norm_layer=norm_layer)  # fmt: skip
        self.pos_drop = nn.Dropout(p=dropout)

        layers: list[nn.Module] = []
        total_stage_blocks = sum(depths)
        stage_block_id = 0
        for i_stage in range(len(depths)):
            stage: list[nn.Module] = []
            dim = embed_dim * 2**i_stage
            for i_layer in range(depths[i_stage]):
                sd_prob = stochastic_depth_prob * float(stage_block_id) / (total_stage_blocks - 1)
                stage.append(
                    block(
                        dim,
                        num_heads[i_stage],
                        window_size=window_size,
                        shift_size=[0 if i_layer % 2 == 0 else w // 2 for w in window_size],
                        mlp_ratio=mlp_ratio,
                        dropout=dropout,
                        attention_dropout=attention_dropout,
                        stochastic_depth_prob=sd_prob,
                        norm_layer=norm_layer,
                        attn_layer=ShiftedWindowAttention3d,
                    )  # fmt: skip
                )
                stage_block_id += 1
            layers.append(nn.Sequential(*stage))
            if i_stage < len(depths) - 1:
                layers.append(downsample_layer(dim, norm_layer))
        self.features = nn.Sequential(*layers)
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.norm = norm_layer(self.num_features)
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.head = nn.Linear(self.num_features, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.pos_drop(self.patch_embed(x))  # (B, T, H, W, C)
        x = self.norm(self.features(x))
        x = self.avgpool(x.permute(0, 4, 1, 2, 3))
        return self.head(mg.flatten(x, 1))


def _swin_transformer3d(
    patch_size: list[int],
    embed_dim: int,
    depths: list[int],
    num_heads: list[int],
    window_size: list[int],
    stochastic_depth_prob: float,
    weights: WeightsEnum | None,
    progress: bool,
    **kwargs: Any,
) -> SwinTransformer3d:
    if weights is not None:
        _ovewrite_named_param(kwargs, "num_classes", len(weights.meta["categories"]))
    return _build(
        lambda: SwinTransformer3d(
            patch_size=patch_size, embed_dim=embed_dim, depths=depths, num_heads=num_heads,
            window_size=window_size, stochastic_depth_prob=stochastic_depth_prob, **kwargs,
        ),
        weights,
        progress,
    )  # fmt: skip


_SWIN_PRESET = {
    "crop_size": (224, 224),
    "resize_size": (256,),
    "mean": (0.4850, 0.4560, 0.4060),
    "std": (0.2290, 0.2240, 0.2250),
}


def _swin_weights(url: str, num_params: int, acc1: float, acc5: float, ops: float, size: float):
    return _kinetics_weights(
        "https://download.pytorch.org/models/" + url,
        _SWIN_PRESET,
        min_size=(1, 1),
        min_temporal_size=1,
        recipe="https://github.com/SwinTransformer/Video-Swin-Transformer#kinetics-400",
        _docs=(
            "The weights were ported from the paper. The accuracies are estimated on "
            "video-level with parameters `frame_rate=15`, `clips_per_video=12`, and "
            "`clip_len=32`"
        ),
        num_params=num_params,
        _metrics={"Kinetics-400": {"acc@1": acc1, "acc@5": acc5}},
        _ops=ops,
        _file_size=size,
    )


class Swin3D_T_Weights(WeightsEnum):
    KINETICS400_V1 = _swin_weights("swin3d_t-7615ae03.pth", 28158070, 77.715, 93.519, 43.882,
                                   121.543)  # fmt: skip
    DEFAULT = KINETICS400_V1


class Swin3D_S_Weights(WeightsEnum):
    KINETICS400_V1 = _swin_weights("swin3d_s-da41c237.pth", 49816678, 79.521, 94.158, 82.841,
                                   218.288)  # fmt: skip
    DEFAULT = KINETICS400_V1


class Swin3D_B_Weights(WeightsEnum):
    KINETICS400_V1 = _swin_weights("swin3d_b_1k-24f7c7c6.pth", 88048984, 79.427, 94.386,
                                   140.667, 364.134)  # fmt: skip
    KINETICS400_IMAGENET22K_V1 = _swin_weights("swin3d_b_22k-7c6ae6fa.pth", 88048984, 81.643,
                                               95.574, 140.667, 364.134)  # fmt: skip
    DEFAULT = KINETICS400_V1


def _swin3d_builder(weights_enum, weights, progress, embed_dim, depths, num_heads, kwargs):
    weights = weights_enum.verify(weights)
    return _swin_transformer3d(
        patch_size=[2, 4, 4], embed_dim=embed_dim, depths=depths, num_heads=num_heads,
        window_size=[8, 7, 7], stochastic_depth_prob=0.1, weights=weights, progress=progress,
        **kwargs,
    )  # fmt: skip


@register_model()
@handle_legacy_interface(Swin3D_T_Weights.KINETICS400_V1)
def swin3d_t(
    *, weights: Swin3D_T_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer3d:
    """Video Swin-T: embed 96, depths (2, 2, 6, 2), windows of 8 x 7 x 7.

    Args:
        weights: ``Swin3D_T_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``SwinTransformer3d``.

    Example:
        >>> model = swin3d_t(num_classes=10)
    """
    return _swin3d_builder(Swin3D_T_Weights, weights, progress, 96, [2, 2, 6, 2],
                           [3, 6, 12, 24], kwargs)  # fmt: skip


@register_model()
@handle_legacy_interface(Swin3D_S_Weights.KINETICS400_V1)
def swin3d_s(
    *, weights: Swin3D_S_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer3d:
    """Video Swin-S: embed 96, depths (2, 2, 18, 2), windows of 8 x 7 x 7.

    Args:
        weights: ``Swin3D_S_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``SwinTransformer3d``.

    Example:
        >>> model = swin3d_s(num_classes=10)
    """
    return _swin3d_builder(Swin3D_S_Weights, weights, progress, 96, [2, 2, 18, 2],
                           [3, 6, 12, 24], kwargs)  # fmt: skip


@register_model()
@handle_legacy_interface(Swin3D_B_Weights.KINETICS400_V1)
def swin3d_b(
    *, weights: Swin3D_B_Weights | None = None, progress: bool = True, **kwargs: Any
) -> SwinTransformer3d:
    """Video Swin-B: embed 128, depths (2, 2, 18, 2), windows of 8 x 7 x 7.

    Args:
        weights: ``Swin3D_B_Weights`` (Kinetics-400, or Kinetics-400 after ImageNet-22K),
            its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``SwinTransformer3d``.

    Example:
        >>> model = swin3d_b(num_classes=10)
    """
    return _swin3d_builder(Swin3D_B_Weights, weights, progress, 128, [2, 2, 18, 2],
                           [4, 8, 16, 32], kwargs)  # fmt: skip
