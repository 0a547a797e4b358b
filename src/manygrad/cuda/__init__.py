"""``mg.cuda``: GPU availability and synchronisation, as ``torch.cuda``."""

from __future__ import annotations

from .. import backend


def is_available() -> bool:
    """True when CuPy can run kernels on at least one NVIDIA GPU."""
    return backend.cuda_available()


def why_unavailable() -> str:
    """One sentence saying why CUDA is unusable here and what to install ("" if usable)."""
    ok, why = backend.cuda_status()
    return "" if ok else why


def device_count() -> int:
    return backend.cuda_device_count()


def synchronize(device=None) -> None:
    """Wait until queued kernels on ``device`` (default: all GPUs) have finished."""
    backend.synchronize(None if device is None else backend.device(device))


def current_device() -> int:
    return backend.cuda_module().cuda.runtime.getDevice() if is_available() else 0


def get_device_name(device=0) -> str:
    cp = backend.cuda_module()
    idx = backend.device(device).index or 0
    return cp.cuda.runtime.getDeviceProperties(idx)["name"].decode()


def manual_seed(seed: int) -> None:
    backend.manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    backend.manual_seed(seed)
