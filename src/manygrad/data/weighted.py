"""More of ``torch.utils.data``: WeightedRandomSampler, ChainDataset, StackDataset."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from manygrad import backend
from manygrad.errors import ManygradError

from .dataset import Dataset, IterableDataset, _rng
from .sampler import Sampler

__all__ = ["ChainDataset", "StackDataset", "WeightedRandomSampler"]


class WeightedRandomSampler(Sampler):
    """Indices ``0..len(weights)-1`` drawn with probabilities proportional to ``weights``
    (to balance classes, say).

    Args:
        weights: non-negative weights, one per sample (a sequence or a 1-d tensor).
        num_samples: how many indices per epoch.
        replacement: draw with replacement (default True); without it no index repeats.
        generator: an int seed (combined with ``set_epoch``), a ``numpy.random.Generator``,
            a ``mg.Generator``, or None to draw from manygrad's CPU RNG.

    Example:
        >>> w = [1.0 / class_count[y] for y in labels]
        >>> s = mg.data.WeightedRandomSampler(w, num_samples=len(w))
    """

    def __init__(self, weights, num_samples: int, replacement: bool = True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(
                f"WeightedRandomSampler: num_samples should be a positive int, got {num_samples}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"WeightedRandomSampler: replacement should be a bool, got {replacement!r}"
            )
        from manygrad import float64, tensor

        try:
            w = _as_float64(weights)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"WeightedRandomSampler: weights should be a 1d sequence of numbers, got "
                f"{type(weights).__name__} ({e})"
            ) from None
        if w.ndim != 1:
            raise ValueError(
                f"WeightedRandomSampler: weights should be a 1d sequence but given weights have "
                f"shape {w.shape}"
            )
        _check_weights(w, num_samples, replacement)
        self.weights = tensor(w, dtype=float64)  # NOTE: a float64 Tensor, as PyTorch keeps
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = self.generator
        g = _rng(g) if g is None or isinstance(g, np.random.Generator) else (
            np.random.default_rng([int(g), self.epoch]))  # fmt: skip
        w = _as_float64(self.weights)
        _check_weights(w, self.num_samples, self.replacement)
        if self.replacement:
            idx = g.choice(len(w), size=self.num_samples, replace=True, p=w / w.sum())
        else:
            # NOTE: the largest w / Exp(1) keys are a draw without replacement in proportion
            # to w; weight-0 entries come last, once the others are used up, as in PyTorch
            keys = w / g.exponential(size=len(w))
            idx = np.argsort(-keys, kind="stable")[: self.num_samples]
        return iter(idx.astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class WeightsError(ManygradError, ValueError, RuntimeError):
    """Weights that no draw can use (PyTorch raises its RuntimeError at the draw)."""


def _as_float64(weights) -> np.ndarray:
    from manygrad.tensor import Tensor

    if isinstance(weights, Tensor):
        return np.asarray(backend.to_numpy(weights._data), dtype=np.float64)
    if isinstance(weights, (str, bytes)):
        raise TypeError("weights are text")
    w = weights.tolist() if hasattr(weights, "tolist") else list(weights)
    return np.asarray(w, dtype=np.float64)


def _check_weights(w: np.ndarray, num_samples: int, replacement: bool) -> None:
    if not np.isfinite(w).all() or (w < 0).any():
        raise WeightsError(
            "WeightedRandomSampler: invalid multinomial distribution: weights must be finite "
            "and non-negative"
        )
    if w.sum() <= 0:
        raise WeightsError(
            "WeightedRandomSampler: invalid multinomial distribution (sum of probabilities <= "
            "0); give at least one positive weight"
        )
    if not replacement and num_samples > len(w):
        raise WeightsError(
            f"WeightedRandomSampler: cannot sample num_samples={num_samples} > len(weights)="
            f"{len(w)} samples without replacement; lower num_samples or set replacement=True"
        )


class ChainDataset(IterableDataset):
    """Several iterable datasets one after the other, as one stream.

    Example:
        >>> stream = mg.data.ChainDataset([shard_a, shard_b])
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(
                    f"ChainDataset only supports IterableDataset, got {type(d).__name__}"
                )
            yield from d

    def __len__(self) -> int:
        total = 0
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(
                    f"ChainDataset only supports IterableDataset, got {type(d).__name__}"
                )
            total += len(d)
        return total


class StackDataset(Dataset):
    """Samples of several equally long datasets side by side, as a tuple (positional
    datasets) or a dict (keyword datasets).

    Example:
        >>> ds = mg.data.StackDataset(image=images, label=labels); ds[0]["label"]
    """

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset: give datasets as positional or keyword arguments, "
                             "not both")  # fmt: skip
        if not args and not kwargs:
            raise ValueError("StackDataset: at least one dataset is needed")
        self.datasets = args if args else kwargs
        parts = args if args else tuple(kwargs.values())
        self._length = len(parts[0])
        if any(len(d) != self._length for d in parts):
            raise ValueError("StackDataset: the datasets have different lengths")

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __getitems__(self, indices: list) -> list:
        """The samples at ``indices``; a part with ``__getitems__`` reads them in one call."""
        named = isinstance(self.datasets, dict)
        parts = self.datasets.items() if named else enumerate(self.datasets)
        columns = {}
        for k, d in parts:
            getitems = getattr(d, "__getitems__", None)
            col = getitems(list(indices)) if callable(getitems) else [d[i] for i in indices]
            if len(col) != len(indices):
                raise ValueError(
                    f"StackDataset: dataset {k!r} returned {len(col)} samples for "
                    f"{len(indices)} indices from __getitems__"
                )
            columns[k] = col
        if named:
            return [{k: c[j] for k, c in columns.items()} for j in range(len(indices))]
        return [tuple(c[j] for c in columns.values()) for j in range(len(indices))]

    def __len__(self) -> int:
        return self._length
