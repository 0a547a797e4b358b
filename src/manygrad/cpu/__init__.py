"""``torch.cpu``: the CPU as a device module (``is_available``, ``synchronize``, and the
older, deprecated ``torch.cpu.amp.autocast``, which is ``torch.amp.autocast("cpu")``).

Example:
    >>> with mg.amp.autocast("cpu", dtype=mg.bfloat16):
    ...     y = model(x)
"""

from __future__ import annotations

from . import amp  # noqa: F401


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def current_device() -> str:
    return "cpu"


def synchronize(device=None) -> None:
    """Nothing to wait for: CPU work is done when its call returns."""
