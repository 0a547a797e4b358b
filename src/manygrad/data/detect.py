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

__all__ = ["describe", "detect", "split_keys", "splits"]

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


_TEST_WORDS = ("test", "t10k", "val", "valid", "validation")
_XY_WORDS = {"x": ("x", "images", "image", "data", "inputs", "features", "samples"),
             "y": ("y", "labels", "label", "targets", "target", "classes")}  # fmt: skip


def _split_files(names: list[str], want: str) -> tuple[str, str] | None:
    """(images, labels) IDX file names of one split (``train`` or test) in a folder listing."""
    words = ("train",) if want == "train" else _TEST_WORDS
    mine = [n for n in names if n.lower().startswith(words)]
    imgs = [n for n in mine if "idx3" in n or ("images" in n and "idx" in n)]
    labs = [n for n in mine if "idx1" in n or ("labels" in n and "idx" in n)]
    # NOTE: a file kept both raw and as .gz (as downloaders leave them) counts once: raw
    imgs, labs = ([n for n in ns if not (n.endswith(".gz") and n[:-3] in ns)]
                  for ns in (imgs, labs))  # fmt: skip
    return (imgs[0], labs[0]) if len(imgs) == 1 and len(labs) == 1 else None


def split_keys(keys: list[str]) -> dict | None:
    """``{"train": (x, y), "test": (x, y)}`` array keys of a file that ships both splits
    (``x_train``/``y_train``/``x_test``/``y_test``, ``train_images``/..., ``train/x``/...)."""
    out = {}
    for split, words in (("train", ("train",)), ("test", _TEST_WORDS)):
        found = {}
        for k in keys:
            low = k.lower()
            for w in words:
                if w in low.replace("/", "_").split("_") or low.startswith(w + "/"):
                    rest = "_".join(p for p in low.replace("/", "_").split("_") if p != w)
                    for axis, names in _XY_WORDS.items():
                        if rest in names:
                            found.setdefault(axis, k)
        if "x" not in found or "y" not in found:
            return None
        out[split] = (found["x"], found["y"])
    return out


def splits(path) -> dict | None:
    """The train and test parts a dataset ships with, or None when it has no test part.

    Recognises an IDX folder with ``train-*`` and ``t10k-*`` (or ``test-*``) files, an image
    folder with ``train/`` and ``test/`` (or ``val/``) subfolders of class folders, and
    ``.npz`` / ``.h5`` files holding train and test arrays. Returns ``{"kind": ...,
    "train": ..., "test": ..., "test_name": ...}``: IDX ``(images, labels)`` path pairs,
    folders, or ``(x_key, y_key)`` pairs.

    Example:
        >>> mg.data.detect.splits("fashion-mnist")["kind"]
        'IDX'
    """
    path = os.fspath(path)
    low = path.lower()
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        tr, te = _split_files(names, "train"), _split_files(names, "test")
        if not (tr and te) and "raw" in names and os.path.isdir(os.path.join(path, "raw")):
            found = splits(os.path.join(path, "raw"))  # torchvision's <name>/raw/ layout
            if found is not None and found["kind"] == "IDX":
                return found
        if tr and te:
            return {"kind": "IDX", "train": tuple(os.path.join(path, n) for n in tr),
                    "test": tuple(os.path.join(path, n) for n in te),
                    "test_name": te[0].split("-")[0]}  # fmt: skip
        dirs = {n.lower(): n for n in names if os.path.isdir(os.path.join(path, n))}
        test = next((dirs[w] for w in _TEST_WORDS if w in dirs), None)
        if "train" in dirs and test is not None:
            tr, te = (os.path.join(path, d) for d in (dirs["train"], test))
            if _class_folder_kind(tr) and _class_folder_kind(te):
                return {"kind": "folder", "train": tr, "test": te, "test_name": test}
        return None
    if low.endswith(".npz") and os.path.isfile(path):
        with np.load(path) as z:
            keys = list(z.files)
    elif low.endswith((".h5", ".hdf5", ".hdf", ".he5")) and os.path.isfile(path):
        import h5py

        from .sources.arrays import _h5_keys

        with h5py.File(path, "r") as f:
            keys = _h5_keys(f)
    else:
        return None
    found = split_keys(keys)
    if found is None:
        return None
    return {"kind": "arrays", **found, "test_name": found["test"][0]}


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
