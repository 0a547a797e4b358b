"""``torch.amp.grad_scaler`` and ``torch.amp.autocast_mode``: the modules that PyTorch's
``torch.amp`` names come from, for programs that import them by these paths
(``from torch.amp.grad_scaler import GradScaler``). The objects are ``manygrad.amp``'s.

Example:
    >>> from manygrad.compat.torch_amp_modules import GradScaler, autocast
"""

from __future__ import annotations

import enum

from ..amp import GradScaler, autocast, custom_bwd, custom_fwd, is_autocast_available


class OptState(enum.Enum):
    """Where an optimizer is in ``GradScaler``'s step: gradients not yet unscaled, unscaled,
    or stepped (PyTorch's ``torch.amp.grad_scaler.OptState``)."""

    READY = 0
    UNSCALED = 1
    STEPPED = 2


__all__ = ["GradScaler", "OptState", "autocast", "custom_bwd", "custom_fwd",
           "is_autocast_available"]  # fmt: skip
