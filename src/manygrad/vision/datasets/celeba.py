"""CelebA (aligned and cropped faces) from its release files under ``root/celeba``."""

from __future__ import annotations

import csv
import os
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from .utils import DatasetDownloadError, check_integrity, extract_archive, verify_str_arg
from .vision import VisionDataset

__all__ = ["CelebA"]

CSV = namedtuple("CSV", ["header", "index", "data"])


def _tensor(a: np.ndarray):
    from manygrad.tensor import Tensor

    return Tensor._wrap(np.ascontiguousarray(a, dtype=np.int64))


class CelebA(VisionDataset):
    """CelebA (Liu et al., 2015): 202,599 face images with 40 binary attributes, an
    identity, a box and five landmarks each.

    Items are ``(PIL image, target)``; the target follows ``target_type``: ``"attr"`` an
    int64 tensor of 40 zeros and ones, ``"identity"`` a 0-d int64 tensor, ``"bbox"`` (4,)
    ``(x, y, width, height)`` of the uncropped image, ``"landmarks"`` (10,); a list of
    types gives a tuple, an empty list None.

    Args:
        root: the folder holding ``celeba/img_align_celeba/`` and the ``list_*.txt`` files.
        split: ``"train"`` (default), ``"valid"``, ``"test"`` or ``"all"``.
        target_type: a type above or a list of them (default ``"attr"``).
        transform: callable on the PIL image.
        target_transform: callable on the target.
        download: fetch the files from Google Drive with ``gdown`` when they are missing.

    Example:
        >>> ds = CelebA("data", split="valid", target_type=["attr", "identity"])
    """

    base_folder = "celeba"
    file_list = [
        ("0B7EVK8r0v71pZjFTYXZWM3FlRnM", "00d2c5bc6d35e252742224ab0c1e8fcb", "img_align_celeba.zip"),
        ("0B7EVK8r0v71pblRyaVFSWGxPY0U", "75e246fa4810816ffd6ee81facbd244c", "list_attr_celeba.txt"),
        ("1_ee_0u7vcNLOfNLegJRHmolfH5ICW-XS", "32bd1bd63d3c78cd57e08160ec5ed1e2",
         "identity_CelebA.txt"),
        ("0B7EVK8r0v71pbThiMVRxWXZ4dU0", "00566efa6fedff7a56946cd1c10f1c16", "list_bbox_celeba.txt"),
        ("0B7EVK8r0v71pd0FJY3Blby1HUTQ", "cc24ecafdb5b50baae59b03474781f8c",
         "list_landmarks_align_celeba.txt"),
        ("0B7EVK8r0v71pY0NSMzRuSXJEVkk", "d32c9cbf5e040fd4025c592c306e6668",
         "list_eval_partition.txt"),
    ]  # fmt: skip

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        target_type: list[str] | str = "attr",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = split
        self.target_type = target_type if isinstance(target_type, list) else [target_type]
        if not self.target_type and self.target_transform is not None:
            raise RuntimeError("target_transform is specified but target_type is empty")
        if download:
            self.download()
        if not self._check_integrity():
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it "
                f"(looked for img_align_celeba/ and the list files in {self._folder})"
            )
        which = {"train": 0, "valid": 1, "test": 2, "all": None}[
            verify_str_arg(
                split.lower() if isinstance(split, str) else split,
                "split",
                ("train", "valid", "test", "all"),
            )  # fmt: skip
        ]
        splits = self._load_csv("list_eval_partition.txt")
        identity = self._load_csv("identity_CelebA.txt")
        bbox = self._load_csv("list_bbox_celeba.txt", header=1)
        landmarks = self._load_csv("list_landmarks_align_celeba.txt", header=1)
        attr = self._load_csv("list_attr_celeba.txt", header=1)
        keep = slice(None) if which is None else splits.data[:, 0] == which
        self.filename = (splits.index if which is None
                         else [splits.index[i] for i in np.flatnonzero(keep)])  # fmt: skip
        self.identity = _tensor(identity.data[keep])
        self.bbox = _tensor(bbox.data[keep])
        self.landmarks_align = _tensor(landmarks.data[keep])
        self.attr = _tensor((attr.data[keep] + 1) // 2)  # -1 / 1 -> 0 / 1
        self.attr_names = attr.header

    @property
    def _folder(self) -> str:
        return os.path.join(self.root, self.base_folder)

    def _load_csv(self, filename: str, header: int | None = None) -> CSV:
        with open(os.path.join(self._folder, filename)) as f:
            rows = list(csv.reader(f, delimiter=" ", skipinitialspace=True))
        headers = rows[header] if header is not None else []
        rows = rows[header + 1 :] if header is not None else rows
        data = np.array([list(map(int, r[1:])) for r in rows], dtype=np.int64)
        return CSV(headers, [r[0] for r in rows], data.reshape(len(rows), -1))

    def _check_integrity(self) -> bool:
        # NOTE: presence of the list files; torchvision also hashes them (about 30 MB)
        for _, _, name in self.file_list:
            if not name.endswith(".zip") and not check_integrity(os.path.join(self._folder, name)):
                return False
        return os.path.isdir(os.path.join(self._folder, "img_align_celeba"))

    def download(self) -> None:
        """Fetch the files from Google Drive with ``gdown`` (``pip install gdown``)."""
        if self._check_integrity():
            return
        names = ", ".join(name for _, _, name in self.file_list)
        try:
            import gdown
        except ImportError as e:
            raise DatasetDownloadError(
                "CelebA is served from Google Drive, which needs gdown: pip install gdown. "
                f"Without it (or without network access), place {names} in {self._folder} "
                "(the zip unpacked to img_align_celeba/)"
            ) from e
        os.makedirs(self._folder, exist_ok=True)
        for file_id, md5, name in self.file_list:
            path = os.path.join(self._folder, name)
            if not check_integrity(path, md5):
                gdown.download(id=file_id, output=path + ".partial", quiet=False)
                if not check_integrity(path + ".partial", md5):
                    os.remove(path + ".partial")
                    raise DatasetDownloadError(
                        f"download of {name} from Google Drive failed or is corrupted; place "
                        f"the files {names} in {self._folder}"
                    )
                os.replace(path + ".partial", path)
        extract_archive(os.path.join(self._folder, "img_align_celeba.zip"))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x = Image.open(os.path.join(self._folder, "img_align_celeba", self.filename[index]))
        target: Any = []
        for t in self.target_type:
            if t == "attr":
                target.append(self.attr[index, :])
            elif t == "identity":
                target.append(self.identity[index, 0])
            elif t == "bbox":
                target.append(self.bbox[index, :])
            elif t == "landmarks":
                target.append(self.landmarks_align[index, :])
            else:
                raise ValueError(f'Target type "{t}" is not recognized.')
        if self.transform is not None:
            x = self.transform(x)
        if not target:
            return x, None
        target = tuple(target) if len(target) > 1 else target[0]
        if self.target_transform is not None:
            target = self.target_transform(target)
        return x, target

    def __len__(self) -> int:
        return len(self.attr)

    def extra_repr(self) -> str:
        return f"Target type: {self.target_type}\nSplit: {self.split}"
