"""Probability distributions with PyTorch's interface (``torch.distributions``).

Every distribution is built from manygrad's differentiable ops: ``log_prob``, ``entropy``,
``rsample`` and ``kl_divergence`` carry gradients to the parameters.

Arguments are checked as in PyTorch, by default (off under ``python -O``): parameters
outside ``arg_constraints`` and ``log_prob`` / ``cdf`` values outside ``support`` raise
PyTorch's ``ValueError``. Each constructor or scoring call reads its checks back once (one
GPU sync); ``validate_args=False`` or ``Distribution.set_default_validate_args(False)``
turns them off, e.g. for a tuned training step or a CUDA-graph capture.

Example:
    >>> from manygrad.distributions import Categorical, Normal, kl_divergence
    >>> d = Categorical(logits=scores); a = d.sample(); lp = d.log_prob(a)
    >>> kl = kl_divergence(Normal(mu, sigma), Normal(0.0, 1.0))
"""

from . import constraints, kl_more, transforms  # noqa: F401  (kl_more registers closed forms)
from .constraint_registry import biject_to, transform_to
from .continuous import Exponential, Laplace, Normal, Uniform
from .counts import Binomial, Multinomial
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .discrete_more import Geometric, Poisson
from .distribution import Distribution, ExponentialFamily
from .extra_continuous import (
    FisherSnedecor,
    GeneralizedPareto,
    InverseGamma,
    LogisticNormal,
    OneHotCategoricalStraightThrough,
)
from .extra_families import ContinuousBernoulli, NegativeBinomial, VonMises
from .independent import Independent
from .kl import kl_divergence, register_kl
from .lowrank_mvn import LowRankMultivariateNormal
from .matrix_families import LKJCholesky, Wishart
from .mixture import MixtureSameFamily
from .more_continuous import Beta, Cauchy, Chi2, Gamma
from .multivariate_normal import MultivariateNormal
from .relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from .t_dirichlet import Dirichlet, Kumaraswamy, StudentT
from .transformed_continuous import Gumbel, HalfCauchy, HalfNormal, LogNormal, Pareto, Weibull
from .transformed_distribution import TransformedDistribution
from .transforms import (
    AbsTransform,
    AffineTransform,
    CatTransform,
    ComposeTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    ReshapeTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StackTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)

__all__ = [
    "Distribution", "Normal", "Uniform", "Laplace", "Exponential", "Categorical",
    "OneHotCategorical", "Bernoulli", "MultivariateNormal", "Independent", "kl_divergence",
    "register_kl", "LogNormal", "Gumbel", "Cauchy", "HalfNormal", "HalfCauchy", "Weibull",
    "Pareto", "Gamma", "Chi2", "Beta", "Poisson", "Geometric", "TransformedDistribution",
    "constraints", "transforms", "biject_to", "transform_to", "Transform", "AbsTransform",
    "AffineTransform", "ComposeTransform", "CumulativeDistributionTransform", "ExpTransform",
    "IndependentTransform", "LowerCholeskyTransform", "PowerTransform", "ReshapeTransform",
    "SigmoidTransform", "SoftmaxTransform", "SoftplusTransform", "StickBreakingTransform",
    "TanhTransform", "Binomial", "Dirichlet", "ExpRelaxedCategorical", "Kumaraswamy",
    "LogitRelaxedBernoulli", "LowRankMultivariateNormal", "MixtureSameFamily", "Multinomial",
    "RelaxedBernoulli", "RelaxedOneHotCategorical", "StudentT", "ContinuousBernoulli",
    "FisherSnedecor", "GeneralizedPareto", "InverseGamma", "LogisticNormal", "NegativeBinomial",
    "OneHotCategoricalStraightThrough", "VonMises", "identity_transform", "LKJCholesky",
    "Wishart", "ExponentialFamily", "CatTransform", "CorrCholeskyTransform", "PositiveDefiniteTransform",
    "StackTransform",
]  # fmt: skip
