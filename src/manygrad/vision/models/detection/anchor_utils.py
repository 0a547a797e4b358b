"""Anchors (torchvision.models.detection.anchor_utils): ``AnchorGenerator`` tiles boxes
of several sizes and aspect ratios over each feature map (R-CNN, RetinaNet, FCOS);
``DefaultBoxGenerator`` tiles SSD's default boxes."""

from __future__ import annotations

import math

import manygrad as mg
from manygrad import Tensor, nn

from .image_list import ImageList


class AnchorGenerator(nn.Module):
    """Anchors for a set of feature maps: per map ``i``, ``len(sizes[i]) *
    len(aspect_ratios[i])`` boxes centred on every location (aspect ratio = height /
    width), spaced by the map's stride in the padded image.

    Args:
        sizes: per feature map, the anchor sides (default ``((128, 256, 512),)``).
        aspect_ratios: per feature map, the ratios (default ``((0.5, 1.0, 2.0),)``).

    Example:
        >>> gen = AnchorGenerator(((32,), (64,)), ((0.5, 1.0, 2.0),) * 2)
        >>> anchors = gen(image_list, [p2, p3])  # one Tensor[sum(H*W*3), 4] per image
    """

    def __init__(self, sizes=((128, 256, 512),), aspect_ratios=((0.5, 1.0, 2.0),)):
        super().__init__()
        if not isinstance(sizes[0], (list, tuple)):
            sizes = tuple((s,) for s in sizes)
        if not isinstance(aspect_ratios[0], (list, tuple)):
            aspect_ratios = (aspect_ratios,) * len(sizes)
        self.sizes = sizes
        self.aspect_ratios = aspect_ratios
        self.cell_anchors = [self.generate_anchors(s, a) for s, a in zip(sizes, aspect_ratios)]

    def generate_anchors(self, scales, aspect_ratios, dtype=mg.float32, device="cpu") -> Tensor:
        """The anchors of one location, centred on 0, rounded: ``Tensor[A, 4]``."""
        # NOTE: on the CPU even under a meta default device (the builders load weights
        # into models built on meta): they are no parameters, and forward moves them
        scales = mg.as_tensor(scales, dtype=dtype, device=device)
        aspect_ratios = mg.as_tensor(aspect_ratios, dtype=dtype, device=device)
        h_ratios = mg.sqrt(aspect_ratios)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        return (mg.stack([-ws, -hs, ws, hs], dim=1) / 2).round()

    def set_cell_anchors(self, dtype, device) -> None:
        self.cell_anchors = [a.to(dtype=dtype, device=device) for a in self.cell_anchors]

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(a) for s, a in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes: list, strides: list) -> list[Tensor]:
        """Per feature map, its cell anchors shifted to every location (row-major, the
        anchors of one location together)."""
        if not len(grid_sizes) == len(strides) == len(self.cell_anchors):
            raise ValueError(
                f"AnchorGenerator: {len(grid_sizes)} feature maps but {len(self.cell_anchors)} "
                "sets of sizes / aspect ratios; give one tuple of sizes and of aspect ratios "
                "per feature map"
            )
        anchors = []
        for (gh, gw), (sh, sw), base in zip(grid_sizes, strides, self.cell_anchors):
            device = base.device
            shifts_x = mg.arange(0, gw, dtype=mg.int32, device=device) * sw
            shifts_y = mg.arange(0, gh, dtype=mg.int32, device=device) * sh
            shift_y, shift_x = mg.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            shifts = mg.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.reshape(-1, 1, 4) + base.reshape(1, -1, 4)).reshape(-1, 4))
        return anchors

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        grid_sizes = [tuple(f.shape[-2:]) for f in feature_maps]
        image_size = image_list.tensors.shape[-2:]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        strides = [(image_size[0] // g[0], image_size[1] // g[1]) for g in grid_sizes]
        self.set_cell_anchors(dtype, device)
        per_map = self.grid_anchors(grid_sizes, strides)
        return [mg.cat(per_map) for _ in image_list.image_sizes]


class DefaultBoxGenerator(nn.Module):
    """SSD's default boxes: per feature map ``k``, boxes of scale ``s_k`` and
    ``sqrt(s_k * s_k+1)`` (square) and ``s_k`` at each extra aspect ratio and its inverse,
    centred on every cell; returned in image pixels as (x1, y1, x2, y2).

    Args:
        aspect_ratios: per feature map, the extra ratios (e.g. ``[[2], [2, 3], ...]``).
        min_ratio, max_ratio: the scale range when ``scales`` is not given (default 0.15,
            0.9).
        scales: ``len(aspect_ratios) + 1`` scales relative to the image (default None).
        steps: per feature map, its stride in pixels (default None: the map's size).
        clip: clip the widths and heights to [0, 1] (default True).

    Example:
        >>> gen = DefaultBoxGenerator([[2], [2, 3]])
        >>> boxes = gen(image_list, [f1, f2])  # one Tensor[num boxes, 4] per image
    """

    def __init__(
        self,
        aspect_ratios: list[list[int]],
        min_ratio: float = 0.15,
        max_ratio: float = 0.9,
        scales: list[float] | None = None,
        steps: list[int] | None = None,
        clip: bool = True,
    ):
        super().__init__()
        if steps is not None and len(aspect_ratios) != len(steps):
            raise ValueError("aspect_ratios and steps should have the same length")
        self.aspect_ratios = aspect_ratios
        self.steps = steps
        self.clip = clip
        n = len(aspect_ratios)
        if scales is None:
            if n > 1:
                span = max_ratio - min_ratio
                self.scales = [min_ratio + span * k / (n - 1.0) for k in range(n)]
                self.scales.append(1.0)
            else:
                self.scales = [min_ratio, max_ratio]
        else:
            self.scales = scales
        self._wh_pairs = self._generate_wh_pairs(n)

    def _generate_wh_pairs(self, num_outputs: int, dtype=mg.float32, device="cpu") -> list[Tensor]:
        pairs = []
        for k in range(num_outputs):
            s_k = self.scales[k]
            s_prime = math.sqrt(self.scales[k] * self.scales[k + 1])
            wh = [[s_k, s_k], [s_prime, s_prime]]
            for ar in self.aspect_ratios[k]:
                sq = math.sqrt(ar)
                w, h = self.scales[k] * sq, self.scales[k] / sq
                wh.extend([[w, h], [h, w]])
            pairs.append(mg.as_tensor(wh, dtype=dtype, device=device))
        return pairs

    def num_anchors_per_location(self) -> list[int]:
        return [2 + 2 * len(r) for r in self.aspect_ratios]

    def _grid_default_boxes(self, grid_sizes, image_size, dtype=mg.float32) -> Tensor:
        """All default boxes as (cx, cy, w, h) relative to the image."""
        boxes = []
        for k, (fh, fw) in enumerate(grid_sizes):
            if self.steps is not None:
                x_f, y_f = image_size[1] / self.steps[k], image_size[0] / self.steps[k]
            else:
                y_f, x_f = fh, fw
            # NOTE: the centres in float32 whatever dtype (as torchvision's arange + 0.5)
            shifts_x = ((mg.arange(0, fw, dtype=mg.float32) + 0.5) / x_f).to(dtype=dtype)
            shifts_y = ((mg.arange(0, fh, dtype=mg.float32) + 0.5) / y_f).to(dtype=dtype)
            shift_y, shift_x = mg.meshgrid(shifts_y, shifts_x, indexing="ij")
            shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
            wh = self._wh_pairs[k]
            shifts = mg.stack((shift_x, shift_y) * len(wh), dim=-1).reshape(-1, 2)
            wh = wh.clamp(min=0, max=1) if self.clip else wh
            boxes.append(mg.cat((shifts, wh.repeat(fh * fw, 1).to(shifts.dtype)), dim=1))
        return mg.cat(boxes, dim=0)

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(aspect_ratios={self.aspect_ratios}, clip={self.clip}, "
            f"scales={self.scales}, steps={self.steps})"
        )

    def forward(self, image_list: ImageList, feature_maps: list[Tensor]) -> list[Tensor]:
        grid_sizes = [tuple(f.shape[-2:]) for f in feature_maps]
        image_size = image_list.tensors.shape[-2:]
        dtype, device = feature_maps[0].dtype, feature_maps[0].device
        boxes = self._grid_default_boxes(grid_sizes, image_size, dtype=dtype).to(device)
        scale = mg.tensor([image_size[1], image_size[0]], device=device)
        corners = mg.cat(
            [
                (boxes[:, :2] - 0.5 * boxes[:, 2:]) * scale,
                (boxes[:, :2] + 0.5 * boxes[:, 2:]) * scale,
            ],
            -1,
        )
        return [corners for _ in image_list.image_sizes]
