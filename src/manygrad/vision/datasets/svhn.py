"""SVHN (Street View House Numbers) from its ``.mat`` files (read with SciPy)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from .utils import check_integrity, download_url, verify_str_arg
from .vision import VisionDataset

__all__ = ["SVHN"]


class SVHN(VisionDataset):
    """SVHN's 32 x 32 digit crops; the label of the digit 0 is 0 (the files say 10).

    ``.data`` is the uint8 NumPy array (N, 3, 32, 32) and ``.labels`` the int64 labels.

    Args:
        root: the folder holding ``train_32x32.mat`` / ``test_32x32.mat`` /
            ``extra_32x32.mat``.
        split: ``"train"`` (default), ``"test"`` or ``"extra"``.
        transform: callable on the PIL image.
        target_transform: callable on the label.
        download: fetch the split's file when missing (default False).

    Example:
        >>> ds = SVHN("data", split="test")
    """

    split_list = {
        "train": ["http://ufldl.stanford.edu/housenumbers/train_32x32.mat", "train_32x32.mat",
                  "e26dedcc434d2e4c54c9b2d4a06d8373"],
        "test": ["http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "test_32x32.mat",
                 "eb5a983be6a315427106f1b164d9cef3"],
        "extra": ["http://ufldl.stanford.edu/housenumbers/extra_32x32.mat", "extra_32x32.mat",
                  "a93ce644f1a588dc4d68dda5feec44a7"],
    }  # fmt: skip

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = verify_str_arg(split, "split", tuple(self.split_list))
        self.url, self.filename, self.file_md5 = self.split_list[split]
        if download:
            self.download()
        path = os.path.join(self.root, self.filename)
        if not check_integrity(path):
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it "
                f"(looked for {path})"
            )
        try:
            import scipy.io as sio
        except ImportError as e:
            raise ImportError("SVHN reads .mat files with SciPy: pip install scipy") from e
        mat = sio.loadmat(path)
        self.data = np.transpose(mat["X"], (3, 2, 0, 1))
        self.labels = mat["y"].astype(np.int64).squeeze()
        np.place(self.labels, self.labels == 10, 0)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = self.data[index], int(self.labels[index])
        img = Image.fromarray(np.transpose(img, (1, 2, 0)))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.data)

    def _check_integrity(self) -> bool:
        return check_integrity(os.path.join(self.root, self.filename))

    def download(self) -> None:
        """Fetch the split's file unless it is there."""
        if not self._check_integrity():
            download_url(self.url, self.root, self.filename, self.file_md5)

    def extra_repr(self) -> str:
        return f"Split: {self.split}"
