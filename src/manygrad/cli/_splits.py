"""The train and test parts a dataset ships with (``manygrad train --data PATH``): IDX
``train-*``/``t10k-*`` files, ``train/`` and ``test/`` folders, train and test arrays."""

from __future__ import annotations

import os

import numpy as np


def load(path: str, own: dict, say, stream: bool = False, image_size=None):
    """``(train, test)`` of the split found by ``mg.data.detect.splits``; image folders of
    mixed sizes are resized to ``image_size`` (default: the training part's most common
    size), the test part to the training part's size."""
    kind = own["kind"]
    if stream:
        train = _dataset(path, own, "train", image_size)
        test = _dataset(path, own, "test", image_size or _hw(train[0][0]))
        for d in (train, test):
            d.name = path
    elif kind == "IDX":
        train, test = (_idx_arrays(path, own[part], part) for part in ("train", "test"))
    elif kind == "folder":
        from ._data import read_all

        train = read_all(own["train"], say, image_size=image_size)[1]
        test = read_all(own["test"], say, image_size=image_size or _hw(train.images[0]))[1]
        train.name = test.name = path
    else:
        train, test = (_file_arrays(path, own[part], part) for part in ("train", "test"))
    if not stream:
        from ._data import _union

        test.input_range = train.input_range
        test.classes = train.classes = _union(train.classes, test.classes)
        shape = f" of shape {train.images.shape[1:]} ({train.images.dtype})"
        n_classes = f", {len(train.classes)} classes"
    else:
        shape = n_classes = ""
    say(f"{path}: {len(train)} train / {len(test)} test samples{shape}{n_classes}, using its "
        f"own test split ({own['test_name']})")  # fmt: skip
    return train, test


def _hw(sample):
    """``(H, W)`` of an image sample ``(C, H, W)`` (None for other samples)."""
    shape = tuple(getattr(sample, "shape", ()))
    return shape[-2:] if len(shape) == 3 else None


def _dataset(path: str, own: dict, part: str, image_size=None):
    from ..data import describe
    from ..data import sources as S

    if own["kind"] == "IDX":
        return S.IDX(*own[part])
    if own["kind"] == "folder":
        return describe(own[part], image_size=image_size)[0]
    x, y = own[part]
    if path.lower().endswith(".npz"):
        return S.Npz(path, x=x, y=y)
    return S.HDF5(path, x=x, y=y)


def _part(part: str) -> str:
    return "held-out" if part == "test" else "training"


def _idx_arrays(path: str, files: tuple[str, str], part: str = "train"):
    from ..data.sources.idx import read_idx
    from ._data import _labelled

    images, labels = (np.asarray(read_idx(f)) for f in files)
    rng = (0.0, 255.0) if images.dtype == np.uint8 else None
    return _labelled(path, images, labels, rng, _part(part))


def _file_arrays(path: str, keys: tuple[str, str], part: str = "train"):
    from ..data.sources import limits
    from ._data import _labelled

    try:
        if path.lower().endswith(".npz"):
            limits.check_npz(path)
            with np.load(path, allow_pickle=False) as z:
                x, y = z[keys[0]], z[keys[1]]
        else:
            import h5py

            with h5py.File(path, "r") as f:
                for k in keys:  # NOTE: declared sizes checked before anything is read
                    limits.check_store(f[k], f"{path}[{k!r}]")
                    limits.check_fits(limits.declared_bytes(f[k].shape, f[k].dtype.itemsize),
                                      f"{path}[{k!r}]")  # fmt: skip
                x, y = f[keys[0]][()], f[keys[1]][()]
    except (OSError, ValueError, MemoryError) as e:
        raise SystemExit(f"error: {path}: {e}") from None
    return _labelled(os.path.basename(path) and path, x, y, part=_part(part))
