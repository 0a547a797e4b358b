"""``torch.distributions.normal``: ``Normal``."""

from .continuous import Normal  # noqa: F401
