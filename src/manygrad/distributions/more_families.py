"""More of ``torch.distributions``: ``MixtureSameFamily``, ``Binomial``, ``Multinomial``,
``RelaxedBernoulli`` / ``LogitRelaxedBernoulli``, ``RelaxedOneHotCategorical`` /
``ExpRelaxedCategorical`` (Gumbel-softmax, reparameterized), ``StudentT``, ``Dirichlet``,
``Kumaraswamy`` and ``LowRankMultivariateNormal``.

``StudentT`` and ``Dirichlet`` draw through the generator's gamma samples and are not
reparameterized here (``has_rsample`` False, as ``Gamma``): their ``log_prob`` and
``entropy`` carry gradients, their samples do not.

Example:
    >>> mix = MixtureSameFamily(Categorical(logits=w), Normal(mu, sigma))
    >>> y = RelaxedOneHotCategorical(0.5, logits=scores).rsample()
"""

from __future__ import annotations

import math

from .. import backend
from .. import creation as C
from .. import ops as F
from ..autograd import no_grad
from ..tensor import Size, Tensor
from . import constraints
from .continuous import Uniform
from .discrete import Categorical, _probs_and_logits
from .distribution import Distribution, as_float, broadcast_all, broadcast_shape
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, ExpTransform, PowerTransform, SigmoidTransform

__all__ = [
    "Binomial", "Dirichlet", "ExpRelaxedCategorical", "Kumaraswamy", "LogitRelaxedBernoulli",
    "LowRankMultivariateNormal", "MixtureSameFamily", "Multinomial", "RelaxedBernoulli",
    "RelaxedOneHotCategorical", "StudentT",
]  # fmt: skip


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


# ---------------------------------------------------------------------------- mixtures


class MixtureSameFamily(Distribution):
    """A mixture of ``K`` components of one family: ``mixture_distribution`` is a
    ``Categorical`` over the last batch dim of ``component_distribution``."""

    arg_constraints: dict = {}
    has_rsample = False

    def __init__(self, mixture_distribution, component_distribution, validate_args=None):
        self._mixture_distribution = mixture_distribution
        self._component_distribution = component_distribution
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError("The Mixture distribution needs to be an instance of "
                             "torch.distributions.Categorical")  # fmt: skip
        if not isinstance(component_distribution, Distribution):
            raise ValueError("The Component distribution need to be an instance of "
                             "torch.distributions.Distribution")  # fmt: skip
        mdbs = tuple(mixture_distribution.batch_shape)
        cdbs = tuple(component_distribution.batch_shape)[:-1]
        for size1, size2 in zip(reversed(mdbs), reversed(cdbs)):
            if size1 != 1 and size2 != 1 and size1 != size2:
                raise ValueError(
                    f"`mixture_distribution.batch_shape` ({mdbs}) is not compatible with "
                    f"`component_distribution.batch_shape`({cdbs})"
                )
        km = mixture_distribution.logits.shape[-1]
        kc = component_distribution.batch_shape[-1]
        if km is not None and kc is not None and km != kc:
            raise ValueError(
                f"`mixture_distribution component` ({km}) does not equal "
                f"`component_distribution.batch_shape[-1]` ({kc})"
            )
        self._num_component = km
        event_shape = tuple(component_distribution.event_shape)
        self._event_ndims = len(event_shape)
        super().__init__(cdbs, event_shape, validate_args)

    @property
    def mixture_distribution(self):
        return self._mixture_distribution

    @property
    def component_distribution(self):
        return self._component_distribution

    @property
    def support(self):
        return self._component_distribution.support

    def _pad(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1 - self._event_ndims)

    def _pad_mixture_dimensions(self, x: Tensor) -> Tensor:
        dist_batch_ndims = len(self.batch_shape)
        cat_batch_ndims = len(self.mixture_distribution.batch_shape)
        pad_ndims = 0 if cat_batch_ndims == 1 else dist_batch_ndims - cat_batch_ndims
        xs = tuple(x.shape)
        return x.reshape(*xs[:-1], *([1] * pad_ndims), xs[-1], *([1] * self._event_ndims))

    @property
    def mean(self):
        probs = self._pad_mixture_dimensions(self.mixture_distribution.probs)
        return (probs * self.component_distribution.mean).sum(-1 - self._event_ndims)

    @property
    def variance(self):
        probs = self._pad_mixture_dimensions(self.mixture_distribution.probs)
        d = -1 - self._event_ndims
        mean_cond_var = (probs * self.component_distribution.variance).sum(d)
        var_cond_mean = probs * (self.component_distribution.mean - self._pad(self.mean)) ** 2
        return mean_cond_var + var_cond_mean.sum(d)

    def cdf(self, x):
        x = self._pad(x)
        cdf_x = self.component_distribution.cdf(x)
        return (cdf_x * self.mixture_distribution.probs).sum(-1)

    def log_prob(self, x):
        x = self._pad(x)
        log_prob_x = self.component_distribution.log_prob(x)
        log_mix = F.log_softmax(self.mixture_distribution.logits, -1)
        return F.logsumexp(log_prob_x + log_mix, -1)

    def sample(self, sample_shape=()):
        with no_grad():
            sample_len = len(sample_shape)
            batch_len = len(self.batch_shape)
            gather_dim = sample_len + batch_len
            es = tuple(self.event_shape)
            mix_sample = self.mixture_distribution.sample(sample_shape)
            mix_shape = tuple(mix_sample.shape)
            comp_samples = self.component_distribution.sample(sample_shape)
            idx = mix_sample.reshape(*mix_shape, 1, *([1] * len(es)))
            idx = idx.expand(*mix_shape, 1, *es)
            samples = comp_samples.gather(gather_dim, idx)
            return samples.squeeze(gather_dim)


# ---------------------------------------------------------------------------- counts


class Binomial(Distribution):
    """Successes in ``total_count`` Bernoulli(``probs``) trials."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}  # fmt: skip
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "Binomial")
        if probs is not None:
            self.total_count, self._probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.to(self._probs.dtype)
            self._logits = None
            param = self._probs
        else:
            self.total_count, self._logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.to(self._logits.dtype)
            self._probs = None
            param = self._logits
        super().__init__(param.shape, (), validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def probs(self):
        if self._probs is None:
            self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            p = _clamp_probs(self._probs)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        """Counts by summing Bernoulli trials (``max(total_count)`` of them)."""
        with no_grad():
            shape = self._extended_shape(sample_shape)
            n_max = int(self.total_count.max().item()) if self.total_count.numel() else 0
            p = self.probs.expand(*shape)
            n = self.total_count.expand(*shape)
            if n_max == 0:
                return C.zeros_like(p)
            u = C.rand(*shape, n_max, dtype=p.dtype, device=p.device)
            trial = C.arange(n_max, device=p.device).to(p.dtype)
            hits = (u < p.unsqueeze(-1)) & (trial < n.unsqueeze(-1))
            return hits.to(p.dtype).sum(-1)

    def log_prob(self, value):
        value = as_float(value, self.logits)
        n, logits = self.total_count, self.logits
        log_factorial_n = (n + 1).lgamma()
        log_factorial_k = (value + 1).lgamma()
        log_factorial_nmk = (n - value + 1).lgamma()
        clamp_by_zero = (logits.clamp(min=0) + logits - logits.clamp(max=0)) / 2
        normalize = n * clamp_by_zero + n * (-logits.abs()).exp().log1p() - log_factorial_n
        return value * logits - log_factorial_k - log_factorial_nmk - normalize

    def entropy(self):
        total = int(self.total_count.max().item())
        if not bool((self.total_count == total).all()):
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        values = self.enumerate_support(False)
        log_prob = self.log_prob(values)
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True):
        total = int(self.total_count.max().item())
        if not bool((self.total_count == total).all()):
            raise NotImplementedError(
                "Inhomogeneous total count not supported by `enumerate_support`."
            )
        nb = len(self.batch_shape)
        values = C.arange(1 + total, dtype=self.probs.dtype, device=self.probs.device)
        values = values.reshape(-1, *([1] * nb))
        if expand:
            values = values.expand(-1, *self.batch_shape)
        return values


class Multinomial(Distribution):
    """Counts of ``total_count`` draws from a ``Categorical(probs / logits)``."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count: int = 1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        batch_shape = tuple(self._categorical.batch_shape)
        event_shape = tuple(self._categorical.param_shape[-1:])
        super().__init__(batch_shape, event_shape, validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.independent(constraints.integer_interval(0, self.total_count), 1)

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        with no_grad():
            shape = Size(sample_shape)
            samples = self._categorical.sample(Size((self.total_count,)) + shape)
            k = self._event_shape[-1]
            counts = F.one_hot(samples, k).to(self.probs.dtype).sum(0)
            return counts

    def log_prob(self, value):
        value = as_float(value, self.logits)
        shape = broadcast_shape(tuple(self.logits.shape), tuple(value.shape))
        logits = self.logits.expand(*shape)
        value = value.expand(*shape)
        log_factorial_n = (value.sum(-1) + 1).lgamma()
        log_factorial_xs = (value + 1).lgamma().sum(-1)
        # NOTE: 0 * log(0) counts as 0: a category of probability 0 that was not drawn
        safe = F.where((value == 0) & (logits == -math.inf), C.zeros_like(logits), logits)
        log_powers = (safe * value).sum(-1)
        return log_factorial_n - log_factorial_xs + log_powers

    def entropy(self):
        raise NotImplementedError("Multinomial.entropy: not available")


# ---------------------------------------------------------------------------- relaxed


class LogitRelaxedBernoulli(Distribution):
    """The logit of a ``RelaxedBernoulli`` sample (Maddison et al., 2017)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = False  # NOTE: as PyTorch's flag, though rsample() is reparameterized

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        probs, logits = _probs_and_logits(probs, logits, "LogitRelaxedBernoulli")
        self._probs = as_float(probs) if probs is not None else None
        self._logits = as_float(logits) if logits is not None else None
        param = self._probs if self._probs is not None else self._logits
        self.temperature = as_float(temperature, param)
        super().__init__(param.shape, (), validate_args)

    @property
    def probs(self):
        if self._probs is None:
            self._probs = self._logits.sigmoid()
        return self._probs

    @property
    def logits(self):
        if self._logits is None:
            p = _clamp_probs(self._probs)
            self._logits = p.log() - (-p).log1p()
        return self._logits

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        probs = _clamp_probs(self.probs.expand(*shape))
        u = _clamp_probs(C.rand(*shape, dtype=probs.dtype, device=probs.device))
        return (u.log() - (-u).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value):
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return self.temperature.log() + diff - 2 * diff.exp().log1p()


class RelaxedBernoulli(TransformedDistribution):
    """A continuous relaxation of ``Bernoulli`` on (0, 1) (reparameterized): the sigmoid of
    a ``LogitRelaxedBernoulli`` sample. Lower ``temperature``: closer to 0/1."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = LogitRelaxedBernoulli(temperature, probs, logits)
        super().__init__(base, SigmoidTransform(), validate_args)

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


class ExpRelaxedCategorical(Distribution):
    """The log of a ``RelaxedOneHotCategorical`` sample (a point on the log-simplex)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        self.temperature = as_float(temperature, self._categorical.logits)
        batch_shape = tuple(self._categorical.batch_shape)
        event_shape = tuple(self._categorical.param_shape[-1:])
        super().__init__(batch_shape, event_shape, validate_args)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param_shape(self):
        return self._categorical.param_shape

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        logits = self.logits
        u = _clamp_probs(C.rand(*shape, dtype=logits.dtype, device=logits.device))
        gumbels = -((-(u.log())).log())
        scores = (logits + gumbels) / self.temperature
        return scores - F.logsumexp(scores, -1, keepdim=True)

    def log_prob(self, value):
        k = self._categorical._num_events
        t = self.temperature
        log_scale = C.full_like(t, float(k)).lgamma() - t.log() * (-(k - 1))
        score = self.logits - value * t
        score = (score - F.logsumexp(score, -1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(TransformedDistribution):
    """The Gumbel-softmax / Concrete relaxation of ``OneHotCategorical`` on the simplex
    (reparameterized; Jang et al., 2017; Maddison et al., 2017)."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        base = ExpRelaxedCategorical(temperature, probs, logits)
        super().__init__(base, ExpTransform(), validate_args)

    @property
    def temperature(self):
        return self.base_dist.temperature

    @property
    def logits(self):
        return self.base_dist.logits

    @property
    def probs(self):
        return self.base_dist.probs


# ---------------------------------------------------------------------------- continuous


class StudentT(Distribution):
    """Student's t with ``df`` degrees of freedom, location ``loc`` and scale ``scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real,
                       "scale": constraints.positive}  # fmt: skip
    support = constraints.real
    has_rsample = False

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.shape, (), validate_args)

    @property
    def mean(self):
        m = self.loc.clone()
        return F.where(self.df <= 1, C.full_like(m, math.nan), m)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        df = self.df
        var = self.scale**2 * df / (df - 2)
        var = F.where(df <= 2, C.full_like(var, math.inf), var)
        return F.where(df <= 1, C.full_like(var, math.nan), var)

    def sample(self, sample_shape=()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            df = self.df.expand(*shape)
            x = C.randn(*shape, dtype=df.dtype, device=df.device)
            z = _gamma_draw(0.5 * df) * 2  # chi-squared with df degrees of freedom
            return self.loc + self.scale * x * (z / df).rsqrt()

    def log_prob(self, value):
        y = (as_float(value, self.loc) - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi)
             + (0.5 * self.df).lgamma() - (0.5 * (self.df + 1.0)).lgamma())  # fmt: skip
        return -0.5 * (self.df + 1.0) * (y**2.0 / self.df).log1p() - z

    def entropy(self):
        lbeta = (0.5 * self.df).lgamma() + math.lgamma(0.5) - (0.5 * (self.df + 1)).lgamma()
        return (self.scale.log() + 0.5 * (self.df + 1)
                * ((0.5 * (self.df + 1)).digamma() - (0.5 * self.df).digamma())
                + 0.5 * self.df.log() + lbeta)  # fmt: skip


class Dirichlet(Distribution):
    """Points of the simplex with ``concentration`` (the last dim indexes categories)."""

    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = False

    def __init__(self, concentration, validate_args=None):
        concentration = as_float(concentration)
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        shape = tuple(concentration.shape)
        super().__init__(shape[:-1], shape[-1:], validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        cm1 = (self.concentration - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        mask = (self.concentration < 1).all(-1)
        k = self.concentration.shape[-1]
        one_hot = F.one_hot(self.concentration.argmax(-1), k).to(mode.dtype)
        return F.where(mask.unsqueeze(-1), one_hot, mode)

    @property
    def variance(self):
        c0 = self.concentration.sum(-1, keepdim=True)
        c = self.concentration
        return c * (c0 - c) / (c0.pow(2) * (c0 + 1))

    def sample(self, sample_shape=()):
        with no_grad():
            shape = self._extended_shape(sample_shape)
            g = _gamma_draw(self.concentration.expand(*shape))
            tiny = 1e-37 if g.dtype.itemsize == 4 else 1e-300
            g = g.clamp(min=tiny)
            return g / g.sum(-1, keepdim=True)

    def log_prob(self, value):
        c = self.concentration
        value = as_float(value, c)
        return F.xlogy(c - 1.0, value).sum(-1) + c.sum(-1).lgamma() - c.lgamma().sum(-1)

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (c.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma()
                - ((c - 1.0) * c.digamma()).sum(-1))  # fmt: skip


class Kumaraswamy(TransformedDistribution):
    """``(1 - (1 - U)^(1/b))^(1/a)``-shaped law on (0, 1) (``a = concentration1``,
    ``b = concentration0``), reparameterized through its inverse CDF."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}  # fmt: skip
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        c1 = self.concentration1
        base = Uniform(C.zeros_like(c1), C.ones_like(c1), validate_args=validate_args)
        transforms = [
            PowerTransform(exponent=self.concentration0.reciprocal()),
            AffineTransform(loc=1.0, scale=-1.0),
            PowerTransform(exponent=self.concentration1.reciprocal()),
        ]
        super().__init__(base, transforms, validate_args)

    @property
    def mean(self):
        return _moments(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        log_mode = (self.concentration0.reciprocal() * (-self.concentration0).log1p()
                    - (-self.concentration0 * self.concentration1).log1p())  # fmt: skip
        log_mode = log_mode.clone()
        bad = (self.concentration0 < 1) | (self.concentration1 < 1)
        return F.where(bad, C.full_like(log_mode, math.nan), log_mode.exp())

    @property
    def variance(self):
        return (_moments(self.concentration1, self.concentration0, 2)
                - _moments(self.concentration1, self.concentration0, 1).pow(2))  # fmt: skip

    def entropy(self):
        t1 = 1 - self.concentration1.reciprocal()
        t0 = 1 - self.concentration0.reciprocal()
        h0 = (self.concentration0 + 1).digamma() + 0.5772156649015329
        return t0 + t1 * h0 - self.concentration1.log() - self.concentration0.log()


def _moments(a: Tensor, b: Tensor, n: int) -> Tensor:
    """``E[X^n]`` of ``Kumaraswamy(a, b)``: ``b B(1 + n/a, b)``."""
    arg1 = 1 + n / a
    log_value = arg1.lgamma() + b.lgamma() - (arg1 + b).lgamma()
    return b * log_value.exp()


class LowRankMultivariateNormal(Distribution):
    """Gaussian over vectors with covariance ``cov_factor @ cov_factor.mT +
    diag(cov_diag)``: a rank-``r`` factor plus a diagonal, in ``O(n r²)``."""

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        n = loc.shape[-1]
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        if tuple(cov_factor.shape[-2:-1]) != (n,):
            raise ValueError(f"cov_factor must be a batch of matrices with shape {n} x m")
        if tuple(cov_diag.shape[-1:]) != (n,):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {(n,)}")
        batch = broadcast_shape(tuple(loc.shape[:-1]), tuple(cov_factor.shape[:-2]),
                                tuple(cov_diag.shape[:-1]))  # fmt: skip
        self.loc = loc.expand(*batch, n)
        self.cov_factor = cov_factor.expand(*batch, n, cov_factor.shape[-1])
        self.cov_diag = cov_diag.expand(*batch, n)
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = _capacitance_tril(cov_factor, cov_diag)
        super().__init__(batch, (n,), validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return ((w * w).sum(-1) + d).expand(*self._batch_shape, *self._event_shape)

    @property
    def covariance_matrix(self):
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        cov = w @ w.mT + d.diag_embed()
        return cov.expand(*self._batch_shape, *self._event_shape, *self._event_shape)

    @property
    def scale_tril(self):
        from .. import linalg

        return linalg.cholesky(self.covariance_matrix)

    @property
    def precision_matrix(self):
        from .. import linalg

        return linalg.inv(self.covariance_matrix)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        r = self.cov_factor.shape[-1]
        eps_w = C.randn(*shape[:-1], r, dtype=self.loc.dtype, device=self.loc.device)
        eps_d = C.randn(*shape, dtype=self.loc.dtype, device=self.loc.device)
        w = self._unbroadcasted_cov_factor
        return (self.loc + (w @ eps_w.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)  # fmt: skip

    def log_prob(self, value):
        diff = value - self.loc
        m = _batch_lowrank_mahalanobis(self._unbroadcasted_cov_factor,
                                       self._unbroadcasted_cov_diag, diff,
                                       self._capacitance_tril)  # fmt: skip
        log_det = _batch_lowrank_logdet(self._unbroadcasted_cov_diag, self._capacitance_tril)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + log_det + m)

    def entropy(self):
        log_det = _batch_lowrank_logdet(self._unbroadcasted_cov_diag, self._capacitance_tril)
        n = self._event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + log_det)
        return h.expand(*self._batch_shape) if len(self._batch_shape) else h


def _capacitance_tril(w: Tensor, d: Tensor) -> Tensor:
    """The Cholesky factor of ``I + Wᵀ D⁻¹ W`` (Woodbury's capacitance)."""
    from .. import linalg

    r = w.shape[-1]
    wt_dinv = w.mT / d.unsqueeze(-2)
    k = wt_dinv @ w
    k = k + C.eye(r, dtype=k.dtype, device=k.device)
    return linalg.cholesky(k)


def _batch_lowrank_logdet(d: Tensor, cap_tril: Tensor) -> Tensor:
    """``log det(W Wᵀ + D)`` by the matrix determinant lemma."""
    return 2 * cap_tril.diagonal(0, -2, -1).log().sum(-1) + d.log().sum(-1)


def _batch_lowrank_mahalanobis(w, d, x, cap_tril):
    """``xᵀ (W Wᵀ + D)⁻¹ x`` by the Woodbury identity."""
    from .. import linalg

    wt_dinv = w.mT / d.unsqueeze(-2)
    wt_dinv_x = (wt_dinv @ x.unsqueeze(-1)).squeeze(-1)
    mahalanobis_term1 = (x.pow(2) / d).sum(-1)
    y = linalg.solve_triangular(cap_tril, wt_dinv_x.unsqueeze(-1), upper=False).squeeze(-1)
    return mahalanobis_term1 - y.pow(2).sum(-1)
