"""``torch.distributions.exponential``: ``Exponential``."""

from .continuous import Exponential  # noqa: F401
