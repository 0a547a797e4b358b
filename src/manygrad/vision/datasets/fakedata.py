"""``FakeData``: random images made from each index, as torchvision's."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from ._torch_rng import randn_bytes_randint
from .vision import VisionDataset

__all__ = ["FakeData"]

_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def _to_pil(b: np.ndarray) -> Image.Image:
    """torchvision's ``ToPILImage`` of the (C, H, W) bytes of ``x.mul(255).byte()``."""
    if b.shape[0] not in _MODES:
        raise ValueError(
            f"FakeData: image_size {b.shape} has {b.shape[0]} channels; a PIL image has 1 to 4"
        )
    hwc = b.transpose(1, 2, 0)
    return Image.fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else np.ascontiguousarray(hwc))


class FakeData(VisionDataset):
    """Random images and labels, each made from its index alone: item ``i`` is the same in
    every run and equals torchvision's (PyTorch's CPU generator seeded with
    ``i + random_offset``, as torchvision draws it, without touching the global generator).

    Args:
        size: number of items (default 1000).
        image_size: (C, H, W) of the images (default (3, 224, 224)); C from 1 to 4.
        num_classes: labels are drawn from ``range(num_classes)`` (default 10).
        transform: callable on the PIL image.
        target_transform: callable on the label, given as a 0-d int64 tensor (as
            torchvision does; the result's ``.item()`` is returned).
        random_offset: added to the index to seed each item (default 0).

    Example:
        >>> ds = FakeData(size=8, image_size=(3, 32, 32), transform=transforms.ToTensor())
        >>> img, label = ds[3]
    """

    def __init__(
        self,
        size: int = 1000,
        image_size: tuple[int, ...] = (3, 224, 224),
        num_classes: int = 10,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        random_offset: int = 0,
    ) -> None:
        super().__init__(transform=transform, target_transform=target_transform)
        self.size = size
        self.num_classes = num_classes
        self.image_size = image_size
        self.random_offset = random_offset

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index >= len(self):
            raise IndexError(f"{self.__class__.__name__} index out of range")
        shape = tuple(self.image_size)
        # NOTE: PyTorch's float -> uint8 cast truncates towards zero and wraps modulo 256
        # (-0.5 * 255 becomes 129), which is what gives torchvision's FakeData its look
        b, label = randn_bytes_randint(index + self.random_offset, math.prod(shape),
                                       self.num_classes)  # fmt: skip
        b = b.reshape(shape)
        img = _to_pil(b[None] if b.ndim == 2 else b)
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is None:
            return img, label
        from manygrad.tensor import Tensor

        target = self.target_transform(Tensor._wrap(np.array(label, np.int64)))
        return img, target.item()

    def __len__(self) -> int:
        return self.size
