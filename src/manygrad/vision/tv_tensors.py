"""torchvision.tv_tensors on manygrad: tensors that say what they hold (an image, a video,
a segmentation mask, bounding boxes), so that ``transforms.v2`` treats each the right
way (masks resized with nearest neighbours, boxes moved with the image).

As in torchvision, they are Tensor subclasses whose ops give plain tensors back; ``wrap``
re-labels a result like its source.
"""

from __future__ import annotations

from enum import Enum

import manygrad as mg

__all__ = ["BoundingBoxFormat", "BoundingBoxes", "Image", "Mask", "TVTensor", "Video", "wrap"]


def _tensor(data, dtype=None, device=None, requires_grad=None):
    if isinstance(data, mg.Tensor):
        t = data
        if dtype is not None or device is not None:
            t = t.to(device=device, dtype=dtype)
    else:
        t = mg.as_tensor(data, dtype=dtype, device=device)
    if requires_grad is not None and requires_grad != t.requires_grad:
        t = t.detach().requires_grad_(requires_grad)
    return t


class TVTensor(mg.Tensor):
    """The base class of the labelled tensors."""

    def __new__(cls, data, *, dtype=None, device=None, requires_grad=None):
        return _tensor(data, dtype, device, requires_grad).as_subclass(cls)

    def __init__(self, *args, **kwargs):  # NOTE: __new__ built it
        pass

    def __repr__(self) -> str:
        return super().__repr__().replace("tensor(", f"{type(self).__name__}(", 1)


class Image(TVTensor):
    """An image tensor ``(..., C, H, W)``; a PIL image or an HWC array is converted (as
    ``ToImage`` does)."""

    def __new__(cls, data, *, dtype=None, device=None, requires_grad=None):
        from .transforms import functional as F

        if F._is_pil(data):
            data = F.pil_to_tensor(data)
        t = _tensor(data, dtype, device, requires_grad)
        if t.ndim < 2:
            raise ValueError(f"Image: expected at least 2 dims (H, W), got shape {tuple(t.shape)}")
        if t.ndim == 2:
            t = t.unsqueeze(0)
        return t.as_subclass(cls)


class Video(TVTensor):
    """A video tensor ``(..., T, C, H, W)``."""

    def __new__(cls, data, *, dtype=None, device=None, requires_grad=None):
        t = _tensor(data, dtype, device, requires_grad)
        if t.ndim < 4:
            raise ValueError(f"Video: expected at least 4 dims (T, C, H, W), got {tuple(t.shape)}")
        return t.as_subclass(cls)


class Mask(TVTensor):
    """A segmentation mask ``(..., H, W)``: geometric transforms move it with the image,
    resampling with nearest neighbours; colour transforms leave it alone."""

    def __new__(cls, data, *, dtype=None, device=None, requires_grad=None):
        from .transforms import functional as F

        if F._is_pil(data):
            data = F.pil_to_tensor(data)[0]
        return _tensor(data, dtype, device, requires_grad).as_subclass(cls)


class BoundingBoxFormat(Enum):
    XYXY = "XYXY"
    XYWH = "XYWH"
    CXCYWH = "CXCYWH"


class BoundingBoxes(TVTensor):
    """Boxes ``(N, 4)`` in ``format`` on an image of ``canvas_size`` (h, w)."""

    format: BoundingBoxFormat
    canvas_size: tuple

    def __new__(cls, data, *, format, canvas_size, dtype=None, device=None,
                requires_grad=None):  # fmt: skip
        t = _tensor(data, dtype, device, requires_grad)
        if t.ndim == 1:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[-1] != 4:
            raise ValueError(f"BoundingBoxes: expected shape (N, 4), got {tuple(t.shape)}")
        if isinstance(format, str):
            format = BoundingBoxFormat[format.upper()]
        out = t.as_subclass(cls)
        out.format = format
        out.canvas_size = tuple(int(s) for s in canvas_size)
        return out

    def __repr__(self) -> str:
        body = mg.Tensor.__repr__(self.as_subclass(mg.Tensor))
        return (f"BoundingBoxes({body[len('tensor('):-1]}, format={self.format}, "
                f"canvas_size={self.canvas_size})")  # fmt: skip


def wrap(wrappee, *, like, **kwargs):
    """``wrappee`` labelled as ``like`` is (boxes keep ``like``'s format and canvas size
    unless given)."""
    if isinstance(like, BoundingBoxes):
        return BoundingBoxes(
            wrappee,
            format=kwargs.get("format", like.format),
            canvas_size=kwargs.get("canvas_size", like.canvas_size),
        )
    return wrappee.as_subclass(type(like))
