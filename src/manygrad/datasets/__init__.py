"""``manygrad.datasets``: small data sets shipped inside the package (no downloads).

``digits``: 1,797 handwritten digits, 8x8 grayscale (values 0..16), 10 classes, split
1,437 train / 360 test (see ``DIGITS_LICENSE.md`` for source and licence).

Example:
    >>> from manygrad.datasets import load_digits
    >>> images, labels = load_digits("train")
    >>> images.shape, labels.shape
    ((1437, 8, 8), (1437,))
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_SPLITS = ("train", "test")


@dataclass
class ArrayData:
    """A labelled array data set held in memory, as the trainer consumes it.

    ``images`` are raw samples ``(N, C, H, W)`` (any numeric dtype), ``labels`` int64
    ``(N,)``; ``input_range`` is the value range of a raw sample (images files are scaled
    to it before ``mean``/``std`` normalisation).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    input_range: tuple[float, float] = (0.0, 1.0)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)


def available() -> list[str]:
    """Names of the data sets shipped with manygrad."""
    return ["digits"]


def load_digits(split: str = "train", as_dataset: bool = False):
    """The embedded 8x8 handwritten digits.

    Args:
        split: ``"train"`` (1,437 images) or ``"test"`` (360 images).
        as_dataset: return an ``mg.data.TensorDataset`` of float images ``(N, 1, 8, 8)``
            (0..16) and int64 labels instead of the raw arrays (default False).

    Returns:
        ``(images, labels)``: ``uint8`` ``(N, 8, 8)`` with values 0..16 and ``int64`` ``(N,)``.

    Example:
        >>> x, y = load_digits("test")
    """
    if split not in _SPLITS:
        raise ValueError(f"load_digits: split must be 'train' or 'test', got {split!r}")
    with np.load(os.path.join(_HERE, "digits.npz")) as z:
        images = z[f"{split}_images"]
        labels = z[f"{split}_labels"].astype(np.int64)
    if not as_dataset:
        return images, labels
    import manygrad as mg
    from manygrad.data import TensorDataset

    x = mg.tensor(images[:, None].astype(np.float32))
    return TensorDataset(x, mg.tensor(labels))


def load(name: str) -> tuple[ArrayData, ArrayData]:
    """``(train, test)`` of the embedded data set ``name`` as :class:`ArrayData`.

    Args:
        name: one of :func:`available`.

    Example:
        >>> train, test = load("digits")
    """
    if name.lower() != "digits":
        raise ValueError(
            f"unknown dataset {name!r}; available datasets: {', '.join(available())} "
            "(or pass a path to your own data)"
        )
    out = []
    for split in _SPLITS:
        x, y = load_digits(split)
        out.append(ArrayData("digits", x[:, None], y, [str(i) for i in range(10)], (0.0, 16.0)))
    return out[0], out[1]


__all__ = ["ArrayData", "available", "load", "load_digits"]
