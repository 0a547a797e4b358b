"""Helpers of the distributions: probability clamps, gamma draws (no gradient), and the
``probs`` / ``logits`` pair of the binary families."""

from __future__ import annotations

import math

from .. import backend
from ..autograd import Function, enable_grad, no_grad
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

    # NOTE: the parameter not given is made with grad enabled, as it is cached: made first
    # under no_grad (inside sample()), it would cut later losses off from the given one

    @property
    def probs(self) -> Tensor:
        if self._probs is None:
            with enable_grad():
                self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self) -> Tensor:
        if self._logits is None:
            with enable_grad():
                p = _clamp_probs(self._probs)
                self._logits = p.log() - (-p).log1p()
        return self._logits

    def _binary_params(self, probs, logits, name: str) -> Tensor:
        """Set ``_probs`` / ``_logits`` from the one given; returns it."""
        from .discrete import _probs_and_logits
        from .distribution import as_float

        probs, logits = _probs_and_logits(probs, logits, name)
        self._probs = as_float(probs) if probs is not None else None
        self._logits = as_float(logits) if logits is not None else None
        return self._probs if probs is not None else self._logits

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


def _standard_gamma_grad(xp, alpha, x):
    """``dx/dα`` of standard gamma samples ``x`` at fixed ``P(α, x)`` (implicit
    reparameterization): ``-(∂P/∂α) / (∂P/∂x)``, with ``∂P/∂α`` from the series
    ``P = Σ_n x^{α+n} e^{-x} / Γ(α+n+1)`` differentiated term by term, in float64."""
    from ..ops.special_fns import _digamma, _lgamma

    a = alpha.astype("float64")
    v = xp.maximum(x.astype("float64"), 1e-300)
    lx = xp.log(v)
    term = xp.exp(a * lx - v - _lgamma(xp, a + 1))
    psi = _digamma(xp, a + 1)
    total = term * (lx - psi)
    # NOTE: enough terms for the largest sample (one host read): the series' terms peak
    # near n = x - α and fall off within a few sqrt(x) after it
    top = float(v.max()) if v.size else 0.0
    for n in range(1, int(top + 12 * math.sqrt(top) + 60)):
        term = term * v / (a + n)
        psi = psi + 1.0 / (a + n)
        total = total + term * (lx - psi)
    pdf = xp.exp((a - 1) * lx - v - _lgamma(xp, a))
    return (-total / pdf).astype(x.dtype)


class StandardGamma(Function):
    """Standard gamma draws of concentrations ``alpha`` whose gradient to ``alpha`` is the
    implicit one (Figurnov et al., 2018), so that ``Gamma.rsample`` is reparameterized."""

    def forward(self, alpha):
        xp = backend.array_module(alpha)
        with backend.device_scope(backend.device_of(alpha)):
            out = backend.generator(backend.device_of(alpha)).gamma(
                xp.ascontiguousarray(alpha).astype("float64")
            ).astype(alpha.dtype)  # fmt: skip
        self.alpha, self.x = alpha, out
        return out

    def backward(self, g):
        xp = backend.array_module(g)
        return g * _standard_gamma_grad(xp, self.alpha, self.x)


def gamma_rsample(alpha: Tensor) -> Tensor:
    """Standard gamma samples of ``alpha`` (same shape), differentiable in ``alpha``."""
    return StandardGamma.apply(alpha.contiguous())
