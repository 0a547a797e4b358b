"""``torch.distributions.categorical``: ``Categorical``."""

from .discrete import Categorical  # noqa: F401
