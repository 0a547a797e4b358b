"""Scientific arrays as datasets: .npy (memory-mapped), .npz, HDF5 and Zarr, with windows.

Files are opened lazily, once per process: a dataset sent to process workers carries
only paths and keys, and each worker opens its own handle (safe for HDF5).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np

from manygrad import dtypes as D
from manygrad.data.dataset import Dataset
from manygrad.errors import DTypeError, ShapeError

__all__ = ["HDF5", "ArrayDataset", "Npy", "Npz", "Zarr"]


class CorruptFileError(ValueError):
    """An array file could not be read; the message names the file and the index."""


# ---------------------------------------------------------------- lazy per-process handles


def _open_npy(path: str, key, mmap: bool):
    from .walk import check_regular

    check_regular(path, "Npy")  # NOTE: a FIFO would block np.load forever
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as e:
        raise CorruptFileError(f"Npy: cannot read {path}: {type(e).__name__}: {e}") from e


def _open_npz(path: str, key: str, mmap: bool):
    try:
        with np.load(path, allow_pickle=False) as z:
            if key not in z.files:
                raise KeyError(f"Npz: no array {key!r} in {path}; it holds {z.files}")
            return z[key]
    except KeyError:
        raise
    except Exception as e:
        raise CorruptFileError(
            f"Npz: cannot read {key!r} from {path}: {type(e).__name__}: {e}"
        ) from e


def _h5_keys(f) -> list[str]:
    names = []
    f.visititems(lambda name, obj: names.append(name) if hasattr(obj, "shape") else None)
    return names


def _open_h5(path: str, key: str, mmap: bool):
    try:
        import h5py
    except ImportError as e:
        raise ImportError("HDF5 support needs h5py: pip install 'manygrad[science]'") from e
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise CorruptFileError(f"HDF5: cannot open {path}: {type(e).__name__}: {e}") from e
    if key not in f or not hasattr(f[key], "shape"):
        keys = _h5_keys(f)
        f.close()
        raise KeyError(f"HDF5: no dataset {key!r} in {path}; it holds {keys}")
    return f[key]


def _open_zarr(path: str, key, mmap: bool):
    try:
        import zarr
    except ImportError as e:
        raise ImportError("Zarr support needs zarr: pip install 'manygrad[science]'") from e
    try:
        node = zarr.open(path, mode="r")
    except Exception as e:
        raise CorruptFileError(f"Zarr: cannot open {path}: {type(e).__name__}: {e}") from e
    if key is None:
        if not hasattr(node, "shape"):
            raise KeyError(
                f"Zarr: {path} is a group; name the array with x=, one of {_zarr_keys(node)}"
            )
        return node
    try:
        arr = node[key]
    except KeyError:
        raise KeyError(f"Zarr: no array {key!r} in {path}; it holds {_zarr_keys(node)}") from None
    if not hasattr(arr, "shape"):
        raise KeyError(f"Zarr: {key!r} in {path} is a group, not an array")
    return arr


def _zarr_keys(group) -> list[str]:
    try:
        return sorted(k for k, v in group.members(max_depth=None) if hasattr(v, "shape"))
    except Exception:
        return sorted(group.array_keys())


class LazyArray:
    """An array opened on first use in each process (``opener(path, key, mmap)``)."""

    def __init__(self, opener: Callable, path: str, key=None, mmap: bool = True):
        self.opener, self.path, self.key, self.mmap = opener, path, key, mmap
        self._arr, self._pid = None, None

    def get(self):
        if self._arr is None or self._pid != os.getpid():
            self._arr, self._pid = self.opener(self.path, self.key, self.mmap), os.getpid()
        return self._arr

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_arr"] = d["_pid"] = None  # NOTE: never pickle handles or mapped data
        return d

    def describe(self) -> str:
        return self.path if self.key is None else f"{self.path}[{self.key!r}]"


def _arr(a):
    return a.get() if isinstance(a, LazyArray) else a


def _where(a) -> str:
    return a.describe() if isinstance(a, LazyArray) else "the array"


# ---------------------------------------------------------------- the dataset


class ArrayDataset(Dataset):
    """Samples from an N-d array along axis 0, or windows/patches sliding over its axes.

    Args:
        x: an array-like (NumPy array, memmap, h5py Dataset, zarr Array).
        y: targets: an array with one entry per sample, or with the same leading shape as
            ``x`` (windowed like ``x``, for dense targets), or None.
        window: sizes of a window over the first ``len(window)`` axes; ``None`` entries step
            one by one along that axis and drop it (``(None, 64, 64)``: 64x64 patches of
            each image). Default: one sample per index of axis 0.
        stride: steps of the window (default: the window, i.e. non-overlapping).
        target: ``target(x_sample, origin) -> y`` instead of ``y``.
        transform: callable on the sample array.
        dtype: cast samples to this dtype (needed for dtypes tensors cannot hold).

    Example:
        >>> ds = mg.data.ArrayDataset(volume, window=(32, 32, 32), stride=(16, 16, 16))
    """

    def __init__(self, x, y=None, *, window: Sequence | None = None, stride: Sequence | None = None,
                 target: Callable | None = None, transform: Callable | None = None,
                 dtype=None, name: str = "ArrayDataset"):  # fmt: skip
        self.x, self.y, self.name = x, y, name
        self.target, self.transform = target, transform
        self.dtype = D.from_any(dtype).np if dtype is not None else None
        xa = _arr(x)
        shape = tuple(xa.shape)
        if not shape:
            raise ShapeError(f"{name}: {_where(x)} is a scalar; expected an array of samples")
        self._check_dtype(xa.dtype, x)
        if window is None:
            window, stride = (None,), None
        window = tuple(window)
        if len(window) > len(shape):
            raise ShapeError(f"{name}: window {window} has more axes than {_where(x)} {shape}")
        stride = tuple(stride) if stride is not None else tuple(w or 1 for w in window)
        if len(stride) != len(window):
            raise ShapeError(f"{name}: stride {stride} and window {window} differ in length")
        self.window = tuple(1 if w is None else int(w) for w in window)
        self.stride = tuple(1 if w is None else int(s) for w, s in zip(window, stride))
        self.squeeze = tuple(k for k, w in enumerate(window) if w is None)
        for k, (w, s) in enumerate(zip(self.window, self.stride)):
            if w > shape[k] or w < 1 or s < 1:
                raise ShapeError(
                    f"{name}: window {window} / stride {stride} does not fit axis {k} of size "
                    f"{shape[k]} in {_where(x)}"
                )
        self.grid = tuple(
            (shape[k] - w) // s + 1 for k, (w, s) in enumerate(zip(self.window, self.stride))
        )
        self.n = math.prod(self.grid)
        self.x_shape = shape
        self.dense_y = False
        if y is not None:
            ya = _arr(y)
            self._check_dtype(ya.dtype, y)
            k = len(self.window)
            self.dense_y = window != (None,) and tuple(ya.shape[:k]) == shape[:k]
            if not self.dense_y and ya.shape[0] != self.n:
                raise ShapeError(
                    f"{name}: {self.n} samples in {_where(x)} (shape {shape}) but {ya.shape[0]} "
                    f"targets in {_where(y)} (shape {tuple(ya.shape)}); they must match"
                )

    def _check_dtype(self, dt, src) -> None:
        if self.dtype is not None:
            return
        try:
            D.from_np(dt)
        except DTypeError:
            raise DTypeError(
                f"{self.name}: {_where(src)} has dtype {dt}, which manygrad tensors cannot hold "
                f"(supported: {D.supported()}); pass dtype='float32' (or 'int32', 'int64') to "
                "convert samples as they are read"
            ) from None

    def __len__(self) -> int:
        return self.n

    def _slices(self, index: int) -> tuple:
        if index < 0:
            index += self.n
        if not 0 <= index < self.n:
            raise IndexError(f"{self.name}: index {index} out of range for {self.n} samples")
        pos = np.unravel_index(index, self.grid)
        return tuple(
            int(p) if k in self.squeeze else slice(int(p) * s, int(p) * s + w)
            for k, (p, w, s) in enumerate(zip(pos, self.window, self.stride))
        )

    def _read(self, src, sl, index):
        try:
            a = _arr(src)[sl]
            # NOTE: a memmap slice is a view that reads nothing yet; copy it into memory here
            # (in the worker) so batches are real, writable arrays
            a = np.array(a) if isinstance(a, np.memmap) or not isinstance(a, np.ndarray) else a
        except (KeyError, ImportError, CorruptFileError):
            raise
        except Exception as e:
            raise CorruptFileError(
                f"{self.name}: cannot read sample index {index} from {_where(src)}: "
                f"{type(e).__name__}: {e}"
            ) from e
        return a.astype(self.dtype) if self.dtype is not None and a.dtype != self.dtype else a

    def __getitem__(self, index: int):
        sl = self._slices(index)
        x = self._read(self.x, sl, index)
        origin = tuple(s if isinstance(s, int) else s.start for s in sl)
        if self.target is not None:
            y = self.target(x, origin)
        elif self.y is None:
            y = None
        elif self.dense_y:
            y = self._read(self.y, sl, index)
        else:
            y = np.asarray(_arr(self.y)[index])
            if y.ndim == 0:  # a scalar label: integer labels become int64, as in PyTorch
                y = np.int64(y) if y.dtype.kind in "iu" else y[()]
        if self.transform is not None:
            x = self.transform(x)
        return x if y is None and self.target is None else (x, y)

    def get_batch(self, indices):
        """Plain samples in one read: a slice for a contiguous run, or fancy indexing of
        in-memory and memory-mapped arrays (None: use per-sample reads)."""
        if self.squeeze != (0,) or self.transform is not None or self.target is not None:
            return None
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0 or idx.min() < 0:
            return None
        if np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size)):
            sl = slice(int(idx[0]), int(idx[0]) + idx.size)
        elif isinstance(_arr(self.x), np.ndarray) and (
            self.y is None or isinstance(_arr(self.y), np.ndarray)
        ):
            sl = idx  # NOTE: h5py and zarr need sorted or orthogonal selections: per sample
        else:
            return None
        x = self._read(self.x, sl, int(idx[0]))
        if self.y is None:
            return x
        y = np.asarray(_arr(self.y)[sl])
        if y.ndim == 1 and y.dtype.kind in "iu":
            y = y.astype(np.int64)  # labels are int64, as with per-sample reads
        return x, y


def _key_or_default(key, default):
    return default if key is None else key


class Npy(ArrayDataset):
    """A ``.npy`` file, memory-mapped so that it may be larger than RAM.

    Args:
        path: the .npy file of samples.
        y: targets: another .npy path, an array, or None.
        mmap: memory-map (default True); False reads the whole file.
        **kwargs: window, stride, target, transform, dtype (see ``ArrayDataset``).

    Example:
        >>> ds = mg.data.Npy("x.npy", "y.npy")
    """

    def __init__(self, path, y=None, mmap: bool = True, **kwargs):
        x = LazyArray(_open_npy, os.fspath(path), None, mmap)
        if isinstance(y, (str, os.PathLike)):
            y = LazyArray(_open_npy, os.fspath(y), None, mmap)
        super().__init__(x, y, name="Npy", **kwargs)


class Npz(ArrayDataset):
    """Arrays ``x`` and ``y`` of a ``.npz`` archive (each read into memory once per process).

    Args:
        path: the .npz file.
        x: key of the samples (default "x").
        y: key of the targets (default "y" if present, else none).
        **kwargs: window, stride, target, transform, dtype.

    Example:
        >>> ds = mg.data.Npz("mnist.npz", x="x_train", y="y_train")
    """

    def __init__(self, path, x: str = "x", y: str | None = None, **kwargs):
        path = os.fspath(path)
        if y is None:
            try:
                with np.load(path, allow_pickle=False) as z:
                    y = "y" if "y" in z.files else None
            except Exception as e:
                raise CorruptFileError(f"Npz: cannot read {path}: {type(e).__name__}: {e}") from e
        ya = LazyArray(_open_npz, path, y, False) if y is not None else None
        super().__init__(LazyArray(_open_npz, path, x, False), ya, name="Npz", **kwargs)


class HDF5(ArrayDataset):
    """Datasets of an HDF5 file (h5py), read lazily; each worker opens its own handle.

    Args:
        path: the .h5/.hdf5 file.
        x: dataset path of the samples inside the file (e.g. "train/images").
        y: dataset path of the targets, or None.
        **kwargs: window, stride, target, transform, dtype.

    Example:
        >>> ds = mg.data.HDF5("run42.h5", x="detector/frames", y="detector/energy")
    """

    def __init__(self, path, x: str, y: str | None = None, **kwargs):
        path = os.fspath(path)
        ya = LazyArray(_open_h5, path, y) if y is not None else None
        super().__init__(LazyArray(_open_h5, path, x), ya, name="HDF5", **kwargs)
        _check_stores(self)


class Zarr(ArrayDataset):
    """Arrays of a Zarr store, read chunk by chunk as samples are asked for.

    Args:
        path: the store (a folder such as "data.zarr").
        x: array path inside a group store (None when the store is one array).
        y: array path of the targets, or None.
        **kwargs: window, stride, target, transform, dtype.

    Example:
        >>> ds = mg.data.Zarr("climate.zarr", x="t2m", window=(None, 64, 64))
    """

    def __init__(self, path, x: str | None = None, y: str | None = None, **kwargs):
        path = os.fspath(path)
        ya = LazyArray(_open_zarr, path, y) if y is not None else None
        super().__init__(LazyArray(_open_zarr, path, x), ya, name="Zarr", **kwargs)
        _check_stores(self)


def _check_stores(ds: ArrayDataset) -> None:
    from .limits import check_store

    for src in (ds.x, ds.y):
        if isinstance(src, LazyArray):
            check_store(src.get(), f"{ds.name}: {src.describe()}")
