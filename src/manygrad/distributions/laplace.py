"""``torch.distributions.laplace``: ``Laplace``."""

from .continuous import Laplace  # noqa: F401
