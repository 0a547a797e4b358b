"""``torch.cpu.amp``: PyTorch's older spelling of ``torch.amp.autocast("cpu", ...)``."""

from __future__ import annotations

from ..amp import autocast as _autocast


def autocast(enabled: bool = True, dtype=None, cache_enabled: bool = True):
    """``mg.amp.autocast("cpu", dtype=..., enabled=...)`` (bfloat16 by default)."""
    from .. import dtypes as D

    return _autocast("cpu", dtype=D.bfloat16 if dtype is None else dtype, enabled=enabled,
                     cache_enabled=cache_enabled)  # fmt: skip
