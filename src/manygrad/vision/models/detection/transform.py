"""The detection models' input and output transform (torchvision.models.detection.
transform): normalize, resize so that the shorter side is ``min_size`` (the longer at most
``max_size``), pad into one batch; and map the predictions back to the original sizes."""

from __future__ import annotations

import math
from typing import Any

import manygrad as mg
from manygrad import Tensor, nn
from manygrad.nn import functional as F

from ._masks_keypoints import paste_masks_in_image
from .image_list import ImageList


def _resize_image_and_masks(
    image: Tensor,
    self_min_size: int,
    self_max_size: int,
    target: dict[str, Tensor] | None = None,
    fixed_size: tuple[int, int] | None = None,
) -> tuple[Tensor, dict[str, Tensor] | None]:
    """Resize a (C, H, W) image bilinearly (and the target's masks, nearest) by
    ``min(min_size / shorter side, max_size / longer side)``, or to ``fixed_size`` (w, h)."""
    size = scale = recompute = None
    if fixed_size is not None:
        size = [fixed_size[1], fixed_size[0]]
    else:
        h, w = image.shape[-2:]
        scale = min(self_min_size / min(h, w), self_max_size / max(h, w))
        recompute = True  # NOTE: output size floor(side * scale), sampled at side / out
    image = F.interpolate(
        image[None], size=size, scale_factor=scale, mode="bilinear",
        recompute_scale_factor=recompute, align_corners=False,
    )[0]  # fmt: skip
    if target is None:
        return image, target
    if "masks" in target:
        mask = target["masks"][:, None].float()
        mask = F.interpolate(mask, size=size, scale_factor=scale, recompute_scale_factor=recompute)
        target["masks"] = mask[:, 0].byte()
    return image, target


class GeneralizedRCNNTransform(nn.Module):
    """Normalize each image, resize it (and its target's boxes, masks, keypoints), pad the
    batch to sizes divisible by ``size_divisible``; ``postprocess`` maps predictions back.

    Args:
        min_size: the shorter side after resizing (a tuple: one drawn per image in
            training, the last in eval).
        max_size: the longer side's limit.
        image_mean, image_std: per-channel normalization.
        size_divisible: pad heights and widths to a multiple of this (default 32).
        fixed_size: resize every image to this (width, height) instead (default None).

    Example:
        >>> t = GeneralizedRCNNTransform(800, 1333, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        >>> image_list, targets = t([img1, img2], targets)
    """

    def __init__(
        self,
        min_size: int,
        max_size: int,
        image_mean: list[float],
        image_std: list[float],
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ):
        super().__init__()
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        self.min_size = min_size
        self.max_size = max_size
        self.image_mean = image_mean
        self.image_std = image_std
        self.size_divisible = size_divisible
        self.fixed_size = fixed_size
        self._skip_resize = kwargs.pop("_skip_resize", False)

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> tuple[ImageList, list[dict[str, Tensor]] | None]:
        images = list(images)
        if targets is not None:
            targets = [dict(t) for t in targets]  # the caller's dicts stay as they were
        for i, image in enumerate(images):
            target = targets[i] if targets is not None else None
            if image.dim() != 3:
                raise ValueError(
                    f"images is expected to be a list of 3d tensors of shape [C, H, W], got "
                    f"{tuple(image.shape)}"
                )
            image, target = self.resize(self.normalize(image), target)
            images[i] = image
            if targets is not None and target is not None:
                targets[i] = target
        image_sizes = [tuple(img.shape[-2:]) for img in images]
        batch = self.batch_images(images, size_divisible=self.size_divisible)
        return ImageList(batch, image_sizes), targets

    def normalize(self, image: Tensor) -> Tensor:
        if not image.is_floating_point():
            raise TypeError(
                f"Expected input images to be of floating type (in range [0, 1]), but found "
                f"type {image.dtype} instead; convert them, e.g. image.float() / 255"
            )
        mean = mg.as_tensor(self.image_mean, dtype=image.dtype, device=image.device)
        std = mg.as_tensor(self.image_std, dtype=image.dtype, device=image.device)
        return (image - mean[:, None, None]) / std[:, None, None]

    def torch_choice(self, k: list[int]) -> int:
        """``random.choice(k)`` drawn from manygrad's generator."""
        return k[int(mg.empty(1).uniform_(0.0, float(len(k))).item())]

    def resize(
        self, image: Tensor, target: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor] | None]:
        h, w = image.shape[-2:]
        if self.training:
            if self._skip_resize:
                return image, target
            size = self.torch_choice(self.min_size)
        else:
            size = self.min_size[-1]
        image, target = _resize_image_and_masks(image, size, self.max_size, target, self.fixed_size)
        if target is None:
            return image, target
        new_size = tuple(image.shape[-2:])
        target["boxes"] = resize_boxes(target["boxes"], (h, w), new_size)
        if "keypoints" in target:
            target["keypoints"] = resize_keypoints(target["keypoints"], (h, w), new_size)
        return image, target

    def max_by_axis(self, the_list: list[list[int]]) -> list[int]:
        return [max(sizes) for sizes in zip(*the_list)]

    def batch_images(self, images: list[Tensor], size_divisible: int = 32) -> Tensor:
        """The images zero-padded at the bottom and right into one (N, C, H, W) tensor,
        H and W rounded up to multiples of ``size_divisible``."""
        c, h, w = self.max_by_axis([list(img.shape) for img in images])
        stride = float(size_divisible)
        h = int(math.ceil(float(h) / stride) * stride)
        w = int(math.ceil(float(w) / stride) * stride)
        padded = [
            F.pad(img, (0, w - img.shape[2], 0, h - img.shape[1], 0, c - img.shape[0]))
            for img in images
        ]
        return mg.stack(padded)

    def postprocess(
        self,
        result: list[dict[str, Tensor]],
        image_shapes: list[tuple[int, int]],
        original_image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """Predictions on the resized images mapped back to the original sizes (boxes and
        keypoints scaled, masks pasted into full images); unchanged in training."""
        if self.training:
            return result
        for i, (pred, im_s, o_im_s) in enumerate(zip(result, image_shapes, original_image_sizes)):
            boxes = resize_boxes(pred["boxes"], im_s, o_im_s)
            result[i]["boxes"] = boxes
            if "masks" in pred:
                result[i]["masks"] = paste_masks_in_image(pred["masks"], boxes, o_im_s)
            if "keypoints" in pred:
                result[i]["keypoints"] = resize_keypoints(pred["keypoints"], im_s, o_im_s)
        return result

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(\n    Normalize(mean={self.image_mean}, "
            f"std={self.image_std})\n    Resize(min_size={self.min_size}, "
            f"max_size={self.max_size}, mode='bilinear')\n)"
        )


def _ratios(new_size, original_size, device) -> list[Tensor]:
    # NOTE: float32 ratios whatever the boxes' dtype, as torchvision computes them
    return [
        mg.tensor(s, dtype=mg.float32, device=device)
        / mg.tensor(o, dtype=mg.float32, device=device)
        for s, o in zip(new_size, original_size)
    ]


def resize_keypoints(keypoints: Tensor, original_size, new_size) -> Tensor:
    """Keypoints ``Tensor[N, K, 3]`` (x, y, visibility) scaled from one image size
    (h, w) to another."""
    ratio_h, ratio_w = _ratios(new_size, original_size, keypoints.device)
    out = keypoints.clone()
    out[..., 0] *= ratio_w
    out[..., 1] *= ratio_h
    return out


def resize_boxes(boxes: Tensor, original_size, new_size) -> Tensor:
    """Boxes ``Tensor[N, 4]`` (x1, y1, x2, y2) scaled from one image size (h, w) to
    another."""
    ratio_h, ratio_w = _ratios(new_size, original_size, boxes.device)
    xmin, ymin, xmax, ymax = boxes.unbind(1)
    return mg.stack((xmin * ratio_w, ymin * ratio_h, xmax * ratio_w, ymax * ratio_h), dim=1)
