"""``torch.distributions.one_hot_categorical``: ``OneHotCategorical``."""

from .discrete import OneHotCategorical  # noqa: F401
