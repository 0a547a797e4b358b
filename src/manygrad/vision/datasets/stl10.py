"""STL-10 from its binary release (``root/stl10_binary/train_X.bin`` ...)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from .utils import check_integrity, download_url, extract_archive, verify_str_arg
from .vision import VisionDataset

__all__ = ["STL10"]


class STL10(VisionDataset):
    """STL-10 (Coates et al., 2011): 96 x 96 RGB images, 5,000 labelled training, 8,000
    test and 100,000 unlabelled ones, 10 classes.

    ``.data`` is the uint8 NumPy array (N, 3, 96, 96), ``.labels`` the int labels (-1 for
    unlabelled images, whose items have target -1).

    Args:
        root: the folder holding ``stl10_binary/``.
        split: ``"train"`` (default), ``"test"``, ``"unlabeled"`` or ``"train+unlabeled"``.
        folds: one of the ten predefined 1,000-image training folds (0 to 9), or None for
            all 5,000 (default).
        transform: callable on the PIL image.
        target_transform: callable on the label.
        download: fetch and unpack the archive (2.6 GB) when files are missing.

    Example:
        >>> ds = STL10("data", split="unlabeled")
    """

    base_folder = "stl10_binary"
    url = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
    filename = "stl10_binary.tar.gz"
    tgz_md5 = "91f7769df0f17e558f3565bffb0c7dfb"
    class_names_file = "class_names.txt"
    folds_list_file = "fold_indices.txt"
    train_list = [
        ["train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"],
        ["train_y.bin", "5a34089d4802c674881badbb80307741"],
        ["unlabeled_X.bin", "5242ba1fed5e4be9e1e742405eb56ca4"],
    ]
    test_list = [
        ["test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"],
        ["test_y.bin", "36f9794fa4beb8a2c72628de14fa638e"],
    ]
    splits = ("train", "train+unlabeled", "unlabeled", "test")

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        folds: int | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = verify_str_arg(split, "split", self.splits)
        self.folds = self._verify_folds(folds)
        if download:
            self.download()
        elif not self._check_integrity():
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it "
                f"(looked for {', '.join(self._missing())} in {self._folder})"
            )
        if split in ("train", "train+unlabeled"):
            self.data, self.labels = self._load("train_X.bin", "train_y.bin")
            self._load_folds(folds)
            if split == "train+unlabeled":
                unlabeled, _ = self._load("unlabeled_X.bin")
                self.data = np.concatenate((self.data, unlabeled))
                self.labels = np.concatenate((self.labels, np.full(len(unlabeled), -1)))
        elif split == "unlabeled":
            self.data, _ = self._load("unlabeled_X.bin")
            self.labels = np.full(len(self.data), -1)
        else:
            self.data, self.labels = self._load("test_X.bin", "test_y.bin")
        class_file = os.path.join(self._folder, self.class_names_file)
        if os.path.isfile(class_file):
            with open(class_file) as f:
                self.classes = f.read().splitlines()

    @property
    def _folder(self) -> str:
        return os.path.join(self.root, self.base_folder)

    def _needed(self) -> list[str]:
        return {"train": ["train_X.bin", "train_y.bin"], "test": ["test_X.bin", "test_y.bin"],
                "unlabeled": ["unlabeled_X.bin"],
                "train+unlabeled": ["train_X.bin", "train_y.bin", "unlabeled_X.bin"]}[self.split]  # fmt: skip

    def _missing(self) -> list[str]:
        return [n for n in self._needed() if not check_integrity(os.path.join(self._folder, n))]

    def _check_integrity(self) -> bool:
        # NOTE: presence of the files this split reads; torchvision hashes all five
        return not self._missing()

    @staticmethod
    def _verify_folds(folds: int | None) -> int | None:
        if folds is None:
            return folds
        if isinstance(folds, int):
            if folds in range(10):
                return folds
            raise ValueError(
                f"Value for argument folds should be in the range [0, 10), but got {folds}."
            )
        raise ValueError(
            f"Expected type None or int for argument folds, but got type {type(folds)}."
        )

    def _load(self, data_file: str, labels_file: str | None = None):
        labels = None
        if labels_file:
            labels = np.fromfile(os.path.join(self._folder, labels_file), dtype=np.uint8) - 1
        raw = np.fromfile(os.path.join(self._folder, data_file), dtype=np.uint8)
        # NOTE: the files store each channel column-major: (N, 3, W, H) -> (N, 3, H, W)
        return raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2), labels

    def _load_folds(self, folds: int | None) -> None:
        if folds is None:
            return
        with open(os.path.join(self._folder, self.folds_list_file)) as f:
            idx = np.array(f.read().splitlines()[folds].split(), dtype=np.int64)
        self.data, self.labels = self.data[idx], self.labels[idx]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = self.data[index], int(self.labels[index])
        img = Image.fromarray(np.transpose(img, (1, 2, 0)))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return self.data.shape[0]

    def download(self) -> None:
        """Fetch (unless present) and unpack the archive; nothing when the files are there."""
        if self._check_integrity():
            return
        archive = os.path.join(self.root, self.filename)
        if not os.path.isfile(archive):
            download_url(self.url, self.root, self.filename, self.tgz_md5)
        extract_archive(archive, self.root)

    def extra_repr(self) -> str:
        return f"Split: {self.split}"
