# ruff: noqa: N803  (M: the window length, PyTorch's parameter name)
"""``torch.signal.windows``: window functions of ``M`` points, symmetric by default
(``sym=False`` gives the periodic form for spectral analysis), as SciPy defines them.

Example:
    >>> w = mg.signal.windows.hann(8)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
    "general_hamming", "hamming", "hann", "kaiser", "nuttall",
]  # fmt: skip


def _make(name, M: int, sym: bool, values, dtype, device, requires_grad, one_is_ones=True):
    from .. import creation
    from .. import dtypes as D

    if not isinstance(M, int) or M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    dt = dtype if dtype is not None else D.get_default_dtype()
    if not D.from_any(dt).is_floating_point:
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dt}")
    if M == 0:
        vals = np.zeros(0)
    elif M == 1 and one_is_ones:
        vals = np.ones(1)
    else:
        n = M if sym else M + 1
        vals = values(np.arange(n, dtype=np.float64), n)[:M]
    return creation.tensor(vals, dtype=dt, device=device, requires_grad=requires_grad)


def general_cosine(M: int, *, a, sym: bool = True, dtype=None, layout=None, device=None,
                   requires_grad: bool = False):  # fmt: skip
    """``Σ_k (-1)^k a_k cos(2πkn/(M-1))``."""
    coeffs = list(a)
    if not coeffs:
        raise ValueError("Coefficients cannot be empty")

    def f(n, m):
        x = 2 * math.pi * n / (m - 1)
        return sum((-1) ** k * c * np.cos(k * x) for k, c in enumerate(coeffs))

    return _make("general_cosine", M, sym, f, dtype, device, requires_grad)


def general_hamming(M: int, *, alpha: float = 0.54, sym: bool = True, dtype=None,
                    layout=None, device=None, requires_grad: bool = False):  # fmt: skip
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)  # fmt: skip


def hann(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
         requires_grad: bool = False):  # fmt: skip
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, device=device,
                           requires_grad=requires_grad)  # fmt: skip


def hamming(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):  # fmt: skip
    return general_hamming(M, sym=sym, dtype=dtype, device=device, requires_grad=requires_grad)


def blackman(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):  # fmt: skip
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, device=device,
                          requires_grad=requires_grad)  # fmt: skip


def nuttall(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):  # fmt: skip
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, device=device, requires_grad=requires_grad)  # fmt: skip


def bartlett(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):  # fmt: skip
    return _make("bartlett", M, sym, lambda n, m: 1 - np.abs(2 * n / (m - 1) - 1), dtype,
                 device, requires_grad)  # fmt: skip


def cosine(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
           requires_grad: bool = False):  # fmt: skip
    return _make("cosine", M, sym, lambda n, m: np.sin(math.pi * (n + 0.5) / m), dtype, device,
                 requires_grad)  # fmt: skip


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, layout=None,
             device=None, requires_grad: bool = False):  # fmt: skip
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    return _make("gaussian", M, sym,
                 lambda n, m: np.exp(-((n - (m - 1) / 2) ** 2) / (2 * std**2)),
                 dtype, device, requires_grad)  # fmt: skip


def exponential(M: int, *, center: float | None = None, tau: float = 1.0, sym: bool = True,
                dtype=None, layout=None, device=None, requires_grad: bool = False):  # fmt: skip
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")

    def f(n, m):
        c = (m - 1) / 2 if center is None else center
        return np.exp(-np.abs(n - c) / tau)

    # NOTE: one point is exp(-center/tau) when a center is given (PyTorch's rule)
    return _make("exponential", M, sym, f, dtype, device, requires_grad, center is None)


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, layout=None,
           device=None, requires_grad: bool = False):  # fmt: skip
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    return _make("kaiser", M, sym,
                 lambda n, m: np.i0(beta * np.sqrt(np.clip(1 - (2 * n / (m - 1) - 1) ** 2, 0,
                                                           None))) / np.i0(beta),
                 dtype, device, requires_grad)  # fmt: skip
