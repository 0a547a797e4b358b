"""torchvision.transforms.v2.functional on manygrad: the v1 functions, plus v2's names
(``horizontal_flip``, ``to_image``, ``to_dtype``, ...) that also take ``tv_tensors``
(masks resampled with nearest neighbours, bounding boxes moved with the image)."""

from __future__ import annotations

import numpy as np

import manygrad as mg

from ... import tv_tensors
from .. import functional as F1
from ..functional import (  # noqa: F401  (v2 has the same functions under these names)
    InterpolationMode,
    adjust_brightness,
    adjust_contrast,
    adjust_gamma,
    adjust_hue,
    adjust_saturation,
    adjust_sharpness,
    autocontrast,
    convert_image_dtype,
    elastic_transform,
    equalize,
    erase,
    five_crop,
    gaussian_blur,
    get_dimensions,
    invert,
    normalize,
    perspective,
    pil_to_tensor,
    posterize,
    rgb_to_grayscale,
    solarize,
    ten_crop,
    to_grayscale,
    to_pil_image,
)

__all__ = [
    "InterpolationMode", "adjust_brightness", "adjust_contrast", "adjust_gamma", "adjust_hue",
    "adjust_saturation", "adjust_sharpness", "affine", "autocontrast", "center_crop",
    "convert_image_dtype", "crop", "elastic_transform", "equalize", "erase", "five_crop", "gaussian_blur",
    "get_dimensions", "get_num_channels", "get_size", "hflip", "horizontal_flip", "invert",
    "normalize", "pad", "permute_channels", "perspective", "pil_to_tensor", "posterize", "resize",
    "resized_crop", "rgb_to_grayscale", "rotate", "solarize", "ten_crop", "to_dtype",
    "to_grayscale", "to_image", "to_pil_image", "vertical_flip", "vflip",
]  # fmt: skip


def get_size(inpt) -> list[int]:
    """``[height, width]`` of an image, mask or the canvas of bounding boxes."""
    if isinstance(inpt, tv_tensors.BoundingBoxes):
        return list(inpt.canvas_size)
    return F1.get_dimensions(inpt)[1:]


def get_num_channels(inpt) -> int:
    return F1.get_dimensions(inpt)[0]


def to_image(inpt):
    """A PIL image, HWC NumPy array or CHW tensor as a ``tv_tensors.Image``."""
    if isinstance(inpt, np.ndarray):
        arr = inpt[:, :, None] if inpt.ndim == 2 else inpt
        return tv_tensors.Image(mg.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1))
    if F1._is_pil(inpt):
        return tv_tensors.Image(F1.pil_to_tensor(inpt))
    if isinstance(inpt, mg.Tensor):
        return tv_tensors.Image(inpt.as_subclass(mg.Tensor))
    raise TypeError(
        f"to_image: expected a PIL image, NumPy array or tensor, got {type(inpt).__name__}"
    )


def to_dtype(inpt, dtype=None, scale: bool = False):
    """``inpt`` in ``dtype``; ``scale`` rescales image values to the dtype's range."""
    dtype = mg.float32 if dtype is None else dtype
    plain = inpt.as_subclass(mg.Tensor)
    out = F1.convert_image_dtype(plain, dtype) if scale else plain.to(dtype)
    if isinstance(inpt, tv_tensors.BoundingBoxes):
        return tv_tensors.wrap(out, like=inpt)
    if isinstance(inpt, tv_tensors.TVTensor):
        return out.as_subclass(type(inpt))
    return out


def _dispatch(inpt, image_fn, box_fn=None, mask_fn=None, name="this op"):
    if isinstance(inpt, tv_tensors.BoundingBoxes):
        if box_fn is None:
            raise TypeError(f"{name}: bounding boxes are not supported by this op yet")
        return box_fn(inpt)
    if isinstance(inpt, tv_tensors.Mask):
        fn = mask_fn or image_fn
        m = inpt.as_subclass(mg.Tensor)
        squeeze = m.ndim == 2
        out = fn(m[None] if squeeze else m)
        return (out[0] if squeeze else out).as_subclass(tv_tensors.Mask)
    if isinstance(inpt, tv_tensors.TVTensor):
        return image_fn(inpt.as_subclass(mg.Tensor)).as_subclass(type(inpt))
    return image_fn(inpt)


def _boxes(boxes, fn, canvas):
    from . import _boxes_op

    return _boxes_op(boxes, fn, canvas)


def horizontal_flip(inpt):
    """Mirrored left to right (boxes too)."""

    def box(b):
        w = b.canvas_size[1]
        return _boxes(b, lambda x: mg.stack([w - x[:, 2], x[:, 1], w - x[:, 0], x[:, 3]], -1),
                      b.canvas_size)  # fmt: skip

    return _dispatch(inpt, F1.hflip, box)


def vertical_flip(inpt):
    """Mirrored top to bottom (boxes too)."""

    def box(b):
        h = b.canvas_size[0]
        return _boxes(b, lambda x: mg.stack([x[:, 0], h - x[:, 3], x[:, 2], h - x[:, 1]], -1),
                      b.canvas_size)  # fmt: skip

    return _dispatch(inpt, F1.vflip, box)


hflip = horizontal_flip
vflip = vertical_flip


def resize(inpt, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """Resized (an int: the smaller edge); masks with nearest neighbours, boxes scaled."""

    def box(b):
        h, w = b.canvas_size
        nh, nw = F1._resized_size(h, w, size, max_size)
        sx, sy = nw / w, nh / h
        scale = mg.tensor([sx, sy, sx, sy])
        return _boxes(b, lambda x: x * scale.to(x.dtype), (nh, nw))

    return _dispatch(
        inpt,
        lambda x: F1.resize(x, size, interpolation, max_size, antialias),
        box,
        lambda m: F1.resize(m, size, InterpolationMode.NEAREST, max_size, False),
    )


def crop(inpt, top: int, left: int, height: int, width: int):
    """The region at (top, left) of (height, width); boxes shifted and clamped."""

    def box(b):
        off = mg.tensor([left, top, left, top])
        return _boxes(b, lambda x: x - off.to(x.dtype), (height, width))

    return _dispatch(inpt, lambda x: F1.crop(x, top, left, height, width), box)


def center_crop(inpt, output_size):
    h, w = get_size(inpt)
    if isinstance(output_size, int):
        output_size = [output_size, output_size]
    th, tw = (output_size[0], output_size[0]) if len(output_size) == 1 else output_size
    if isinstance(inpt, tv_tensors.BoundingBoxes):
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return crop(inpt, top, left, th, tw)
    return _dispatch(inpt, lambda x: F1.center_crop(x, [th, tw]))


def resized_crop(inpt, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):  # fmt: skip
    return resize(crop(inpt, top, left, height, width), size, interpolation, antialias=antialias)


def pad(inpt, padding, fill=0, padding_mode="constant"):
    """Padded (boxes shifted, their canvas grown)."""

    def box(b):
        if padding_mode != "constant":
            raise ValueError(f"Padding mode '{padding_mode}' is not supported with bounding boxes")
        left, top, right, bottom = F1._pad_sides(padding)
        h, w = b.canvas_size
        off = mg.tensor([left, top, left, top])
        return _boxes(b, lambda x: x + off.to(x.dtype), (h + top + bottom, w + left + right))

    return _dispatch(inpt, lambda x: F1.pad(x, padding, fill, padding_mode), box)


def rotate(inpt, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None,
           fill=None):  # fmt: skip
    return _dispatch(
        inpt,
        lambda x: F1.rotate(x, angle, interpolation, expand, center, fill),
        None,
        lambda m: F1.rotate(m, angle, InterpolationMode.NEAREST, expand, center, fill),
        "rotate",
    )


def affine(inpt, angle, translate, scale, shear, interpolation=InterpolationMode.NEAREST,
           fill=None, center=None):  # fmt: skip
    return _dispatch(
        inpt,
        lambda x: F1.affine(x, angle, translate, scale, shear, interpolation, fill, center),
        None,
        lambda m: F1.affine(
            m, angle, translate, scale, shear, InterpolationMode.NEAREST, fill, center
        ),  # fmt: skip
        "affine",
    )


def permute_channels(inpt, permutation):
    """The channels in the order ``permutation``."""

    def run(x):
        if F1._is_pil(x):
            t = F1.pil_to_tensor(x)[list(permutation)]
            return F1.to_pil_image(t, mode=x.mode)
        return x[..., list(permutation), :, :]

    return _dispatch(inpt, run)
