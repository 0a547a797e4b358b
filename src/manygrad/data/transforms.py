"""Per-sample transforms for images, run on the host in the loader's workers.

PIL images go through Pillow; Tensors and NumPy arrays are taken as ``(..., H, W)``
(channels first, as after ``ToTensor``). Random transforms draw from
``mg.data.sample_rng()``, so with a DataLoader ``seed`` a sample gets the same
augmentation whatever the number of workers.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np

from .dataset import sample_rng

__all__ = [
    "CenterCrop",
    "Compose",
    "Lambda",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ToTensor",
    "require_pillow",
]


def require_pillow():
    """The ``PIL.Image`` module, or an ImportError that says how to install it."""
    try:
        from PIL import Image
    except ImportError as e:
        raise ImportError(
            "image support needs Pillow, which is not installed: pip install 'manygrad[images]'"
        ) from e
    return Image


def _is_pil(x) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(x, Image.Image)


def _split(x):
    """(raw array, rewrap function) for a Tensor or ndarray."""
    from manygrad.tensor import Tensor

    if isinstance(x, Tensor):
        return x._data, Tensor._wrap
    if isinstance(x, np.ndarray):
        return x, lambda a: a
    raise TypeError(f"expected a PIL image, Tensor or NumPy array, got {type(x).__name__}")


def _size2(size) -> tuple[int, int]:
    if isinstance(size, numbers.Number):
        return int(size), int(size)
    if len(size) == 1:
        return int(size[0]), int(size[0])
    return int(size[0]), int(size[1])


def _image_hw(x) -> tuple[int, int]:
    if _is_pil(x):
        return x.size[1], x.size[0]
    a, _ = _split(x)
    return a.shape[-2], a.shape[-1]


class Compose:
    """Apply transforms one after the other.

    Args:
        transforms: list of callables.

    Example:
        >>> t = Compose([Resize(32), CenterCrop(28), ToTensor()])
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Lambda:
    """Wrap a function as a transform. Example: ``Lambda(lambda x: x * 2)``."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


class Resize:
    """Resize to ``(h, w)``, or match the smaller edge to ``size`` when it is an int.

    Args:
        size: int (smaller edge, aspect kept) or (h, w).
        interpolation: "bilinear" (default), "nearest", "bicubic", "lanczos", "box".

    Example:
        >>> Resize((224, 224))(img).size
        (224, 224)
    """

    fixes_size = True

    def __init__(self, size, interpolation: str = "bilinear"):
        if interpolation not in _RESAMPLE:
            raise ValueError(
                f"Resize: unknown interpolation {interpolation!r}; use {list(_RESAMPLE)}"
            )
        self.size = size
        self.interpolation = interpolation
        self.fixes_size = not isinstance(size, numbers.Number)

    def _target(self, h: int, w: int) -> tuple[int, int]:
        if isinstance(self.size, numbers.Number):
            s = int(self.size)
            return (s, max(1, round(w * s / h))) if h <= w else (max(1, round(h * s / w)), s)
        return _size2(self.size)

    def __call__(self, x):
        h, w = _image_hw(x)
        th, tw = self._target(h, w)
        if _is_pil(x):
            return x.resize((tw, th), _RESAMPLE[self.interpolation])
        pil_image = require_pillow()
        a, wrap = _split(x)
        lead = a.shape[:-2]
        flat = a.reshape(-1, h, w).astype(np.float32, copy=False)
        out = np.stack([
            np.asarray(pil_image.fromarray(c).resize((tw, th), _RESAMPLE[self.interpolation]))
            for c in flat
        ])  # fmt: skip
        return wrap(out.reshape(lead + (th, tw)).astype(a.dtype, copy=False))

    def __repr__(self) -> str:
        return f"Resize(size={self.size}, interpolation={self.interpolation!r})"


def _crop(x, top: int, left: int, h: int, w: int):
    if _is_pil(x):
        return x.crop((left, top, left + w, top + h))
    a, wrap = _split(x)
    return wrap(np.ascontiguousarray(a[..., top : top + h, left : left + w]))


class CenterCrop:
    """Crop the centre ``(h, w)`` (or ``size x size``).

    Args:
        size: int or (h, w).

    Example:
        >>> CenterCrop(28)(img).size
        (28, 28)
    """

    fixes_size = True

    def __init__(self, size):
        self.size = _size2(size)

    def __call__(self, x):
        h, w = _image_hw(x)
        th, tw = self.size
        if th > h or tw > w:
            raise ValueError(
                f"CenterCrop: crop size {self.size} is larger than the image ({h}, {w})"
            )
        return _crop(x, int(round((h - th) / 2.0)), int(round((w - tw) / 2.0)), th, tw)

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


def _pad(x, pad: tuple[int, int, int, int], fill):
    left, top, right, bottom = pad
    if _is_pil(x):
        pil_image = require_pillow()
        out = pil_image.new(x.mode, (x.size[0] + left + right, x.size[1] + top + bottom), fill)
        out.paste(x, (left, top))
        return out
    a, wrap = _split(x)
    widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
    return wrap(np.pad(a, widths, constant_values=fill))


class RandomCrop:
    """Crop a random ``(h, w)`` window, optionally after padding.

    Args:
        size: int or (h, w).
        padding: int or (left/right, top/bottom) or 4 ints, added first (default None).
        pad_if_needed: pad images smaller than ``size`` (default False).
        fill: value of padded pixels (default 0).

    Example:
        >>> RandomCrop(32, padding=4)(img).size
        (32, 32)
    """

    fixes_size = True

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0):
        self.size = _size2(size)
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill

    def __call__(self, x):
        if self.padding is not None:
            p = self.padding
            p = (p,) * 4 if isinstance(p, int) else (tuple(p) * 2 if len(p) == 2 else tuple(p))
            x = _pad(x, p, self.fill)
        h, w = _image_hw(x)
        th, tw = self.size
        if self.pad_if_needed and (h < th or w < tw):
            dw, dh = max(0, tw - w), max(0, th - h)
            x = _pad(x, (dw, dh, dw, dh), self.fill)
            h, w = _image_hw(x)
        if th > h or tw > w:
            raise ValueError(
                f"RandomCrop: crop size {self.size} is larger than the image ({h}, {w}); "
                "pass pad_if_needed=True or resize first"
            )
        rng = sample_rng()
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return _crop(x, top, left, th, tw)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Flip left-right with probability ``p``.

    Args:
        p: probability of a flip (default 0.5).

    Example:
        >>> RandomHorizontalFlip(p=1.0)(img)
    """

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x):
        if sample_rng().random() >= self.p:
            return x
        if _is_pil(x):
            return x.transpose(0)  # Image.FLIP_LEFT_RIGHT
        a, wrap = _split(x)
        return wrap(np.ascontiguousarray(a[..., ::-1]))

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ToTensor:
    """PIL image or HWC uint8 array -> float32 Tensor of shape (C, H, W) in [0, 1].

    Example:
        >>> ToTensor()(img).shape
        (3, 32, 32)
    """

    def __call__(self, x):
        from manygrad.tensor import Tensor

        if _is_pil(x):
            if x.mode in ("I;16", "I;16B", "I;16L"):
                a = np.asarray(x, dtype=np.uint16).astype(np.float32) / 65535.0
            elif x.mode == "I":
                a = np.asarray(x, dtype=np.int32).astype(np.float32) / 65535.0
            elif x.mode == "F":
                a = np.asarray(x, dtype=np.float32)
            elif x.mode == "1":
                a = np.asarray(x, dtype=np.float32)
            else:
                a = np.asarray(x, dtype=np.uint8).astype(np.float32) / 255.0
        elif isinstance(x, np.ndarray):
            a = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
        else:
            raise TypeError(f"ToTensor: expected a PIL image or ndarray, got {type(x).__name__}")
        if a.ndim == 2:
            a = a[:, :, None]
        return Tensor._wrap(np.ascontiguousarray(a.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """``(x - mean) / std`` per channel of a (C, H, W) Tensor or array.

    Args:
        mean: per-channel means.
        std: per-channel standard deviations.
        inplace: modify the input (default False).

    Example:
        >>> Normalize([0.5] * 3, [0.25] * 3)(ToTensor()(img))
    """

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std evaluated to zero in {self.std.tolist()}")
        self.inplace = inplace

    def __call__(self, x):
        a, wrap = _split(x)
        if a.ndim < 3:
            raise ValueError(f"Normalize: expected a (C, H, W) tensor, got shape {a.shape}")
        c = a.shape[-3]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(
                f"Normalize: {c} channels but mean has {self.mean.size} and std {self.std.size}"
            )
        m = self.mean.reshape(-1, 1, 1).astype(a.dtype)
        s = self.std.reshape(-1, 1, 1).astype(a.dtype)
        if self.inplace:
            a -= m
            a /= s
            return x
        return wrap((a - m) / s)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def fixes_size(transform) -> bool:
    """Whether ``transform`` surely produces one output size (a resize or crop in it)."""
    if transform is None:
        return False
    if isinstance(transform, Compose):
        return any(fixes_size(t) for t in transform.transforms)
    return bool(getattr(transform, "fixes_size", False))
