"""IDX files, the format of MNIST and its family (raw or gzip-compressed)."""

from __future__ import annotations

import gzip
import math
import os

import numpy as np

from manygrad.data.dataset import Dataset
from manygrad.errors import DTypeError, ShapeError

from . import limits
from .walk import check_regular

__all__ = ["IDX", "read_idx"]

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IDXFormatError(ValueError):
    """An IDX file is malformed or truncated."""


def _header(path: str, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        raise IDXFormatError(
            f"IDX: {path} is not an IDX file (the first two bytes must be zero, got "
            f"{head[:4].hex()}); IDX files hold MNIST-style data (train-images-idx3-ubyte)"
        )
    code, ndim = head[2], head[3]
    if code not in _TYPES:
        raise IDXFormatError(f"IDX: {path} has unknown data type code 0x{code:02x}")
    if len(head) < 4 + 4 * ndim:
        raise IDXFormatError(f"IDX: {path} is truncated inside its header")
    dims = tuple(int.from_bytes(head[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    return np.dtype(_TYPES[code]), dims, 4 + 4 * ndim


def _gzip_size(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return None


def read_idx(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Read an IDX file (``.gz`` decompressed in memory; raw files memory-mapped).

    Args:
        path: file path.
        mmap: memory-map raw files instead of reading them (default True).

    Example:
        >>> labels = read_idx("train-labels-idx1-ubyte.gz")
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"IDX: no such file {path}")
    check_regular(path, "IDX")  # NOTE: a FIFO would block the read below forever
    gz = path.endswith(".gz")
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            head = f.read(260)
            dt, dims, offset = _header(path, head)
            need = offset + limits.declared_bytes(dims, dt.itemsize)
            if gz:  # NOTE: inflate no more than the header declares (a gzip bomb stops here)
                isize = _gzip_size(path)  # the inflated size mod 2**32, from the trailer
                if need < 2**32 and isize is not None and isize < need:
                    raise IDXFormatError(
                        f"IDX: {path} is truncated: the header promises shape {dims} ({need} "
                        f"bytes) but the file inflates to {isize} bytes; download it again"
                    )
                limits.check_fits(need, f"IDX: {path}", stream_hint=False)
                raw = head + f.read(need - len(head)) if need > len(head) else head
    except (OSError, EOFError) as e:
        kind = "gzip" if gz else "IDX"
        raise IDXFormatError(f"IDX: {path} is not a valid {kind} file ({e})") from e
    count = math.prod(dims)
    have = len(raw) if gz else os.path.getsize(path)
    if have < need:
        raise IDXFormatError(
            f"IDX: {path} is truncated: the header promises shape {dims} ({need} bytes) but "
            f"the file has {have} bytes; download it again"
        )
    if not gz and not mmap:
        limits.check_fits(need, f"IDX: {path}")
    if gz:
        a = np.frombuffer(raw, dt, count, offset).reshape(dims)
    elif mmap:
        a = np.memmap(path, dt, "r", offset, dims)
    else:
        a = np.fromfile(path, dt, count, offset=offset).reshape(dims)
    if dt.byteorder == ">" and dt.itemsize > 1:
        a = a.astype(dt.newbyteorder("="))
    return a


class IDX(Dataset):
    """Images and labels from a pair of IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST).

    A sample is ``(image, label)``: by default the image is a float32 Tensor of shape
    (1, H, W) scaled to [0, 1] (uint8 files) and the label an int; pass ``transform`` to
    get the raw uint8 (H, W) array instead and transform it yourself.

    Args:
        images: path of the images file (``*-images-idx3-ubyte[.gz]``).
        labels: path of the labels file (``*-labels-idx1-ubyte[.gz]``), or None.
        transform: callable on the raw image array (default: scale to [0, 1], add channel).
        target_transform: callable on the int label.

    Example:
        >>> ds = mg.data.IDX("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
        >>> x, y = ds[0]   # x: (1, 28, 28) float32, y: int
    """

    def __init__(self, images, labels=None, transform=None, target_transform=None):
        self.images_path, self.labels_path = os.fspath(images), labels and os.fspath(labels)
        self.images = read_idx(images)
        self.labels = read_idx(labels) if labels is not None else None
        if self.images.ndim < 1:
            raise ShapeError(f"IDX: {self.images_path} holds a scalar, expected samples")
        if self.labels is not None:
            if self.labels.ndim != 1:
                raise ShapeError(
                    f"IDX: labels file {self.labels_path} should be 1-D, got shape "
                    f"{self.labels.shape}"
                )
            if len(self.labels) != len(self.images):
                raise ShapeError(
                    f"IDX: {len(self.images)} images in {self.images_path} but "
                    f"{len(self.labels)} labels in {self.labels_path}; use matching files"
                )
        self.transform = transform
        self.target_transform = target_transform
        self.classes = sorted(np.unique(self.labels).tolist()) if self.labels is not None else []

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, a: np.ndarray):
        if self.transform is not None:
            return self.transform(np.array(a))
        from manygrad.tensor import Tensor

        if a.dtype == np.uint8:
            x = a.astype(np.float32) * np.float32(1 / 255)
        elif a.dtype.kind == "f":
            x = a.astype(np.float32)
        elif a.dtype.kind == "i":
            x = a.astype(np.float32)
        else:
            raise DTypeError(f"IDX: cannot make a tensor of {a.dtype} from {self.images_path}")
        return Tensor._wrap(x[None] if x.ndim == 2 else x)

    def __getitem__(self, index: int):
        x = self._image(self.images[index])
        if self.labels is None:
            return x
        y = int(self.labels[index])
        return x, (self.target_transform(y) if self.target_transform else y)

    def get_batch(self, indices):
        """The collated batch for ``indices`` in one read (no per-sample transform)."""
        if self.transform is not None or self.target_transform is not None:
            return None
        idx = np.asarray(indices)
        a = self.images[idx]
        if a.dtype == np.uint8:
            x = a.astype(np.float32) * np.float32(1 / 255)
        else:
            x = a.astype(np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if self.labels is None:
            return x
        return x, self.labels[idx].astype(np.int64)

    def __getstate__(self):
        d = dict(self.__dict__)
        if isinstance(d["images"], np.memmap):  # NOTE: re-map in the worker, never pickle data
            d["images"] = None
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        if self.images is None:
            self.images = read_idx(self.images_path)
