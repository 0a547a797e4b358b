"""The train and test parts a dataset ships with (``manygrad train --data PATH``): IDX
``train-*``/``t10k-*`` files, ``train/`` and ``test/`` folders, train and test arrays."""

from __future__ import annotations

import os

import numpy as np


def load(path: str, own: dict, say, stream: bool = False):
    """``(train, test)`` of the split found by ``mg.data.detect.splits``."""
    kind = own["kind"]
    if stream:
        train, test = (_dataset(path, own, part) for part in ("train", "test"))
        for d in (train, test):
            d.name = path
    elif kind == "IDX":
        train, test = (_idx_arrays(path, own[part]) for part in ("train", "test"))
    elif kind == "folder":
        from ._data import read_all

        train, test = (read_all(own[part], say)[1] for part in ("train", "test"))
        train.name = test.name = path
    else:
        train, test = (_file_arrays(path, own[part]) for part in ("train", "test"))
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


def _dataset(path: str, own: dict, part: str):
    from ..data import describe
    from ..data import sources as S

    if own["kind"] == "IDX":
        return S.IDX(*own[part])
    if own["kind"] == "folder":
        return describe(own[part])[0]
    x, y = own[part]
    if path.lower().endswith(".npz"):
        return S.Npz(path, x=x, y=y)
    return S.HDF5(path, x=x, y=y)


def _idx_arrays(path: str, files: tuple[str, str]):
    from ..data.sources.idx import read_idx
    from ._data import _labelled

    images, labels = (np.asarray(read_idx(f)) for f in files)
    rng = (0.0, 255.0) if images.dtype == np.uint8 else None
    return _labelled(path, images, labels, rng)


def _file_arrays(path: str, keys: tuple[str, str]):
    from ._data import _labelled

    if path.lower().endswith(".npz"):
        with np.load(path) as z:
            x, y = z[keys[0]], z[keys[1]]
    else:
        import h5py

        with h5py.File(path, "r") as f:
            x, y = f[keys[0]][()], f[keys[1]][()]
    return _labelled(os.path.basename(path) and path, x, y)
