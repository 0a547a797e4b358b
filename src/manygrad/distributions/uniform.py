"""``torch.distributions.uniform``: ``Uniform``."""

from .continuous import Uniform  # noqa: F401
