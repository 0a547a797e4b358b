"""S3D (Xie et al., "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy Trade-offs
in Video Classification", 2018): Inception blocks whose 3-d convolutions are separated
into a spatial and a temporal one, as torchvision builds it."""

# ruff: noqa: N801 (torchvision's class name S3D_Weights)
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import manygrad as mg

from .... import nn
from ...ops.misc import Conv3dNormActivation
from .._api import (
    WeightsEnum,
    _build,
    _ovewrite_named_param,
    handle_legacy_interface,
    register_model,
)
from ._presets import _kinetics_weights

__all__ = ["S3D", "S3D_Weights", "s3d"]


class TemporalSeparableConv(nn.Sequential):
    """A ``1 x k x k`` convolution (spatial stride) then a ``k x 1 x 1`` one (temporal
    stride), each followed by its norm and ReLU."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        kernel_size: int,
        stride: int,
        padding: int,
        norm_layer: Callable[..., nn.Module],
    ):
        super().__init__(
            Conv3dNormActivation(in_planes, out_planes, kernel_size=(1, kernel_size, kernel_size),
                                 stride=(1, stride, stride), padding=(0, padding, padding),
                                 bias=False, norm_layer=norm_layer),
            Conv3dNormActivation(out_planes, out_planes, kernel_size=(kernel_size, 1, 1),
                                 stride=(stride, 1, 1), padding=(padding, 0, 0), bias=False,
                                 norm_layer=norm_layer),
        )  # fmt: skip


class SepInceptionBlock3D(nn.Module):
    """Four branches concatenated along the channels: 1x1x1; 1x1x1 then separable 3x3x3
    (twice, of different widths); 3x3x3 max pooling then 1x1x1."""

    def __init__(
        self,
        in_planes: int,
        b0_out: int,
        b1_mid: int,
        b1_out: int,
        b2_mid: int,
        b2_out: int,
        b3_out: int,
        norm_layer: Callable[..., nn.Module],
    ):
        super().__init__()

        def unit(cin, cout):
            return Conv3dNormActivation(cin, cout, kernel_size=1, stride=1, norm_layer=norm_layer)

        def separable(cin, cout):
            return TemporalSeparableConv(cin, cout, kernel_size=3, stride=1, padding=1,
                                         norm_layer=norm_layer)  # fmt: skip

        self.branch0 = unit(in_planes, b0_out)
        self.branch1 = nn.Sequential(unit(in_planes, b1_mid), separable(b1_mid, b1_out))
        self.branch2 = nn.Sequential(unit(in_planes, b2_mid), separable(b2_mid, b2_out))
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=1, padding=1), unit(in_planes, b3_out)
        )

    def forward(self, x):
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return mg.cat([b(x) for b in branches], 1)


class S3D(nn.Module):
    """S3D: separable stem, max pooling, nine separable Inception blocks, a 2x7x7 average
    pool and a 1x1x1 convolution as the classifier, averaged over what the pool leaves.

    Args:
        num_classes: outputs (default 400).
        dropout: before the classifier (default 0.2).
        norm_layer: default ``BatchNorm3d`` with eps 0.001 and momentum 0.001.

    Example:
        >>> model = S3D(num_classes=10).eval()
        >>> model(mg.randn(1, 3, 16, 224, 224)).shape  # at least 14 frames of 224 x 224
        manygrad.Size([1, 10])
    """

    def __init__(
        self,
        num_classes: int = 400,
        dropout: float = 0.2,
        norm_layer: Callable[..., nn.Module] | None = None,
    ):
        super().__init__()
        if norm_layer is None:
            norm_layer = functools.partial(nn.BatchNorm3d, eps=0.001, momentum=0.001)
        block = functools.partial(SepInceptionBlock3D, norm_layer=norm_layer)
        self.features = nn.Sequential(
            TemporalSeparableConv(3, 64, 7, 2, 3, norm_layer),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            Conv3dNormActivation(64, 64, kernel_size=1, stride=1, norm_layer=norm_layer),
            TemporalSeparableConv(64, 192, 3, 1, 1, norm_layer),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            block(192, 64, 96, 128, 16, 32, 32),
            block(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool3d(kernel_size=(3, 3, 3), stride=(2, 2, 2), padding=(1, 1, 1)),
            block(480, 192, 96, 208, 16, 48, 64),
            block(512, 160, 112, 224, 24, 64, 64),
            block(512, 128, 128, 256, 24, 64, 64),
            block(512, 112, 144, 288, 32, 64, 64),
            block(528, 256, 160, 320, 32, 128, 128),
            nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 0, 0)),
            block(832, 256, 160, 320, 32, 128, 128),
            block(832, 384, 192, 384, 48, 128, 128),
        )
        self.avgpool = nn.AvgPool3d(kernel_size=(2, 7, 7), stride=1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Conv3d(1024, num_classes, kernel_size=1, stride=1, bias=True),
        )

    def forward(self, x):
        x = self.features(x)
        if x.shape[2] < 2 or x.shape[3] < 7 or x.shape[4] < 7:
            raise ValueError(
                f"S3D: the features of this clip, {tuple(x.shape[2:])} (T, H, W), are smaller "
                "than the 2x7x7 average pool; give clips of at least 14 frames of 224 x 224 "
                "(the weights' min_temporal_size and min_size)"
            )
        return self.classifier(self.avgpool(x)).mean(dim=(2, 3, 4))


class S3D_Weights(WeightsEnum):
    KINETICS400_V1 = _kinetics_weights(
        "https://download.pytorch.org/models/s3d-d76dad2f.pth",
        {"crop_size": (224, 224), "resize_size": (256, 256)},
        min_size=(224, 224),
        min_temporal_size=14,
        recipe="https://github.com/pytorch/vision/tree/main/references/video_classification#s3d",
        _docs=(
            "The weights aim to approximate the accuracy of the paper. The accuracies are "
            "estimated on clip-level with parameters `frame_rate=15`, `clips_per_video=1`, and "
            "`clip_len=128`."
        ),
        num_params=8320048,
        _metrics={"Kinetics-400": {"acc@1": 68.368, "acc@5": 88.05}},
        _ops=17.979,
        _file_size=31.972,
    )
    DEFAULT = KINETICS400_V1


@register_model()
@handle_legacy_interface(S3D_Weights.KINETICS400_V1)
def s3d(*, weights: S3D_Weights | None = None, progress: bool = True, **kwargs: Any) -> S3D:
    """S3D, the separable 3-d Inception network.

    Args:
        weights: ``S3D_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``S3D`` (``num_classes``, ``dropout``, ``norm_layer``).

    Example:
        >>> model = s3d(num_classes=10)
    """
    weights = S3D_Weights.verify(weights)
    if weights is not None:
        _ovewrite_named_param(kwargs, "num_classes", len(weights.meta["categories"]))
    return _build(lambda: S3D(**kwargs), weights, progress)
