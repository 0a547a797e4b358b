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
    "manual_seed_all", "stream", "synchronize", "why_unavailable",
]  # fmt: skip
