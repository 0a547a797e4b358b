"""Transforms of whole batches on the batch's device (``xp``), after the copy.

They take and return Tensors of shape (N, C, H, W) and draw their random numbers on the
device (``backend.generator``), so a GPU batch is augmented without a host sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from manygrad import backend

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "ToFloat"]


def _raw(x, name: str):
    from manygrad.tensor import Tensor

    if not isinstance(x, Tensor):
        raise TypeError(
            f"device_transforms.{name}: expected a Tensor batch, got {type(x).__name__}"
        )
    if x.ndim != 4:
        raise ValueError(
            f"device_transforms.{name}: expected (N, C, H, W), got shape {tuple(x.shape)}"
        )
    return x._data


def _wrap(a, like):
    from manygrad.tensor import Tensor

    return Tensor._wrap(a, like._device)


class Compose:
    """Apply batch transforms in order. Example: ``Compose([ToFloat(255), Normalize(m, s)])``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class ToFloat:
    """Integer batch -> float32 divided by ``scale`` (e.g. uint8 images copied as bytes).

    Args:
        scale: divisor (default 255).

    Example:
        >>> x = ToFloat()(batch_uint8)
    """

    def __init__(self, scale: float = 255.0):
        self.scale = scale

    def __call__(self, x):
        a = _raw(x, "ToFloat")
        return _wrap(a.astype(np.float32) / np.float32(self.scale), x)


class Normalize:
    """``(x - mean) / std`` per channel on the device.

    Args:
        mean: per-channel means.
        std: per-channel standard deviations.

    Example:
        >>> x = Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(x)
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, dtype=np.float64).reshape(1, -1, 1, 1)
        self._cache: dict = {}

    def _consts(self, a):
        key = (backend.device_of(a), a.dtype)
        if key not in self._cache:
            dev = key[0]
            self._cache[key] = (
                backend.to_device(self.mean.astype(a.dtype), dev),
                backend.to_device((1.0 / self.std).astype(a.dtype), dev),
            )
        return self._cache[key]

    def __call__(self, x):
        a = _raw(x, "Normalize")
        if a.dtype.kind != "f":
            raise TypeError(f"device_transforms.Normalize: expected a float batch, got {a.dtype}")
        m, inv = self._consts(a)
        return _wrap((a - m) * inv, x)


class RandomHorizontalFlip:
    """Flip each image of the batch left-right with probability ``p``.

    Args:
        p: flip probability per image (default 0.5).

    Example:
        >>> x = RandomHorizontalFlip()(x)
    """

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x):
        a = _raw(x, "RandomHorizontalFlip")
        xp = backend.array_module(a)
        u = backend.generator(backend.device_of(a)).random((a.shape[0], 1, 1, 1), np.float32)
        return _wrap(xp.where(u < self.p, a[..., ::-1], a), x)


class RandomCrop:
    """A random ``size`` window per image, after zero ``padding``, gathered on the device.

    Args:
        size: int or (h, w).
        padding: pixels added on each side first (default 0).

    Example:
        >>> x = RandomCrop(32, padding=4)(x)
    """

    def __init__(self, size, padding: int = 0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = padding

    def __call__(self, x):
        a = _raw(x, "RandomCrop")
        xp = backend.array_module(a)
        dev = backend.device_of(a)
        if self.padding:
            p = self.padding
            a = xp.pad(a, ((0, 0), (0, 0), (p, p), (p, p)))
        n, c, h, w = a.shape
        th, tw = self.size
        if th > h or tw > w:
            raise ValueError(
                f"device_transforms.RandomCrop: crop {self.size} larger than ({h}, {w})"
            )
        g = backend.generator(dev)
        top = g.integers(0, h - th + 1, (n, 1, 1), np.int64)
        left = g.integers(0, w - tw + 1, (n, 1, 1), np.int64)
        rows = top + xp.arange(th).reshape(1, th, 1)
        cols = left + xp.arange(tw).reshape(1, 1, tw)
        nidx = xp.arange(n).reshape(n, 1, 1)
        out = a.transpose(0, 2, 3, 1)[nidx, rows, cols]  # (N, th, tw, C)
        return _wrap(xp.ascontiguousarray(out.transpose(0, 3, 1, 2)), x)
