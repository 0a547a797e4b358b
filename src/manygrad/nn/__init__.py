"""Neural-network building blocks: ``Module``, layers, ``functional``, ``init``."""

from . import functional  # noqa: F401
