"""Video ResNets (Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action
Recognition", 2018): R3D (full 3x3x3 convolutions), MC3 (3-d convolutions in the first
stage only, 2-d ones after) and R(2+1)D (each 3x3x3 convolution split into a spatial 1x3x3
and a temporal 3x1x1 one), as torchvision builds them, so its Kinetics-400 checkpoints
load."""

# ruff: noqa: N801 (torchvision's class names: R3D_18_Weights, ...)
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .... import nn
from .._api import (
    WeightsEnum,
    _build,
    _ovewrite_named_param,
    handle_legacy_interface,
    register_model,
)
from ._presets import _kinetics_weights

__all__ = [
    "VideoResNet",
    "R3D_18_Weights",
    "MC3_18_Weights",
    "R2Plus1D_18_Weights",
    "r3d_18",
    "mc3_18",
    "r2plus1d_18",
]


class Conv3DSimple(nn.Conv3d):
    """A 3x3x3 convolution without bias (``midplanes`` is unused: the R(2+1)D signature)."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        midplanes: int | None = None,
        stride: int = 1,
        padding: int = 1,
    ):
        super().__init__(
            in_channels=in_planes,
            out_channels=out_planes,
            kernel_size=(3, 3, 3),
            stride=stride,
            padding=padding,
            bias=False,
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv2Plus1D(nn.Sequential):
    """A 1x3x3 spatial convolution to ``midplanes``, norm, ReLU, then a 3x1x1 temporal one:
    as many parameters as a 3x3x3 convolution, one more nonlinearity."""

    def __init__(
        self, in_planes: int, out_planes: int, midplanes: int, stride: int = 1, padding: int = 1
    ):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                      padding=(0, padding, padding), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                      padding=(padding, 0, 0), bias=False),
        )  # fmt: skip

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return stride, stride, stride


class Conv3DNoTemporal(nn.Conv3d):
    """A 1x3x3 convolution without bias: 2-d in each frame, strided in space only."""

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        midplanes: int | None = None,
        stride: int = 1,
        padding: int = 1,
    ):
        super().__init__(
            in_channels=in_planes,
            out_channels=out_planes,
            kernel_size=(1, 3, 3),
            stride=(1, stride, stride),
            padding=(0, padding, padding),
            bias=False,
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return 1, stride, stride


def _midplanes(inplanes: int, planes: int) -> int:
    # R(2+1)D's width: the split convolution has the parameters of a 3x3x3 one
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


class BasicBlock(nn.Module):
    """Two conv-norm pairs (``conv1`` with a ReLU) and a shortcut."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_builder: Callable[..., nn.Module],
        stride: int = 1,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        midplanes = _midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            conv_builder(inplanes, planes, midplanes, stride),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.conv2(self.conv1(x))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1x1x1 reduce, ``conv_builder`` (strided), 1x1x1 expand by 4, and a shortcut."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_builder: Callable[..., nn.Module],
        stride: int = 1,
        downsample: nn.Module | None = None,
    ):
        super().__init__()
        midplanes = _midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(
            nn.Conv3d(inplanes, planes, kernel_size=1, bias=False),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            conv_builder(planes, planes, midplanes, stride),
            nn.BatchNorm3d(planes),
            nn.ReLU(inplace=True),
        )
        self.conv3 = nn.Sequential(
            nn.Conv3d(planes, planes * self.expansion, kernel_size=1, bias=False),
            nn.BatchNorm3d(planes * self.expansion),
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        out = self.conv3(self.conv2(self.conv1(x)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class BasicStem(nn.Sequential):
    """The R3D / MC3 stem: a 3x7x7 convolution (spatial stride 2), norm, ReLU."""

    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 64, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3),
                      bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )  # fmt: skip


class R2Plus1dStem(nn.Sequential):
    """The R(2+1)D stem: the 3x7x7 convolution split into 1x7x7 (to 45 channels) and 3x1x1."""

    def __init__(self):
        super().__init__(
            nn.Conv3d(3, 45, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3),
                      bias=False),
            nn.BatchNorm3d(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0),
                      bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )  # fmt: skip


class VideoResNet(nn.Module):
    """A video ResNet: ``stem``, four stages of ``block`` (each stage's convolutions from
    its entry of ``conv_makers``), global average pooling over time and space, ``fc``.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        conv_makers: four convolution classes (``Conv3DSimple``, ``Conv3DNoTemporal``,
            ``Conv2Plus1D``), one per stage.
        layers: blocks per stage (4 ints).
        stem: builds the stem (``BasicStem``, ``R2Plus1dStem``).
        num_classes: outputs (default 400, Kinetics-400's classes).
        zero_init_residual: start each Bottleneck's last norm at zero (default False).

    Example:
        >>> model = VideoResNet(BasicBlock, [Conv3DSimple] * 4, [1, 1, 1, 1], BasicStem, 10)
        >>> model(mg.randn(1, 3, 2, 32, 32)).shape  # (N, C, T, H, W)
        manygrad.Size([1, 10])
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        conv_makers: Sequence[type[Conv3DSimple | Conv3DNoTemporal | Conv2Plus1D]],
        layers: list[int],
        stem: Callable[..., nn.Module],
        num_classes: int = 400,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if len(conv_makers) != 4 or len(layers) != 4:
            raise ValueError(
                f"VideoResNet: conv_makers and layers need one entry per stage (4 each), got "
                f"{len(conv_makers)} and {len(layers)}"
            )
        self.inplanes = 64
        self.stem = stem()
        self.layer1 = self._make_layer(block, conv_makers[0], 64, layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            # NOTE: torchvision reaches for a ``bn3`` that its Bottleneck does not have (an
            # AttributeError); the last norm is ``conv3[1]``. Its BasicBlocks stay as they are.
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.conv3[1].weight, 0)

    def _make_layer(
        self,
        block: type[BasicBlock | Bottleneck],
        conv_builder: type[Conv3DSimple | Conv3DNoTemporal | Conv2Plus1D],
        planes: int,
        blocks: int,
        stride: int = 1,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            ds_stride = conv_builder.get_downsample_stride(stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, planes * block.expansion, kernel_size=1,
                          stride=ds_stride, bias=False),
                nn.BatchNorm3d(planes * block.expansion),
            )  # fmt: skip
        layers = [block(self.inplanes, planes, conv_builder, stride, downsample)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, conv_builder))
        return nn.Sequential(*layers)

    def forward(self, x):
        if x.ndim != 5:
            raise ValueError(
                f"VideoResNet: expected a (N, C, T, H, W) clip, got shape {tuple(x.shape)}; "
                "VideoClassification (weights.transforms()) turns (N, T, C, H, W) frames into one"
            )
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.avgpool(x).flatten(1))


def _video_resnet(
    block: type[BasicBlock | Bottleneck],
    conv_makers: Sequence[type[Conv3DSimple | Conv3DNoTemporal | Conv2Plus1D]],
    layers: list[int],
    stem: Callable[..., nn.Module],
    weights: WeightsEnum | None,
    progress: bool,
    **kwargs: Any,
) -> VideoResNet:
    if weights is not None:
        _ovewrite_named_param(kwargs, "num_classes", len(weights.meta["categories"]))
    return _build(
        lambda: VideoResNet(block, conv_makers, layers, stem, **kwargs), weights, progress
    )


_RESNET_META = {
    "min_size": (1, 1),
    "recipe": "https://github.com/pytorch/vision/tree/main/references/video_classification",
    "_docs": (
        "The weights reproduce closely the accuracy of the paper. The accuracies are estimated "
        "on video-level with parameters `frame_rate=15`, `clips_per_video=5`, and `clip_len=16`."
    ),
}
_PRESET_112 = {"crop_size": (112, 112), "resize_size": (128, 171)}


def _resnet_weights(url: str, num_params: int, acc1: float, acc5: float, ops: float, size: float):
    return _kinetics_weights(
        "https://download.pytorch.org/models/" + url, _PRESET_112, **_RESNET_META,
        num_params=num_params, _metrics={"Kinetics-400": {"acc@1": acc1, "acc@5": acc5}},
        _ops=ops, _file_size=size,
    )  # fmt: skip


class R3D_18_Weights(WeightsEnum):
    KINETICS400_V1 = _resnet_weights("r3d_18-b3b3357e.pth", 33371472, 63.2, 83.479, 40.697,
                                     127.359)  # fmt: skip
    DEFAULT = KINETICS400_V1


class MC3_18_Weights(WeightsEnum):
    KINETICS400_V1 = _resnet_weights("mc3_18-a90a0ba3.pth", 11695440, 63.96, 84.13, 43.343,
                                     44.672)  # fmt: skip
    DEFAULT = KINETICS400_V1


class R2Plus1D_18_Weights(WeightsEnum):
    KINETICS400_V1 = _resnet_weights("r2plus1d_18-91a641e6.pth", 31505325, 67.463, 86.175,
                                     40.519, 120.318)  # fmt: skip
    DEFAULT = KINETICS400_V1


@register_model()
@handle_legacy_interface(R3D_18_Weights.KINETICS400_V1)
def r3d_18(
    *, weights: R3D_18_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VideoResNet:
    """R3D-18: an 18-layer ResNet of 3x3x3 convolutions for (N, 3, T, H, W) clips.

    Args:
        weights: ``R3D_18_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``VideoResNet`` (``num_classes``, ``zero_init_residual``).

    Example:
        >>> model = r3d_18(num_classes=10)
    """
    weights = R3D_18_Weights.verify(weights)
    return _video_resnet(BasicBlock, [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, weights,
                         progress, **kwargs)  # fmt: skip


@register_model()
@handle_legacy_interface(MC3_18_Weights.KINETICS400_V1)
def mc3_18(
    *, weights: MC3_18_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VideoResNet:
    """MC3-18: 3x3x3 convolutions in the first stage, 1x3x3 ones in the other three.

    Args:
        weights: ``MC3_18_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``VideoResNet``.

    Example:
        >>> model = mc3_18(num_classes=10)
    """
    weights = MC3_18_Weights.verify(weights)
    conv_makers = [Conv3DSimple] + [Conv3DNoTemporal] * 3
    return _video_resnet(BasicBlock, conv_makers, [2, 2, 2, 2], BasicStem, weights, progress,
                         **kwargs)  # fmt: skip


@register_model()
@handle_legacy_interface(R2Plus1D_18_Weights.KINETICS400_V1)
def r2plus1d_18(
    *, weights: R2Plus1D_18_Weights | None = None, progress: bool = True, **kwargs: Any
) -> VideoResNet:
    """R(2+1)D-18: each 3x3x3 convolution split into a spatial and a temporal one.

    Args:
        weights: ``R2Plus1D_18_Weights`` (Kinetics-400), its name, or None (default: random).
        progress: show the download's progress (default True).
        **kwargs: for ``VideoResNet``.

    Example:
        >>> model = r2plus1d_18(num_classes=10)
    """
    weights = R2Plus1D_18_Weights.verify(weights)
    return _video_resnet(BasicBlock, [Conv2Plus1D] * 4, [2, 2, 2, 2], R2Plus1dStem, weights,
                         progress, **kwargs)  # fmt: skip
