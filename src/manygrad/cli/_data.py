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
         labels: str | None = None, image_size=None):  # fmt: skip
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
    import zipfile

    try:
        own = detect.splits(path) if labels is None else None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise SystemExit(f"error: {e}" if path in str(e) else f"error: {path}: {e}") from None
    if own is not None:
        if val_split is not None:
            say(f"{path} ships its own test split ({own['test_name']}); --val-split is not used")
        from . import _splits

        train, test = _splits.load(path, own, say, stream, image_size)
        return _note(train, test, f"the dataset's own test split ({own['test_name']})")
    frac = 0.2 if val_split is None else val_split
    how = f"{frac:.0%} of the samples held out (--val-split {frac:g})"
    if path.endswith(".npz") and not stream and labels is None:
        return _note(*_npz(path, say, frac), how)
    return _note(*_detected(path, say, stream, frac, labels, image_size), how)


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


def _labelled(name, x, y, input_range=None, part="training") -> ArrayData:
    from ..train import guard

    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "biuf":
        raise SystemExit(f"error: {name}: the samples have dtype {x.dtype}; training needs numbers")
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise SystemExit(
            f"error: {name}: labels must be one class index per sample (a 1-D array of "
            f"whole numbers), got shape {y.shape} and dtype {y.dtype}"
        )
    if x.ndim == 0 or len(x) != len(y):
        raise SystemExit(f"error: {name}: {len(x) if x.ndim else 0} samples but {len(y)} labels")
    guard.check_samples(len(x), name, part)
    guard.check_finite(x, name, f"{part} data")
    guard.check_labels(y, name, part)
    y = y.astype(np.int64)
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x[:, None]
    if input_range is None:
        hi = float(x.max()) if x.size else 1.0
        input_range = (0.0, 255.0) if x.dtype == np.uint8 else (float(x.min()), hi)
    classes = [str(i) for i in range(int(y.max()) + 1)] if y.size else []
    return ArrayData(name, x, y, classes, input_range)


def _split(data: ArrayData, frac: float = 0.2, seed: int = 0) -> tuple[ArrayData, ArrayData]:
    if len(data) < 2:
        raise SystemExit(
            f"error: {data.name}: {len(data)} sample; training needs at least 2 (one to train "
            "on, one to test)"
        )
    order = np.random.default_rng(seed).permutation(len(data))
    k = max(1, int(len(data) * frac))
    te, tr = order[:k], order[k:]

    def part(i):
        return ArrayData(data.name, data.images[i], data.labels[i], data.classes, data.input_range)

    return part(tr), part(te)


def _npz(path: str, say, frac: float = 0.2) -> tuple[ArrayData, ArrayData | None]:
    import zipfile

    from ..data.sources.limits import check_npz

    check_npz(path)
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise ValueError("a .npy array, not a .npz archive")
        arrays = {k: z[k] for k in z.files}
        z.close()
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise SystemExit(f"error: {path}: not a readable .npz archive ({e})") from None
    z, keys = arrays, set(arrays)
    for xk, yk, xtk, ytk in _NPZ_PAIRS:
        if xk in keys and yk in keys:
            train = _labelled(path, z[xk], z[yk])
            if xtk and xtk in keys and ytk in keys:
                test = _labelled(path, z[xtk], z[ytk], train.input_range, "held-out")
                test.classes = train.classes = _union(train.classes, test.classes)
            else:
                say(f"{path}: no test arrays; holding out {frac:.0%} of the samples for testing")
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
    from ..data.sources.limits import check_fits

    try:  # NOTE: ids and windows take ~40 bytes per character
        check_fits(40 * os.path.getsize(path), f"{path} (text)", stream_hint=False)
    except MemoryError as e:
        raise SystemExit(f"error: {e}") from None
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


def _describe(path: str, say, labels: str | None = None, image_size=None):
    """``mg.data.describe(path)``, its summary said with file names escaped; one-line errors."""
    from ..data import describe
    from ..io.recipes import printable

    try:
        ds, text = describe(path, y_key=labels, image_size=image_size)
    except (ValueError, OSError, ImportError, MemoryError) as e:
        raise SystemExit(f"error: {e}") from None
    say("\n".join(printable(line, 2000) for line in text.splitlines()))  # file names as data
    return ds


def read_all(path: str, say, labels: str | None = None, image_size=None) -> tuple:
    """Everything ``mg.data.describe`` recognises at ``path``: ``(dataset, ArrayData)``."""
    from .. import backend
    from ..data.sources.limits import check_fits

    ds = _describe(path, say, labels, image_size)
    first = ds[0][0] if isinstance(ds[0], tuple) else ds[0]
    one = first._data.nbytes if hasattr(first, "_data") else np.asarray(first).nbytes
    try:
        check_fits(2 * one * len(ds), f"{path} ({len(ds)} samples)")  # samples + their stack
    except MemoryError as e:
        raise SystemExit(f"error: {e}") from None
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


def _detected(path: str, say, stream: bool = False, frac: float = 0.2, labels=None,
              image_size=None):  # fmt: skip
    """Folders and files that ``mg.data.describe`` recognises, read into memory (or, with
    ``stream``, split into two Subsets read during training)."""
    from ..data import Subset

    if stream:
        ds = _describe(path, say, labels, image_size)
        order = np.random.default_rng(0).permutation(len(ds))
        k = max(1, int(len(ds) * frac))
        train, test = Subset(ds, order[k:].tolist()), Subset(ds, order[:k].tolist())
        train.name = test.name = path
        say(f"{path}: streaming; holding out {k} of the {len(ds)} samples for testing")
        return train, test
    _, data = read_all(path, say, labels, image_size)
    say(f"{path}: holding out {frac:.0%} of the {len(data)} samples for testing")
    return _split(data, frac)
