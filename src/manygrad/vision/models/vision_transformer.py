"""Vision Transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for
Image Recognition at Scale", 2020), as torchvision builds it: patches embedded by a strided
convolution, a class token, learned position embeddings, pre-norm encoder blocks."""

# ruff: noqa: N801 (torchvision's class names: ViT_B_16_Weights, ...)
from __future__ import annotations

import functools
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

import manygrad as mg

from ... import nn
from ..ops.misc import MLP, Conv2dNormActivation
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _ovewrite_named_param,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "VisionTransformer",
    "ViT_B_16_Weights",
    "ViT_B_32_Weights",
    "ViT_L_16_Weights",
    "ViT_L_32_Weights",
    "ViT_H_14_Weights",
    "vit_b_16",
    "vit_b_32",
    "vit_l_16",
    "vit_l_32",
    "vit_h_14",
]

_LayerNorm = functools.partial(nn.LayerNorm, eps=1e-6)


class ConvStemConfig(NamedTuple):
    """One conv-norm-activation layer of a convolutional stem (Xiao et al., 2021)."""

    out_channels: int
    kernel_size: int
    stride: int
    norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d
    activation_layer: Callable[..., nn.Module] = nn.ReLU


class MLPBlock(MLP):
    """The transformer's MLP: Linear, GELU, dropout, Linear, dropout (keys ``0.*``, ``3.*``)."""

    # NOTE: version 1 named the linears linear_1 / linear_2; such checkpoints are renamed
    # on load
    _version = 2

    def __init__(self, in_dim: int, mlp_dim: int, dropout: float):
        super().__init__(in_dim, [mlp_dim, in_dim], activation_layer=nn.GELU, inplace=None,
                         dropout=dropout)  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.normal_(m.bias, std=1e-6)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        version = local_metadata.get("version", None)
        if version is None or version < 2:
            for i in range(2):
                for kind in ("weight", "bias"):
                    old = f"{prefix}linear_{i + 1}.{kind}"
                    if old in state_dict:
                        state_dict[f"{prefix}{3 * i}.{kind}"] = state_dict.pop(old)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class EncoderBlock(nn.Module):
    """Pre-norm transformer block: x + drop(attention(ln_1(x))), then + mlp(ln_2(.))."""

    def __init__(
        self,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        dropout: float,
        attention_dropout: float,
        norm_layer: Callable[..., nn.Module] = _LayerNorm,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = norm_layer(hidden_dim)
        self.self_attention = nn.MultiheadAttention(
            hidden_dim, num_heads, dropout=attention_dropout, batch_first=True
        )
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = norm_layer(hidden_dim)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, input):  # noqa: A002 - torchvision's name
        if input.dim() != 3:
            raise ValueError(
                f"EncoderBlock: expected (batch_size, seq_length, hidden_dim) got {input.shape}"
            )
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x) + input
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    """Position embeddings added, dropout, ``num_layers`` encoder blocks, a final norm."""

    def __init__(
        self,
        seq_length: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        dropout: float,
        attention_dropout: float,
        norm_layer: Callable[..., nn.Module] = _LayerNorm,
    ):
        super().__init__()
        # batch first, as the attention layers take it; BERT's init
        self.pos_embedding = nn.Parameter(mg.empty(1, seq_length, hidden_dim).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i in range(num_layers):
            layers[f"encoder_layer_{i}"] = EncoderBlock(
                num_heads, hidden_dim, mlp_dim, dropout, attention_dropout, norm_layer
            )
        self.layers = nn.Sequential(layers)
        self.ln = norm_layer(hidden_dim)

    def forward(self, input):  # noqa: A002 - torchvision's name
        if input.dim() != 3:
            raise ValueError(
                f"Encoder: expected (batch_size, seq_length, hidden_dim) got {input.shape}"
            )
        return self.ln(self.layers(self.dropout(input + self.pos_embedding)))


class VisionTransformer(nn.Module):
    """Vision Transformer on ``image_size`` x ``image_size`` images cut into
    ``patch_size`` patches.

    Args:
        image_size: the input's height and width (a multiple of ``patch_size``).
        patch_size: the side of a patch.
        num_layers, num_heads, hidden_dim, mlp_dim: the encoder's shape.
        dropout: default 0.0. attention_dropout: default 0.0.
        num_classes: outputs (default 1000).
        representation_size: a Linear + Tanh before the head of this width (default None).
        norm_layer: default ``nn.LayerNorm`` with eps 1e-6.
        conv_stem_configs: a convolutional stem instead of the patch convolution (default
            None).

    Example:
        >>> model = VisionTransformer(32, 16, num_layers=2, num_heads=2, hidden_dim=16,
        ...                           mlp_dim=32, num_classes=10)
    """

    def __init__(
        self,
        image_size: int,
        patch_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        mlp_dim: int,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        num_classes: int = 1000,
        representation_size: int | None = None,
        norm_layer: Callable[..., nn.Module] = _LayerNorm,
        conv_stem_configs: list[ConvStemConfig] | None = None,
    ):
        super().__init__()
        if image_size % patch_size != 0:
            raise ValueError(
                f"VisionTransformer: image_size {image_size} is not a multiple of patch_size "
                f"{patch_size} (Input shape indivisible by patch size!)"
            )
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.num_classes = num_classes
        self.representation_size = representation_size
        self.norm_layer = norm_layer

        if conv_stem_configs is not None:
            seq_proj = nn.Sequential()
            prev = 3
            for i, cfg in enumerate(conv_stem_configs):
                seq_proj.add_module(
                    f"conv_bn_relu_{i}",
                    Conv2dNormActivation(
                        in_channels=prev, out_channels=cfg.out_channels,
                        kernel_size=cfg.kernel_size, stride=cfg.stride,
                        norm_layer=cfg.norm_layer, activation_layer=cfg.activation_layer,
                    ),
                )  # fmt: skip
                prev = cfg.out_channels
            seq_proj.add_module("conv_last", nn.Conv2d(prev, hidden_dim, kernel_size=1))
            self.conv_proj: nn.Module = seq_proj
        else:
            self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)

        seq_length = (image_size // patch_size) ** 2 + 1  # + the class token
        self.class_token = nn.Parameter(mg.zeros(1, 1, hidden_dim))
        self.encoder = Encoder(
            seq_length, num_layers, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout,
            norm_layer,
        )  # fmt: skip
        self.seq_length = seq_length

        heads: OrderedDict[str, nn.Module] = OrderedDict()
        if representation_size is None:
            heads["head"] = nn.Linear(hidden_dim, num_classes)
        else:
            heads["pre_logits"] = nn.Linear(hidden_dim, representation_size)
            heads["act"] = nn.Tanh()
            heads["head"] = nn.Linear(representation_size, num_classes)
        self.heads = nn.Sequential(heads)

        if isinstance(self.conv_proj, nn.Conv2d):
            c = self.conv_proj
            fan_in = c.in_channels * c.kernel_size[0] * c.kernel_size[1]
            nn.init.trunc_normal_(c.weight, std=math.sqrt(1 / fan_in))
            if c.bias is not None:
                nn.init.zeros_(c.bias)
        elif isinstance(getattr(self.conv_proj, "conv_last", None), nn.Conv2d):
            last = self.conv_proj.conv_last
            nn.init.normal_(last.weight, mean=0.0, std=math.sqrt(2.0 / last.out_channels))
            if last.bias is not None:
                nn.init.zeros_(last.bias)
        if isinstance(getattr(self.heads, "pre_logits", None), nn.Linear):
            pre = self.heads.pre_logits
            nn.init.trunc_normal_(pre.weight, std=math.sqrt(1 / pre.in_features))
            nn.init.zeros_(pre.bias)
        if isinstance(self.heads.head, nn.Linear):
            nn.init.zeros_(self.heads.head.weight)
            nn.init.zeros_(self.heads.head.bias)

    def _process_input(self, x):
        """(n, c, h, w) images -> (n, patches, hidden_dim) embeddings."""
        n, _, h, w = x.shape
        p = self.patch_size
        if h != self.image_size or w != self.image_size:
            raise ValueError(
                f"VisionTransformer: expected {self.image_size} x {self.image_size} images, got "
                f"{h} x {w} (build the model with image_size={h}, or resize the input)"
            )
        x = self.conv_proj(x)
        return x.reshape(n, self.hidden_dim, (h // p) * (w // p)).permute(0, 2, 1)

    def forward(self, x):
        x = self._process_input(x)
        token = self.class_token.expand(x.shape[0], -1, -1)
        x = self.encoder(mg.cat([token, x], dim=1))
        return self.heads(x[:, 0])  # the class token's output


def _vision_transformer(
    patch_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    weights,
    progress: bool,
    **kwargs: Any,
) -> VisionTransformer:
    if weights is not None:
        _set_num_classes(kwargs, weights)
        h, w = weights.meta["min_size"]
        assert h == w, weights.meta["min_size"]
        _ovewrite_named_param(kwargs, "image_size", h)
    image_size = kwargs.pop("image_size", 224)
    return _build(
        lambda: VisionTransformer(
            image_size=image_size, patch_size=patch_size, num_layers=num_layers,
            num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, **kwargs,
        ),
        weights,
        progress,
    )  # fmt: skip


_URL = "https://download.pytorch.org/models/"


# a checkpoint per line: file, num_params, acc@1, acc@5, GFLOPs (_ops), MB (_file_size)
def _w(file: str, num_params: int, acc1: float, acc5: float, ops: float, size: float, **kw):
    return _imagenet_weights(_URL + file, num_params, acc1, acc5, _ops=ops, _file_size=size, **kw)


_REF = "https://github.com/pytorch/vision/tree/main/references/classification"
_SWAG = "https://github.com/facebookresearch/SWAG"
_SWAG_LICENSE = "https://github.com/facebookresearch/SWAG/blob/main/LICENSE"
_SWAG_LINEAR = "https://github.com/pytorch/vision/pull/5793"


# fmt: off
class ViT_B_16_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vit_b_16-c867db91.pth", 86567656, 81.072, 95.318, 17.564, 330.285,
                       min_size=(224, 224), recipe=_REF + "#vit_b_16")
    IMAGENET1K_SWAG_E2E_V1 = _w("vit_b_16_swag-9ac1b537.pth", 86859496, 85.304, 97.65, 55.484,
                                331.398, min_size=(384, 384), crop_size=384, resize_size=384,
                                interpolation="bicubic", recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("vit_b_16_lc_swag-4e70ced5.pth", 86567656, 81.886, 96.18, 17.564,
                                   330.285, min_size=(224, 224), resize_size=224,
                                   interpolation="bicubic", recipe=_SWAG_LINEAR,
                                   license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_V1


class ViT_B_32_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vit_b_32-d86f8d99.pth", 88224232, 75.912, 92.466, 4.409, 336.604,
                       min_size=(224, 224), recipe=_REF + "#vit_b_32")
    DEFAULT = IMAGENET1K_V1


class ViT_L_16_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vit_l_16-852ce7e3.pth", 304326632, 79.662, 94.638, 61.555, 1161.023,
                       min_size=(224, 224), resize_size=242, recipe=_REF + "#vit_l_16")
    IMAGENET1K_SWAG_E2E_V1 = _w("vit_l_16_swag-4f3808c9.pth", 305174504, 88.064, 98.512, 361.986,
                                1164.258, min_size=(512, 512), crop_size=512, resize_size=512,
                                interpolation="bicubic", recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("vit_l_16_lc_swag-4d563306.pth", 304326632, 85.146, 97.422,
                                   61.555, 1161.023, min_size=(224, 224), resize_size=224,
                                   interpolation="bicubic", recipe=_SWAG_LINEAR,
                                   license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_V1


class ViT_L_32_Weights(WeightsEnum):
    IMAGENET1K_V1 = _w("vit_l_32-c7638314.pth", 306535400, 76.972, 93.07, 15.378, 1169.449,
                       min_size=(224, 224), recipe=_REF + "#vit_l_32")
    DEFAULT = IMAGENET1K_V1


class ViT_H_14_Weights(WeightsEnum):
    IMAGENET1K_SWAG_E2E_V1 = _w("vit_h_14_swag-80465313.pth", 633470440, 88.552, 98.694, 1016.717,
                                2416.643, min_size=(518, 518), crop_size=518, resize_size=518,
                                interpolation="bicubic", recipe=_SWAG, license=_SWAG_LICENSE)
    IMAGENET1K_SWAG_LINEAR_V1 = _w("vit_h_14_lc_swag-c1eb923e.pth", 632045800, 85.708, 97.73,
                                   167.295, 2411.209, min_size=(224, 224), resize_size=224,
                                   interpolation="bicubic", recipe=_SWAG_LINEAR,
                                   license=_SWAG_LICENSE)
    DEFAULT = IMAGENET1K_SWAG_E2E_V1
# fmt: on


@register_model()
@handle_legacy_interface(ViT_B_16_Weights.IMAGENET1K_V1)
def vit_b_16(
    *, weights: ViT_B_16_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VisionTransformer:
    """ViT-B/16: 12 layers, 12 heads, width 768, MLP 3072, 16 x 16 patches.

    Args:
        weights: ``ViT_B_16_Weights`` entry (or its name) to load (default None); the weights fix
            ``image_size`` (224, or 384 for the SWAG end-to-end ones).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``VisionTransformer`` (``image_size`` (224), ``num_classes``,
            ``dropout``, ``attention_dropout``, ``representation_size``, ...).

    Example:
        >>> model = vit_b_16(num_classes=10)
    """
    weights = ViT_B_16_Weights.verify(weights)
    return _vision_transformer(
        patch_size=16,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        mlp_dim=3072,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(ViT_B_32_Weights.IMAGENET1K_V1)
def vit_b_32(
    *, weights: ViT_B_32_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VisionTransformer:
    """ViT-B/32: 12 layers, 12 heads, width 768, MLP 3072 (arguments as ``vit_b_16``)."""
    weights = ViT_B_32_Weights.verify(weights)
    return _vision_transformer(
        patch_size=32,
        num_layers=12,
        num_heads=12,
        hidden_dim=768,
        mlp_dim=3072,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(ViT_L_16_Weights.IMAGENET1K_V1)
def vit_l_16(
    *, weights: ViT_L_16_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VisionTransformer:
    """ViT-L/16: 24 layers, 16 heads, width 1024, MLP 4096 (arguments as ``vit_b_16``)."""
    weights = ViT_L_16_Weights.verify(weights)
    return _vision_transformer(
        patch_size=16,
        num_layers=24,
        num_heads=16,
        hidden_dim=1024,
        mlp_dim=4096,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(ViT_L_32_Weights.IMAGENET1K_V1)
def vit_l_32(
    *, weights: ViT_L_32_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VisionTransformer:
    """ViT-L/32: 24 layers, 16 heads, width 1024, MLP 4096 (arguments as ``vit_b_16``)."""
    weights = ViT_L_32_Weights.verify(weights)
    return _vision_transformer(
        patch_size=32,
        num_layers=24,
        num_heads=16,
        hidden_dim=1024,
        mlp_dim=4096,
        weights=weights,
        progress=progress,
        **kwargs,
    )


@register_model()
@handle_legacy_interface(None)
def vit_h_14(
    *, weights: ViT_H_14_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VisionTransformer:
    """ViT-H/14: 32 layers, 16 heads, width 1280, MLP 5120 (arguments as ``vit_b_16``)."""
    weights = ViT_H_14_Weights.verify(weights)
    return _vision_transformer(
        patch_size=14,
        num_layers=32,
        num_heads=16,
        hidden_dim=1280,
        mlp_dim=5120,
        weights=weights,
        progress=progress,
        **kwargs,
    )


def interpolate_embeddings(
    image_size: int,
    patch_size: int,
    model_state: OrderedDict[str, Any],
    interpolation_mode: str = "bicubic",
    reset_heads: bool = False,
) -> OrderedDict[str, Any]:
    """A ViT state dict whose position embeddings are resized for ``image_size`` images
    (the class token's embedding kept), to load a checkpoint into a model built for another
    resolution.

    Args:
        image_size: the new model's image size.
        patch_size: the new model's patch size.
        model_state: the pretrained state dict (its ``encoder.pos_embedding`` replaced).
        interpolation_mode: ``F.interpolate``'s mode on the grid of embeddings (default
            "bicubic", with ``align_corners=True``).
        reset_heads: leave out the ``heads.*`` entries when resizing (default False).

    Example:
        >>> sd = interpolate_embeddings(384, 16, vit_b_16().state_dict())
        >>> vit_b_16(image_size=384).load_state_dict(sd)
    """
    pos = model_state["encoder.pos_embedding"]
    n, seq_length, hidden_dim = pos.shape
    if n != 1:
        raise ValueError(f"Unexpected position embedding shape: {pos.shape}")
    new_seq_length = (image_size // patch_size) ** 2 + 1
    if new_seq_length == seq_length:
        return model_state
    seq_length -= 1
    new_seq_length -= 1
    side = int(math.sqrt(seq_length))
    if side * side != seq_length:
        raise ValueError(
            f"seq_length is not a perfect square! Instead got seq_length_1d * seq_length_1d = "
            f"{side * side} and seq_length = {seq_length}"
        )
    # (1, 1 + s * s, d): the class token's row, then a (d, s, s) grid resized as an image
    grid = pos[:, 1:, :].permute(0, 2, 1).reshape(1, hidden_dim, side, side)
    new_side = image_size // patch_size
    grid = nn.functional.interpolate(
        grid, size=new_side, mode=interpolation_mode, align_corners=True
    )
    grid = grid.reshape(1, hidden_dim, new_seq_length).permute(0, 2, 1)
    model_state["encoder.pos_embedding"] = mg.cat([pos[:, :1, :], grid], dim=1)
    if reset_heads:
        model_state = OrderedDict(
            (k, v) for k, v in model_state.items() if not k.startswith("heads")
        )
    return model_state
