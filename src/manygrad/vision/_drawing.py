"""The drawing half of ``torchvision.utils`` (boxes, masks, keypoints, optical flow) and
the tensor helpers both halves share; ``manygrad.vision.utils`` re-exports them.

The drawing functions make the same Pillow calls as torchvision on the same uint8 pixels,
so their results equal torchvision's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ._pil import Image, ImageColor, ImageDraw, ImageFont

__all__ = ["draw_bounding_boxes", "draw_keypoints", "draw_segmentation_masks", "flow_to_image"]


def _is_tensor(x) -> bool:
    from manygrad.tensor import Tensor

    return isinstance(x, Tensor)


def _wrap(a, device=None):
    from manygrad.tensor import Tensor

    return Tensor._wrap(a, device)


def _xp(a):
    from manygrad import backend

    return backend.array_module(a)


def _host(t) -> np.ndarray:
    from manygrad import backend

    return backend.to_numpy(t._data) if _is_tensor(t) else np.asarray(t)


# ------------------------------------------------------------------ drawing


def _generate_color_palette(num_objects: int) -> list[tuple[int, int, int]]:
    palette = (2**25 - 1, 2**15 - 1, 2**21 - 1)
    return [tuple((i * p) % 255 for p in palette) for i in range(num_objects)]


def _parse_colors(colors, *, num_objects: int, floating: bool = False) -> list[tuple]:
    if colors is None:
        colors = _generate_color_palette(num_objects)
    elif isinstance(colors, list):
        if len(colors) < num_objects:
            raise ValueError(
                "Number of colors must be equal or larger than the number of objects, but got "
                f"{len(colors)} < {num_objects}."
            )
    elif not isinstance(colors, (tuple, str)):
        raise ValueError(
            f"colors must be a tuple or a string, or a list thereof, but got {colors}."
        )
    elif isinstance(colors, tuple) and len(colors) != 3:
        raise ValueError(f"If passed as tuple, colors should be an RGB triplet, but got {colors}.")
    else:
        colors = [colors] * num_objects
    colors = [ImageColor.getrgb(c) if isinstance(c, str) else tuple(c) for c in colors]
    if floating:
        colors = [tuple(v / 255 for v in c) for c in colors]
    return colors


def _check_image(image, what: str, channels=(3,)) -> None:
    if not _is_tensor(image):
        raise TypeError(f"{what}: the image must be a tensor, got {type(image)}")
    if not (image.is_floating_point() or str(image.dtype).endswith("uint8")):
        raise ValueError(f"The image dtype must be uint8 or float, got {image.dtype}")
    if image.dim() != 3:
        raise ValueError("Pass individual images, not batches")
    if image.size(0) not in channels:
        raise ValueError(
            "Only grayscale and RGB images are supported"
            if len(channels) > 1
            else "Pass an RGB image. Other Image formats are not supported"
        )


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """torchvision's ``to_dtype(image, uint8, scale=True)`` of a float image."""
    if a.dtype == np.uint8:
        return a
    # NOTE: x * (255 + 1 - 1e-3), truncated: 1.0 -> 255 and 0.999 -> 255, as torchvision
    return (a * a.dtype.type(255 + 1.0 - 1e-3)).astype(np.int64).astype(np.uint8)


def _from_uint8(a: np.ndarray, like):
    """Back to ``like``'s dtype (a float image divided by 255) and device."""
    dt = like._data.dtype
    if dt.kind == "f":
        a = a.astype(dt) * dt.type(1.0 / 255)  # NOTE: torchvision multiplies by 1 / 255
    out = _wrap(np.ascontiguousarray(a))
    return out if str(like.device) == "cpu" else out.to(like.device)


class _ImageDrawTV(ImageDraw.ImageDraw):
    """Pillow's drawing, plus torchvision's oriented (8-coordinate) boxes: the first side
    dashed."""

    def oriented_rectangle(self, xy, fill=None, outline=None, width=1):
        self.dashed_line(((xy[0], xy[1]), (xy[2], xy[3])), width=width, fill=outline)
        for i in range(2, len(xy), 2):
            self.line(((xy[i], xy[i + 1]), (xy[(i + 2) % len(xy)], xy[(i + 3) % len(xy)])),
                      width=width, fill=outline)  # fmt: skip
        self.polygon(xy, fill=fill, outline=None, width=0)

    def dashed_line(self, xy, fill=None, width=0, joint=None, dash_length=5, space_length=5):
        dash = True
        for i in range(1, len(xy)):
            (x1, y1), (x2, y2) = xy[i - 1], xy[i]
            remaining = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
            while remaining > 0:
                step = min(remaining, dash_length if dash else space_length)
                angle = math.atan2(y2 - y1, x2 - x1)
                ex, ey = x1 + math.cos(angle) * step, y1 + math.sin(angle) * step
                if dash:
                    self.line([(x1, y1), (ex, ey)], fill, width, joint)
                remaining -= step
                x1, y1 = ex, ey
                dash = not dash


def draw_bounding_boxes(
    image,
    boxes,
    labels: list[str] | None = None,
    colors=None,
    fill: bool | None = False,
    width: int = 1,
    font: str | None = None,
    font_size: int | None = None,
    label_colors=None,
    label_background_colors=None,
    fill_labels: bool = False,
):
    """Draw boxes (and their labels) on a (C, H, W) image, uint8 or float in [0, 1].

    Args:
        image: the (1 or 3, H, W) image tensor.
        boxes: (N, 4) boxes ``(xmin, ymin, xmax, ymax)`` in pixels, or (N, 8) corners of
            oriented boxes.
        labels: one string per box (default none).
        colors: a colour or one per box (names, ``"#rrggbb"`` or RGB tuples; default: a
            palette).
        fill: fill the boxes, translucent (default False).
        width: the line width (default 1).
        font: a TrueType font file (default: Pillow's default font).
        font_size: the font's size in points, with ``font`` (default 10).
        label_colors: the labels' text colours (default: the boxes', black with
            ``fill_labels``).
        label_background_colors: the label boxes' colours with ``fill_labels``.
        fill_labels: draw each label on a filled box (default False).

    Returns:
        the uint8 (3, H, W) image with the boxes drawn (float in, float out).

    Example:
        >>> out = draw_bounding_boxes(img, boxes, labels=["cat"], colors="red", width=2)
    """
    _check_image(image, "draw_bounding_boxes", (1, 3))
    b = _host(boxes)
    if b.shape[-1] == 4 and ((b[:, 0] > b[:, 2]).any() or (b[:, 1] > b[:, 3]).any()):
        raise ValueError(
            "Boxes need to be in (xmin, ymin, xmax, ymax) format. Use torchvision.ops.box_convert to convert them"
        )
    num_boxes = b.shape[0]
    if num_boxes == 0:
        warnings.warn("boxes doesn't contain any box. No box was drawn", stacklevel=2)
        return image
    if labels is None:
        labels = [None] * num_boxes
    elif len(labels) != num_boxes:
        raise ValueError(
            f"Number of boxes ({num_boxes}) and labels ({len(labels)}) mismatch. Please specify labels for each box."
        )
    colors = _parse_colors(colors, num_objects=num_boxes)
    if label_colors or fill_labels:
        label_colors = _parse_colors(label_colors or "black", num_objects=num_boxes)
    else:
        label_colors = list(colors)
    if fill_labels and label_background_colors:
        label_background_colors = _parse_colors(label_background_colors, num_objects=num_boxes)
    else:
        label_background_colors = list(colors)
    if font is None:
        if font_size is not None:
            warnings.warn(
                "Argument 'font_size' will be ignored since 'font' is not set.", stacklevel=2
            )
        txt_font = ImageFont.load_default()
    else:
        txt_font = ImageFont.truetype(font=font, size=font_size or 10)

    a = _host(image)
    a = np.tile(a, (3, 1, 1)) if a.shape[0] == 1 else a
    img = Image.fromarray(np.ascontiguousarray(_to_uint8(a).transpose(1, 2, 0)))
    draw = _ImageDrawTV(img, "RGBA") if fill else _ImageDrawTV(img)
    boxes_int = np.trunc(b).astype(np.int64).tolist()  # NOTE: boxes.to(int64): towards zero
    for bbox, color, label, label_color, label_bg in zip(
        boxes_int, colors, labels, label_colors, label_background_colors
    ):
        method = draw.oriented_rectangle if len(bbox) > 4 else draw.rectangle
        method(bbox, width=width, outline=color, fill=color + (100,) if fill else None)
        if label is not None:
            margin = width + 1
            at = (bbox[0] + margin, bbox[1] + margin)
            if fill_labels:
                left, top, right, bottom = draw.textbbox(at, label, font=txt_font)
                draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=label_bg)
            draw.text(at, label, fill=label_color, font=txt_font)
    return _from_uint8(np.asarray(img).transpose(2, 0, 1), image)


def draw_segmentation_masks(image, masks, alpha: float = 0.8, colors=None):
    """Blend boolean masks onto a (3, H, W) image (uint8, or float in [0, 1]).

    Each mask's pixels take its colour; pixels under more than one mask turn black; the
    result is ``image * (1 - alpha) + drawn * alpha`` in the image's dtype.

    Args:
        image: the (3, H, W) image tensor.
        masks: (N, H, W) or (H, W) bool masks.
        alpha: the masks' opacity from 0 to 1 (default 0.8).
        colors: a colour or one per mask (default: a palette).

    Example:
        >>> out = draw_segmentation_masks(img, masks > 0.5, alpha=0.6, colors=["red", "blue"])
    """
    _check_image(image, "draw_segmentation_masks")
    m = _host(masks)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError("masks must be of shape (H, W) or (batch_size, H, W)")
    if m.dtype != np.bool_:
        raise ValueError(f"The masks must be of dtype bool. Got {masks.dtype}")
    if m.shape[-2:] != tuple(image.shape[-2:]):
        raise ValueError("The image and the masks must have the same height and width")
    if m.shape[0] == 0:
        warnings.warn("masks doesn't contain any mask. No mask was drawn", stacklevel=2)
        return image
    a = _host(image)
    floating = a.dtype.kind == "f"
    colors = _parse_colors(colors, num_objects=m.shape[0], floating=floating)
    drawn = a.copy()
    for mask, color in zip(m, colors):
        drawn[:, mask] = np.asarray(color).astype(a.dtype)[:, None]
    drawn[:, m.sum(axis=0) > 1] = 0
    # NOTE: uint8 * float gives float32 in PyTorch, the scalars cast to it
    calc = a.dtype.type if floating else np.float32
    out = a.astype(calc) * calc(1 - alpha) + drawn.astype(calc) * calc(alpha)
    out = out.astype(a.dtype) if floating else np.trunc(out).astype(np.int64).astype(np.uint8)
    res = _wrap(np.ascontiguousarray(out))
    return res if str(image.device) == "cpu" else res.to(image.device)


def draw_keypoints(image, keypoints, connectivity=None, colors=None, radius: int = 2,
                   width: int = 3, visibility=None):  # fmt: skip
    """Draw keypoints (discs) and their connections on a (3, H, W) image.

    Args:
        image: the (3, H, W) image tensor, uint8 or float in [0, 1].
        keypoints: (N, K, 2) ``(x, y)`` points of N instances.
        connectivity: pairs of keypoint indices to join with lines (default none).
        colors: the discs' colour (default: Pillow's default).
        radius: the discs' radius (default 2).
        width: the lines' width (default 3).
        visibility: (N, K) bools; invisible points and their lines are skipped (default:
            all visible).

    Example:
        >>> out = draw_keypoints(img, kpts, connectivity=[(0, 1)], colors="blue")
    """
    _check_image(image, "draw_keypoints")
    k = _host(keypoints)
    if k.ndim != 3:
        raise ValueError("keypoints must be of shape (num_instances, K, 2)")
    vis = np.ones(k.shape[:-1], bool) if visibility is None else _host(visibility)
    if vis.ndim == 3:
        vis = vis.squeeze(-1)
    if vis.ndim != 2:
        raise ValueError(f"visibility must be of shape (num_instances, K). Got ndim={vis.ndim}")
    if vis.shape != k.shape[:-1]:
        raise ValueError(
            "keypoints and visibility must have the same dimensionality for num_instances and K. "
            f"Got visibility.shape={tuple(vis.shape)} and keypoints.shape={tuple(k.shape)}"
        )
    img = Image.fromarray(np.ascontiguousarray(_to_uint8(_host(image)).transpose(1, 2, 0)))
    draw = ImageDraw.Draw(img)
    for inst, inst_vis in zip(np.trunc(k).astype(np.int64).tolist(), vis.astype(bool).tolist()):
        for (x, y), seen in zip(inst, inst_vis):
            if seen:
                draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colors,
                             outline=None, width=0)  # fmt: skip
        for i, j in connectivity or ():
            if inst_vis[i] and inst_vis[j]:
                draw.line(((inst[i][0], inst[i][1]), (inst[j][0], inst[j][1])), width=width)
    return _from_uint8(np.asarray(img).transpose(2, 0, 1), image)


# ------------------------------------------------------------------ optical flow


def _make_colorwheel(xp) -> np.ndarray:
    """The (55, 3) colour wheel of Baker et al., "A Database and Evaluation Methodology for
    Optical Flow" (ICCV 2007), float32 as torchvision's."""
    f = np.float32
    ramp = {n: xp.floor((255 * xp.arange(n)).astype(f) / f(n)) for n in (15, 6, 4, 11, 13)}
    wheel = xp.zeros((55, 3), f)
    wheel[0:15, 0], wheel[0:15, 1] = 255, ramp[15]  # red -> yellow
    wheel[15:21, 0], wheel[15:21, 1] = 255 - ramp[6], 255  # yellow -> green
    wheel[21:25, 1], wheel[21:25, 2] = 255, ramp[4]  # green -> cyan
    wheel[25:36, 1], wheel[25:36, 2] = 255 - ramp[11], 255  # cyan -> blue
    wheel[36:49, 2], wheel[36:49, 0] = 255, ramp[13]  # blue -> magenta
    wheel[49:55, 2], wheel[49:55, 0] = 255 - ramp[6], 255  # magenta -> red
    return wheel


def flow_to_image(flow):
    """Colour an optical flow (2, H, W) or (N, 2, H, W), float32, as a uint8 RGB image:
    the hue gives the direction, the saturation the length (relative to the largest).

    Example:
        >>> img = flow_to_image(flow)   # (3, H, W) uint8
    """
    if str(flow.dtype).split(".")[-1] != "float32":
        raise ValueError(f"Flow should be of dtype torch.float, got {flow.dtype}.")
    orig_shape = tuple(flow.shape)
    a = flow.detach()._data
    xp, f = _xp(a), np.float32
    a = a[None] if a.ndim == 3 else a
    if a.ndim != 4 or a.shape[1] != 2:
        raise ValueError(
            f"Input flow should have shape (2, H, W) or (N, 2, H, W), got {orig_shape}."
        )
    max_norm = xp.sqrt(a[:, 0] * a[:, 0] + a[:, 1] * a[:, 1]).max()
    nf = a / (max_norm + f(np.finfo(f).eps))
    norm = xp.sqrt(nf[:, 0] * nf[:, 0] + nf[:, 1] * nf[:, 1])
    angle = xp.arctan2(-nf[:, 1], -nf[:, 0]) / f(math.pi)
    fk = (angle + f(1)) / f(2) * f(54)
    k0 = xp.floor(fk).astype(np.int64)
    k1 = k0 + 1
    k1[k1 == 55] = 0
    frac = fk - k0.astype(f)
    wheel = _make_colorwheel(xp)
    out = xp.empty((a.shape[0], 3, a.shape[2], a.shape[3]), np.uint8)
    for c in range(3):
        col0, col1 = wheel[k0, c] / f(255.0), wheel[k1, c] / f(255.0)
        col = (f(1) - frac) * col0 + frac * col1
        col = f(1) - norm * (f(1) - col)
        out[:, c] = xp.floor(f(255) * col).astype(np.int64).astype(np.uint8)
    return _wrap(out[0] if len(orig_shape) == 3 else out, flow.device)
