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
    from .graphs import current_capture

    if current_capture() is not None:
        from ..errors import CaptureError

        raise CaptureError(
            "CUDA graph capture: synchronize() waits for the GPU, which capture forbids; "
            "move it outside the captured region"
        )
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


# streams and CUDA graphs (PyTorch's torch.cuda API)
from .graphs import (  # noqa: E402
    CUDAGraph,
    current_capture,
    graph,
    graph_pool_handle,
    is_current_stream_capturing,
    make_graphed_callables,
)
from .streams import Event, Stream, current_stream, default_stream, stream  # noqa: E402

__all__ = [
    "CUDAGraph", "Event", "Stream", "current_capture", "current_device", "current_stream",
    "default_stream", "device_count", "get_device_name", "graph", "graph_pool_handle",
    "is_available", "is_current_stream_capturing", "make_graphed_callables", "manual_seed",
    "manual_seed_all", "stream", "synchronize", "why_unavailable", "set_device", "empty_cache",
    "memory_allocated", "memory_reserved", "max_memory_allocated", "reset_peak_memory_stats",
    "get_device_properties", "get_device_capability", "is_bf16_supported", "device",
]  # fmt: skip


# ---------------------------------------------------------------- PyTorch's other queries
# NOTE: written against CuPy's documented API; not yet run on a GPU. Without one they
# answer as PyTorch does on a CPU-only machine (0 bytes, errors for device properties).


def set_device(device) -> None:
    """Make ``device`` (an index or ``"cuda:i"``) the current GPU."""
    idx = backend.device(device).index if not isinstance(device, int) else device
    if is_available():
        backend.cuda_module().cuda.Device(idx or 0).use()


def _pool():
    return backend.cuda_module().get_default_memory_pool() if is_available() else None


def empty_cache() -> None:
    """Return cached, unused GPU memory to the driver."""
    pool = _pool()
    if pool is not None:
        pool.free_all_blocks()


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by tensors now (0 without a GPU)."""
    pool = _pool()
    return int(pool.used_bytes()) if pool is not None else 0


def memory_reserved(device=None) -> int:
    """Bytes of GPU memory held by the allocator, used or cached (0 without a GPU)."""
    pool = _pool()
    return int(pool.total_bytes()) if pool is not None else 0


_peak = {"allocated": 0}


def max_memory_allocated(device=None) -> int:
    """The largest ``memory_allocated`` seen by calls to it since the last reset."""
    _peak["allocated"] = max(_peak["allocated"], memory_allocated(device))
    return _peak["allocated"]


def reset_peak_memory_stats(device=None) -> None:
    _peak["allocated"] = memory_allocated(device)


def get_device_properties(device=0) -> dict:
    """The GPU's properties as CuPy reports them (name, totalGlobalMem, major, minor, ...)."""
    if not is_available():
        raise RuntimeError(f"cuda.get_device_properties: no usable GPU ({why_unavailable()})")
    idx = backend.device(device).index if not isinstance(device, int) else device
    return backend.cuda_module().cuda.runtime.getDeviceProperties(idx or 0)


def get_device_capability(device=0) -> tuple[int, int]:
    p = get_device_properties(device)
    return int(p["major"]), int(p["minor"])


def is_bf16_supported() -> bool:
    return is_available() and get_device_capability()[0] >= 8


class device:  # noqa: N801 - PyTorch's name
    """``with mg.cuda.device(1): ...``: run the block with GPU 1 current."""

    def __init__(self, device):
        self.dev = backend.device(device if not isinstance(device, int) else f"cuda:{device}")

    def __enter__(self):
        self.scope = backend.device_scope(self.dev)
        self.scope.__enter__()
        return self

    def __exit__(self, *exc):
        return self.scope.__exit__(*exc)


def __getattr__(name: str):
    # torch.cuda.FloatTensor and friends: typed tensors that live on the GPU
    from ..compat.torch_api import CUDA_TYPED

    if name in CUDA_TYPED:
        return CUDA_TYPED[name]
    raise AttributeError(f"module 'manygrad.cuda' has no attribute {name!r}")
