"""Multi-scale RoIAlign over a feature pyramid (torchvision.ops.poolers): each box pooled
from the level its size picks (Lin et al., 2017, FPN, eq. 1)."""

from __future__ import annotations

import math

import manygrad as mg
from manygrad import Tensor, nn

from ._utils import convert_boxes_to_roi_format
from .boxes import box_area
from .roi_align import roi_align


class LevelMapper:
    """The pyramid level of each box: ``floor(canonical_level + log2(sqrt(area) /
    canonical_scale) + eps)`` clamped to [k_min, k_max], counted from k_min.

    Example: ``LevelMapper(2, 5)([boxes])`` -> int64 ``Tensor[K]`` in [0, 3].
    """

    def __init__(
        self,
        k_min: int,
        k_max: int,
        canonical_scale: int = 224,
        canonical_level: int = 4,
        eps: float = 1e-6,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.s0 = canonical_scale
        self.lvl0 = canonical_level
        self.eps = eps

    def __call__(self, boxlists: list[Tensor]) -> Tensor:
        s = mg.sqrt(mg.cat([box_area(b) for b in boxlists]))
        eps = mg.tensor(self.eps, dtype=s.dtype, device=s.device)
        levels = mg.floor(self.lvl0 + mg.log2(s / self.s0) + eps)
        levels = mg.clamp(levels, min=self.k_min, max=self.k_max)
        return levels.to(mg.int64) - self.k_min


def initLevelMapper(  # noqa: N802 - torchvision's name
    k_min: int, k_max: int, canonical_scale: int = 224, canonical_level: int = 4, eps=1e-6
) -> LevelMapper:
    return LevelMapper(k_min, k_max, canonical_scale, canonical_level, eps)


def _infer_scale(feature: Tensor, original_size) -> float:
    """The power of two nearest to the feature map's size over the image's (first axis)."""
    approx = float(feature.shape[-2]) / float(original_size[0])
    # NOTE: float32 log2, rounded half to even, as torch.tensor(approx).log2().round()
    return 2.0 ** float(mg.tensor(approx).log2().round())


def _setup_scales(features, image_shapes, canonical_scale, canonical_level):
    if not image_shapes:
        raise ValueError("MultiScaleRoIAlign: image_shapes should not be empty")
    original = (max(s[0] for s in image_shapes), max(s[1] for s in image_shapes))
    scales = [_infer_scale(f, original) for f in features]
    lvl_min = -math.log2(scales[0])
    lvl_max = -math.log2(scales[-1])
    mapper = initLevelMapper(
        int(lvl_min), int(lvl_max), canonical_scale=canonical_scale, canonical_level=canonical_level
    )
    return scales, mapper


def _filter_input(x: dict, featmap_names: list[str]) -> list[Tensor]:
    return [v for k, v in x.items() if k in featmap_names]


def _multiscale_roi_align(x_filtered, boxes, output_size, sampling_ratio, scales, mapper):
    if scales is None or mapper is None:
        raise ValueError("MultiScaleRoIAlign: scales and mapper should not be None")
    rois = convert_boxes_to_roi_format(boxes)
    if len(x_filtered) == 1:
        return roi_align(x_filtered[0], rois, output_size, scales[0], sampling_ratio)
    levels = mapper(boxes)
    first = x_filtered[0]
    result = mg.zeros(
        (rois.shape[0], first.shape[1]) + tuple(output_size), dtype=first.dtype, device=first.device
    )
    for level, (feature, scale) in enumerate(zip(x_filtered, scales, strict=True)):
        idx = mg.where(levels == level)[0]
        pooled = roi_align(feature, rois[idx], output_size, scale, sampling_ratio)
        result[idx] = pooled.to(result.dtype)
    return result


class MultiScaleRoIAlign(nn.Module):
    """RoIAlign over several feature maps: each box is pooled from the level its size
    picks, at that level's scale (inferred from the image and feature sizes on the first
    call).

    Args:
        featmap_names: the keys of the feature maps to pool from.
        output_size: (height, width) of the pooled output, or one int.
        sampling_ratio: as :func:`roi_align`'s.
        canonical_scale: box side that maps to ``canonical_level``. Default 224.
        canonical_level: default 4.

    Example: ``MultiScaleRoIAlign(["0", "1"], 7, 2)(features, [boxes], [(512, 512)])``.
    """

    def __init__(
        self,
        featmap_names: list[str],
        output_size: int | tuple[int, int] | list[int],
        sampling_ratio: int,
        *,
        canonical_scale: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.featmap_names = featmap_names
        self.sampling_ratio = sampling_ratio
        self.output_size = tuple(output_size)
        self.scales = None
        self.map_levels = None
        self.canonical_scale = canonical_scale
        self.canonical_level = canonical_level

    def forward(self, x: dict, boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        x_filtered = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                x_filtered, image_shapes, self.canonical_scale, self.canonical_level
            )
        return _multiscale_roi_align(
            x_filtered, boxes, self.output_size, self.sampling_ratio, self.scales, self.map_levels
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(featmap_names={self.featmap_names}, "
            f"output_size={self.output_size}, sampling_ratio={self.sampling_ratio})"
        )
