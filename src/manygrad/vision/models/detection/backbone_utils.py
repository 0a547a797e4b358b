"""Detection backbones (torchvision.models.detection.backbone_utils): a classification
network cut into feature stages, its early layers frozen, a Feature Pyramid Network on
top."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from manygrad import nn

from ... import models as _models
from ...ops import FeaturePyramidNetwork, FrozenBatchNorm2d
from ...ops.feature_pyramid_network import ExtraFPNBlock, LastLevelMaxPool
from .._api import WeightsEnum, get_model_weights
from ..segmentation._utils import IntermediateLayerGetter, handle_legacy_interface

__all__ = [
    "BackboneWithFPN",
    "IntermediateLayerGetter",
    "resnet_fpn_backbone",
    "mobilenet_backbone",
]


class BackboneWithFPN(nn.Module):
    """``backbone``'s children up to the ``return_layers`` (an ``IntermediateLayerGetter``)
    and an FPN on their outputs.

    Args:
        backbone: the network to cut.
        return_layers: ``{child name: output name}``.
        in_channels_list: channels of those outputs, in order.
        out_channels: the FPN's channels (also ``self.out_channels``).
        extra_blocks: extra FPN levels (default ``LastLevelMaxPool()``).
        norm_layer: a norm in the FPN (default None).

    Example:
        >>> m = BackboneWithFPN(resnet18(), {"layer3": "0", "layer4": "1"}, [256, 512], 64)
        >>> [(k, v.shape[1:]) for k, v in m(mg.rand(1, 3, 64, 64)).items()][0]
        ('0', manygrad.Size([64, 4, 4]))
    """

    def __init__(
        self,
        backbone: nn.Module,
        return_layers: dict[str, str],
        in_channels_list: list[int],
        out_channels: int,
        extra_blocks: ExtraFPNBlock | None = None,
        norm_layer: Callable[..., nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if extra_blocks is None:
            extra_blocks = LastLevelMaxPool()
        self.body = IntermediateLayerGetter(backbone, return_layers=return_layers)
        self.fpn = FeaturePyramidNetwork(
            in_channels_list=in_channels_list,
            out_channels=out_channels,
            extra_blocks=extra_blocks,
            norm_layer=norm_layer,
        )
        self.out_channels = out_channels

    def forward(self, x):
        return self.fpn(self.body(x))


def _default_weights(kwargs: dict) -> WeightsEnum:
    """For ``pretrained=True``: the ``IMAGENET1K_V1`` entry of the named backbone."""
    return get_model_weights(kwargs["backbone_name"])["IMAGENET1K_V1"]


def _builder(name: str, family: tuple[str, ...]) -> Callable:
    if name not in family:
        raise ValueError(f"backbone_name {name!r} is not one of {list(family)}")
    return getattr(_models, name)


_RESNETS = (
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2",
)  # fmt: skip
_MOBILENETS = ("mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small")


@handle_legacy_interface(weights=("pretrained", _default_weights))
def resnet_fpn_backbone(
    *,
    backbone_name: str,
    weights: WeightsEnum | None,
    norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d,
    trainable_layers: int = 3,
    returned_layers: list[int] | None = None,
    extra_blocks: ExtraFPNBlock | None = None,
) -> BackboneWithFPN:
    """A ResNet with an FPN (256 channels) on the stages in ``returned_layers``; the stages
    before the last ``trainable_layers`` are frozen.

    Args:
        backbone_name: ``"resnet18"`` ... ``"wide_resnet101_2"``.
        weights: the ResNet's weights entry, or None.
        norm_layer: default ``FrozenBatchNorm2d``.
        trainable_layers: 0 to 5 (5: all trainable; default 3).
        returned_layers: stages 1-4 fed to the FPN (default all).
        extra_blocks: extra FPN levels (default ``LastLevelMaxPool()``).

    Example:
        >>> m = resnet_fpn_backbone(backbone_name="resnet18", weights=None)
        >>> list(m(mg.rand(1, 3, 64, 64)))
        ['0', '1', '2', '3', 'pool']
    """
    backbone = _builder(backbone_name, _RESNETS)(weights=weights, norm_layer=norm_layer)
    return _resnet_fpn_extractor(backbone, trainable_layers, returned_layers, extra_blocks)


def _freeze(params) -> None:
    for p in params:
        p.requires_grad_(False)


def _resnet_fpn_extractor(
    backbone,
    trainable_layers: int,
    returned_layers: list[int] | None = None,
    extra_blocks: ExtraFPNBlock | None = None,
    norm_layer: Callable[..., nn.Module] | None = None,
) -> BackboneWithFPN:
    if trainable_layers < 0 or trainable_layers > 5:
        raise ValueError(f"Trainable layers should be in the range [0,5], got {trainable_layers}")
    train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        train.append("bn1")
    _freeze(p for n, p in backbone.named_parameters() if not any(n.startswith(t) for t in train))
    if extra_blocks is None:
        extra_blocks = LastLevelMaxPool()
    if returned_layers is None:
        returned_layers = [1, 2, 3, 4]
    if min(returned_layers) <= 0 or max(returned_layers) >= 5:
        raise ValueError(f"Each returned layer should be in the range [1,4]. Got {returned_layers}")
    return_layers = {f"layer{k}": str(v) for v, k in enumerate(returned_layers)}
    stage2 = backbone.inplanes // 8
    in_channels_list = [stage2 * 2 ** (i - 1) for i in returned_layers]
    return BackboneWithFPN(
        backbone, return_layers, in_channels_list, 256, extra_blocks=extra_blocks,
        norm_layer=norm_layer,
    )  # fmt: skip


def _validate_trainable_layers(
    is_trained: bool, trainable_backbone_layers: int | None, max_value: int, default_value: int
) -> int:
    """The backbone layers to train: all without pretrained weights (warning when the
    caller asked otherwise), else the caller's value or ``default_value``."""
    if not is_trained:
        if trainable_backbone_layers is not None:
            warnings.warn(
                "Changing trainable_backbone_layers has no effect if neither pretrained nor "
                "pretrained_backbone have been set to True, falling back to "
                f"trainable_backbone_layers={max_value} so that all layers are trainable",
                stacklevel=3,
            )
        trainable_backbone_layers = max_value
    if trainable_backbone_layers is None:
        trainable_backbone_layers = default_value
    if trainable_backbone_layers < 0 or trainable_backbone_layers > max_value:
        raise ValueError(
            f"Trainable backbone layers should be in the range [0,{max_value}], got "
            f"{trainable_backbone_layers} "
        )
    return trainable_backbone_layers


@handle_legacy_interface(weights=("pretrained", _default_weights))
def mobilenet_backbone(
    *,
    backbone_name: str,
    weights: WeightsEnum | None,
    fpn: bool,
    norm_layer: Callable[..., nn.Module] = FrozenBatchNorm2d,
    trainable_layers: int = 2,
    returned_layers: list[int] | None = None,
    extra_blocks: ExtraFPNBlock | None = None,
) -> nn.Module:
    """A MobileNet V2 / V3 as a detection backbone: with an FPN (256 channels) on its last
    stages, or its features and a 1x1 conv to 256 channels.

    Args:
        backbone_name: ``"mobilenet_v2"``, ``"mobilenet_v3_large"`` or
            ``"mobilenet_v3_small"``.
        weights: the MobileNet's weights entry, or None.
        fpn: add an FPN.
        norm_layer: default ``FrozenBatchNorm2d``.
        trainable_layers: stages trained, counted from the last (default 2).
        returned_layers: stage indices fed to the FPN (default the last two).
        extra_blocks: extra FPN levels (default ``LastLevelMaxPool()``).

    Example:
        >>> m = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True)
    """
    backbone = _builder(backbone_name, _MOBILENETS)(weights=weights, norm_layer=norm_layer)
    return _mobilenet_extractor(backbone, fpn, trainable_layers, returned_layers, extra_blocks)


def _mobilenet_extractor(
    backbone,
    fpn: bool,
    trainable_layers: int,
    returned_layers: list[int] | None = None,
    extra_blocks: ExtraFPNBlock | None = None,
    norm_layer: Callable[..., nn.Module] | None = None,
) -> nn.Module:
    features = backbone.features
    strided = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
    stage_indices = [0, *strided, len(features) - 1]
    num_stages = len(stage_indices)
    if trainable_layers < 0 or trainable_layers > num_stages:
        raise ValueError(
            f"Trainable layers should be in the range [0,{num_stages}], got {trainable_layers} "
        )
    freeze_before = (
        len(features) if trainable_layers == 0 else stage_indices[num_stages - trainable_layers]
    )
    for b in features[:freeze_before]:
        _freeze(b.parameters())
    out_channels = 256
    if fpn:
        if extra_blocks is None:
            extra_blocks = LastLevelMaxPool()
        if returned_layers is None:
            returned_layers = [num_stages - 2, num_stages - 1]
        if min(returned_layers) < 0 or max(returned_layers) >= num_stages:
            raise ValueError(
                f"Each returned layer should be in the range [0,{num_stages - 1}], got "
                f"{returned_layers} "
            )
        return_layers = {f"{stage_indices[k]}": str(v) for v, k in enumerate(returned_layers)}
        in_channels_list = [features[stage_indices[i]].out_channels for i in returned_layers]
        return BackboneWithFPN(
            features, return_layers, in_channels_list, out_channels, extra_blocks=extra_blocks,
            norm_layer=norm_layer,
        )  # fmt: skip
    m = nn.Sequential(features, nn.Conv2d(features[-1].out_channels, out_channels, 1))
    m.out_channels = out_channels
    return m
