"""Distributions over matrices: ``LKJCholesky`` (Cholesky factors of correlation
matrices; Lewandowski, Kurowicka & Joe, 2009) and ``Wishart`` (positive-definite matrices).
``Wishart.rsample`` is reparameterized (Bartlett's decomposition over reparameterized
chi-squared draws), as PyTorch's; ``LKJCholesky`` samples carry no gradient (PyTorch's
neither).

Example:
    >>> prior = LKJCholesky(4, concentration=2.0); lp = prior.log_prob(prior.sample())
"""

from __future__ import annotations

import math
import warnings

from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..compat.torch_api import finfo
from ..tensor import Tensor
from . import constraints
from ._checks import submit
from ._draws import _gamma_draw
from ._lazy import lazy_property
from .distribution import (
    Distribution,
    ExponentialFamily,
    as_float,
    broadcast_all,
    broadcast_shape,
)

__all__ = ["LKJCholesky", "Wishart"]

_LOG_2 = math.log(2)


def _mvlgamma(x: Tensor, p: int) -> Tensor:
    from ..ops import mvlgamma

    return mvlgamma(x, p)


def _mvdigamma(x: Tensor, p: int) -> Tensor:
    half = C.arange(p, dtype=x.dtype, device=x.device) / 2
    return (x.unsqueeze(-1) - half).digamma().sum(-1)


class LKJCholesky(Distribution):
    """Lower Cholesky factors ``L`` of ``dim x dim`` correlation matrices ``L Lᵀ`` with
    density proportional to ``det(L Lᵀ)^(concentration - 1)``."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None):
        if dim < 2:
            raise ValueError(
                f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}."
            )
        from .more_continuous import Beta

        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        # NOTE: PyTorch's onion-method Beta, built here for its checks (and their messages)
        c = self.concentration
        offset = C.arange(dim - 1, dtype=c.dtype, device=c.device)
        offset = F.cat([C.zeros(1, dtype=c.dtype, device=c.device), offset])
        marginal = c + 0.5 * (dim - 2)
        self._beta = Beta(offset + 0.5, marginal.unsqueeze(-1) - 0.5 * offset)
        super().__init__(tuple(self.concentration.shape), (dim, dim), validate_args)

    def sample(self, sample_shape=()):
        """The onion method (Lewandowski et al., 2009, section 3.2)."""
        with no_grad():
            c = self.concentration
            marginal = c + 0.5 * (self.dim - 2)
            offset = C.arange(self.dim - 1, dtype=c.dtype, device=c.device)
            offset = F.cat([C.zeros(1, dtype=c.dtype, device=c.device), offset])
            a = (offset + 0.5).expand(*sample_shape, *c.shape, self.dim).contiguous()
            b = (marginal.unsqueeze(-1) - 0.5 * offset).expand(*a.shape).contiguous()
            ga, gb = _gamma_draw(a), _gamma_draw(b)
            y = (ga / (ga + gb)).unsqueeze(-1)  # Beta(a, b)
            shape = self._extended_shape(sample_shape)
            u = C.randn(*shape, dtype=y.dtype, device=y.device).tril(-1)
            norm = (u * u).sum(-1, keepdim=True).sqrt()
            u = u / F.where(norm == 0, C.ones_like(norm), norm)  # NOTE: the first row is 0
            w = y.sqrt() * u
            eps = float(finfo(w.dtype).tiny)
            diag = (1 - (w * w).sum(-1)).clamp(min=eps).sqrt()
            return w + diag.diag_embed()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diag = value.diagonal(0, -2, -1)[..., 1:]
        order = C.arange(2, self.dim + 1, dtype=diag.dtype, device=diag.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diag.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        denominator = alpha.lgamma() * dm1
        numerator = _mvlgamma(alpha - 0.5, dm1)
        normalize = 0.5 * dm1 * math.log(math.pi) + numerator - denominator
        return unnormalized - normalize


class Wishart(ExponentialFamily):
    """Positive-definite ``p x p`` matrices ``Σᵢ xᵢ xᵢᵀ`` of ``df`` Gaussian vectors with
    ``covariance_matrix`` (or ``precision_matrix``, or ``scale_tril``)."""

    @property
    def arg_constraints(self) -> dict:
        """The given matrix's constraint and ``df > p - 1``, as PyTorch's."""
        p = self._event_shape[-1]
        return {"covariance_matrix": constraints.positive_definite,
                "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky, "df": constraints.greater_than(p - 1)}  # fmt: skip

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):  # fmt: skip
        from .. import linalg
        from .more_continuous import Chi2

        given = {"covariance_matrix": covariance_matrix, "precision_matrix": precision_matrix,
                 "scale_tril": scale_tril}  # fmt: skip
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) != 1:
            # NOTE: AssertionError, the type PyTorch raises here
            raise AssertionError("Exactly one of covariance_matrix or precision_matrix or "
                                 "scale_tril may be specified.")  # fmt: skip
        ((name, param),) = given.items()
        if param.ndim < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        df_given, df = df, as_float(df, param)
        p = param.shape[-1]
        batch = broadcast_shape(tuple(param.shape[:-2]), tuple(df.shape))
        self.df = df.expand(*batch)
        # NOTE: PyTorch reads these two on the host always, validating or not; here they join
        # the constructor's one read of its checks (the second only warns)
        low_df = self.df <= p - 1

        def df_error():
            return ValueError(
                f"Value of df={df_given} expected to be greater than ndim - 1 = {p - 1}."
            )

        def few_df():
            warnings.warn("Low df values detected. Singular samples are highly likely to occur "
                          "for ndim - 1 < df < ndim.", stacklevel=4)  # fmt: skip

        submit([(~low_df, df_error), (~(self.df < p), few_df)])
        self.__dict__[name] = param.expand(*batch, p, p)
        super().__init__(batch, (p, p), validate_args)
        if name == "scale_tril":
            tril = param
        elif name == "covariance_matrix":
            tril = linalg.cholesky(param)
        else:
            # NOTE: L with L Lᵀ = P⁻¹, from the Cholesky factor of the flipped precision
            lf = linalg.cholesky(param.flip(-2, -1))
            tril = linalg.inv(lf.flip(-2, -1)).mT
        self._unbroadcasted_scale_tril = tril
        # NOTE: PyTorch's chi-squared of the Bartlett diagonal, checking df by the default
        k = C.arange(p, dtype=tril.dtype, device=tril.device)
        self._dist_chi2 = Chi2(self.df.unsqueeze(-1) - k.expand(*batch, p))

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(*self._batch_shape, *self._event_shape)

    @lazy_property
    def covariance_matrix(self):
        t = self._unbroadcasted_scale_tril
        return (t @ t.mT).expand(*self._batch_shape, *self._event_shape)

    @lazy_property
    def precision_matrix(self):
        from .. import linalg

        return linalg.inv(self.covariance_matrix)

    @property
    def mean(self):
        return self.df.reshape(*self._batch_shape, 1, 1) * self.covariance_matrix

    @property
    def mode(self):
        p = self._event_shape[-1]
        factor = self.df - p - 1
        factor = F.where(factor <= 0, C.full_like(factor, math.nan), factor)
        return factor.reshape(*self._batch_shape, 1, 1) * self.covariance_matrix

    @property
    def variance(self):
        v = self.covariance_matrix
        d = v.diagonal(0, -2, -1)
        return self.df.reshape(*self._batch_shape, 1, 1) * (
            v**2 + d.unsqueeze(-1) * d.unsqueeze(-2)
        )

    def rsample(self, sample_shape=()):
        """Bartlett's decomposition: chi-squared diagonal, Gaussian below it (gradients to
        ``df`` through the chi-squared draws and to the scale)."""
        from ._draws import gamma_rsample

        p = self._event_shape[-1]
        shape = tuple(sample_shape) + tuple(self._batch_shape)
        k = C.arange(p, dtype=self.df.dtype, device=self.df.device)
        dof = (self.df.unsqueeze(-1) - k).expand(*shape, p)
        chi2 = gamma_rsample(0.5 * dof) * 2
        tiny = float(finfo(chi2.dtype).eps)
        noise = chi2.sqrt().clamp(min=tiny).diag_embed()
        noise = noise + C.randn(*shape, p, p, dtype=noise.dtype, device=noise.device).tril(-1)
        chol = self._unbroadcasted_scale_tril @ noise
        return chol @ chol.mT

    def log_prob(self, value):
        from .. import linalg
        from ..ops import cholesky_solve

        if self._validate_args:
            self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        tril = self._unbroadcasted_scale_tril
        log_det_scale = tril.diagonal(0, -2, -1).log().sum(-1)
        return (-nu * (p * _LOG_2 / 2 + log_det_scale) - _mvlgamma(nu / 2, p)
                + (nu - p - 1) / 2 * linalg.slogdet(value).logabsdet
                - cholesky_solve(value, tril).diagonal(0, -2, -1).sum(-1) / 2)  # fmt: skip

    def entropy(self):
        nu = self.df
        p = self._event_shape[-1]
        log_det_scale = self._unbroadcasted_scale_tril.diagonal(0, -2, -1).log().sum(-1)
        return ((p + 1) * (p * _LOG_2 / 2 + log_det_scale) + _mvlgamma(nu / 2, p)
                - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p) + nu * p / 2)  # fmt: skip

    @property
    def _natural_params(self) -> tuple:
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x, y):
        from .. import linalg

        p = self._event_shape[-1]
        logdet = linalg.slogdet(-2 * x).logabsdet
        return (y + (p + 1) / 2) * (-logdet + _LOG_2 * p) + _mvlgamma(y + (p + 1) / 2, p)
