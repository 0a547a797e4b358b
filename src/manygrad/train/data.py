"""What the trainer feeds on: in-memory arrays on the device, batched in a seeded order.

An epoch's order is ``numpy.random.default_rng([seed, epoch]).permutation(n)``: it depends
only on the seed and the epoch number, so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend
from ..datasets import ArrayData
from ..tensor import Tensor
from . import guard
from .run import fingerprint


@dataclass
class Prepared:
    """A split moved to the device: float inputs (already normalised) and labels."""

    x: Tensor
    y: Tensor
    n: int
    sample_shape: tuple
    mean: list = field(default_factory=list)
    std: list = field(default_factory=list)

    @property
    def dtype(self):
        return self.x._data.dtype

    @property
    def targets_per_sample(self) -> int:
        return max(1, self.y.numel() // max(self.n, 1))

    def batch(self, idx) -> tuple[Tensor, Tensor]:
        """The samples at ``idx`` (a device index array)."""
        return Tensor._wrap(self.x._data[idx], self.x._device), Tensor._wrap(
            self.y._data[idx], self.y._device
        )

    def iterate(self, order: np.ndarray, batch_size: int, skip: int = 0, shard=None):
        """``(xb, yb)`` for the batches of ``order``, starting at batch ``skip``; with a
        ``shard`` (data-parallel training) only this rank's slice of each batch."""
        idxs = batches(order, batch_size, self.x._device)
        for b in range(skip, len(idxs)):
            idx = idxs[b]
            if shard is not None:
                idx = shard.take(idx, len(idx))
            yield self.batch(idx)


class Streamed:
    """A Dataset read batch by batch through ``mg.data.DataLoader`` (data too big to hold in
    memory); inputs are normalised on the device after the copy.

    Statistics and the fingerprint come from up to ``probe`` evenly spaced samples.
    """

    def __init__(self, dataset, device, normalize=True, num_workers=0, stats=None, probe=512):
        self.dataset, self.n = dataset, len(dataset)
        self.device = backend.device(device)
        self.num_workers = num_workers
        pick = np.unique(np.linspace(0, self.n - 1, min(self.n, probe)).astype(np.int64))
        xs, ys = zip(*(tuple(_host(v) for v in dataset[int(i)]) for i in pick))
        x, y = np.stack(xs), np.stack(ys)
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            self._check_batch(Tensor._wrap(x), [int(i) for i in pick])
        self.sample_shape, self.y_dtype = tuple(x.shape[1:]), y.dtype
        self.dtype = np.dtype(np.float32) if x.dtype.kind == "f" or normalize else x.dtype
        self.targets_per_sample = max(1, int(np.prod(y.shape[1:])))
        self.probe = (x, y)
        if stats is not None:
            self.mean, self.std = stats
        elif normalize and x.dtype.kind in "fu":
            self.mean, self.std = channel_stats(x)
        else:
            self.mean, self.std = [], []
        self._m = self._s = None
        self._loader = self._batches = None

    def _normalise(self, xb: Tensor) -> Tensor:
        a = xb._data
        if not self.mean:
            return xb
        xp = backend.array_module(a)
        if self._m is None:
            k = len(self.mean)
            shape = (1, k) + (1,) * (a.ndim - 2) if k > 1 else ()
            self._m = backend.to_device(
                np.asarray(self.mean, np.float32).reshape(shape), self.device
            )
            self._s = backend.to_device(
                np.asarray(self.std, np.float32).reshape(shape), self.device
            )
        out = (a.astype(xp.float32) - self._m) / self._s
        return Tensor._wrap(out, xb._device)

    def iterate(self, order: np.ndarray, batch_size: int, skip: int = 0, shard=None):
        """``(xb, yb)`` on the device for the batches of ``order`` from batch ``skip``; with
        a ``shard`` (data-parallel training) only this rank's slice of each batch is read."""
        from ..data import DataLoader

        rest = [int(i) for i in order[skip * batch_size :]]
        groups = [rest[i : i + batch_size] for i in range(0, len(rest), batch_size)]
        if shard is not None:
            groups = [shard.take(g, len(g)) for g in groups]
        # NOTE: one loader for every epoch: its workers (kept alive between epochs), its
        # copy stream and pinned buffers are made once; an iteration started while another
        # is still open (evaluating the training split mid-epoch) gets a loader of its own
        if self._batches is None or self._batches.active:
            batches = _EpochBatches()
            loader = DataLoader(self.dataset, batch_sampler=batches, device=self.device,
                                num_workers=self.num_workers,
                                persistent_workers=self.num_workers > 0)  # fmt: skip
            if self._batches is None:
                self._loader, self._batches = loader, batches
        else:
            loader, batches = self._loader, self._batches
        batches.groups, batches.active = groups, True
        try:
            for k, (xb, yb) in enumerate(loader):
                xb = xb if isinstance(xb, Tensor) else Tensor(xb)
                yb = yb if isinstance(yb, Tensor) else Tensor(yb)
                if self.device.type == "cpu":  # NOTE: free on the host; a GPU would sync
                    self._check_batch(xb, groups[k])
                yield self._normalise(xb.to(self.device)), yb.to(self.device)
        finally:
            batches.active = False
            if loader is not self._loader and self.num_workers > 0:
                loader.shutdown()

    def _check_batch(self, xb: Tensor, indices: list) -> None:
        """NaN or Inf in a streamed batch: refused when met, naming the dataset sample."""
        a = backend.to_numpy(xb._data)
        if a.dtype.kind != "f" or np.isfinite(a).all():
            return
        rows = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        i = int(np.flatnonzero(rows)[0])
        name = getattr(self.dataset, "name", None) or type(self.dataset).__name__
        raise guard.DataError(
            f"{name}: sample {indices[i]} holds NaN or Inf; remove or repair it before "
            "training (streamed data is checked as it is read)"
        )

    def close(self) -> None:
        """Stop the loader's workers (they also stop when this object is collected)."""
        if self._loader is not None:
            self._loader.shutdown()
            self._batches.active = False  # NOTE: an epoch left open ends with the workers


class _EpochBatches:
    """The batches of the epoch being read: a batch sampler whose batches are replaced
    before each epoch, so that one DataLoader serves them all."""

    def __init__(self):
        self.groups: list = []
        self.active = False

    def __iter__(self):
        return iter(self.groups)

    def __len__(self) -> int:
        return len(self.groups)


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of images ``(N, C, H, W)``; one value for other shapes."""
    x = x.astype(np.float64)
    if x.ndim == 4:
        axes = (0,) + tuple(range(2, x.ndim))
        m, s = x.mean(axis=axes), x.std(axis=axes)
        return [float(v) for v in m], [float(max(v, 1e-8)) for v in s]
    return [float(x.mean())], [float(max(x.std(), 1e-8))]


def normalise(x: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """``(x - mean) / std`` per channel, as float32."""
    x = x.astype(np.float32)
    if len(mean) <= 1:
        return (x - np.float32(mean[0] if mean else 0.0)) / np.float32(std[0] if std else 1.0)
    shape = (1, len(mean)) + (1,) * (x.ndim - 2)
    m = np.asarray(mean, np.float32).reshape(shape)
    s = np.asarray(std, np.float32).reshape(shape)
    return (x - m) / s


def to_arrays(data) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` NumPy arrays from an ArrayData, a pair of arrays/tensors, a TensorDataset,
    or any map-style Dataset (or the DataLoader over one) of ``(input, target)`` samples,
    which is read into memory once."""
    if isinstance(data, ArrayData):
        return data.images, data.labels
    if hasattr(data, "dataset") and hasattr(data, "batch_size"):  # a DataLoader
        data = data.dataset
    tensors = getattr(data, "tensors", None)
    pair = tensors if tensors is not None else data
    if isinstance(pair, (tuple, list)) and len(pair) == 2:
        return tuple(_host(a) for a in pair)  # type: ignore[return-value]
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        xs, ys = [], []
        for i in range(len(data)):
            sample = data[i]
            if not isinstance(sample, (tuple, list)) or len(sample) != 2:
                raise TypeError(
                    f"fit: sample {i} of {type(data).__name__} is not an (input, target) pair"
                )
            xs.append(_host(sample[0]))
            ys.append(_host(sample[1]))
        return np.stack(xs), np.stack(ys)
    raise TypeError(
        "fit: data must be a dataset name (e.g. 'digits'), an (inputs, targets) pair of "
        "arrays or tensors, a Dataset of (input, target) samples or a DataLoader over one; "
        f"got {type(data).__name__}"
    )


def _host(a) -> np.ndarray:
    if isinstance(a, Tensor):
        return backend.to_numpy(a.detach()._data)
    return np.asarray(a)


def prepare(x: np.ndarray, y: np.ndarray, device, mean=None, std=None) -> Prepared:
    """Normalise ``x`` (floats only if ``mean`` is given) and move both arrays to ``device``."""
    dev = backend.device(device)
    if mean is not None:
        xf = normalise(x, mean, std)
    elif x.dtype.kind in "iu":
        xf = x.astype(np.int64)
    else:
        xf = x.astype(np.float32)
    yd = y.astype(np.int64) if y.dtype.kind in "iub" else y.astype(np.float32)
    xt = Tensor._wrap(backend.to_device(np.ascontiguousarray(xf), dev), dev)
    yt = Tensor._wrap(backend.to_device(np.ascontiguousarray(yd), dev), dev)
    return Prepared(xt, yt, len(y), tuple(x.shape[1:]), list(mean or []), list(std or []))


def epoch_order(seed: int, epoch: int, n: int, shuffle: bool = True) -> np.ndarray:
    """The sample order of ``epoch``: a permutation fixed by ``(seed, epoch)``."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batches(order: np.ndarray, batch_size: int, device) -> list:
    """Index arrays on ``device`` for each batch of ``order`` (last one may be short)."""
    dev = backend.device(device)
    whole = backend.to_device(order.astype(np.int64), dev)
    return [whole[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shift_offsets(seed: int, epoch: int, n: int, max_shift: int) -> np.ndarray:
    """Per-sample ``(dy, dx)`` in ``[0, 2 * max_shift]`` for ``epoch``, fixed by the seed."""
    rng = np.random.default_rng([int(seed), int(epoch), 1])
    return rng.integers(0, 2 * max_shift + 1, size=(n, 2))


def random_shift(x: Tensor, offsets, max_shift: int) -> Tensor:
    """Translate each image of ``(N, C, H, W)`` by its ``offsets`` row minus ``max_shift``
    pixels, repeating the border (augmentation; no gradient needed)."""
    a = x._data
    xp = backend.array_module(a)
    n, c, h, w = a.shape
    s = max_shift
    p = xp.pad(a, ((0, 0), (0, 0), (s, s), (s, s)), mode="edge")
    rows = (offsets[:, 0:1] + xp.arange(h)[None, :])[:, None, :, None]
    p = xp.take_along_axis(p, xp.broadcast_to(rows, (n, c, h, w + 2 * s)), axis=2)
    cols = (offsets[:, 1:2] + xp.arange(w)[None, :])[:, None, None, :]
    p = xp.take_along_axis(p, xp.broadcast_to(cols, (n, c, h, w)), axis=3)
    return Tensor._wrap(p, x._device)


def _check_split(x, y, name: str, part: str, classes=None, least: int = 1) -> None:
    """Refuse what would train on garbage: no samples, NaN/Inf, labels that aren't classes."""
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype.kind not in "biufc" or y.dtype.kind not in "biufc":
        bad = x if x.dtype.kind not in "biufc" else y
        raise guard.DataError(
            f"{name}: the {part} {'inputs' if bad is x else 'targets'} have dtype {bad.dtype}; "
            "training needs numbers (convert strings or objects to numbers first)"
        )
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise guard.DataError(
            f"{name}: {x.shape[0] if x.ndim else 0} {part} inputs (shape {x.shape}) but "
            f"{y.shape[0] if y.ndim else 0} targets (shape {y.shape}); they must match"
        )
    guard.check_samples(len(x), name, part, least)
    guard.check_finite(x, name, f"{part} data")
    if y.dtype.kind in "iu":
        guard.check_labels(y, name, part, classes)
    else:
        guard.check_finite(y, name, f"{part} targets")


@dataclass
class Setup:
    """The data side of a Trainer: prepared splits and what the recipe records about them."""

    train: Any
    test: Any
    name: str
    fingerprint: str
    classes: list | None
    input_range: tuple | None
    classification: bool
    extra: dict = field(default_factory=dict)


def setup(train_data, test_data, device, normalize=True, stream=False, num_workers=0) -> Setup:
    """Load, normalise and place ``train_data``/``test_data`` as the trainer consumes them."""
    from .. import datasets

    if isinstance(train_data, Setup):
        return train_data
    name = getattr(train_data, "name", "arrays")
    if isinstance(train_data, str):
        name = train_data
        train_data, default_test = datasets.load(train_data)
        test_data = default_test if test_data is None else test_data
    classes = input_range = None
    extra: dict = {}
    if isinstance(train_data, datasets.ArrayData):
        classes, input_range, extra = train_data.classes, train_data.input_range, train_data.extra
    if stream and not isinstance(train_data, (datasets.ArrayData, tuple, list)):
        if hasattr(train_data, "dataset") and hasattr(train_data, "batch_size"):
            train_data = train_data.dataset
        train = Streamed(train_data, device, normalize, num_workers)
        test = None
        if test_data is not None:
            test = Streamed(test_data, device, normalize, num_workers, (train.mean, train.std))
        px, py = train.probe
        fp = fingerprint(px, py, np.asarray([train.n, test.n if test else 0]))
        names = getattr(train_data, "classes", None) or getattr(
            getattr(train_data, "dataset", None), "classes", None
        )  # a Subset's classes are its dataset's
        classes = [str(c) for c in names] if names else None
        if classes is None and py.dtype.kind in "iu" and py.ndim == 1:
            classes = [str(i) for i in range(int(py.max()) + 1)]  # from the probed labels
        if train.mean and px.dtype.kind in "fu":
            input_range = (float(min(px.min(), 0)), float(px.max()))
        name = getattr(train_data, "name", name)
        return Setup(train, test, name, fp, classes, input_range, train.y_dtype.kind in "iu")
    xtr, ytr = to_arrays(train_data)
    nclass = len(classes) if classes and extra.get("kind") != "text" else None
    _check_split(xtr, ytr, name, "training", nclass)
    mean = std = None
    images = isinstance(train_data, datasets.ArrayData) and input_range is not None
    if normalize and (xtr.dtype.kind == "f" or images):
        mean, std = channel_stats(xtr)
    train = prepare(xtr, ytr, device, mean, std)
    test, fp = None, fingerprint(xtr, ytr)
    if test_data is not None:
        xte, yte = to_arrays(test_data)
        _check_split(xte, yte, name, "held-out", nclass, least=0)
        test = prepare(xte, yte, device, mean, std)
        fp = fingerprint(xtr, ytr, xte, yte)
    classification = ytr.dtype.kind in "iu"
    if classes is None and classification and ytr.ndim == 1:
        classes = [str(i) for i in range(int(ytr.max()) + 1)]
    return Setup(train, test, name, fp, classes, input_range, classification, dict(extra))
