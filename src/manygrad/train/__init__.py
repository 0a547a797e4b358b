"""``mg.train``: the training loop (``fit``/``Trainer``) and run directories.

Example:
    >>> import manygrad as mg
    >>> from manygrad import train
    >>> model = mg.models.get("mlp")
    >>> result = train.fit(model, "digits", epochs=10, out="runs/mlp")
    >>> result.metrics["test_accuracy"]
"""

from __future__ import annotations

from .run import load_checkpoint, read_metrics, save_checkpoint  # noqa: F401
from .trainer import DivergedError, FitResult, Trainer, fit  # noqa: F401

__all__ = [
    "FitResult",
    "Trainer",
    "DivergedError",
    "fit",
    "load_checkpoint",
    "read_metrics",
    "save_checkpoint",
]
