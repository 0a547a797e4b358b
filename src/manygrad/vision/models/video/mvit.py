"""Multiscale Vision Transformers: MViT V1 (Fan et al., "Multiscale Vision Transformers",
2021) and V2 (Li et al., "MViTv2: Improved Multiscale Vision Transformers for
Classification and Detection", 2022), as torchvision builds them: attention whose queries,
keys and values are pooled by strided depthwise 3-d convolutions, so that the token grid
shrinks and the channels grow stage by stage; V2 adds decomposed relative position biases
and a residual from the pooled queries."""

# ruff: noqa: N801, N806 (torchvision's names: MViT_V1_B_Weights; B, N, C in the maths)
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import manygrad as mg

from .... import nn
from ....nn import functional as F
from ...ops.misc import MLP
from ...ops.stochastic_depth import StochasticDepth
from .._api import (
    WeightsEnum,
    _build,
    _ovewrite_named_param,
    handle_legacy_interface,
    register_model,
)
from ._presets import _kinetics_weights

__all__ = ["MViT", "MViT_V1_B_Weights", "mvit_v1_b", "MViT_V2_S_Weights", "mvit_v2_s"]


@dataclass
class MSBlockConfig:
    """One block's heads, widths and the kernels and strides of its query and key/value
    pooling (empty lists: no pooling)."""

    num_heads: int
    input_channels: int
    output_channels: int
    kernel_q: list[int]
    kernel_kv: list[int]
    stride_q: list[int]
    stride_kv: list[int]


def _prod(s: Sequence[int]) -> int:
    return math.prod(s)


def _unsqueeze(x, target_dim: int, expand_dim: int):
    """``x`` with ``target_dim`` dims (one inserted at ``expand_dim`` if it has one less),
    and its original number of dims."""
    tensor_dim = x.dim()
    if tensor_dim == target_dim - 1:
        x = x.unsqueeze(expand_dim)
    elif tensor_dim != target_dim:
        raise ValueError(
            f"MViT: expected a tensor of {target_dim - 1} or {target_dim} dims, got shape "
            f"{tuple(x.shape)}"
        )
    return x, tensor_dim


def _squeeze(x, target_dim: int, expand_dim: int, tensor_dim: int):
    """Undo ``_unsqueeze``."""
    return x.squeeze(expand_dim) if tensor_dim == target_dim - 1 else x


class Pool(nn.Module):
    """Pool a token sequence as the (T, H, W) grid it is: the class token set aside, the
    rest reshaped to a clip, pooled, flattened back, the token put back in front; then the
    norm (or before the pool, with ``norm_before_pool``)."""

    def __init__(
        self,
        pool: nn.Module,
        norm: nn.Module | None,
        activation: nn.Module | None = None,
        norm_before_pool: bool = False,
    ):
        super().__init__()
        self.pool = pool
        layers = [m for m in (norm, activation) if m is not None]
        self.norm_act = nn.Sequential(*layers) if layers else None
        self.norm_before_pool = norm_before_pool

    def forward(self, x, thw: tuple[int, int, int]):
        x, tensor_dim = _unsqueeze(x, 4, 1)  # (B, heads, N, C)
        class_token, x = x[:, :, :1], x[:, :, 1:]
        x = x.transpose(2, 3)
        B, N, C = x.shape[:3]
        x = x.reshape((B * N, C) + tuple(thw)).contiguous()
        if self.norm_before_pool and self.norm_act is not None:
            x = self.norm_act(x)
        x = self.pool(x)
        T, H, W = x.shape[2:]
        x = mg.cat((class_token, x.reshape(B, N, C, -1).transpose(2, 3)), dim=2)
        if not self.norm_before_pool and self.norm_act is not None:
            x = self.norm_act(x)
        return _squeeze(x, 4, 1, tensor_dim), (T, H, W)


def _interpolate(embedding, d: int):
    """A (L, C) table of relative position embeddings resampled to ``d`` rows (linear)."""
    if embedding.shape[0] == d:
        return embedding
    resized = F.interpolate(embedding.permute(1, 0).unsqueeze(0), size=d, mode="linear")
    return resized.squeeze(0).permute(1, 0)


def _rel_index(q: int, k: int, device):
    """(q, k) rows of the table for each query-key pair along one axis: the offset scaled
    to the finer of the two grids."""
    q_ratio, k_ratio = max(k / q, 1.0), max(q / k, 1.0)
    qi = mg.arange(q, device=device)[:, None] * q_ratio
    ki = (mg.arange(k, device=device)[None, :] + (1.0 - k)) * k_ratio
    return (qi - ki).long()


def _add_rel_pos(attn, q, q_thw, k_thw, rel_pos_h, rel_pos_w, rel_pos_t):
    """``attn`` (B, heads, 1 + Nq, 1 + Nk) plus V2's decomposed relative position terms
    (q . R_t + q . R_h + q . R_w) between the tokens (the class token gets none)."""
    q_t, q_h, q_w = q_thw
    k_t, k_h, k_w = k_thw
    Rh = _interpolate(rel_pos_h, 2 * max(q_h, k_h) - 1)[_rel_index(q_h, k_h, q.device)]
    Rw = _interpolate(rel_pos_w, 2 * max(q_w, k_w) - 1)[_rel_index(q_w, k_w, q.device)]
    Rt = _interpolate(rel_pos_t, 2 * max(q_t, k_t) - 1)[_rel_index(q_t, k_t, q.device)]
    B, n_head, _, dim = q.shape
    r_q = q[:, :, 1:].reshape(B, n_head, q_t, q_h, q_w, dim)
    rel_h = mg.einsum("bythwc,hkc->bythwk", r_q, Rh)  # (B, heads, q_t, q_h, q_w, k_h)
    rel_w = mg.einsum("bythwc,wkc->bythwk", r_q, Rw)  # (..., k_w)
    # the temporal term as one batched matmul per query frame: (q_t, B*heads*q_h*q_w, k_t)
    r_qt = r_q.permute(2, 0, 1, 3, 4, 5).reshape(q_t, B * n_head * q_h * q_w, dim)
    rel_t = mg.matmul(r_qt, Rt.transpose(1, 2)).transpose(0, 1)
    rel_t = rel_t.reshape(B, n_head, q_h, q_w, q_t, k_t).permute(0, 1, 4, 2, 3, 5)
    rel_pos = (
        rel_h[:, :, :, :, :, None, :, None]
        + rel_w[:, :, :, :, :, None, None, :]
        + rel_t[:, :, :, :, :, :, None, None]
    ).reshape(B, n_head, q_t * q_h * q_w, k_t * k_h * k_w)
    # NOTE: padded with a zero row and column (the class token's) instead of torchvision's
    # in-place add to a slice: the same sums, no view written through
    return attn + F.pad(rel_pos, (1, 0, 1, 0))


def _add_shortcut(x, shortcut, residual_with_cls_embed: bool):
    """``x + shortcut``, the class token's row left out unless ``residual_with_cls_embed``."""
    if residual_with_cls_embed:
        return x + shortcut
    return x + F.pad(shortcut[:, :, 1:, :], (0, 0, 1, 0))


def _pool_conv(head_dim: int, kernel: list[int], stride: list[int], norm_layer):
    padding = [int(k // 2) for k in kernel]
    conv = nn.Conv3d(head_dim, head_dim, kernel, stride=stride, padding=padding,
                     groups=head_dim, bias=False)  # fmt: skip
    return Pool(conv, norm_layer(head_dim))


class MultiscaleAttention(nn.Module):
    """Multi-head attention with pooled queries (``pool_q``), keys and values (``pool_k``,
    ``pool_v``): depthwise strided 3-d convolutions per head; V2's relative positions
    (``rel_pos_h/w/t``) and pooled-query residual."""

    def __init__(
        self,
        input_size: list[int],
        embed_dim: int,
        output_dim: int,
        num_heads: int,
        kernel_q: list[int],
        kernel_kv: list[int],
        stride_q: list[int],
        stride_kv: list[int],
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        dropout: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.output_dim = output_dim
        self.num_heads = num_heads
        self.head_dim = output_dim // num_heads
        self.scaler = 1.0 / math.sqrt(self.head_dim)
        self.residual_pool = residual_pool
        self.residual_with_cls_embed = residual_with_cls_embed

        self.qkv = nn.Linear(embed_dim, 3 * output_dim)
        layers: list[nn.Module] = [nn.Linear(output_dim, output_dim)]
        if dropout > 0.0:
            layers.append(nn.Dropout(dropout, inplace=True))
        self.project = nn.Sequential(*layers)

        self.pool_q = None
        if _prod(kernel_q) > 1 or _prod(stride_q) > 1:
            self.pool_q = _pool_conv(self.head_dim, kernel_q, stride_q, norm_layer)
        self.pool_k = self.pool_v = None
        if _prod(kernel_kv) > 1 or _prod(stride_kv) > 1:
            self.pool_k = _pool_conv(self.head_dim, kernel_kv, stride_kv, norm_layer)
            self.pool_v = _pool_conv(self.head_dim, kernel_kv, stride_kv, norm_layer)

        self.rel_pos_h = self.rel_pos_w = self.rel_pos_t = None
        if rel_pos_embed:
            size = max(input_size[1:])
            q_size = size // stride_q[1] if len(stride_q) > 0 else size
            kv_size = size // stride_kv[1] if len(stride_kv) > 0 else size
            spatial_dim = 2 * max(q_size, kv_size) - 1
            temporal_dim = 2 * input_size[0] - 1
            self.rel_pos_h = nn.Parameter(mg.zeros(spatial_dim, self.head_dim))
            self.rel_pos_w = nn.Parameter(mg.zeros(spatial_dim, self.head_dim))
            self.rel_pos_t = nn.Parameter(mg.zeros(temporal_dim, self.head_dim))
            for p in (self.rel_pos_h, self.rel_pos_w, self.rel_pos_t):
                nn.init.trunc_normal_(p, std=0.02)

    def forward(self, x, thw: tuple[int, int, int]):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).transpose(1, 3)
        q, k, v = qkv.unbind(dim=2)  # each (B, heads, N, head_dim)
        k_thw = thw
        if self.pool_k is not None:
            k, k_thw = self.pool_k(k, thw)
        if self.pool_v is not None:
            v = self.pool_v(v, thw)[0]
        if self.pool_q is not None:
            q, thw = self.pool_q(q, thw)

        attn = mg.matmul(self.scaler * q, k.transpose(2, 3))
        if self.rel_pos_h is not None:
            attn = _add_rel_pos(attn, q, thw, k_thw, self.rel_pos_h, self.rel_pos_w,
                                self.rel_pos_t)  # fmt: skip
        x = mg.matmul(attn.softmax(dim=-1), v)
        if self.residual_pool:
            x = _add_shortcut(x, q, self.residual_with_cls_embed)
        x = x.transpose(1, 2).reshape(B, -1, self.output_dim)
        return self.project(x), thw


class MultiscaleBlock(nn.Module):
    """Pre-norm block: pooled attention (the skip path max-pooled alike when the queries
    are strided, and projected when the width changes), then an MLP."""

    def __init__(
        self,
        input_size: list[int],
        cnf: MSBlockConfig,
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        proj_after_attn: bool,
        dropout: float = 0.0,
        stochastic_depth_prob: float = 0.0,
        norm_layer: Callable[..., nn.Module] = nn.LayerNorm,
    ):
        super().__init__()
        self.proj_after_attn = proj_after_attn
        self.pool_skip = None
        if _prod(cnf.stride_q) > 1:
            kernel_skip = [s + 1 if s > 1 else s for s in cnf.stride_q]
            padding_skip = [int(k // 2) for k in kernel_skip]
            self.pool_skip = Pool(
                nn.MaxPool3d(kernel_skip, stride=cnf.stride_q, padding=padding_skip), None
            )
        attn_dim = cnf.output_channels if proj_after_attn else cnf.input_channels
        self.norm1 = norm_layer(cnf.input_channels)
        self.norm2 = norm_layer(attn_dim)
        self.needs_transposal = isinstance(self.norm1, nn.BatchNorm1d)
        self.attn = MultiscaleAttention(
            input_size, cnf.input_channels, attn_dim, cnf.num_heads, kernel_q=cnf.kernel_q,
            kernel_kv=cnf.kernel_kv, stride_q=cnf.stride_q, stride_kv=cnf.stride_kv,
            rel_pos_embed=rel_pos_embed, residual_pool=residual_pool,
            residual_with_cls_embed=residual_with_cls_embed, dropout=dropout,
            norm_layer=norm_layer,
        )  # fmt: skip
        self.mlp = MLP(attn_dim, [4 * attn_dim, cnf.output_channels], activation_layer=nn.GELU,
                       dropout=dropout, inplace=None)  # fmt: skip
        self.stochastic_depth = StochasticDepth(stochastic_depth_prob, "row")
        self.project = None
        if cnf.input_channels != cnf.output_channels:
            self.project = nn.Linear(cnf.input_channels, cnf.output_channels)

    def _norm(self, norm, x):
        # a BatchNorm1d normalizes (B, C, N): the tokens go to the last axis and back
        return norm(x.transpose(1, 2)).transpose(1, 2) if self.needs_transposal else norm(x)

    def forward(self, x, thw: tuple[int, int, int]):
        x_norm1 = self._norm(self.norm1, x)
        x_attn, thw_new = self.attn(x_norm1, thw)
        if self.project is not None and self.proj_after_attn:
            x = self.project(x_norm1)
        x_skip = x if self.pool_skip is None else self.pool_skip(x, thw)[0]
        x = x_skip + self.stochastic_depth(x_attn)
        x_norm2 = self._norm(self.norm2, x)
        x_proj = x if self.project is None or self.proj_after_attn else self.project(x_norm2)
        return x_proj + self.stochastic_depth(self.mlp(x_norm2)), thw_new


class PositionalEncoding(nn.Module):
    """Prepend the class token; add V1's separable space-time positions (a row per patch
    position plus a row per frame; the class token its own) when there are no relative
    ones."""

    def __init__(
        self,
        embed_size: int,
        spatial_size: tuple[int, int],
        temporal_size: int,
        rel_pos_embed: bool,
    ):
        super().__init__()
        self.spatial_size = spatial_size
        self.temporal_size = temporal_size
        self.class_token = nn.Parameter(mg.zeros(embed_size))
        self.spatial_pos = self.temporal_pos = self.class_pos = None
        if not rel_pos_embed:
            hw = self.spatial_size[0] * self.spatial_size[1]
            self.spatial_pos = nn.Parameter(mg.zeros(hw, embed_size))
            self.temporal_pos = nn.Parameter(mg.zeros(self.temporal_size, embed_size))
            self.class_pos = nn.Parameter(mg.zeros(embed_size))

    def forward(self, x):
        class_token = self.class_token.expand(x.size(0), -1).unsqueeze(1)
        x = mg.cat((class_token, x), dim=1)
        if self.spatial_pos is not None:
            hw_size, embed_size = self.spatial_pos.shape
            # frame-major order, as the patches are flattened: (t, h, w)
            pos = mg.repeat_interleave(self.temporal_pos, hw_size, dim=0)
            spatial = self.spatial_pos.unsqueeze(0).expand(self.temporal_size, -1, -1)
            pos = pos + spatial.reshape(-1, embed_size)
            x = x + mg.cat((self.class_pos.unsqueeze(0), pos), dim=0).unsqueeze(0)
        return x


class MViT(nn.Module):
    """MViT: a strided 3-d convolution into patch tokens, a class token and positions,
    multiscale blocks, norm, and a linear head on the class token.

    Args:
        spatial_size: (H, W) of the input (fixed: the positions are learned per patch).
        temporal_size: T of the input.
        block_setting: one ``MSBlockConfig`` per block.
        residual_pool: V2's pooled-query residual in the attention.
        residual_with_cls_embed: that residual includes the class token.
        rel_pos_embed: V2's relative position biases (instead of absolute positions).
        proj_after_attn: widen in the attention (V2) rather than in the MLP (V1).
        dropout: before the head (default 0.5). attention_dropout: default 0.0.
        stochastic_depth_prob: the last block's (linear from 0) (default 0.0).
        num_classes: default 400. block: default ``MultiscaleBlock``.
        norm_layer: default ``LayerNorm`` with eps 1e-6.
        patch_embed_kernel, patch_embed_stride, patch_embed_padding: of the patch
            convolution (default (3, 7, 7), (2, 4, 4), (1, 3, 3)).

    Example:
        >>> cfg = MSBlockConfig(1, 8, 16, [], [3, 3, 3], [], [1, 2, 2])
        >>> model = MViT((32, 32), 2, [cfg], False, False, False, False, num_classes=5)
        >>> model(mg.randn(1, 3, 2, 32, 32)).shape
        manygrad.Size([1, 5])
    """

    def __init__(
        self,
        spatial_size: tuple[int, int],
        temporal_size: int,
        block_setting: Sequence[MSBlockConfig],
        residual_pool: bool,
        residual_with_cls_embed: bool,
        rel_pos_embed: bool,
        proj_after_attn: bool,
        dropout: float = 0.5,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.0,
        num_classes: int = 400,
        block: Callable[..., nn.Module] | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
        patch_embed_kernel: tuple[int, int, int] = (3, 7, 7),
        patch_embed_stride: tuple[int, int, int] = (2, 4, 4),
        patch_embed_padding: tuple[int, int, int] = (1, 3, 3),
    ):
        super().__init__()
        total_stage_blocks = len(block_setting)
        if total_stage_blocks == 0:
            raise ValueError("The configuration parameter can't be empty.")
        block = MultiscaleBlock if block is None else block
        if norm_layer is None:
            norm_layer = functools.partial(nn.LayerNorm, eps=1e-6)

        self.conv_proj = nn.Conv3d(
            in_channels=3,
            out_channels=block_setting[0].input_channels,
            kernel_size=patch_embed_kernel,
            stride=patch_embed_stride,
            padding=patch_embed_padding,
        )
        sizes = (temporal_size,) + tuple(spatial_size)
        input_size = [size // stride for size, stride in zip(sizes, self.conv_proj.stride)]
        self.pos_encoding = PositionalEncoding(
            embed_size=block_setting[0].input_channels,
            spatial_size=(input_size[1], input_size[2]),
            temporal_size=input_size[0],
            rel_pos_embed=rel_pos_embed,
        )
        self.blocks = nn.ModuleList()
        for stage_block_id, cnf in enumerate(block_setting):
            # NOTE: a single block gets rate 0 (torchvision divides by zero there)
            denom = total_stage_blocks - 1.0
            sd_prob = stochastic_depth_prob * stage_block_id / denom if denom else 0.0
            self.blocks.append(
                block(
                    input_size=input_size,
                    cnf=cnf,
                    residual_pool=residual_pool,
                    residual_with_cls_embed=residual_with_cls_embed,
                    rel_pos_embed=rel_pos_embed,
                    proj_after_attn=proj_after_attn,
                    dropout=attention_dropout,
                    stochastic_depth_prob=sd_prob,
                    norm_layer=norm_layer,
                )  # fmt: skip
            )
            if len(cnf.stride_q) > 0:
                input_size = [size // stride for size, stride in zip(input_size, cnf.stride_q)]
        self.norm = norm_layer(block_setting[-1].output_channels)
        self.head = nn.Sequential(
            nn.Dropout(dropout, inplace=True),
            nn.Linear(block_setting[-1].output_channels, num_classes),
        )

        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.0)
            elif isinstance(m, nn.LayerNorm):
                if m.weight is not None:
                    nn.init.constant_(m.weight, 1.0)
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0.0)
            elif isinstance(m, PositionalEncoding):
                for weights in m.parameters():
                    nn.init.trunc_normal_(weights, std=0.02)

    def forward(self, x):
        x = _unsqueeze(x, 5, 2)[0]  # (B, C, H, W) images: one frame
        x = self.conv_proj(x)
        thw = (self.pos_encoding.temporal_size,) + tuple(self.pos_encoding.spatial_size)
        if tuple(x.shape[2:]) != thw:
            raise ValueError(
                f"MViT: the clip gives a {tuple(x.shape[2:])} grid of patches, the model was "
                f"built for {thw} (T, H, W); resize the clip or build the model with its "
                "spatial_size and temporal_size"
            )
        x = self.pos_encoding(x.flatten(2).transpose(1, 2))
        for block in self.blocks:
            x, thw = block(x, thw)
        x = self.norm(x)
        return self.head(x[:, 0])


def _mvit(
    block_setting: list[MSBlockConfig],
    stochastic_depth_prob: float,
    weights: WeightsEnum | None,
    progress: bool,
    **kwargs: Any,
) -> MViT:
    if weights is not None:
        _ovewrite_named_param(kwargs, "num_classes", len(weights.meta["categories"]))
        if weights.meta["min_size"][0] != weights.meta["min_size"][1]:
            raise ValueError(f"MViT weights need a square min_size, got {weights.meta}")
        _ovewrite_named_param(kwargs, "spatial_size", weights.meta["min_size"])
        _ovewrite_named_param(kwargs, "temporal_size", weights.meta["min_temporal_size"])
    spatial_size = kwargs.pop("spatial_size", (224, 224))
    temporal_size = kwargs.pop("temporal_size", 16)
    options = {
        "residual_pool": kwargs.pop("residual_pool", False),
        "residual_with_cls_embed": kwargs.pop("residual_with_cls_embed", True),
        "rel_pos_embed": kwargs.pop("rel_pos_embed", False),
        "proj_after_attn": kwargs.pop("proj_after_attn", False),
    }
    return _build(
        lambda: MViT(
            spatial_size=spatial_size, temporal_size=temporal_size, block_setting=block_setting,
            **options, stochastic_depth_prob=stochastic_depth_prob, **kwargs,
        ),
        weights,
        progress,
    )  # fmt: skip


def _settings(table: dict[str, list]) -> list[MSBlockConfig]:
    n = len(table["num_heads"])
    return [MSBlockConfig(**{k: v[i] for k, v in table.items()}) for i in range(n)]


_K3 = [3, 3, 3]
_S1, _S2 = [1, 1, 1], [1, 2, 2]
_STRIDE_KV = [[1, 8, 8], [1, 4, 4], [1, 4, 4]] + [[1, 2, 2]] * 11 + [[1, 1, 1]] * 2
_MVIT_PRESET = {
    "crop_size": (224, 224),
    "resize_size": (256,),
    "mean": (0.45, 0.45, 0.45),
    "std": (0.225, 0.225, 0.225),
}
_MVIT_DOCS = (
    "The weights were ported from the paper. The accuracies are estimated on video-level "
    "with parameters `frame_rate=7.5`, `clips_per_video=5`, and `clip_len=16`"
)


class MViT_V1_B_Weights(WeightsEnum):
    KINETICS400_V1 = _kinetics_weights(
        "https://download.pytorch.org/models/mvit_v1_b-dbeb1030.pth",
        _MVIT_PRESET,
        min_size=(224, 224),
        min_temporal_size=16,
        recipe=(
            "https://github.com/facebookresearch/pytorchvideo/blob/main/docs/source/model_zoo.md"
        ),
        _docs=_MVIT_DOCS,
        num_params=36610672,
        _metrics={"Kinetics-400": {"acc@1": 78.477, "acc@5": 93.582}},
        _ops=70.599,
        _file_size=139.764,
    )
    DEFAULT = KINETICS400_V1


class MViT_V2_S_Weights(WeightsEnum):
    KINETICS400_V1 = _kinetics_weights(
        "https://download.pytorch.org/models/mvit_v2_s-ae3be167.pth",
        _MVIT_PRESET,
        min_size=(224, 224),
        min_temporal_size=16,
        recipe="https://github.com/facebookresearch/SlowFast/blob/main/MODEL_ZOO.md",
        _docs=_MVIT_DOCS,
        num_params=34537744,
        _metrics={"Kinetics-400": {"acc@1": 80.757, "acc@5": 94.665}},
        _ops=64.224,
        _file_size=131.884,
    )
    DEFAULT = KINETICS400_V1


@register_model()
@handle_legacy_interface(MViT_V1_B_Weights.KINETICS400_V1)
def mvit_v1_b(
    *, weights: MViT_V1_B_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MViT:
    """MViT V1-B for 16 frames of 224 x 224: 16 blocks, absolute space-time positions.

    Args:
        weights: ``MViT_V1_B_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``MViT`` (``num_classes``, ``spatial_size``, ``temporal_size``,
            ``stochastic_depth_prob`` default 0.2, ...).

    Example:
        >>> model = mvit_v1_b(num_classes=10)
    """
    weights = MViT_V1_B_Weights.verify(weights)
    stride_q = [[], _S2, [], _S2] + [[]] * 10 + [_S2, []]
    table = {
        "num_heads": [1, 2, 2] + [4] * 11 + [8, 8],
        "input_channels": [96, 192, 192] + [384] * 11 + [768, 768],
        "output_channels": [192, 192] + [384] * 11 + [768] * 3,
        "kernel_q": [_K3 if s else [] for s in stride_q],
        "kernel_kv": [_K3] * 16,
        "stride_q": stride_q,
        "stride_kv": _STRIDE_KV,
    }
    return _mvit(
        spatial_size=(224, 224), temporal_size=16, block_setting=_settings(table),
        residual_pool=False, residual_with_cls_embed=False,
        stochastic_depth_prob=kwargs.pop("stochastic_depth_prob", 0.2), weights=weights,
        progress=progress, **kwargs,
    )  # fmt: skip


@register_model()
@handle_legacy_interface(MViT_V2_S_Weights.KINETICS400_V1)
def mvit_v2_s(
    *, weights: MViT_V2_S_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MViT:
    """MViT V2-S for 16 frames of 224 x 224: 16 blocks, relative positions, pooled-query
    residuals.

    Args:
        weights: ``MViT_V2_S_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``MViT`` (``stochastic_depth_prob`` default 0.2, ...).

    Example:
        >>> model = mvit_v2_s(num_classes=10)
    """
    weights = MViT_V2_S_Weights.verify(weights)
    table = {
        "num_heads": [1, 2, 2] + [4] * 11 + [8, 8],
        "input_channels": [96, 96, 192, 192] + [384] * 11 + [768],
        "output_channels": [96, 192, 192] + [384] * 11 + [768, 768],
        "kernel_q": [_K3] * 16,
        "kernel_kv": [_K3] * 16,
        "stride_q": [_S1, _S2, _S1, _S2] + [_S1] * 10 + [_S2, _S1],
        "stride_kv": _STRIDE_KV,
    }
    return _mvit(
        spatial_size=(224, 224), temporal_size=16, block_setting=_settings(table),
        residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True,
        proj_after_attn=True, stochastic_depth_prob=kwargs.pop("stochastic_depth_prob", 0.2),
        weights=weights, progress=progress, **kwargs,
    )  # fmt: skip
