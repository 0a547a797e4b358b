"""Helpers of the distributions that draw through the generator: probability clamps and
gamma draws (no gradient)."""

from __future__ import annotations

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor


def _eps(t: Tensor) -> float:
    return 2.220446049250313e-16 if t.dtype.itemsize == 8 else 1.1920928955078125e-07


def _clamp_probs(p: Tensor) -> Tensor:
    eps = _eps(p)
    return p.clamp(min=eps, max=1 - eps)


def _gamma_draw(alpha: Tensor) -> Tensor:
    """Standard gamma samples (no gradient) of the shape parameters ``alpha``."""
    with no_grad(), backend.device_scope(alpha.device):
        a = alpha.detach().contiguous()._data
        out = backend.generator(alpha.device).gamma(a).astype(a.dtype)
    return Tensor._wrap(out, alpha.device)
