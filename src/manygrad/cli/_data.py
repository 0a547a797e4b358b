"""Data for ``manygrad train --data NAME|PATH``: embedded sets by name, files by path."""

from __future__ import annotations

import os

import numpy as np

from ..datasets import ArrayData

_NPZ_PAIRS = [
    ("train_images", "train_labels", "test_images", "test_labels"),
    ("x_train", "y_train", "x_test", "y_test"),
    ("images", "labels", None, None),
    ("x", "y", None, None),
]


def load(spec: str, say=print, stream: bool = False, val_split: float | None = None,
         labels: str | None = None):  # fmt: skip
    """``(train, test)`` for a dataset name or a path; unknown names list what exists.

    A dataset that ships a test split (IDX ``train-*``/``t10k-*`` files, ``train/`` and
    ``test/`` or ``val/`` folders, train and test arrays in one file) is tested on it;
    otherwise ``val_split`` (default 0.2) of the samples is held out. ``train.split`` says
    which. With ``stream``, the parts are datasets read batch by batch instead of arrays.
    ``labels`` is the labels ``.npy`` of a ``.npy`` of samples.
    """
    from .. import datasets
    from ..data import detect

    if val_split is not None and not 0.0 < val_split < 1.0:
        raise SystemExit(f"error: --val-split must be between 0 and 1, got {val_split}")
    if spec.lower() in datasets.available():
        train, test = datasets.load(spec)
        return _note(train, test, f"the {spec} dataset's own test split")
    if not os.path.exists(spec):
        raise SystemExit(
            f"error: unknown dataset {spec!r}: not one of the embedded datasets "
            f"({', '.join(datasets.available())}) and no such file or directory"
        )
    path = os.path.abspath(spec)
    if labels is not None and not os.path.isfile(labels):
        raise SystemExit(f"error: --labels {labels}: no such file")
    if path.endswith(".txt"):
        return _note(*_text(path, say), "the last 10% of the text")
    try:
        own = detect.splits(path) if labels is None else None
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    if own is not None:
        if val_split is not None:
            say(f"{path} ships its own test split ({own['test_name']}); --val-split is not used")
        from . import _splits

        train, test = _splits.load(path, own, say, stream)
        return _note(train, test, f"the dataset's own test split ({own['test_name']})")
    frac = 0.2 if val_split is None else val_split
    how = f"{frac:.0%} of the samples held out (--val-split {frac:g})"
    if path.endswith(".npz") and not stream and labels is None:
        return _note(*_npz(path, say, frac), how)
    return _note(*_detected(path, say, stream, frac, labels), how)


def _note(train, test, text: str):
    """Remember which split the test part is, for the training summary."""
    for part in (train, test):
        if part is not None:
            try:
                part.split = text
            except AttributeError:  # pragma: no cover - a dataset with __slots__
                pass
    if isinstance(getattr(train, "extra", None), dict):
        train.extra = {**train.extra, "test_split": text}  # recorded in recipe.json's "data"
    return train, test


def _labelled(name, x, y, input_range=None) -> ArrayData:
    x = np.asarray(x)
    y = np.asarray(y).astype(np.int64)
    if len(x) != len(y):
        raise SystemExit(f"error: {name}: {len(x)} samples but {len(y)} labels")
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x[:, None]
    if input_range is None:
        hi = float(x.max()) if x.size else 1.0
        input_range = (0.0, 255.0) if x.dtype == np.uint8 else (float(x.min()), hi)
    classes = [str(i) for i in range(int(y.max()) + 1)] if y.size else []
    return ArrayData(name, x, y, classes, input_range)


def _split(data: ArrayData, frac: float = 0.2, seed: int = 0) -> tuple[ArrayData, ArrayData]:
    order = np.random.default_rng(seed).permutation(len(data))
    k = max(1, int(len(data) * frac))
    te, tr = order[:k], order[k:]

    def part(i):
        return ArrayData(data.name, data.images[i], data.labels[i], data.classes, data.input_range)

    return part(tr), part(te)


def _npz(path: str, say, frac: float = 0.2) -> tuple[ArrayData, ArrayData | None]:
    with np.load(path) as z:
        keys = set(z.files)
        for xk, yk, xtk, ytk in _NPZ_PAIRS:
            if xk in keys and yk in keys:
                train = _labelled(path, z[xk], z[yk])
                if xtk and xtk in keys and ytk in keys:
                    test = _labelled(path, z[xtk], z[ytk], train.input_range)
                    test.classes = train.classes = _union(train.classes, test.classes)
                else:
                    say(f"{path}: no test arrays; holding out {frac:.0%} of the samples for "
                        "testing")  # fmt: skip
                    train, test = _split(train, frac)
                say(
                    f"{path}: {len(train)} train / {len(test)} test samples of shape "
                    f"{train.images.shape[1:]} ({train.images.dtype}), "
                    f"{len(train.classes)} classes"
                )
                return train, test
    raise SystemExit(
        f"error: {path} holds arrays {sorted(keys)}; expected one of the pairs "
        + ", ".join(f"{x}/{y}" for x, y, _, _ in _NPZ_PAIRS)
    )


def _text(path: str, say, block_size: int = 64) -> tuple[ArrayData, ArrayData]:
    """Character-level language modelling: windows of ``block_size`` characters, each target
    the window shifted by one; the last 10% of the text is held out."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if len(text) < 4 * (block_size + 1):
        raise SystemExit(f"error: {path}: {len(text)} characters is too little text to train on")
    chars = sorted(set(text))
    lut = {c: i for i, c in enumerate(chars)}
    ids = np.fromiter((lut[c] for c in text), dtype=np.int64, count=len(text))
    cut = int(len(ids) * 0.9)

    def windows(a, stride):
        starts = np.arange(0, len(a) - block_size - 1, stride)
        x = np.stack([a[s : s + block_size] for s in starts])
        return x, np.stack([a[s + 1 : s + block_size + 1] for s in starts])

    (x, y), (xt, yt) = windows(ids[:cut], block_size // 2), windows(ids[cut:], block_size)
    say(
        f"text: {path}: {len(text):,} characters, {len(chars)} distinct; {len(x)} training "
        f"windows of {block_size}, {len(xt)} held out"
    )
    extra = {"kind": "text"}
    return (ArrayData(path, x, y, chars, None, extra), ArrayData(path, xt, yt, chars, None, extra))


def _union(a: list[str], b: list[str]) -> list[str]:
    return a if len(a) >= len(b) else b


def read_all(path: str, say, labels: str | None = None) -> tuple:
    """Everything ``mg.data.describe`` recognises at ``path``: ``(dataset, ArrayData)``."""
    from .. import backend
    from ..data import describe

    try:
        ds, text = describe(path, y_key=labels)
    except (ValueError, OSError) as e:
        raise SystemExit(f"error: {e}") from None
    say(text)
    xs, ys = [], []
    for i in range(len(ds)):
        sample = ds[i]
        if not isinstance(sample, tuple) or len(sample) != 2:
            raise SystemExit(
                f"error: {path}: samples have no labels; manygrad train needs (input, label) "
                "pairs (for a .npy of samples, give the labels with --labels y.npy)"
            )
        x, y = (backend.to_numpy(v._data) if hasattr(v, "_data") else np.asarray(v) for v in sample)
        if y.size != 1:
            raise SystemExit(f"error: {path}: labels must be one class index per sample")
        xs.append(x)
        ys.append(int(y.reshape(())))
    data = _labelled(path, np.stack(xs), np.asarray(ys))
    names = getattr(ds, "classes", None)
    if names and len(names) >= len(data.classes):
        data.classes = [str(c) for c in names]
    return ds, data


def _detected(path: str, say, stream: bool = False, frac: float = 0.2, labels=None):
    """Folders and files that ``mg.data.describe`` recognises, read into memory (or, with
    ``stream``, split into two Subsets read during training)."""
    from ..data import Subset, describe

    if stream:
        try:
            ds, text = describe(path, y_key=labels)
        except (ValueError, OSError) as e:
            raise SystemExit(f"error: {e}") from None
        say(text)
        order = np.random.default_rng(0).permutation(len(ds))
        k = max(1, int(len(ds) * frac))
        train, test = Subset(ds, order[k:].tolist()), Subset(ds, order[:k].tolist())
        train.name = test.name = path
        say(f"{path}: streaming; holding out {k} of the {len(ds)} samples for testing")
        return train, test
    _, data = read_all(path, say, labels)
    say(f"{path}: holding out {frac:.0%} of the {len(data)} samples for testing")
    return _split(data, frac)
