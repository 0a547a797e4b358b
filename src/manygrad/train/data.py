"""What the trainer feeds on: in-memory arrays on the device, batched in a seeded order.

An epoch's order is ``numpy.random.default_rng([seed, epoch]).permutation(n)``: it depends
only on the seed and the epoch number, so a resumed run sees the same batches as an
uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..datasets import ArrayData
from ..tensor import Tensor


@dataclass
class Prepared:
    """A split moved to the device: float inputs (already normalised) and labels."""

    x: Tensor
    y: Tensor
    n: int
    sample_shape: tuple
    mean: list = field(default_factory=list)
    std: list = field(default_factory=list)

    def batch(self, idx) -> tuple[Tensor, Tensor]:
        """The samples at ``idx`` (a device index array)."""
        return Tensor._wrap(self.x._data[idx], self.x._device), Tensor._wrap(
            self.y._data[idx], self.y._device
        )


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
