"""Find out what a data path holds and build the matching dataset (``manygrad train``)."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import numpy as np

from ..errors import ShapeError
from .sources.images import IMG_EXTENSIONS
from .sources.video import VIDEO_EXTENSIONS
from .sources.walk import check_regular, find_files

__all__ = ["describe", "detect"]

_X_NAMES = ("x", "X", "images", "image", "data", "inputs", "features", "x_train")
_Y_NAMES = ("y", "Y", "labels", "label", "targets", "target", "y_train")


def _class_folder_kind(path: str) -> str | None:
    kinds = set()
    with warnings.catch_warnings():  # NOTE: the dataset's own walk warns about what it skips
        warnings.simplefilter("ignore")
        for d in (e for e in os.scandir(path) if e.is_dir()):
            for n in find_files(d.path, IMG_EXTENSIONS + VIDEO_EXTENSIONS):
                kinds.add("images" if n.lower().endswith(IMG_EXTENSIONS) else "video")
    if len(kinds) > 1:
        raise ValueError(f"describe: {path} mixes image and video class folders; keep one kind")
    return kinds.pop() if kinds else None


def _idx_pair(path: str) -> tuple[str, str] | None:
    """(images, labels) IDX files in a folder, preferring the training pair."""
    names = sorted(os.listdir(path))
    imgs = [n for n in names if "idx3" in n or ("images" in n and "idx" in n)]
    labs = [n for n in names if "idx1" in n or ("labels" in n and "idx" in n)]
    for prefer in ("train", ""):
        i = [n for n in imgs if prefer in n]
        lab = [n for n in labs if prefer in n]
        if i and lab:
            return os.path.join(path, i[0]), os.path.join(path, lab[0])
    return None


def _pick(keys: list[str], given: str | None, names, what: str, path: str, required: bool):
    if given is not None:
        return given
    for n in names:
        if n in keys:
            return n
    if what == "x" and len(keys) == 1:
        return keys[0]
    if required:
        raise ValueError(f"describe: cannot tell which array of {path} holds the {what} data; "
                         f"it holds {keys}; pass --{what} KEY")  # fmt: skip
    return None


def _need(module: str, what: str, extra: str):
    """Import an optional decoder, or one line naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"reading {what} needs {module}, which is not installed: "
            f"pip install 'manygrad[{extra}]' (or pip install {module})"
        ) from None


def _image_folder(path: str, image_size=None):
    """An ImageFolder of ``path``; images of mixed sizes are resized to ``image_size`` (H, W)
    or else to the most common size among them."""
    from . import sources as S
    from .transforms import Compose, Resize, ToTensor

    if image_size is None:
        try:
            return S.ImageFolder(path), "image folder"
        except ShapeError as e:
            if "different sizes" not in str(e):
                raise
    ds = S.ImageFolder(path, check_sizes=False)
    if image_size is None:
        image_size, n, total = S.images.common_size(ds.samples)
        how = f"the most common size, {n} of {total} images; choose with --image-size"
    else:
        how = "--image-size"
    h, w = image_size
    tf = Compose([Resize((h, w)), ToTensor()])
    return S.ImageFolder(path, transform=tf), f"image folder (resized to {h}x{w}, {how})"


def detect(path, x_key: str | None = None, y_key: str | None = None, image_size=None):
    """Build the dataset for ``path``: (dataset, kind)."""
    from . import sources as S

    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"describe: no such file or folder {path}")
    check_regular(path, "describe")
    low = path.lower().rstrip("/")
    is_zarr = low.endswith(".zarr") or (os.path.isdir(path) and any(
        os.path.exists(os.path.join(path, m)) for m in ("zarr.json", ".zarray", ".zgroup")))  # fmt: skip
    if is_zarr:
        zarr = _need("zarr", "Zarr stores", "science")

        try:
            node = zarr.open(path, mode="r")
        except Exception as e:  # noqa: BLE001  (zarr's errors have no common base)
            raise ValueError(f"describe: cannot open {path} as a Zarr store: {e}") from None
        if hasattr(node, "shape"):
            return S.Zarr(path), "zarr array"
        keys = S.arrays._zarr_keys(node)
        x = _pick(keys, x_key, _X_NAMES, "x", path, True)
        y = _pick([k for k in keys if k != x], y_key, _Y_NAMES, "y", path, False)
        return S.Zarr(path, x=x, y=y), "zarr"
    if os.path.isdir(path):
        kind = _class_folder_kind(path)
        if kind == "images":
            return _image_folder(path, image_size)
        if kind == "video":
            return S.VideoFolder(path), "video folder"
        pair = _idx_pair(path)
        if pair:
            return S.IDX(*pair), "IDX pair"
        raise ValueError(
            f"describe: {path} is neither a folder of class folders (images or videos), an "
            "IDX pair, nor a .zarr store"
        )
    if "idx" in low and ("idx3" in low or "images" in low):
        name = os.path.basename(path)
        guess = name.replace("images", "labels").replace("idx3", "idx1")
        labels = os.path.join(os.path.dirname(path), guess)
        labels = labels if guess != name and os.path.exists(labels) else None
        return S.IDX(path, labels), "IDX pair" if labels else "IDX images"
    if low.endswith(".npy"):
        return S.Npy(path, y_key), "npy"
    if low.endswith(".npz"):
        with np.load(path) as z:
            keys = list(z.files)
        x = _pick(keys, x_key, _X_NAMES, "x", path, True)
        y = _pick([k for k in keys if k != x], y_key, _Y_NAMES, "y", path, False)
        return S.Npz(path, x=x, y=y), "npz"
    if low.endswith((".h5", ".hdf5", ".hdf", ".he5")):
        h5py = _need("h5py", "HDF5 files", "science")
        try:
            with h5py.File(path, "r") as f:
                keys = S.arrays._h5_keys(f)
        except OSError as e:
            raise ValueError(f"describe: cannot open {path} as HDF5: {e}") from None
        x = _pick(keys, x_key, _X_NAMES, "x", path, True)
        y = _pick([k for k in keys if k != x], y_key, _Y_NAMES, "y", path, False)
        return S.HDF5(path, x=x, y=y), "hdf5"
    raise ValueError(
        f"describe: unknown data format for {path}; expected a folder of class folders, an "
        "IDX pair, a .npy/.npz/.h5/.zarr file, or a video folder"
    )


def _counts(ds) -> dict | None:
    targets = getattr(ds, "targets", None)
    if targets is None and getattr(ds, "labels", None) is not None and hasattr(ds, "images"):
        targets = np.asarray(ds.labels)
    if targets is None and getattr(ds, "y", None) is not None and not getattr(ds, "dense_y", True):
        from .sources.arrays import _arr

        y = np.asarray(_arr(ds.y)[:])
        if y.ndim == 1 and y.dtype.kind in "iub":
            targets = y
    if targets is None:
        return None
    c = Counter(np.asarray(targets).tolist())
    return dict(sorted(c.items())) if len(c) <= 1000 else None


def describe(path, x_key: str | None = None, y_key: str | None = None, image_size=None):
    """Detect the format of ``path`` and summarise it: (dataset, text).

    Recognises a folder of class folders (images or videos), an IDX pair, ``.npy``,
    ``.npz``, ``.h5`` and ``.zarr`` (``x_key``/``y_key`` name the arrays).

    Args:
        path: file or folder.
        x_key: array holding the samples (npz/hdf5/zarr; or guessed: x, images, data...).
        y_key: array holding the targets (or a labels .npy path for a .npy file).
        image_size: ``(H, W)`` to resize a folder of images of mixed sizes to (default:
            the most common size among them).

    Example:
        >>> ds, text = mg.data.describe("data/train")
        >>> print(text)
    """
    ds, kind = detect(path, x_key, y_key, image_size)
    if len(ds) == 0:
        raise ValueError(f"describe: {os.fspath(path)} holds no samples ({kind})")
    sample = ds[0]
    x, y = sample if isinstance(sample, tuple) else (sample, None)
    xa = x._data if hasattr(x, "_data") else np.asarray(x)
    lines = [f"{kind}: {os.fspath(path)}", f"  samples: {len(ds)}",
             f"  sample shape: {tuple(xa.shape)}, dtype: {xa.dtype}"]  # fmt: skip
    if hasattr(ds, "x_shape"):
        lines.append(f"  stored array shape: {ds.x_shape}")
    if y is not None:
        ya = np.asarray(y)
        lines.append(f"  target shape: {tuple(ya.shape)}, dtype: {ya.dtype}")
    counts = _counts(ds)
    classes = getattr(ds, "classes", None)
    if counts:
        names = {i: c for i, c in enumerate(classes)} if classes and isinstance(classes[0], str) \
            else {}  # fmt: skip
        per = ", ".join(f"{names.get(k, k)}: {v}" for k, v in counts.items())
        lines.append(f"  classes: {len(counts)} ({per})")
    return ds, "\n".join(lines)
