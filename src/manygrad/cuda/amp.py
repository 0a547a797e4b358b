"""``torch.cuda.amp``: PyTorch's older spellings of ``torch.amp`` with ``device_type="cuda"``.

``torch.cuda.amp.autocast()`` and ``torch.cuda.amp.GradScaler()`` are still common in
training scripts; they are ``mg.amp.autocast("cuda", ...)`` and ``mg.amp.GradScaler("cuda",
...)``.
"""

from __future__ import annotations

from .. import amp as _amp


def autocast(enabled: bool = True, dtype=None, cache_enabled: bool = True):
    """``mg.amp.autocast("cuda", dtype=..., enabled=...)`` (float16 by default)."""
    return _amp.autocast("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_amp.GradScaler):
    """``mg.amp.GradScaler("cuda", ...)``."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True):  # fmt: skip
        super().__init__("cuda", init_scale, growth_factor, backoff_factor, growth_interval,
                         enabled)  # fmt: skip


def custom_fwd(fwd=None, *, cast_inputs=None):
    """``mg.amp.custom_fwd(device_type="cuda", cast_inputs=...)``."""
    return _amp.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd=None):
    """``mg.amp.custom_bwd(device_type="cuda")``."""
    return _amp.custom_bwd(bwd, device_type="cuda")


__all__ = ["autocast", "GradScaler", "custom_fwd", "custom_bwd"]
