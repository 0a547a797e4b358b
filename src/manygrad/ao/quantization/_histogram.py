"""``HistogramObserver``: a 2048-bin histogram of everything seen, and the range within it
whose quantization has the least L2 error (``torch.ao.quantization.HistogramObserver``).

Its qparams equal PyTorch's because the arithmetic does too, step by step in float32:
``histc``'s bin index ``int((x - lo) * bins / (hi - lo))``; ``linspace``'s fused
``start + step * i`` (first half) and ``end - step * (n - 1 - i)``; the float32 sums of
PyTorch's CPU reduction (8 lanes, 4 interleaved rows, a cascade of partial sums); cumulative
sums in float64; comparisons of float32 tensors with Python floats made in float32.

Example:
    >>> obs = HistogramObserver(reduce_range=True)
    >>> for x in calibration_batches: obs(x)
    >>> scale, zero_point = obs.calculate_qparams()
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ... import backend
from ... import dtypes as D
from ...creation import tensor, zeros
from ...tensor import Tensor
from ..qtensor import per_tensor_affine, per_tensor_symmetric
from .observer import _EPS, UniformQuantizationObserverBase

F = np.float32
_LANES = 8  # NOTE: PyTorch's AVX2 kernels, the x86 default: AVX-512 builds sum in 16 lanes


def reduce_sum(x: np.ndarray) -> F:
    """float32 sum of a 1-d float32 array in PyTorch's CPU order: vectors of 8 lanes, rows of
    4 vectors summed in a 4-level cascade, then the rows, the tail and the lanes in turn."""
    n = x.size
    nvec = n // _LANES
    rows = nvec // 4
    vecs = x[: rows * 4 * _LANES].reshape(rows, 4, _LANES)
    power = max(4, math.ceil(math.log2(rows)) // 4) if rows > 1 else 4
    step, mask = 1 << power, (1 << power) - 1
    acc = np.zeros((4, 4, _LANES), F)
    i = 0
    while i + step <= rows:
        # NOTE: cumsum adds row after row in float32: the sequential loop of the kernel
        acc[0] = acc[0] + np.cumsum(vecs[i : i + step], axis=0, dtype=F)[-1]
        i += step
        for j in range(1, 4):
            acc[j] += acc[j - 1]
            acc[j - 1] = 0
            if i & (mask << (j * power)):
                break
    if i < rows:
        acc[0] = acc[0] + np.cumsum(vecs[i:rows], axis=0, dtype=F)[-1]
    for j in range(1, 4):
        acc[0] += acc[j]
    part = acc[0]
    for k in range(rows * 4, nvec):
        part[0] += x[k * _LANES : (k + 1) * _LANES]
    for k in range(1, 4):
        part[0] += part[k]
    total = F(0)
    for v in x[nvec * _LANES :]:
        total = F(total + v)
    for v in part[0]:
        total = F(total + v)
    return total


def histc(x: np.ndarray, bins: int, lo: float, hi: float) -> np.ndarray:
    """``torch.histc(x, bins, lo, hi)`` of float32 values: ``lo == hi`` widens by 1 each way,
    values outside are dropped, ``hi`` itself counts in the last bin."""
    if lo == hi:
        lo, hi = float(lo) - 1, float(hi) + 1
    lo, hi = F(lo), F(hi)
    x = x[(x >= lo) & (x <= hi)]
    with np.errstate(over="ignore", invalid="ignore"):
        pos = ((x - lo) * F(bins) / (hi - lo)).astype(np.int64)
    pos[pos == bins] = bins - 1
    return np.bincount(pos, minlength=bins).astype(F)


def linspace(start, end, steps: int) -> np.ndarray:
    """float32 ``torch.linspace``: ``fma(step, i, start)`` below the middle, from ``end``
    down above it (float64 products of float32 numbers are exact: one rounding, as fma)."""
    start, end = F(start), F(end)
    step = F((end - start) / F(steps - 1))
    i = np.arange(steps, dtype=np.float64)
    up = (np.float64(start) + np.float64(step) * i).astype(F)
    down = (np.float64(end) - np.float64(step) * (steps - 1 - i)).astype(F)
    return np.where(i < steps // 2, up, down)


def _cube_diff(end, begin):
    return (end * end * end - begin * begin * begin) / F(3)


class HistogramObserver(UniformQuantizationObserverBase):
    """qparams from a histogram of all values seen: the sub-range with the least L2
    quantization error (outliers clipped), then MinMaxObserver's formulas.

    Args:
        bins: histogram bins (default 2048).
        dtype, qscheme, reduce_range, quant_min, quant_max, eps: as MinMaxObserver's
            (per-tensor schemes only).

    Example:
        >>> QConfig(activation=HistogramObserver.with_args(reduce_range=True),
        ...         weight=default_per_channel_weight_observer)
    """

    def __init__(self, bins: int = 2048, dtype=D.quint8, qscheme=per_tensor_affine,
                 reduce_range=False, quant_min=None, quant_max=None, factory_kwargs=None,
                 eps=_EPS, is_dynamic=False, **kwargs):  # fmt: skip
        if qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise NotImplementedError(
                f"HistogramObserver: qscheme {qscheme} is not supported; it takes "
                "per_tensor_affine or per_tensor_symmetric (per channel: "
                "PerChannelMinMaxObserver)"
            )
        if is_dynamic:
            raise NotImplementedError(
                "HistogramObserver doesn't support dynamic quantization; use "
                "PlaceholderObserver (default_dynamic_quant_observer)"
            )
        super().__init__(dtype, qscheme, reduce_range, quant_min, quant_max, factory_kwargs,
                         eps, is_dynamic, **kwargs)  # fmt: skip
        self.bins = int(bins)
        self.register_buffer("histogram", zeros(self.bins))
        self.register_buffer("min_val", tensor(float("inf")))
        self.register_buffer("max_val", tensor(float("-inf")))
        # NOTE: the full width of the dtype, reduce_range or not, as in PyTorch
        self.dst_nbins = 2 ** (8 * dtype.itemsize if dtype is not D.quint4x2 else 4)
        self.upsample_rate = 16

    # ------------------------------------------------------------------ recording
    def _state(self):
        h = backend.to_numpy(self.histogram._data).astype(F)
        return h, F(float(self.min_val)), F(float(self.max_val))

    def _store(self, hist: np.ndarray, lo, hi) -> None:
        self.histogram.copy_(Tensor._wrap(hist.astype(F)))
        self.min_val.copy_(tensor(float(lo)))
        self.max_val.copy_(tensor(float(hi)))

    def forward(self, x_orig: Tensor) -> Tensor:
        if x_orig.numel() == 0:
            return x_orig
        x = backend.to_numpy(x_orig.detach()._data).astype(F).reshape(-1)
        lo, hi = x.min(), x.max()
        if np.isinf(lo) or np.isinf(hi):
            warnings.warn("torch.inf detected in input tensor, ignoring input", stacklevel=2)
            x = x[np.abs(x) != np.inf]
            if x.size == 0:
                return x_orig
            lo, hi = x.min(), x.max()
        hist, cur_lo, cur_hi = self._state()
        if cur_lo == np.inf or cur_hi == -np.inf:
            self._store(histc(x, self.bins, lo, hi), lo, hi)
            return x_orig
        new_lo, new_hi = min(cur_lo, lo), max(cur_hi, hi)
        update = histc(x, self.bins, new_lo, new_hi)
        if new_lo == cur_lo and new_hi == cur_hi:
            self._store(hist + update, cur_lo, cur_hi)
        else:
            self._store(self._combine(hist, cur_lo, cur_hi, update, new_lo, new_hi),
                        new_lo, new_hi)  # fmt: skip
        return x_orig

    def _combine(self, hist, lo, hi, update, new_lo, new_hi) -> np.ndarray:
        if lo == hi:  # every value so far was one number: all its counts go to one bin
            one = histc(np.array([lo], F), self.bins, new_lo, new_hi)
            return one * reduce_sum(hist) + update
        return update + self._upscale(hist, lo, hi, new_lo, new_hi)

    def _upscale(self, hist, lo, hi, new_lo, new_hi) -> np.ndarray:
        """``hist`` over [lo, hi] moved onto the bins of [new_lo, new_hi]: each bin split in
        16 parts, each part's count going to the new bin holding its middle."""
        n = self.bins * self.upsample_rate
        parts = np.repeat(hist, self.upsample_rate) / F(self.upsample_rate)
        width = F((hi - lo) / F(n))
        mids = linspace(lo, hi, n + 1)[:-1] + F(0.5) * width
        edges = linspace(new_lo, new_hi, self.bins + 1)
        where = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, self.bins - 1)
        out = np.zeros(self.bins, F)
        np.add.at(out, where, parts)  # NOTE: in order, in float32, as bincount's weights
        return out

    # ------------------------------------------------------------------ the search
    def _quantization_error(self, hist, lo, hi, start: int, end: int) -> float:
        """L2 error of quantizing the histogram's values to ``dst_nbins`` levels spread over
        bins ``start..end`` (values in a bin taken as uniform over it)."""
        bw = (float(hi) - float(lo)) / self.bins
        dw = bw * (end - start + 1) / self.dst_nbins
        if dw == 0.0:
            return 0.0
        top = F(self.dst_nbins - 1)
        begin = np.arange(-start, self.bins - start, dtype=F) * F(bw)
        stop = begin + F(bw)
        first = np.clip(np.floor_divide(begin, F(dw)), F(0), top)
        last = np.clip(np.floor_divide(stop, F(dw)), F(0), top)
        density = hist / F(bw)
        half = F(dw / 2)
        norm = density * _cube_diff(np.full(self.bins, half, F), begin - (first + F(0.5)) * F(dw))
        norm = norm + (last - first - F(1)) * (density * _cube_diff(half, F(-dw / 2)))
        last_center = last * F(dw) + half
        norm = norm + density * _cube_diff(stop - last_center, F(-dw / 2))
        return float(reduce_sum(norm))

    def _non_linear_param_search(self) -> tuple[Tensor, Tensor]:
        """The range of bins with the least quantization error, narrowed from both ends one
        quantile step (1e-5) at a time while the error keeps falling."""
        hist, lo, hi = self._state()
        if hist.size != self.bins:
            raise RuntimeError(f"HistogramObserver: the histogram has {hist.size} bins, "
                               f"expected bins={self.bins}")  # fmt: skip
        total = float(reduce_sum(hist))
        csum = np.cumsum(hist, dtype=np.float64).astype(F).tolist()
        alpha, beta, start, end, best = 0.0, 1.0, 0, self.bins - 1, math.inf
        while alpha < beta:
            next_alpha, next_beta = alpha + 1e-5, beta - 1e-5
            # NOTE: float32 tensor < Python float compares in float32
            lo_q, hi_q = float(F(next_alpha * total)), float(F(next_beta * total))
            left, right = start, end
            while left < end and csum[left] < lo_q:
                left += 1
            while right > start and csum[right] > hi_q:
                right -= 1
            new_start, new_end = start, end
            if left - start > end - right:
                new_start, alpha = left, next_alpha
            else:
                new_end, beta = right, next_beta
            if new_start == start and new_end == end:
                continue
            norm = self._quantization_error(hist, lo, hi, new_start, new_end)
            if norm > best:
                break
            best, start, end = norm, new_start, new_end
        width = F((hi - lo) / F(self.bins))
        new_min = F(lo + width * F(start))
        new_max = F(lo + width * F(end + 1))
        return tensor(float(new_min)), tensor(float(new_max))

    def calculate_qparams(self):
        if float(self.min_val) == math.inf and float(self.max_val) == -math.inf:
            warnings.warn(
                "must run observer before calling calculate_qparams. Returning default scale "
                "and zero point ",
                stacklevel=2,
            )
            return tensor([1.0]), tensor([0])
        new_min, new_max = self._non_linear_param_search()
        return self._calculate_qparams(new_min, new_max)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"
