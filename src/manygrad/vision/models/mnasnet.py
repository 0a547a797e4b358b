"""MNASNet (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for Mobile",
2018), the B1 variant, as torchvision builds it: width multipliers 0.5, 0.75, 1.0, 1.3."""

# ruff: noqa: N801 (torchvision's class names: MNASNet0_5_Weights, ...)
from __future__ import annotations

import warnings
from typing import Any

from ... import nn
from ._api import (
    WeightsEnum,
    _build,
    _imagenet_weights,
    _set_num_classes,
    handle_legacy_interface,
    register_model,
)

__all__ = [
    "MNASNet",
    "MNASNet0_5_Weights",
    "MNASNet0_75_Weights",
    "MNASNet1_0_Weights",
    "MNASNet1_3_Weights",
    "mnasnet0_5",
    "mnasnet0_75",
    "mnasnet1_0",
    "mnasnet1_3",
]

# NOTE: the paper's TensorFlow batch-norm momentum 0.9997 is PyTorch's 1 - 0.9997
_BN_MOMENTUM = 1 - 0.9997


class _InvertedResidual(nn.Module):
    """1x1 expand (ReLU), depthwise ``kernel_size`` (ReLU), 1x1 project; a residual when
    the shape is kept."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int,
        expansion_factor: int,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride should be 1 or 2 instead of {stride}")
        if kernel_size not in (3, 5):
            raise ValueError(f"kernel_size should be 3 or 5 instead of {kernel_size}")
        mid = in_ch * expansion_factor
        self.apply_residual = in_ch == out_ch and stride == 1
        self.layers = nn.Sequential(
            nn.Conv2d(in_ch, mid, 1, bias=False),
            nn.BatchNorm2d(mid, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, kernel_size, padding=kernel_size // 2, stride=stride,
                      groups=mid, bias=False),
            nn.BatchNorm2d(mid, momentum=bn_momentum),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch, momentum=bn_momentum),
        )  # fmt: skip

    def forward(self, x):
        if self.apply_residual:
            return self.layers(x) + x
        return self.layers(x)


def _stack(
    in_ch: int, out_ch: int, kernel_size: int, stride: int, exp_factor: int, repeats: int,
    bn_momentum: float,
) -> nn.Sequential:  # fmt: skip
    """``repeats`` inverted residuals; only the first changes the width and stride."""
    if repeats < 1:
        raise ValueError(f"repeats should be >= 1, instead got {repeats}")
    first = _InvertedResidual(in_ch, out_ch, kernel_size, stride, exp_factor, bn_momentum)
    rest = [
        _InvertedResidual(out_ch, out_ch, kernel_size, 1, exp_factor, bn_momentum)
        for _ in range(1, repeats)
    ]
    return nn.Sequential(first, *rest)


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """``val`` rounded to a multiple of ``divisor``, up unless that is within 10% of the
    lower multiple: (83, 8) -> 80, (84, 8) -> 88."""
    if not 0.0 < round_up_bias < 1.0:
        raise ValueError(
            f"round_up_bias should be greater than 0.0 and smaller than 1.0 instead of "
            f"{round_up_bias}"
        )
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    """The widths of the stem and the 6 stacks, scaled by ``alpha``."""
    depths = [32, 16, 24, 40, 80, 96, 192, 320]
    return [_round_to_multiple_of(depth * alpha, 8) for depth in depths]


def _stem(d0: int, d1: int) -> list[nn.Module]:
    return [
        nn.Conv2d(3, d0, 3, padding=1, stride=2, bias=False),
        nn.BatchNorm2d(d0, momentum=_BN_MOMENTUM),
        nn.ReLU(inplace=True),
        # depthwise separable, no skip
        nn.Conv2d(d0, d0, 3, padding=1, stride=1, groups=d0, bias=False),
        nn.BatchNorm2d(d0, momentum=_BN_MOMENTUM),
        nn.ReLU(inplace=True),
        nn.Conv2d(d0, d1, 1, padding=0, stride=1, bias=False),
        nn.BatchNorm2d(d1, momentum=_BN_MOMENTUM),
    ]


class MNASNet(nn.Module):
    """MNASNet (the B1 variant) with width multiplier ``alpha``.

    Args:
        alpha: width multiplier (> 0).
        num_classes: outputs (default 1000).
        dropout: before the classifier (default 0.2).

    Example:
        >>> MNASNet(1.0, num_classes=10)(mg.rand(1, 3, 64, 64)).shape
        (1, 10)
    """

    # NOTE: version 2 scales the stem with alpha too; a version-1 checkpoint (the
    # pretrained 0.5) loads into the fixed 32/16-wide stem that _load_from_state_dict puts back
    _version = 2

    def __init__(self, alpha: float, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        if alpha <= 0.0:
            raise ValueError(f"alpha should be greater than 0.0 instead of {alpha}")
        self.alpha = alpha
        self.num_classes = num_classes
        d = _get_depths(alpha)
        layers = [
            *_stem(d[0], d[1]),
            _stack(d[1], d[2], 3, 2, 3, 3, _BN_MOMENTUM),
            _stack(d[2], d[3], 5, 2, 3, 3, _BN_MOMENTUM),
            _stack(d[3], d[4], 5, 2, 6, 3, _BN_MOMENTUM),
            _stack(d[4], d[5], 3, 1, 6, 2, _BN_MOMENTUM),
            _stack(d[5], d[6], 5, 2, 6, 4, _BN_MOMENTUM),
            _stack(d[6], d[7], 3, 1, 6, 1, _BN_MOMENTUM),
            nn.Conv2d(d[7], 1280, 1, padding=0, stride=1, bias=False),
            nn.BatchNorm2d(1280, momentum=_BN_MOMENTUM),
            nn.ReLU(inplace=True),
        ]
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout, inplace=True), nn.Linear(1280, num_classes)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, mode="fan_out", nonlinearity="sigmoid")
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.layers(x).mean([2, 3]))

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs,
    ):  # fmt: skip
        version = local_metadata.get("version", None)
        if version not in (1, 2):
            raise ValueError(
                f"MNASNet: version should be set to 1 or 2 instead of {version} (load a state "
                "dict saved by state_dict(), which records the version in its _metadata)"
            )
        if version == 1 and self.alpha != 1.0:
            # the stem of version 1 was not scaled: rebuild it so that the checkpoint fits
            depths = _get_depths(self.alpha)
            v1_stem = [*_stem(32, 16), _stack(16, depths[2], 3, 2, 3, 3, _BN_MOMENTUM)]
            for idx, layer in enumerate(v1_stem):
                self.layers[idx] = layer
            self._version = 1
            warnings.warn(
                "A new version of MNASNet model has been implemented. Your checkpoint was saved "
                "using the previous version. This checkpoint will load and work as before, but "
                "you may want to upgrade by training a newer model or transfer learning from an "
                "updated ImageNet checkpoint.",
                UserWarning,
                stacklevel=2,
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


def _mnasnet(alpha: float, weights, progress: bool, **kwargs: Any) -> MNASNet:
    _set_num_classes(kwargs, weights)
    return _build(lambda: MNASNet(alpha, **kwargs), weights, progress)


_URL = "https://download.pytorch.org/models/"
_RECIPE = "https://github.com/1e100/mnasnet_trainer"
_NEW_RECIPE = "https://github.com/pytorch/vision/pull/6019"


class MNASNet0_5_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mnasnet0.5_top1_67.823-3ffadce67e.pth",
        2218512,
        67.734,
        87.49,
        recipe=_RECIPE,
        _ops=0.104,
        _file_size=8.591,
    )
    DEFAULT = IMAGENET1K_V1


class MNASNet0_75_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mnasnet0_75-7090bc5f.pth",
        3170208,
        71.18,
        90.496,
        resize_size=232,
        recipe=_NEW_RECIPE,
        _ops=0.215,
        _file_size=12.303,
    )
    DEFAULT = IMAGENET1K_V1


class MNASNet1_0_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mnasnet1.0_top1_73.512-f206786ef8.pth",
        4383312,
        73.456,
        91.51,
        recipe=_RECIPE,
        _ops=0.314,
        _file_size=16.915,
    )
    DEFAULT = IMAGENET1K_V1


class MNASNet1_3_Weights(WeightsEnum):
    IMAGENET1K_V1 = _imagenet_weights(
        _URL + "mnasnet1_3-a4c69d6f.pth",
        6282256,
        76.506,
        93.522,
        resize_size=232,
        recipe=_NEW_RECIPE,
        _ops=0.526,
        _file_size=24.246,
    )
    DEFAULT = IMAGENET1K_V1


@register_model()
@handle_legacy_interface(MNASNet0_5_Weights.IMAGENET1K_V1)
def mnasnet0_5(
    *, weights: MNASNet0_5_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MNASNet:
    """MNASNet with depth multiplier 0.5.

    Args:
        weights: ``MNASNet0_5_Weights`` entry (or its name) to load (default None).
        progress: show a download progress bar (default True).
        **kwargs: passed to ``MNASNet`` (``num_classes``, ``dropout``).
    """
    weights = MNASNet0_5_Weights.verify(weights)
    return _mnasnet(0.5, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(MNASNet0_75_Weights.IMAGENET1K_V1)
def mnasnet0_75(
    *, weights: MNASNet0_75_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MNASNet:
    """MNASNet with depth multiplier 0.75 (arguments as ``mnasnet0_5``)."""
    weights = MNASNet0_75_Weights.verify(weights)
    return _mnasnet(0.75, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(MNASNet1_0_Weights.IMAGENET1K_V1)
def mnasnet1_0(
    *, weights: MNASNet1_0_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MNASNet:
    """MNASNet with depth multiplier 1.0 (arguments as ``mnasnet0_5``)."""
    weights = MNASNet1_0_Weights.verify(weights)
    return _mnasnet(1.0, weights, progress, **kwargs)


@register_model()
@handle_legacy_interface(MNASNet1_3_Weights.IMAGENET1K_V1)
def mnasnet1_3(
    *, weights: MNASNet1_3_Weights | None = None, progress: bool = True, **kwargs: Any
) -> MNASNet:
    """MNASNet with depth multiplier 1.3 (arguments as ``mnasnet0_5``)."""
    weights = MNASNet1_3_Weights.verify(weights)
    return _mnasnet(1.3, weights, progress, **kwargs)
