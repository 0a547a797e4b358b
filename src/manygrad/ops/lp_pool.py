"""Power-average pooling (lp_pool1d/2d/3d): ``(sum over the window of x^p) ^ (1/p)``, as
PyTorch computes it from average pooling (a composition: differentiable twice)."""

# ruff: noqa: A002  (`input` is PyTorch's argument name)
from __future__ import annotations

from .elementwise import abs, pow, relu, sign
from .pool import avg_pool1d, avg_pool2d
from .pool3d import avg_pool3d


def _lp(pooled, n: int, norm_type: float):
    # NOTE: PyTorch's form: sign(out) * relu(|out|) keeps negative sums (odd p) at 0
    return pow(sign(pooled) * relu(abs(pooled)) * n, 1.0 / norm_type)


def _size(k, nd: int) -> tuple:
    return (k,) * nd if isinstance(k, int) else tuple(k)


def lp_pool1d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """``(sum of x^p over each window) ^ (1/p)`` over (N, C, L). Example: ``F.lp_pool1d(x, 2, 3)``"""
    (k,) = _size(kernel_size, 1)
    out = avg_pool1d(pow(input, norm_type), k, stride, 0, ceil_mode)
    return _lp(out, k, norm_type)


def lp_pool2d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """``(sum of x^p over each window) ^ (1/p)`` over (N, C, H, W)."""
    kh, kw = _size(kernel_size, 2)
    out = avg_pool2d(pow(input, norm_type), (kh, kw), stride, 0, ceil_mode)
    return _lp(out, kh * kw, norm_type)


def lp_pool3d(input, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False):
    """``(sum of x^p over each window) ^ (1/p)`` over (N, C, D, H, W)."""
    kd, kh, kw = _size(kernel_size, 3)
    out = avg_pool3d(pow(input, norm_type), (kd, kh, kw), stride, 0, ceil_mode)
    return _lp(out, kd * kh * kw, norm_type)


from ._common import public  # noqa: E402

__all__ = public(globals())
