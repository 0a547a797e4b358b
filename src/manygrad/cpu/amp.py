"""``torch.cpu.amp``: PyTorch's older spellings of ``torch.amp.autocast("cpu", ...)`` and
``torch.amp.GradScaler("cpu", ...)``, with PyTorch's FutureWarning naming the current one."""

from __future__ import annotations

import warnings

from .. import amp as _amp


def autocast(enabled: bool = True, dtype=None, cache_enabled: bool = True):
    """``mg.amp.autocast("cpu", dtype=..., enabled=...)`` (bfloat16 by default)."""
    from .. import dtypes as D

    warnings.warn("`torch.cpu.amp.autocast(args...)` is deprecated. Please use "
                  "`torch.amp.autocast('cpu', args...)` instead.", FutureWarning,
                  stacklevel=2)  # fmt: skip
    return _amp.autocast("cpu", dtype=D.bfloat16 if dtype is None else dtype, enabled=enabled,
                         cache_enabled=cache_enabled)  # fmt: skip


class GradScaler(_amp.GradScaler):
    """``mg.amp.GradScaler("cpu", ...)``."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True):  # fmt: skip
        warnings.warn("`torch.cpu.amp.GradScaler(args...)` is deprecated. Please use "
                      "`torch.amp.GradScaler('cpu', args...)` instead.", FutureWarning,
                      stacklevel=2)  # fmt: skip
        super().__init__("cpu", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)  # fmt: skip


__all__ = ["autocast", "GradScaler"]
