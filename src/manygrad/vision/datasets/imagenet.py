"""ImageNet 2012 (ILSVRC) from its official archives, unpacked on first use into
``root/train/<wnid>/`` and ``root/val/<wnid>/`` as torchvision does."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from .folder import ImageFolder
from .utils import check_integrity, extract_archive, verify_str_arg

__all__ = ["ImageNet", "load_meta_file", "parse_devkit_archive", "parse_train_archive",
           "parse_val_archive"]  # fmt: skip

ARCHIVE_META = {
    "train": ("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e"),
    "val": ("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622"),
    "devkit": ("ILSVRC2012_devkit_t12.tar.gz", "fa75699e90414af021442c21a62c3abf"),
}
META_FILE = "meta.bin"


class ImageNet(ImageFolder):
    """ImageNet 2012 classification: an :class:`ImageFolder` over ``root/<split>`` whose
    ``classes`` are the class names (tuples of synonyms), ``wnids`` the WordNet ids.

    ImageNet cannot be downloaded automatically: place ``ILSVRC2012_devkit_t12.tar.gz`` and
    ``ILSVRC2012_img_train.tar`` / ``ILSVRC2012_img_val.tar`` in ``root``; the first use
    unpacks them (and writes ``meta.bin``, the same file torchvision writes).

    Args:
        root: the folder holding the archives (or the unpacked ``train`` / ``val``).
        split: ``"train"`` (default) or ``"val"``.
        **kwargs: :class:`ImageFolder`'s ``transform``, ``target_transform``, ``loader``.

    Example:
        >>> ds = ImageNet("/data/imagenet", split="val", transform=preprocess)
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", **kwargs: Any) -> None:
        root = self.root = os.path.expanduser(os.fspath(root))
        self.split = verify_str_arg(split, "split", ("train", "val"))
        self.parse_archives()
        wnid_to_classes = load_meta_file(self.root)[0]
        super().__init__(self.split_folder, **kwargs)
        self.root = root
        self.wnids = self.classes
        self.wnid_to_idx = self.class_to_idx
        self.classes = [wnid_to_classes[w] for w in self.wnids]
        self.class_to_idx = {c: i for i, names in enumerate(self.classes) for c in names}

    def parse_archives(self) -> None:
        """Write ``meta.bin`` from the devkit and unpack the split, unless already done."""
        if not check_integrity(os.path.join(self.root, META_FILE)):
            parse_devkit_archive(self.root)
        if not os.path.isdir(self.split_folder):
            (parse_train_archive if self.split == "train" else parse_val_archive)(self.root)

    @property
    def split_folder(self) -> str:
        return os.path.join(self.root, self.split)

    def extra_repr(self) -> str:
        return f"Split: {self.split}"


def load_meta_file(root: str | os.PathLike, file: str | None = None):
    """``(wnid_to_classes, val_wnids)`` from ``root/meta.bin``."""
    from manygrad import load

    path = os.path.join(root, file or META_FILE)
    if not check_integrity(path):
        raise RuntimeError(
            f"The meta file {path} is not present in the root directory or is corrupted. "
            "This file is automatically created by the ImageNet dataset (from "
            f"{ARCHIVE_META['devkit'][0]})."
        )
    return load(path, weights_only=True)


def _verify_archive(root: str, file: str) -> None:
    # NOTE: presence only; torchvision hashes each archive (the training one is 147 GB)
    if not check_integrity(os.path.join(root, file)):
        raise RuntimeError(
            f"The archive {file} is not present in the root directory or is corrupted. You "
            f"need to download it externally (https://image-net.org) and place it in {root}."
        )


def parse_devkit_archive(root: str | os.PathLike, file: str | None = None) -> None:
    """Read the devkit's class names and validation labels into ``root/meta.bin``."""
    try:
        import scipy.io as sio
    except ImportError as e:
        raise ImportError(
            "ImageNet reads the devkit's meta.mat with SciPy: pip install scipy"
        ) from e
    from manygrad import save

    root = os.fspath(root)
    file = file or ARCHIVE_META["devkit"][0]
    _verify_archive(root, file)
    tmp = tempfile.mkdtemp()
    try:
        extract_archive(os.path.join(root, file), tmp)
        devkit = os.path.join(tmp, "ILSVRC2012_devkit_t12", "data")
        meta = sio.loadmat(os.path.join(devkit, "meta.mat"), squeeze_me=True)["synsets"]
        leaves = [m for m in meta if m[4] == 0]  # num_children: the 1,000 classes
        idx_to_wnid = {int(m[0]): str(m[1]) for m in leaves}
        wnid_to_classes = {str(m[1]): tuple(str(m[2]).split(", ")) for m in leaves}
        with open(os.path.join(devkit, "ILSVRC2012_validation_ground_truth.txt")) as f:
            val_wnids = [idx_to_wnid[int(line)] for line in f.readlines()]
        save((wnid_to_classes, val_wnids), os.path.join(root, META_FILE))
    finally:
        shutil.rmtree(tmp)


def parse_train_archive(root: str | os.PathLike, file: str | None = None, folder: str = "train"):
    """Unpack the training archive (one tar per class) into ``root/train/<wnid>/``."""
    root = os.fspath(root)
    file = file or ARCHIVE_META["train"][0]
    _verify_archive(root, file)
    train_root = os.path.join(root, folder)
    extract_archive(os.path.join(root, file), train_root)
    for name in os.listdir(train_root):
        archive = os.path.join(train_root, name)
        extract_archive(archive, os.path.splitext(archive)[0], remove_finished=True)


def parse_val_archive(root: str | os.PathLike, file: str | None = None,
                      wnids: list[str] | None = None, folder: str = "val") -> None:  # fmt: skip
    """Unpack the validation archive into ``root/val/<wnid>/`` by the devkit's labels."""
    root = os.fspath(root)
    file = file or ARCHIVE_META["val"][0]
    wnids = load_meta_file(root)[1] if wnids is None else wnids
    _verify_archive(root, file)
    val_root = os.path.join(root, folder)
    extract_archive(os.path.join(root, file), val_root)
    images = sorted(os.path.join(val_root, name) for name in os.listdir(val_root))
    for wnid in set(wnids):
        os.mkdir(os.path.join(val_root, wnid))
    for wnid, path in zip(wnids, images):
        shutil.move(path, os.path.join(val_root, wnid, os.path.basename(path)))
