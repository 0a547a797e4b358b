"""MNIST and its family (Fashion-MNIST, KMNIST, EMNIST, QMNIST) from IDX files in
torchvision's layout: ``root/<ClassName>/raw/train-images-idx3-ubyte`` (or ``.gz``)."""

from __future__ import annotations

import os
import shutil
import string
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from manygrad.data.sources.idx import read_idx

from .._pil import Image
from .utils import (
    check_integrity,
    download_from_mirrors,
    extract_archive,
    verify_str_arg,
)
from .vision import VisionDataset

__all__ = ["EMNIST", "KMNIST", "MNIST", "QMNIST", "FashionMNIST", "read_image_file",
           "read_label_file", "read_sn3_pascalvincent_tensor"]  # fmt: skip


def _tensor(a: np.ndarray):
    from manygrad.tensor import Tensor

    return Tensor._wrap(np.ascontiguousarray(a))


def _existing(path: str) -> str | None:
    """``path`` itself, or its ``.gz`` twin as downloaded (read without unpacking)."""
    for p in (path, path + ".gz"):
        if check_integrity(p):
            return p
    return None


def _row(t, index):
    """``t[index]`` as NumPy: straight from a host tensor's array (no tensor per item)."""
    a = getattr(t, "_data", t)
    if isinstance(a, np.ndarray) and isinstance(index, (int, np.integer)):
        return a[index]
    row = t[index]
    return row.numpy() if hasattr(row, "numpy") else row


def read_sn3_pascalvincent_tensor(path: str, strict: bool = True):
    """An IDX file ("SN3 Pascal Vincent" format) as a tensor of its dtype and shape."""
    return _tensor(np.array(read_idx(path, mmap=False)))


def read_label_file(path: str):
    """An IDX file of uint8 labels as a 1-D int64 tensor."""
    a = read_idx(path, mmap=False)
    if a.dtype != np.uint8:
        raise TypeError(f"x should be of dtype torch.uint8 instead of {a.dtype} ({path})")
    if a.ndim != 1:
        raise ValueError(f"x should have 1 dimension instead of {a.ndim} ({path})")
    return _tensor(a.astype(np.int64))


def read_image_file(path: str):
    """An IDX file of uint8 images as an (N, H, W) uint8 tensor."""
    a = read_idx(path, mmap=False)
    if a.dtype != np.uint8:
        raise TypeError(f"x should be of dtype torch.uint8 instead of {a.dtype} ({path})")
    if a.ndim != 3:
        raise ValueError(f"x should have 3 dimension instead of {a.ndim} ({path})")
    return _tensor(np.array(a))


class MNIST(VisionDataset):
    """The MNIST digits (60,000 training and 10,000 test images, 28 x 28, 10 classes).

    Items are ``(PIL image of mode "L", int label)`` with ``transform`` /
    ``target_transform`` applied; ``.data`` is the uint8 tensor (N, 28, 28), ``.targets``
    the int64 labels, ``.classes`` / ``.class_to_idx`` the names.

    Args:
        root: folder holding ``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
            (raw or ``.gz``).
        train: the training split (default True), else the test split.
        transform: callable on the PIL image, e.g. ``transforms.ToTensor()``.
        target_transform: callable on the label.
        download: fetch the files from torchvision's mirrors when they are missing
            (default False).

    Example:
        >>> ds = MNIST("data", train=True, download=True)
        >>> img, label = ds[0]
    """

    mirrors = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    training_file = "training.pt"
    test_file = "test.pt"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]  # fmt: skip

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        if self._check_legacy_exist():
            self.data, self.targets = self._load_legacy_data()
            return
        if download:
            self.download()
        if not self._check_exists():
            raise RuntimeError(
                "Dataset not found. You can use download=True to download it (looked for "
                f"{', '.join(self._wanted())} in {self.raw_folder}, raw or .gz)"
            )
        self.data, self.targets = self._load_data()

    # torchvision's old names, with its warnings
    @property
    def train_labels(self):
        warnings.warn("train_labels has been renamed targets", stacklevel=2)
        return self.targets

    @property
    def test_labels(self):
        warnings.warn("test_labels has been renamed targets", stacklevel=2)
        return self.targets

    @property
    def train_data(self):
        warnings.warn("train_data has been renamed data", stacklevel=2)
        return self.data

    @property
    def test_data(self):
        warnings.warn("test_data has been renamed data", stacklevel=2)
        return self.data

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, self.__class__.__name__, "raw")

    @property
    def processed_folder(self) -> str:
        return os.path.join(self.root, self.__class__.__name__, "processed")

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def _check_legacy_exist(self) -> bool:
        folder = self.processed_folder
        return os.path.isdir(folder) and all(
            check_integrity(os.path.join(folder, f)) for f in (self.training_file, self.test_file)
        )

    def _load_legacy_data(self):
        from manygrad import load

        f = self.training_file if self.train else self.test_file
        return load(os.path.join(self.processed_folder, f), weights_only=True)

    def _wanted(self) -> list[str]:
        """The unpacked names of the files this split reads."""
        prefix = "train" if self.train else "t10k"
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def _check_exists(self) -> bool:
        return all(_existing(os.path.join(self.raw_folder, f)) for f in self._wanted())

    def _load_data(self):
        images, labels = (_existing(os.path.join(self.raw_folder, f)) for f in self._wanted())
        return read_image_file(images), read_label_file(labels)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = Image.fromarray(np.asarray(_row(self.data, index), np.uint8))
        target = int(_row(self.targets, index))
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.data)

    def download(self) -> None:
        """Fetch and unpack the files that are missing (nothing when all are there)."""
        if self._check_exists():
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        for filename, md5 in self.resources:
            raw = os.path.join(self.raw_folder, os.path.splitext(filename)[0])
            if _existing(raw):
                continue
            download_from_mirrors(filename, self.mirrors, self.raw_folder, md5)
            extract_archive(os.path.join(self.raw_folder, filename), self.raw_folder)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train is True else 'Test'}"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (``root/FashionMNIST/raw``), otherwise as :class:`MNIST`."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]  # fmt: skip


class KMNIST(MNIST):
    """Kuzushiji-MNIST (``root/KMNIST/raw``), otherwise as :class:`MNIST`."""

    mirrors = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "bdb82020997e1d708af4cf47b453dcf7"),
        ("train-labels-idx1-ubyte.gz", "e144d726b3acfaa3e44228e80efcd344"),
        ("t10k-images-idx3-ubyte.gz", "5c965bf0a639b31b8f53240b1b52f4d7"),
        ("t10k-labels-idx1-ubyte.gz", "7320c461ea6c1c855c0b718fb2a4b134"),
    ]
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


class EMNIST(MNIST):
    """EMNIST, one of its six splits, from ``root/EMNIST/raw/emnist-<split>-<train|test>-
    {images-idx3,labels-idx1}-ubyte``.

    Args:
        root: the folder holding ``EMNIST/raw``.
        split: ``"byclass"``, ``"bymerge"``, ``"balanced"``, ``"letters"``, ``"digits"`` or
            ``"mnist"``.
        **kwargs: ``train``, ``transform``, ``target_transform``, ``download`` as
            :class:`MNIST`.

    Example:
        >>> ds = EMNIST("data", split="letters")
    """

    url = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
    md5 = "58c8d27c78d21e728a6bc7b3cc06412e"
    splits = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
    _merged_classes = set("cijklmopsuvwxyz")
    _all_classes = set(string.digits + string.ascii_letters)
    classes_split_dict = {
        "byclass": sorted(_all_classes),
        "bymerge": sorted(_all_classes - _merged_classes),
        "balanced": sorted(_all_classes - _merged_classes),
        "letters": ["N/A"] + list(string.ascii_lowercase),
        "digits": list(string.digits),
        "mnist": list(string.digits),
    }

    def __init__(self, root: str | os.PathLike, split: str, **kwargs: Any) -> None:
        self.split = verify_str_arg(split, "split", self.splits)
        self.training_file = self._training_file(split)
        self.test_file = self._test_file(split)
        super().__init__(root, **kwargs)
        self.classes = self.classes_split_dict[self.split]

    @staticmethod
    def _training_file(split) -> str:
        return f"training_{split}.pt"

    @staticmethod
    def _test_file(split) -> str:
        return f"test_{split}.pt"

    @property
    def _file_prefix(self) -> str:
        return f"emnist-{self.split}-{'train' if self.train else 'test'}"

    @property
    def images_file(self) -> str:
        return os.path.join(self.raw_folder, f"{self._file_prefix}-images-idx3-ubyte")

    @property
    def labels_file(self) -> str:
        return os.path.join(self.raw_folder, f"{self._file_prefix}-labels-idx1-ubyte")

    def _wanted(self) -> list[str]:
        return [os.path.basename(self.images_file), os.path.basename(self.labels_file)]

    def download(self) -> None:
        """Fetch NIST's ``gzip.zip`` (about 560 MB) and unpack all splits into ``raw``."""
        if self._check_exists():
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        download_from_mirrors(os.path.basename(self.url), [os.path.dirname(self.url) + "/"],
                              self.raw_folder, self.md5)  # fmt: skip
        extract_archive(os.path.join(self.raw_folder, "gzip.zip"), self.raw_folder)
        gzip_folder = os.path.join(self.raw_folder, "gzip")
        for name in os.listdir(gzip_folder):
            if name.endswith(".gz"):
                extract_archive(os.path.join(gzip_folder, name), self.raw_folder)
        shutil.rmtree(gzip_folder)


class QMNIST(MNIST):
    """QMNIST (Yadav and Bottou, 2019): MNIST's digits with their NIST metadata.

    Args:
        root: the folder holding ``QMNIST/raw/qmnist-{train,test}-images-idx3-ubyte`` and
            ``...-labels-idx2-int`` (or ``xnist-*`` for ``what="nist"``).
        what: ``"train"``, ``"test"``, ``"test10k"``, ``"test50k"`` or ``"nist"``
            (default: from ``train``).
        compat: targets are the class ints (default True), else each item's int64 row of
            8 metadata values.
        train: picks ``what`` when it is None (default True).
        **kwargs: ``transform``, ``target_transform``, ``download`` as :class:`MNIST`.

    Example:
        >>> ds = QMNIST("data", what="test10k")
    """

    subsets = {"train": "train", "test": "test", "test10k": "test", "test50k": "test",
               "nist": "nist"}  # fmt: skip
    _base = "https://raw.githubusercontent.com/facebookresearch/qmnist/master/"
    resources = {  # type: ignore[assignment]
        "train": [(_base + "qmnist-train-images-idx3-ubyte.gz", "ed72d4157d28c017586c42bc6afe6370"),
                  (_base + "qmnist-train-labels-idx2-int.gz", "0058f8dd561b90ffdd0f734c6a30e5e4")],
        "test": [(_base + "qmnist-test-images-idx3-ubyte.gz", "1394631089c404de565df7b7aeaf9412"),
                 (_base + "qmnist-test-labels-idx2-int.gz", "5b5b05890a5e13444e108efe57b788aa")],
        "nist": [(_base + "xnist-images-idx3-ubyte.xz", "7f124b3b8ab81486c9d8c2749c17f834"),
                 (_base + "xnist-labels-idx2-int.xz", "5ed0e788978e45d4a8bd4b7caec3d79d")],
    }  # fmt: skip
    classes = MNIST.classes

    def __init__(self, root: str | os.PathLike, what: str | None = None, compat: bool = True,
                 train: bool = True, **kwargs: Any) -> None:  # fmt: skip
        if what is None:
            what = "train" if train else "test"
        self.what = verify_str_arg(what, "what", tuple(self.subsets))
        self.compat = compat
        self.data_file = what + ".pt"
        self.training_file = self.test_file = self.data_file
        super().__init__(root, train, **kwargs)

    def _file(self, k: int) -> str:
        url = self.resources[self.subsets[self.what]][k][0]
        return os.path.join(self.raw_folder, os.path.splitext(os.path.basename(url))[0])

    @property
    def images_file(self) -> str:
        return self._file(0)

    @property
    def labels_file(self) -> str:
        return self._file(1)

    def _wanted(self) -> list[str]:
        return [os.path.basename(self.images_file), os.path.basename(self.labels_file)]

    def _load_data(self):
        images, labels = (_existing(os.path.join(self.raw_folder, f)) for f in self._wanted())
        data = read_idx(images, mmap=False)
        if data.dtype != np.uint8 or data.ndim != 3:
            raise ValueError(f"QMNIST: {images} should hold uint8 (N, H, W) images, got "
                             f"{data.dtype} of shape {data.shape}")  # fmt: skip
        targets = read_idx(labels, mmap=False).astype(np.int64)
        if targets.ndim != 2:
            raise ValueError(f"targets should have 2 dimensions instead of {targets.ndim}")
        if self.what == "test10k":
            data, targets = data[:10000], targets[:10000]
        elif self.what == "test50k":
            data, targets = data[10000:], targets[10000:]
        return _tensor(np.array(data)), _tensor(targets)

    def download(self) -> None:
        """Fetch and unpack the pair of files ``what`` reads (nothing when both are there)."""
        if self._check_exists():
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        for url, md5 in self.resources[self.subsets[self.what]]:
            name = os.path.basename(url)
            download_from_mirrors(name, [url[: -len(name)]], self.raw_folder, md5)
            extract_archive(os.path.join(self.raw_folder, os.path.basename(url)))

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img = Image.fromarray(np.asarray(_row(self.data, index), np.uint8))
        target = self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.compat:
            target = int(target[0])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def extra_repr(self) -> str:
        return f"Split: {self.what}"
