"""``torch.distributions.bernoulli``: ``Bernoulli``."""

from .discrete import Bernoulli  # noqa: F401
