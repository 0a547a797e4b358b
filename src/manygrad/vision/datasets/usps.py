"""USPS handwritten digits from LIBSVM's ``usps.bz2`` / ``usps.t.bz2`` files."""

from __future__ import annotations

import bz2
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from .utils import download_url
from .vision import VisionDataset

__all__ = ["USPS"]


class USPS(VisionDataset):
    """USPS: 16 x 16 grey digits (7,291 training, 2,007 test), 10 classes.

    The files hold lines ``label index:value ...`` with labels 1 to 10 and values in
    [-1, 1]; items are ``(PIL image of mode "L", label - 1)`` with the pixels
    ``(value + 1) / 2 * 255`` truncated, as torchvision's.

    Args:
        root: the folder holding ``usps.bz2`` and ``usps.t.bz2``.
        train: the training file (default True), else the test file.
        transform: callable on the PIL image.
        target_transform: callable on the label.
        download: fetch the file when it is missing (default False).

    Example:
        >>> ds = USPS("data", train=False, download=True)
    """

    split_list = {
        "train": ["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.bz2",
                  "usps.bz2", "ec16c51db3855ca6c91edd34d0e9b197"],
        "test": ["https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/usps.t.bz2",
                 "usps.t.bz2", "8ea070ee2aca1ac39742fdd1ef5ed118"],
    }  # fmt: skip

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        url, filename, md5 = self.split_list["train" if train else "test"]
        path = os.path.join(self.root, filename)
        if download and not os.path.exists(path):
            download_url(url, self.root, filename, md5=md5)
        if not os.path.isfile(path):
            raise RuntimeError(
                f"Dataset not found. You can use download=True to download it (looked for {path})"
            )
        with bz2.open(path) as f:
            rows = [line.decode().split() for line in f]
        values = [[x.split(":")[-1] for x in r[1:]] for r in rows]
        imgs = np.asarray(values, dtype=np.float32).reshape(-1, 16, 16)
        # NOTE: float32 steps, then a truncating cast, as torchvision computes them
        self.data = ((imgs + 1) / 2 * 255).astype(np.uint8)
        self.targets = [int(r[0]) - 1 for r in rows]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = Image.fromarray(self.data[index]), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.data)
