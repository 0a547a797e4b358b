"""torchvision's image helpers on manygrad (``torchvision.utils``): ``make_grid``,
``save_image``, and the drawing functions (boxes, masks, keypoints, optical flow) from
``_drawing``.

``make_grid`` and ``save_image`` do PyTorch's arithmetic in the tensor's dtype (float32
scalars for float32 images), so their grids and saved pixels equal torchvision's bit for
bit.
"""

from __future__ import annotations

import io
import math
import os
import uuid
from typing import BinaryIO

import numpy as np

from ._drawing import (
    _host,
    _is_tensor,
    _wrap,
    _xp,
    draw_bounding_boxes,
    draw_keypoints,
    draw_segmentation_masks,
    flow_to_image,
)
from ._pil import Image

__all__ = ["draw_bounding_boxes", "draw_keypoints", "draw_segmentation_masks",
           "flow_to_image", "make_grid", "save_image"]  # fmt: skip


def make_grid(
    tensor,
    nrow: int = 8,
    padding: int = 2,
    normalize: bool = False,
    value_range: tuple[float, float] | None = None,
    scale_each: bool = False,
    pad_value: float = 0.0,
):
    """Tile a batch of images into one (C, H', W') image, ``nrow`` images a row.

    Args:
        tensor: a (B, C, H, W) tensor, a list of (C, H, W) tensors, or one image; one
            channel is repeated to three.
        nrow: images per row (default 8).
        padding: pixels between and around the images (default 2).
        normalize: shift and scale to [0, 1] by ``value_range`` (default False).
        value_range: (min, max) to normalize by (default: the tensor's min and max).
        scale_each: normalize each image by its own min and max (default False).
        pad_value: the value of the padding (default 0).

    Example:
        >>> grid = make_grid(images, nrow=4, normalize=True)   # (3, H', W')
    """
    import manygrad as mg

    if not _is_tensor(tensor):
        if not isinstance(tensor, list):
            raise TypeError(f"tensor or list of tensors expected, got {type(tensor)}")
        for t in tensor:
            if not _is_tensor(t):
                raise TypeError(
                    f"tensor or list of tensors expected, got a list containing {type(t)}"
                )
    with mg.no_grad():
        if isinstance(tensor, list):
            tensor = mg.stack(tensor, dim=0)
        if tensor.dim() == 2:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() == 3:
            if tensor.size(0) == 1:
                tensor = mg.cat((tensor, tensor, tensor), 0)
            tensor = tensor.unsqueeze(0)
        if tensor.dim() == 4 and tensor.size(1) == 1:
            tensor = mg.cat((tensor, tensor, tensor), 1)
        if normalize is True:
            tensor = _normalized(tensor, value_range, scale_each)
        if tensor.size(0) == 1:
            return tensor.squeeze(0)
        a = tensor.detach()._data
        xp = _xp(a)
        n, c, h, w = a.shape
        xmaps = min(nrow, n)
        ymaps = int(math.ceil(float(n) / xmaps))
        height, width = int(h + padding), int(w + padding)
        grid = xp.full((c, height * ymaps + padding, width * xmaps + padding), pad_value, a.dtype)
        for k in range(n):
            y, x = divmod(k, xmaps)
            top, left = y * height + padding, x * width + padding
            grid[:, top : top + height - padding, left : left + width - padding] = a[k]
        return _wrap(grid, tensor.device)


def _normalized(tensor, value_range, scale_each: bool):
    if value_range is not None and not isinstance(value_range, tuple):
        raise TypeError(
            "value_range has to be a tuple (min, max) if specified. min and max are numbers"
        )
    if not tensor.is_floating_point():
        raise TypeError(
            f"make_grid: normalize=True needs a floating-point tensor, got {tensor.dtype}; "
            "convert it first: tensor.float()"
        )
    a = tensor.detach()._data.copy()
    xp, scalar = _xp(a), a.dtype.type

    def norm(img):  # NOTE: PyTorch's clamp_/sub_/div_ with scalars cast to the tensor's dtype
        low, high = value_range if value_range is not None else (float(img.min()), float(img.max()))
        xp.clip(img, scalar(low), scalar(high), out=img)
        img -= scalar(low)
        img /= scalar(max(high - low, 1e-5))

    if scale_each is True:
        for img in a:
            norm(img)
    else:
        norm(a)
    return _wrap(a, tensor.device)


def _atomic_save(im: Image.Image, fp, format: str | None) -> None:
    if not isinstance(fp, (str, os.PathLike)):
        im.save(fp, format=format)
        return
    path = os.fspath(fp)
    if format is None:
        ext = os.path.splitext(path)[1].lower()
        format = Image.registered_extensions().get(ext)
        if format is None:
            raise ValueError(f"unknown file extension: {ext!r} of {path}; pass format='PNG'")
    buf = io.BytesIO()
    im.save(buf, format=format)
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"save_image: no folder {folder} to write {path} in; create it first"
        )
    tmp = os.path.join(folder, f".{uuid.uuid4().hex}.partial")
    try:
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_image(
    tensor, fp: str | os.PathLike | BinaryIO, format: str | None = None, **kwargs
) -> None:
    """Save an image, or a batch as one ``make_grid`` image, to a file.

    Values in [0, 1] become bytes as ``(x * 255 + 0.5)`` clamped to [0, 255] and truncated.

    Args:
        tensor: a float (C, H, W) image, a (B, C, H, W) batch or a list of images.
        fp: a path (written atomically) or a binary file object.
        format: the file format, e.g. ``"PNG"`` (default: from the path's extension; needed
            for file objects).
        **kwargs: ``make_grid``'s arguments (``nrow``, ``padding``, ``normalize``, ...).

    Example:
        >>> save_image(fake_images, "samples.png", nrow=8, normalize=True)
    """
    grid = make_grid(tensor, **kwargs)
    if not grid.is_floating_point():
        raise TypeError(
            f"save_image: expected a floating-point image in [0, 1], got {grid.dtype}; "
            "convert it (tensor.float() / 255) or save uint8 images with io.write_png"
        )
    a = _host(grid)
    scalar = a.dtype.type
    a = np.clip(a * scalar(255) + scalar(0.5), scalar(0), scalar(255))
    # NOTE: PyTorch's float -> uint8 cast truncates (the + 0.5 above rounds)
    hwc = np.ascontiguousarray(a.transpose(1, 2, 0).astype(np.uint8))
    _atomic_save(Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc), fp, format)
