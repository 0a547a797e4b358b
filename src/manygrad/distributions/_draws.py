"""Helpers of the distributions: probability clamps, gamma draws (no gradient), and the
``probs`` / ``logits`` pair of the binary families."""

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


class BinaryProbsLogits:
    """``probs`` and ``logits`` of a family given either (the other made on first use)."""

    _probs: Tensor | None
    _logits: Tensor | None

    @property
    def probs(self) -> Tensor:
        if self._probs is None:
            self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self) -> Tensor:
        if self._logits is None:
            p = _clamp_probs(self._probs)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    def _count_params(self, total_count, probs, logits, name: str) -> Tensor:
        """Set ``total_count`` and ``_probs`` / ``_logits`` (one of them given), broadcast
        together; returns the given parameter."""
        from .discrete import _probs_and_logits
        from .distribution import broadcast_all

        probs, logits = _probs_and_logits(probs, logits, name)
        given = probs if probs is not None else logits
        total, param = broadcast_all(total_count, given)
        self.total_count = total.to(param.dtype)
        self._probs, self._logits = (param, None) if probs is not None else (None, param)
        return param
