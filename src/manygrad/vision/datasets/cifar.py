"""CIFAR-10 and CIFAR-100 from the pickled batches of the ``python`` release
(``root/cifar-10-batches-py/data_batch_1`` ..., as torchvision reads them)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from .._pil import Image
from .utils import check_integrity, download_url, extract_archive
from .vision import VisionDataset

__all__ = ["CIFAR10", "CIFAR100"]

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("copyreg", "_reconstructor")}  # fmt: skip


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's batches (dicts of bytes, lists and NumPy arrays) and nothing else:
    a pickle naming any other class or function is refused rather than run."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"CIFAR: refusing to load {module}.{name} from a batch file; CIFAR's pickles hold "
            "only lists, bytes and NumPy arrays. Is this file really a CIFAR batch?"
        )


def _load_pickle(path: str):
    with open(path, "rb") as f:
        return _BatchUnpickler(f, encoding="latin1").load()


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test RGB images of 32 x 32 in 10 classes.

    Items are ``(PIL RGB image, int label)`` with ``transform`` / ``target_transform``
    applied; ``.data`` is the uint8 NumPy array (N, 32, 32, 3), ``.targets`` a list of ints,
    ``.classes`` / ``.class_to_idx`` the names from the ``batches.meta`` file.

    Args:
        root: folder holding ``cifar-10-batches-py/`` (or the ``cifar-10-python.tar.gz``
            archive, which is unpacked on first use).
        train: the five training batches (default True), else ``test_batch``.
        transform: callable on the PIL image, e.g. ``transforms.ToTensor()``.
        target_transform: callable on the label.
        download: fetch the archive from the University of Toronto when the files are
            missing (default False).

    Example:
        >>> ds = CIFAR10("data", train=False, download=True)
        >>> img, label = ds[0]
    """

    base_folder = "cifar-10-batches-py"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    filename = "cifar-10-python.tar.gz"
    tgz_md5 = "c58f30108f718f92721af3b95e74349a"
    train_list = [
        ["data_batch_1", "c99cafc152244af753f735de768cd75f"],
        ["data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"],
        ["data_batch_3", "54ebc095f3ab1f0389bbae665268c751"],
        ["data_batch_4", "634d18415352ddfa80567beed471001a"],
        ["data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"],
    ]
    test_list = [["test_batch", "40351d587109b95175f43aff81a1287e"]]
    meta = {"filename": "batches.meta", "key": "label_names",
            "md5": "5ff9c542aee3614f3951f8cda6e48888"}  # fmt: skip

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
        if download:
            self.download()
        elif not self._check_integrity() and os.path.isfile(self._archive):
            extract_archive(self._archive, self.root)  # NOTE: an archive placed by hand
        if not self._check_integrity():
            raise RuntimeError(
                "Dataset not found or corrupted. You can use download=True to download it "
                f"(looked for {', '.join(self._missing())} in {self._folder}, or the archive "
                f"{self._archive})"
            )
        data, self.targets = [], []
        for name, _ in self.train_list if self.train else self.test_list:
            entry = _load_pickle(os.path.join(self._folder, name))
            data.append(entry["data"])
            self.targets.extend(entry["labels"] if "labels" in entry else entry["fine_labels"])
        self.data = np.vstack(data).reshape(-1, 3, 32, 32).transpose((0, 2, 3, 1))
        self._load_meta()

    @property
    def _folder(self) -> str:
        return os.path.join(self.root, self.base_folder)

    @property
    def _archive(self) -> str:
        return os.path.join(self.root, self.filename)

    def _missing(self) -> list[str]:
        names = [n for n, _ in self.train_list + self.test_list]
        return [n for n in names if not check_integrity(os.path.join(self._folder, n))]

    def _load_meta(self) -> None:
        path = os.path.join(self._folder, self.meta["filename"])
        if not check_integrity(path):
            raise RuntimeError(
                "Dataset metadata file not found or corrupted. You can use download=True to "
                f"download it (looked for {path})"
            )
        self.classes = _load_pickle(path)[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.data)

    def _check_integrity(self) -> bool:
        # NOTE: presence only; torchvision also hashes every batch on each construction
        # (about 0.3 s), which would refuse the smaller files of a subset saved in this format
        return not self._missing()

    def download(self) -> None:
        """Fetch (unless present) and unpack the archive; nothing when the batches are there."""
        if self._check_integrity():
            return
        if not os.path.isfile(self._archive):
            download_url(self.url, self.root, self.filename, self.tgz_md5)
        extract_archive(self._archive, self.root)

    def extra_repr(self) -> str:
        return f"Split: {'Train' if self.train is True else 'Test'}"


class CIFAR100(CIFAR10):
    """CIFAR-100 (``root/cifar-100-python/{train,test,meta}``): 100 fine classes, with the
    fine labels as targets; otherwise as :class:`CIFAR10`."""

    base_folder = "cifar-100-python"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    filename = "cifar-100-python.tar.gz"
    tgz_md5 = "eb9058c3a382ffc7106e4002c42a8d85"
    train_list = [["train", "16019d7e3df5f24257cddd939b257f8d"]]
    test_list = [["test", "f0ef6b0ae62326f3e7ffdfab6717acfc"]]
    meta = {"filename": "meta", "key": "fine_label_names",
            "md5": "7973b15100ade9c7d40fb424638fde48"}  # fmt: skip
