"""torchvision.transforms.functional on manygrad: each function takes a PIL image (done
with Pillow, as torchvision does) or an image tensor ``(..., C, H, W)`` (done with
manygrad ops, on the tensor's device), and gives the same kind back.

Tensor images are float in [0, 1] or integers in [0, max of the dtype], as torchvision
takes them; results follow torchvision's arithmetic (``_blend``'s clamp and cast, the
luma weights 0.2989 / 0.587 / 0.114, rounding before integer casts after a resize).
"""

from __future__ import annotations

import math
import numbers
import sys
from enum import Enum

import numpy as np

import manygrad as mg

from ...data.transforms import require_pillow

__all__ = [
    "InterpolationMode", "adjust_brightness", "adjust_contrast", "adjust_gamma", "adjust_hue",
    "adjust_saturation", "adjust_sharpness", "affine", "autocontrast", "center_crop",
    "convert_image_dtype", "crop", "elastic_transform", "equalize", "erase", "five_crop", "gaussian_blur",
    "get_dimensions", "get_image_num_channels", "get_image_size", "hflip", "invert",
    "normalize", "pad", "perspective", "pil_to_tensor", "posterize", "resize", "resized_crop",
    "rgb_to_grayscale", "rotate", "solarize", "ten_crop", "to_grayscale", "to_pil_image",
    "to_tensor", "vflip",
]  # fmt: skip


class InterpolationMode(Enum):
    """torchvision's interpolation names (the values are the tensor path's modes)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_CODE = {"nearest": 0, "nearest-exact": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3,
             "box": 4, "hamming": 5}  # fmt: skip
_FROM_INT = {0: InterpolationMode.NEAREST, 2: InterpolationMode.BILINEAR,
             3: InterpolationMode.BICUBIC, 4: InterpolationMode.BOX,
             5: InterpolationMode.HAMMING, 1: InterpolationMode.LANCZOS}  # fmt: skip


def _mode(interpolation) -> InterpolationMode:
    if isinstance(interpolation, InterpolationMode):
        return interpolation
    if isinstance(interpolation, int):  # NOTE: PIL's codes, which torchvision still takes
        return _FROM_INT[interpolation]
    if isinstance(interpolation, str):
        return InterpolationMode(interpolation)
    raise TypeError(
        f"interpolation should be an InterpolationMode (or PIL's int code), got "
        f"{type(interpolation).__name__}"
    )


def _is_pil(img) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(img, Image.Image)


def _check_tensor(img, op: str):
    if not isinstance(img, mg.Tensor):
        raise TypeError(f"{op}: img should be a PIL Image or a Tensor, got {type(img).__name__}")
    if img.ndim < 2:
        raise TypeError(f"{op}: a tensor image needs at least 2 dims (..., H, W), got {img.ndim}")


def _max_value(dtype):
    """1.0 for float images, the dtype's largest value (an int) for integer ones."""
    if dtype.is_floating_point:
        return 1.0
    return int(mg.iinfo(dtype).max)


def _channels(img, allowed, op):
    c = 1 if img.ndim == 2 else img.shape[-3]
    if c not in allowed:
        raise TypeError(f"{op}: the image has {c} channels; it takes {list(allowed)}")


# ---------------------------------------------------------------------------- sizes


def get_dimensions(img) -> list[int]:
    """``[channels, height, width]`` of a PIL image or an image tensor."""
    if _is_pil(img):
        return [len(img.getbands()), img.height, img.width]
    _check_tensor(img, "get_dimensions")
    c = 1 if img.ndim == 2 else img.shape[-3]
    return [c, img.shape[-2], img.shape[-1]]


def get_image_size(img) -> list[int]:
    """``[width, height]`` (torchvision's order)."""
    _, h, w = get_dimensions(img)
    return [w, h]


def get_image_num_channels(img) -> int:
    """The number of channels of a PIL image or an image tensor."""
    return get_dimensions(img)[0]


# ---------------------------------------------------------------------------- conversions


def to_tensor(pic):
    """A PIL image or an HWC NumPy array as a CHW tensor; 8-bit pixels become float32 in
    [0, 1] (divided by 255), other dtypes keep their values."""
    if not (_is_pil(pic) or isinstance(pic, np.ndarray)):
        raise TypeError(f"to_tensor: pic should be a PIL Image or ndarray, got {type(pic)}")
    fdt = mg.get_default_dtype()
    if isinstance(pic, np.ndarray):
        if pic.ndim not in (2, 3):
            raise ValueError(f"to_tensor: pic should be 2/3 dimensional, got {pic.ndim} dims")
        arr = pic[:, :, None] if pic.ndim == 2 else pic
        t = mg.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return t.to(fdt).div(255) if t.dtype == mg.uint8 else t
    nptype = {"I": np.int32, "F": np.float32}
    nptype["I;16" if sys.byteorder == "little" else "I;16B"] = np.int16
    arr = np.array(pic, nptype.get(pic.mode, np.uint8), copy=True)
    if pic.mode == "1":
        arr = 255 * arr
    arr = arr.reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    t = mg.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
    return t.to(fdt).div(255) if t.dtype == mg.uint8 else t


def pil_to_tensor(pic):
    """A PIL image as a CHW tensor of its own pixel type (uint8 for 8-bit modes)."""
    if not _is_pil(pic):
        raise TypeError(f"pil_to_tensor: pic should be a PIL Image, got {type(pic)}")
    arr = np.array(pic, copy=True).reshape(pic.size[1], pic.size[0], len(pic.getbands()))
    return mg.from_numpy(arr).permute(2, 0, 1)


def to_pil_image(pic, mode=None):
    """A CHW tensor or HWC array as a PIL image; floats are scaled by 255 (mode "F" aside)."""
    pil = require_pillow()
    if isinstance(pic, mg.Tensor):
        if pic.ndim == 3:
            pic = pic.permute(1, 2, 0)
        pic = pic.detach().cpu().numpy()
    elif not isinstance(pic, np.ndarray):
        raise TypeError(f"to_pil_image: pic should be a Tensor or ndarray, got {type(pic)}")
    if pic.ndim == 2:
        pic = pic[:, :, None]
    if pic.ndim != 3:
        raise ValueError(f"to_pil_image: pic should be 2/3 dimensional, got {pic.ndim} dims")
    if pic.shape[-1] > 4:
        raise ValueError(f"to_pil_image: pic should not have > 4 channels, got {pic.shape[-1]}")
    if np.issubdtype(pic.dtype, np.floating) and mode != "F":
        pic = (pic * 255).astype(np.uint8)
    c = pic.shape[2]
    if c == 1:
        pic = pic[:, :, 0]
        want = {np.dtype(np.uint8): "L", np.dtype(np.int32): "I", np.dtype(np.float32): "F",
                np.dtype(np.int16): "I;16" if sys.byteorder == "little" else "I;16B"}.get(
            pic.dtype)  # fmt: skip
        if mode is not None and mode != want:
            raise ValueError(
                f"to_pil_image: mode {mode} does not fit a {pic.dtype} image; use {want}"
            )
        mode = want
    else:
        allowed = {2: ["LA"], 3: ["RGB", "YCbCr", "HSV"], 4: ["RGBA", "CMYK", "RGBX"]}[c]
        if mode is not None and mode not in allowed:
            raise ValueError(f"to_pil_image: {c}-channel images take the modes {allowed}")
        if mode is None and pic.dtype == np.uint8:
            mode = allowed[0]
    if mode is None:
        raise TypeError(f"to_pil_image: input type {pic.dtype} is not supported")
    return pil.fromarray(pic, mode=mode)


def convert_image_dtype(image, dtype=None):
    """An image tensor in another dtype, its values rescaled to the new range (float
    images are in [0, 1], integer images in [0, max])."""
    dtype = mg.float32 if dtype is None else dtype
    if not isinstance(image, mg.Tensor):
        raise TypeError("convert_image_dtype: input img should be a Tensor image")
    src = image.dtype
    if src == dtype:
        return image
    if src.is_floating_point:
        if dtype.is_floating_point:
            return image.to(dtype)
        if (src == mg.float32 and dtype in (mg.int32, mg.int64)) or (
            src == mg.float64 and dtype == mg.int64
        ):
            raise RuntimeError(f"The cast from {src} to {dtype} cannot be performed safely.")
        eps = 1e-3
        top = float(mg.iinfo(dtype).max)
        return image.mul(top + 1.0 - eps).to(dtype)
    top_in = int(mg.iinfo(src).max)
    if dtype.is_floating_point:
        return image.to(dtype) / top_in
    top_out = int(mg.iinfo(dtype).max)
    if top_in > top_out:
        factor = (top_in + 1) // (top_out + 1)
        return mg.div(image, factor, rounding_mode="floor").to(dtype)
    factor = (top_out + 1) // (top_in + 1)
    return image.to(dtype) * factor


def normalize(tensor, mean, std, inplace: bool = False):
    """``(tensor - mean) / std`` per channel of a float image tensor."""
    if not isinstance(tensor, mg.Tensor):
        raise TypeError(f"normalize: img should be a Tensor image, got {type(tensor)}")
    if not tensor.is_floating_point():
        raise TypeError(f"normalize: input tensor should be a float tensor, got {tensor.dtype}")
    if tensor.ndim < 3:
        raise ValueError(
            f"normalize: expected a tensor image of size (..., C, H, W), got {tuple(tensor.shape)}"
        )
    c = tensor.shape[-3]
    for name, v in (("mean", mean), ("std", std)):
        n = len(v) if isinstance(v, (list, tuple)) else 1
        if n not in (1, c):
            raise ValueError(
                f"normalize: {name} has {n} values for an image of {c} channels; pass one "
                "value, or one per channel"
            )
    if not inplace:
        tensor = tensor.clone()
    m = mg.as_tensor(mean, dtype=tensor.dtype, device=tensor.device)
    s = mg.as_tensor(std, dtype=tensor.dtype, device=tensor.device)
    if (s == 0).any():
        raise ValueError(f"normalize: std evaluated to zero after conversion to {tensor.dtype}")
    if m.ndim == 1:
        m = m.view(-1, 1, 1)
    if s.ndim == 1:
        s = s.view(-1, 1, 1)
    return tensor.sub_(m).div_(s)


# ---------------------------------------------------------------------------- geometry


def _resized_size(h: int, w: int, size, max_size):
    if isinstance(size, numbers.Number):
        size = [int(size)]
    size = list(size)
    if len(size) == 1:
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size[0], int(size[0] * long / short)
        if max_size is not None:
            if max_size <= size[0]:
                raise ValueError(
                    f"max_size = {max_size} must be strictly greater than the requested "
                    f"size for the smaller edge size = {size}"
                )
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        return new_h, new_w
    if max_size is not None:
        raise ValueError(
            "max_size should only be passed if size specifies the length of the smaller edge, "
            "i.e. size should be an int or a sequence of length 1 in torchscript mode."
        )
    return int(size[0]), int(size[1])


def _float_in(img, dtypes=(mg.float32, mg.float64)):
    """(NCHW float image, how to undo it) as torchvision's grid and resize paths take it."""
    squeeze = img.ndim < 4
    lead = None
    if img.ndim > 4:
        lead = img.shape[:-3]
        img = img.reshape(-1, *img.shape[-3:])
    elif squeeze:
        img = img.unsqueeze(0) if img.ndim == 3 else img[None, None]
    out_dtype = img.dtype
    cast = out_dtype not in dtypes
    if cast:
        img = img.to(dtypes[0])

    def back(x, ndim=None):
        if lead is not None:
            x = x.reshape(*lead, *x.shape[-3:])
        elif squeeze:
            x = x[0] if ndim != 2 else x[0, 0]
        if cast:
            if not out_dtype.is_floating_point:
                x = mg.round(x)
            x = x.to(out_dtype)
        return x

    return img, back


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """The image resized to ``size`` ((h, w), or the smaller edge's length as an int)."""
    mode = _mode(interpolation)
    h, w = get_dimensions(img)[1:]
    if size is None:
        raise ValueError("resize: size must be given")
    oh, ow = _resized_size(h, w, size, max_size)
    if (oh, ow) == (h, w):
        return img
    if _is_pil(img):
        if mode in (InterpolationMode.NEAREST_EXACT,):
            raise ValueError("resize: nearest-exact is for tensors only; use NEAREST on PIL")
        return img.resize((ow, oh), _PIL_CODE[mode.value])
    _check_tensor(img, "resize")
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT,
                    InterpolationMode.BILINEAR, InterpolationMode.BICUBIC):  # fmt: skip
        raise ValueError(
            f"resize: tensor images take nearest, nearest-exact, bilinear and bicubic; "
            f"got {mode.value}"
        )
    ndim = img.ndim
    x, back = _float_in(img)
    smooth = mode in (InterpolationMode.BILINEAR, InterpolationMode.BICUBIC)
    x = mg.nn.functional.interpolate(
        x, size=[oh, ow], mode=mode.value, align_corners=False if smooth else None,
        antialias=bool(antialias) and smooth,
    )  # fmt: skip
    if mode is InterpolationMode.BICUBIC and img.dtype == mg.uint8:
        x = x.clamp(0, 255)
    return back(x, ndim)


def crop(img, top: int, left: int, height: int, width: int):
    """The region ``[top, top + height) x [left, left + width)``; outside the image it is
    zero-padded, as torchvision does."""
    if _is_pil(img):
        return img.crop((left, top, left + width, top + height))
    _check_tensor(img, "crop")
    h, w = img.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        pads = [max(-left, 0), max(right - w, 0), max(-top, 0), max(bottom - h, 0)]
        part = img[..., max(top, 0) : bottom, max(left, 0) : right]
        return _pad_tensor(part, pads, 0, "constant")
    return img[..., top:bottom, left:right]


def center_crop(img, output_size):
    """The central ``output_size`` region (zero-padded first where the image is smaller)."""
    if isinstance(output_size, numbers.Number):
        output_size = (int(output_size), int(output_size))
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 1:
        output_size = (output_size[0], output_size[0])
    _, h, w = get_dimensions(img)
    th, tw = output_size
    if tw > w or th > h:
        pads = [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0]  # fmt: skip
        img = pad(img, pads, fill=0)
        _, h, w = get_dimensions(img)
        if tw == w and th == h:
            return img
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
    return crop(img, top, left, th, tw)


def resized_crop(img, top, left, height, width, size, interpolation=InterpolationMode.BILINEAR,
                 antialias=True):  # fmt: skip
    """``crop`` then ``resize``."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def hflip(img):
    """The image mirrored left to right."""
    if _is_pil(img):
        return img.transpose(0)  # NOTE: Image.FLIP_LEFT_RIGHT
    _check_tensor(img, "hflip")
    return img.flip(-1)


def vflip(img):
    """The image mirrored top to bottom."""
    if _is_pil(img):
        return img.transpose(1)  # NOTE: Image.FLIP_TOP_BOTTOM
    _check_tensor(img, "vflip")
    return img.flip(-2)


def _pad_sides(padding):
    if isinstance(padding, numbers.Number):
        padding = [int(padding)]
    padding = list(padding)
    if len(padding) not in (1, 2, 4):
        raise ValueError(
            f"pad: padding must be an int or a 1, 2 or 4 element sequence, got {len(padding)}"
        )
    if len(padding) == 1:
        return [padding[0]] * 4
    if len(padding) == 2:
        return [padding[0], padding[1], padding[0], padding[1]]
    return padding  # left, top, right, bottom


def _pad_tensor(img, lrtb, fill, mode):
    left, right, top, bottom = lrtb
    if mode == "symmetric":
        # NOTE: mirrored including the edge pixel: built from flips (negative pads crop)
        x = img
        h, w = x.shape[-2:]
        x = x[..., max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
        t, b, lft, r = max(top, 0), max(bottom, 0), max(left, 0), max(right, 0)
        parts = []
        if lft:
            parts.append(x[..., :lft].flip(-1))
        parts.append(x)
        if r:
            parts.append(x[..., x.shape[-1] - r :].flip(-1))
        x = mg.cat(parts, -1)
        parts = []
        if t:
            parts.append(x[..., :t, :].flip(-2))
        parts.append(x)
        if b:
            parts.append(x[..., x.shape[-2] - b :, :].flip(-2))
        return mg.cat(parts, -2)
    ndim = img.ndim
    x = img if ndim >= 3 else img[None]
    nmode = {"edge": "replicate"}.get(mode, mode)
    squeeze = x.ndim == 3 and nmode != "constant"
    if squeeze:
        x = x.unsqueeze(0)
    cast = nmode != "constant" and not x.is_floating_point()
    dt = x.dtype
    if cast:
        x = x.to(mg.float32)
    if nmode == "constant":
        out = mg.nn.functional.pad(x, [left, right, top, bottom], mode="constant", value=fill)
    else:
        out = mg.nn.functional.pad(x, [left, right, top, bottom], mode=nmode)
    if cast:
        out = out.to(dt)
    if squeeze:
        out = out[0]
    return out if ndim >= 3 else out[0]


def pad(img, padding, fill=0, padding_mode: str = "constant"):
    """The image padded on its sides (an int for all, (left/right, top/bottom), or (left,
    top, right, bottom)); modes constant, edge, reflect and symmetric."""
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(
            f"pad: padding_mode should be constant, edge, reflect or symmetric, got {padding_mode}"
        )
    left, top, right, bottom = _pad_sides(padding)
    if _is_pil(img):
        pil = require_pillow()
        if padding_mode == "constant":
            from PIL import ImageOps

            fill_ = _pil_fill(img, fill)
            if img.mode == "P":
                pal = img.getpalette()
                out = ImageOps.expand(img, border=(left, top, right, bottom), fill=fill_)
                out.putpalette(pal)
                return out
            return ImageOps.expand(img, border=(left, top, right, bottom), fill=fill_)
        arr = np.asarray(img)
        if min(left, top, right, bottom) < 0:
            arr = arr[max(-top, 0) : arr.shape[0] - max(-bottom, 0),
                      max(-left, 0) : arr.shape[1] - max(-right, 0)]  # fmt: skip
            left, top, right, bottom = (max(v, 0) for v in (left, top, right, bottom))
        widths = [(top, bottom), (left, right)] + [(0, 0)] * (arr.ndim - 2)
        out = np.pad(arr, widths, padding_mode)
        res = pil.fromarray(out, mode=img.mode if img.mode != "P" else None)
        if img.mode == "P":
            res = pil.fromarray(out)
            res.putpalette(img.getpalette())
        return res
    _check_tensor(img, "pad")
    if isinstance(fill, (tuple, list)):
        raise TypeError("pad: a tensor image is padded with one number (fill)")
    return _pad_tensor(img, [left, right, top, bottom], fill, padding_mode)


def _pil_fill(img, fill):
    if fill is None:
        fill = 0
    bands = len(img.getbands())
    if isinstance(fill, numbers.Number):
        fill = tuple([fill] * bands) if bands > 1 else fill
    else:
        fill = tuple(fill)
        if len(fill) == 1:
            fill = fill * bands if bands > 1 else fill[0]
        elif len(fill) != bands:
            raise ValueError(
                f"The number of elements in 'fill' does not match the number of bands of the "
                f"image ({len(fill)} != {bands})"
            )
    if img.mode != "F":
        fill = tuple(int(v) for v in fill) if isinstance(fill, tuple) else int(fill)
    return fill


def five_crop(img, size):
    """The four corner crops and the central crop, in torchvision's order (tl, tr, bl, br,
    center)."""
    if isinstance(size, numbers.Number):
        size = (int(size), int(size))
    elif len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2:
        raise ValueError("five_crop: please provide only two dimensions (h, w) for size")
    _, h, w = get_dimensions(img)
    ch, cw = size
    if cw > w or ch > h:
        raise ValueError(
            f"five_crop: requested crop size {size} is bigger than input size {(h, w)}"
        )
    return (crop(img, 0, 0, ch, cw), crop(img, 0, w - cw, ch, cw), crop(img, h - ch, 0, ch, cw),
            crop(img, h - ch, w - cw, ch, cw), center_crop(img, [ch, cw]))  # fmt: skip


def ten_crop(img, size, vertical_flip: bool = False):
    """``five_crop`` of the image and of its flip (horizontal, or vertical)."""
    first = five_crop(img, size)
    flipped = vflip(img) if vertical_flip else hflip(img)
    return first + five_crop(flipped, size)


# ---------------------------------------------------------------------------- affine


def _inverse_affine(center, angle, translate, scale, shear):
    """The 2x3 matrix (row-major, 6 numbers) mapping output pixels to input pixels for a
    rotation by ``angle`` degrees about ``center``, then shear, scale and translation."""
    rot = math.radians(angle)
    sx, sy = math.radians(shear[0]), math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    # forward matrix (without translation): rotation with shear, R S
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    # its inverse, divided by the scale; then the centre and translation
    m = [v / scale for v in (d, -b, 0.0, -c, a, 0.0)]
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy
    return m


def _affine_grid(theta, w, h, ow, oh, dtype, device):
    """Sampling grid (1, oh, ow, 2) in grid_sample's [-1, 1] units for pixel centres."""
    xs = mg.linspace(-ow * 0.5 + 0.5, ow * 0.5 - 0.5, ow, dtype=dtype, device=device)
    ys = mg.linspace(-oh * 0.5 + 0.5, oh * 0.5 - 0.5, oh, dtype=dtype, device=device)
    base = mg.stack([xs.expand(oh, ow), ys[:, None].expand(oh, ow), mg.ones(oh, ow, dtype=dtype,
                     device=device)], -1)  # fmt: skip
    t = mg.tensor(theta, dtype=dtype, device=device).view(2, 3)
    scale = mg.tensor([0.5 * w, 0.5 * h], dtype=dtype, device=device)
    grid = base.view(oh * ow, 3) @ (t.t() / scale)
    return grid.view(1, oh, ow, 2)


def _grid_transform(img, grid, mode, fill):
    x, back = _float_in(img, (grid.dtype,))
    ndim = img.ndim
    n = x.shape[0]
    if n > 1:
        grid = grid.expand(n, *grid.shape[1:])
    if fill is not None:
        x = mg.cat([x, mg.ones(n, 1, *x.shape[2:], dtype=x.dtype, device=x.device)], 1)
    out = mg.nn.functional.grid_sample(x, grid, mode=mode, padding_mode="zeros",
                                       align_corners=False)  # fmt: skip
    if fill is not None:
        mask = out[:, -1:]
        out = out[:, :-1]
        mask = mask.expand_as(out)
        vals = list(fill) if isinstance(fill, (tuple, list)) else [float(fill)]
        f = mg.tensor(vals, dtype=out.dtype, device=out.device).view(1, len(vals), 1, 1)
        f = f.expand_as(out)
        if mode == "nearest":
            out = mg.where(mask < 0.5, f, out)
        else:
            out = out * mask + (1.0 - mask) * f
    return back(out, ndim)


def _check_fill(fill, c):
    if fill is None or isinstance(fill, numbers.Number):
        return fill
    fill = list(fill)
    if len(fill) not in (1, c):
        raise ValueError(
            f"The number of elements in 'fill' cannot broadcast to match the number of channels "
            f"of the image ({len(fill)} != {c})"
        )
    return fill


def rotate(img, angle: float, interpolation=InterpolationMode.NEAREST, expand: bool = False,
           center=None, fill=None):  # fmt: skip
    """The image rotated by ``angle`` degrees counter-clockwise about ``center`` (its
    middle by default); ``expand`` grows the canvas to hold the whole result."""
    mode = _mode(interpolation)
    if _is_pil(img):
        opts = {} if fill is None else {"fillcolor": _pil_fill(img, fill)}
        return img.rotate(angle, _PIL_CODE[mode.value], expand, center, **opts)
    _check_tensor(img, "rotate")
    c, h, w = get_dimensions(img)
    # NOTE: the tensor path's centre is relative to the middle of the image
    cx, cy = (0.0, 0.0) if center is None else (center[0] - w * 0.5, center[1] - h * 0.5)
    m = _inverse_affine([cx, cy], -angle, [0.0, 0.0], 1.0, [0.0, 0.0])
    ow, oh = w, h
    if expand:  # NOTE: the corners' bounding box, in float32 as torchvision computes it
        pts = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0],
                        [0.5 * w, 0.5 * h, 1.0], [0.5 * w, -0.5 * h, 1.0]], np.float32)  # fmt: skip
        new = pts @ np.array(m, dtype=np.float32).reshape(2, 3).T
        half = np.array([w * 0.5, h * 0.5], np.float32)
        lo, hi = new.min(0) + half, new.max(0) + half
        tol = np.float32(1e-4)
        size = np.ceil(np.trunc(hi / tol) * tol) - np.floor(np.trunc(lo / tol) * tol)
        ow, oh = int(size[0]), int(size[1])
    dtype = img.dtype if img.is_floating_point() else mg.float32
    grid = _affine_grid(m, w, h, ow, oh, dtype, img.device)
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise ValueError(f"rotate: tensor images take nearest and bilinear, got {mode.value}")
    return _grid_transform(img, grid, mode.value, _check_fill(fill, c))


def affine(img, angle: float, translate, scale: float, shear, interpolation=InterpolationMode.NEAREST,
           fill=None, center=None):  # fmt: skip
    """The image under a rotation (degrees), translation (pixels), scale and shear
    (degrees, one number for x or (x, y)) about ``center``, keeping its size."""
    mode = _mode(interpolation)
    if isinstance(shear, numbers.Number):
        shear = [float(shear), 0.0]
    shear = list(shear)
    if len(shear) == 1:
        shear = [shear[0], shear[0]]
    if len(translate) != 2:
        raise ValueError("affine: translate should be a sequence of length 2")
    if scale <= 0.0:
        raise ValueError("affine: scale should be positive")
    c, h, w = get_dimensions(img)
    if _is_pil(img):
        ctr = [w * 0.5, h * 0.5] if center is None else list(center)
        m = _inverse_affine(ctr, angle, [float(t) for t in translate], scale, shear)
        opts = {} if fill is None else {"fillcolor": _pil_fill(img, fill)}
        pil = require_pillow()
        return img.transform((w, h), pil.AFFINE, m, _PIL_CODE[mode.value], **opts)
    _check_tensor(img, "affine")
    ctr = [0.0, 0.0] if center is None else [center[0] - w * 0.5, center[1] - h * 0.5]
    m = _inverse_affine(ctr, angle, [float(t) for t in translate], scale, shear)
    dtype = img.dtype if img.is_floating_point() else mg.float32
    grid = _affine_grid(m, w, h, w, h, dtype, img.device)
    return _grid_transform(img, grid, mode.value, _check_fill(fill, c))


# ---------------------------------------------------------------------------- colour


def _blend(img1, img2, ratio: float):
    bound = _max_value(img1.dtype)
    return (float(ratio) * img1 + (1.0 - float(ratio)) * img2).clamp(0, bound).to(img1.dtype)


def rgb_to_grayscale(img, num_output_channels: int = 1):
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` (1 or 3 equal channels)."""
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    if _is_pil(img):
        return to_grayscale(img, num_output_channels)
    _check_tensor(img, "rgb_to_grayscale")
    if img.ndim < 3:
        raise TypeError(f"rgb_to_grayscale: need at least 3 dims, got {img.ndim}")
    _channels(img, (1, 3), "rgb_to_grayscale")
    if img.shape[-3] == 3:
        r, g, b = img.unbind(-3)
        gray = (0.2989 * r + 0.587 * g + 0.114 * b).to(img.dtype).unsqueeze(-3)
    else:
        gray = img.clone()
    return gray.expand(img.shape) if num_output_channels == 3 else gray


def to_grayscale(img, num_output_channels: int = 1):
    """A PIL image in grayscale ("L"; 3 equal channels as "RGB" when asked)."""
    if not _is_pil(img):
        return rgb_to_grayscale(img, num_output_channels)
    pil = require_pillow()
    if num_output_channels == 1:
        return img.convert("L")
    if num_output_channels == 3:
        g = np.asarray(img.convert("L"))
        return pil.fromarray(np.dstack([g, g, g]), "RGB")
    raise ValueError("num_output_channels should be either 1 or 3")


def _enhance(img, kind, factor):
    from PIL import ImageEnhance

    return getattr(ImageEnhance, kind)(img).enhance(factor)


def adjust_brightness(img, brightness_factor: float):
    """The image times ``brightness_factor`` (0 gives black, 1 the original)."""
    if brightness_factor < 0:
        raise ValueError(f"brightness_factor ({brightness_factor}) is not non-negative.")
    if _is_pil(img):
        return _enhance(img, "Brightness", brightness_factor)
    _check_tensor(img, "adjust_brightness")
    _channels(img, (1, 3), "adjust_brightness")
    return _blend(img, mg.zeros_like(img), brightness_factor)


def adjust_contrast(img, contrast_factor: float):
    """The image blended with its mean gray level (0 gives a gray image)."""
    if contrast_factor < 0:
        raise ValueError(f"contrast_factor ({contrast_factor}) is not non-negative.")
    if _is_pil(img):
        return _enhance(img, "Contrast", contrast_factor)
    _check_tensor(img, "adjust_contrast")
    _channels(img, (1, 3), "adjust_contrast")
    dt = img.dtype if img.is_floating_point() else mg.float32
    src = rgb_to_grayscale(img) if img.shape[-3] == 3 else img
    mean = src.to(dt).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(img, mean, contrast_factor)


def adjust_saturation(img, saturation_factor: float):
    """The image blended with its grayscale (0 gives gray, 2 doubles the saturation)."""
    if saturation_factor < 0:
        raise ValueError(f"saturation_factor ({saturation_factor}) is not non-negative.")
    if _is_pil(img):
        return _enhance(img, "Color", saturation_factor)
    _check_tensor(img, "adjust_saturation")
    _channels(img, (1, 3), "adjust_saturation")
    if img.shape[-3] == 1:
        return img
    return _blend(img, rgb_to_grayscale(img), saturation_factor)


def adjust_sharpness(img, sharpness_factor: float):
    """The image blended with a smoothed copy (0 blurs, 1 is the original, 2 sharpens)."""
    if sharpness_factor < 0:
        raise ValueError(f"sharpness_factor ({sharpness_factor}) is not non-negative.")
    if _is_pil(img):
        return _enhance(img, "Sharpness", sharpness_factor)
    _check_tensor(img, "adjust_sharpness")
    _channels(img, (1, 3), "adjust_sharpness")
    if img.shape[-1] <= 2 or img.shape[-2] <= 2:
        return img
    return _blend(img, _smooth(img), sharpness_factor)


def _smooth(img):
    """PIL's SMOOTH filter (centre weight 5, neighbours 1, over 13) inside the border; the
    border pixels are kept."""
    dt = img.dtype if img.is_floating_point() else mg.float32
    k = mg.ones(3, 3, dtype=dt, device=img.device)
    k[1, 1] = 5.0
    k = k / k.sum()
    c = img.shape[-3]
    x = img.reshape(-1, c, *img.shape[-2:]).to(dt)
    y = mg.nn.functional.conv2d(x, k.expand(c, 1, 3, 3), groups=c)
    if not img.is_floating_point():
        y = mg.round(y)
    y = y.to(img.dtype).reshape(*img.shape[:-2], img.shape[-2] - 2, img.shape[-1] - 2)
    out = img.clone()
    out[..., 1:-1, 1:-1] = y
    return out


def _rgb2hsv(img):
    r, g, b = img.unbind(-3)
    maxc = img.amax(-3)
    minc = img.amin(-3)
    same = maxc == minc
    cr = maxc - minc
    ones = mg.ones_like(maxc)
    s = cr / mg.where(same, ones, maxc)
    div = mg.where(same, ones, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = mg.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return mg.stack([h, s, maxc], -3)


def _hsv2rgb(img):
    h, s, v = img.unbind(-3)
    i = mg.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.to(mg.int32) % 6
    p = (v * (1.0 - s)).clamp(0.0, 1.0)
    q = (v * (1.0 - s * f)).clamp(0.0, 1.0)
    t = (v * (1.0 - s * (1.0 - f))).clamp(0.0, 1.0)
    # NOTE: sector i picks (r, g, b) among (v, q, p, t) as the HSV model has it
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = [mg.zeros_like(v) for _ in range(3)]
    for k, rgb in enumerate(table):
        m = (i == k).to(img.dtype)
        for ch in range(3):
            out[ch] = out[ch] + m * rgb[ch]
    return mg.stack(out, -3)


def adjust_hue(img, hue_factor: float):
    """The image with its hue shifted by ``hue_factor`` turns (in [-0.5, 0.5])."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    if _is_pil(img):
        pil = require_pillow()
        mode = img.mode
        if mode in ("L", "1", "I", "F"):
            return img
        h, s, v = img.convert("HSV").split()
        hh = np.array(h, dtype=np.uint8)
        hh += np.array(hue_factor * 255).astype(np.uint8)  # NOTE: wraps around, as hue does
        out = pil.merge("HSV", (pil.fromarray(hh, "L"), s, v))
        return out.convert(mode)
    _check_tensor(img, "adjust_hue")
    _channels(img, (1, 3), "adjust_hue")
    if img.shape[-3] == 1:
        return img
    dt = img.dtype
    x = convert_image_dtype(img, mg.float32)
    hsv = _rgb2hsv(x)
    h, s, v = hsv.unbind(-3)
    h = (h + hue_factor) % 1.0
    return convert_image_dtype(_hsv2rgb(mg.stack([h, s, v], -3)), dt)


def adjust_gamma(img, gamma: float, gain: float = 1):
    """``gain * img ** gamma`` on the [0, 1] scale."""
    if gamma < 0:
        raise ValueError("Gamma should be a non-negative real number")
    if _is_pil(img):
        mode = img.mode
        img = img.convert("RGB") if mode not in ("L", "RGB") else img
        table = [int((255 + 1 - 1e-3) * gain * pow(e / 255.0, gamma)) for e in range(256)]
        table = table * (3 if img.mode == "RGB" else 1)
        out = img.point(table)
        return out.convert(mode) if mode not in ("L", "RGB") else out
    _check_tensor(img, "adjust_gamma")
    _channels(img, (1, 3), "adjust_gamma")
    dt = img.dtype
    x = img if img.is_floating_point() else convert_image_dtype(img, mg.float32)
    x = (gain * x.pow(gamma)).clamp(0, 1)
    return convert_image_dtype(x, dt)


def invert(img):
    """``max - img`` (255 - x for 8-bit images, 1 - x for float images)."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.invert(img)
    _check_tensor(img, "invert")
    _channels(img, (1, 3), "invert")
    return _max_value(img.dtype) - img


def posterize(img, bits: int):
    """A uint8 image keeping its ``bits`` high bits."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.posterize(img, bits)
    _check_tensor(img, "posterize")
    if img.dtype != mg.uint8:
        raise TypeError(f"posterize: only uint8 tensor images are supported, got {img.dtype}")
    mask = -int(2 ** (8 - bits))
    return img & mask


def solarize(img, threshold: float):
    """Pixels at or above ``threshold`` inverted."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.solarize(img, threshold)
    _check_tensor(img, "solarize")
    _channels(img, (1, 3), "solarize")
    if threshold > _max_value(img.dtype):
        raise TypeError("solarize: threshold should be less than the bound of the image values")
    return mg.where(img >= threshold, invert(img), img)


def autocontrast(img):
    """Each channel stretched so that its lowest value is 0 and its highest the maximum."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.autocontrast(img)
    _check_tensor(img, "autocontrast")
    _channels(img, (1, 3), "autocontrast")
    bound = _max_value(img.dtype)
    dt = img.dtype if img.is_floating_point() else mg.float32
    lo = img.amin(dim=(-2, -1), keepdim=True).to(dt)
    hi = img.amax(dim=(-2, -1), keepdim=True).to(dt)
    flat = hi == lo
    lo = mg.where(flat, mg.zeros_like(lo), lo)
    hi = mg.where(flat, mg.full_like(hi, bound), hi)
    scale = bound / (hi - lo)
    return ((img - lo) * scale).clamp(0, bound).to(img.dtype)


def equalize(img):
    """The histogram of each channel equalised (uint8 images)."""
    if _is_pil(img):
        from PIL import ImageOps

        return ImageOps.equalize(img)
    _check_tensor(img, "equalize")
    if img.dtype != mg.uint8:
        raise TypeError(f"equalize: only uint8 tensor images are supported, got {img.dtype}")
    # NOTE: per channel: PIL's step (non-zero histogram entries but the last, floor-divided
    # by 255) and look-up table, done on the host (a 256-bin table per channel)
    arr = img.detach().cpu().numpy()
    flat = arr.reshape(-1, arr.shape[-2] * arr.shape[-1])
    out = np.empty_like(flat)
    for k, ch in enumerate(flat):
        hist = np.bincount(ch, minlength=256)
        nz = hist[hist != 0]
        step = (int(nz[:-1].sum()) // 255) if nz.size else 0
        if step == 0:
            out[k] = ch
            continue
        lut = (np.cumsum(hist) + step // 2) // step
        lut = np.concatenate([[0], lut[:-1]]).clip(0, 255).astype(np.uint8)
        out[k] = lut[ch]
    return mg.tensor(out.reshape(arr.shape), device=img.device)


def gaussian_blur(img, kernel_size, sigma=None):
    """The image convolved with a Gaussian (odd ``kernel_size``; ``sigma`` defaults to
    0.3 * ((k - 1) * 0.5 - 1) + 0.8, torchvision's rule), reflect-padded."""
    if isinstance(kernel_size, int):
        kernel_size = [kernel_size, kernel_size]
    kernel_size = list(kernel_size)
    if len(kernel_size) == 1:
        kernel_size = kernel_size * 2
    if len(kernel_size) != 2:
        raise ValueError(
            f"If kernel_size is a sequence its length should be 2. Got {len(kernel_size)}"
        )
    for k in kernel_size:
        if k % 2 == 0 or k < 0:
            raise ValueError(
                f"kernel_size should have odd and positive integers. Got {kernel_size}"
            )
    if sigma is None:
        sigma = [k * 0.15 + 0.35 for k in kernel_size]
    if isinstance(sigma, numbers.Number):
        sigma = [float(sigma), float(sigma)]
    sigma = [float(s) for s in sigma]
    if len(sigma) == 1:
        sigma = sigma * 2
    if any(s <= 0 for s in sigma):
        raise ValueError(f"sigma should have positive values. Got {sigma}")
    pil = _is_pil(img)
    t = pil_to_tensor(img) if pil else img
    if not pil:
        _check_tensor(t, "gaussian_blur")
    dt = t.dtype if t.is_floating_point() else mg.float32

    def k1(n, s):
        half = (n - 1) * 0.5
        x = mg.linspace(-half, half, n, dtype=dt, device=t.device)
        p = mg.exp(-0.5 * (x / s) ** 2)
        return p / p.sum()

    kx, ky = k1(kernel_size[0], sigma[0]), k1(kernel_size[1], sigma[1])
    k2 = ky[:, None] * kx[None, :]
    ndim = t.ndim
    x, back = _float_in(t, (dt,))
    c = x.shape[1]
    ph, pw = kernel_size[1] // 2, kernel_size[0] // 2
    x = mg.nn.functional.pad(x, [pw, pw, ph, ph], mode="reflect")
    y = mg.nn.functional.conv2d(x, k2.expand(c, 1, *k2.shape), groups=c)
    out = back(y, ndim)
    return to_pil_image(out, mode=img.mode) if pil else out


def erase(img, i: int, j: int, h: int, w: int, v, inplace: bool = False):
    """The region ``[i, i + h) x [j, j + w)`` of a tensor image set to ``v``."""
    _check_tensor(img, "erase")
    if not inplace:
        img = img.clone()
    img[..., i : i + h, j : j + w] = v
    return img


def _tensor_fill(img, fill):
    """``fill`` as the tensor path takes it: one float per channel (None stays None)."""
    if isinstance(img, mg.Tensor) and fill is not None:
        c = get_dimensions(img)[0]
        return [float(fill)] * c if isinstance(fill, (int, float)) else [float(f) for f in fill]
    return fill


# ---------------------------------------------------------------------------- warps


def _perspective_coeffs(startpoints, endpoints) -> list[float]:
    """(a, b, c, d, e, f, g, h) of the map taking each output pixel (x, y) of the warped
    image to ``((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (g x + h y + 1))`` in
    the source: the least-squares solution of the four corner correspondences, rounded to
    float32 as torchvision hands them on."""
    if len(startpoints) != 4 or len(endpoints) != 4:
        raise ValueError(
            f"Please provide exactly four corners, got {len(startpoints)} startpoints and "
            f"{len(endpoints)} endpoints."
        )
    a = np.zeros((8, 8), np.float64)
    for i, ((x, y), (u, v)) in enumerate(zip(endpoints, startpoints)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
    b = np.asarray(startpoints, np.float64).reshape(8)
    sol = np.linalg.lstsq(a, b, rcond=None)[0]
    return [float(c) for c in sol.astype(np.float32)]


def perspective(img, startpoints, endpoints, interpolation=InterpolationMode.BILINEAR,
                fill=None):  # fmt: skip
    """The image warped so that the corners ``startpoints`` (top-left, top-right,
    bottom-right, bottom-left) land on ``endpoints``."""
    coeffs = _perspective_coeffs(startpoints, endpoints)
    mode = _mode(interpolation)
    if _is_pil(img):
        pil = require_pillow()
        opts = {} if fill is None else {"fillcolor": _pil_fill(img, fill)}
        return img.transform(img.size, pil.PERSPECTIVE, coeffs, _PIL_CODE[mode.value], **opts)
    _check_tensor(img, "perspective")
    if mode not in (InterpolationMode.NEAREST, InterpolationMode.BILINEAR):
        raise ValueError(f"perspective: tensor images take nearest and bilinear, got {mode.value}")
    c, oh, ow = get_dimensions(img)
    dt = img.dtype if img.is_floating_point() else mg.float32
    dev = img.device
    t1 = mg.tensor(coeffs[:6], dtype=dt, device=dev).view(2, 3)
    t2 = mg.tensor([coeffs[6], coeffs[7], 1.0, coeffs[6], coeffs[7], 1.0], dtype=dt,
                   device=dev).view(2, 3)  # fmt: skip
    xs = mg.linspace(0.5, ow - 0.5, ow, dtype=dt, device=dev)
    ys = mg.linspace(0.5, oh - 0.5, oh, dtype=dt, device=dev)
    base = mg.stack([xs.expand(oh, ow), ys[:, None].expand(oh, ow),
                     mg.ones(oh, ow, dtype=dt, device=dev)], -1).view(oh * ow, 3)  # fmt: skip
    scale = mg.tensor([0.5 * ow, 0.5 * oh], dtype=dt, device=dev)
    num = base @ (t1.t() / scale)
    den = base @ t2.t()
    grid = (num / den - 1.0).view(1, oh, ow, 2)
    return _grid_transform(img, grid, mode.value, _check_fill(fill, c))


def elastic_transform(img, displacement, interpolation=InterpolationMode.BILINEAR, fill=None):
    """The image sampled at the identity grid plus ``displacement`` ((1, H, W, 2), in
    grid_sample's [-1, 1] units)."""
    mode = _mode(interpolation)
    pil = _is_pil(img)
    t = pil_to_tensor(img) if pil else img
    if not pil:
        _check_tensor(t, "elastic_transform")
    c, h, w = get_dimensions(t)
    if tuple(displacement.shape) != (1, h, w, 2):
        raise ValueError(
            f"elastic_transform: displacement should have shape (1, {h}, {w}, 2), got "
            f"{tuple(displacement.shape)}"
        )
    dt = t.dtype if t.is_floating_point() else mg.float32
    dev = t.device
    ys = mg.linspace((-h + 1) / h, (h - 1) / h, h, dtype=dt, device=dev)
    xs = mg.linspace((-w + 1) / w, (w - 1) / w, w, dtype=dt, device=dev)
    ident = mg.stack([xs.expand(h, w), ys[:, None].expand(h, w)], -1).unsqueeze(0)
    grid = ident + displacement.to(device=dev, dtype=dt)
    out = _grid_transform(t, grid, mode.value, _check_fill(fill, c))
    return to_pil_image(out, mode=img.mode) if pil else out
