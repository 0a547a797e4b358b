"""``torch.cuda.amp``: PyTorch's older spellings of ``torch.amp`` with ``device_type="cuda"``.

``torch.cuda.amp.autocast()`` and ``torch.cuda.amp.GradScaler()`` are still common in
training scripts; they are ``mg.amp.autocast("cuda", ...)`` and ``mg.amp.GradScaler("cuda",
...)``, with PyTorch's FutureWarning naming the current spelling.
"""

from __future__ import annotations

import warnings

from .. import amp as _amp


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"`{old}` is deprecated. Please use `{new}` instead.", FutureWarning,
                  stacklevel=3)  # fmt: skip


def autocast(enabled: bool = True, dtype=None, cache_enabled: bool = True):
    """``mg.amp.autocast("cuda", dtype=..., enabled=...)`` (float16 by default)."""
    _deprecated("torch.cuda.amp.autocast(args...)", "torch.amp.autocast('cuda', args...)")
    return _amp.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """``mg.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True):  # fmt: skip
        _deprecated("torch.cuda.amp.GradScaler(args...)", "torch.amp.GradScaler('cuda', args...)")
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)  # fmt: skip


def custom_fwd(fwd=None, *, cast_inputs=None):
    """``mg.amp.custom_fwd(device_type="cuda", cast_inputs=...)``."""
    _deprecated("torch.cuda.amp.custom_fwd(args...)",
                "torch.amp.custom_fwd(args..., device_type='cuda')")  # fmt: skip
    return _amp.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd=None):
    """``mg.amp.custom_bwd(device_type="cuda")``."""
    _deprecated("torch.cuda.amp.custom_bwd(args...)",
                "torch.amp.custom_bwd(args..., device_type='cuda')")  # fmt: skip
    return _amp.custom_bwd(bwd, device_type="cuda")


__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]
