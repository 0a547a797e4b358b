"""``mg.accelerator``: the current accelerator (a CUDA GPU) or None, as ``torch.accelerator``.

Example:
    >>> dev = mg.accelerator.current_accelerator() if mg.accelerator.is_available() else "cpu"
"""

from __future__ import annotations

from . import backend


def is_available() -> bool:
    """True when a CUDA GPU can run kernels."""
    return backend.cuda_available()


def current_accelerator(check_available: bool = False):
    """``device("cuda")`` when a GPU is usable, else None."""
    return backend.device("cuda") if backend.cuda_available() else None


def device_count() -> int:
    return backend.cuda_device_count() if backend.cuda_available() else 0


def current_device_index() -> int:
    from . import cuda

    return cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device) -> None:
    from . import cuda

    cuda.set_device(device)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    """Wait for queued GPU work (a no-op without a GPU)."""
    if backend.cuda_available():
        backend.synchronize(None if device is None else backend.device(device))
