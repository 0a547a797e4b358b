"""``mg.cuda``: GPU availability and synchronisation, as ``torch.cuda``."""

from __future__ import annotations

from .. import _rng_state, backend


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
    """Seed the generators (as ``mg.manual_seed``; PyTorch's returns None here)."""
    backend.manual_seed(_rng_state.check_seed(seed, "cuda.manual_seed"))


def manual_seed_all(seed: int) -> None:
    backend.manual_seed(_rng_state.check_seed(seed, "cuda.manual_seed_all"))


# streams and CUDA graphs (PyTorch's torch.cuda API)
from ..errors import OutOfMemoryError  # noqa: E402
from . import amp, nvtx  # noqa: E402
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
    "OutOfMemoryError", "max_memory_reserved", "reset_max_memory_allocated", "memory_stats",
    "memory_summary", "mem_get_info", "set_per_process_memory_fraction", "get_rng_state",
    "set_rng_state", "get_rng_state_all", "set_rng_state_all", "seed", "seed_all",
    "initial_seed", "init", "is_initialized", "get_arch_list", "can_device_access_peer",
    "ipc_collect", "set_sync_debug_mode", "get_sync_debug_mode", "set_stream",
    "StreamContext", "device_of", "amp", "nvtx",
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


def max_memory_reserved(device=None) -> int:
    """The largest ``memory_reserved`` seen by calls to it since the last reset."""
    _peak["reserved"] = max(_peak.get("reserved", 0), memory_reserved(device))
    return _peak["reserved"]


def reset_max_memory_allocated(device=None) -> None:
    _peak["allocated"] = memory_allocated(device)


def memory_stats(device=None) -> dict:
    """The allocator's counters under PyTorch's key names (bytes; 0 without a GPU)."""
    alloc, res = memory_allocated(device), memory_reserved(device)
    return {
        "allocated_bytes.all.current": alloc,
        "allocated_bytes.all.peak": max_memory_allocated(device),
        "reserved_bytes.all.current": res,
        "reserved_bytes.all.peak": max_memory_reserved(device),
        "inactive_split_bytes.all.current": res - alloc,
    }


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A short table of ``memory_stats`` for printing."""
    rows = [f"{k:<36} {v / 2**20:>12.1f} MiB" for k, v in memory_stats(device).items()]
    return "\n".join(["manygrad CUDA memory (CuPy pool)", *rows])


def mem_get_info(device=None) -> tuple[int, int]:
    """``(free, total)`` bytes of the GPU, as the driver reports them."""
    _need_gpu("mem_get_info")
    free, total = backend.cuda_module().cuda.runtime.memGetInfo()
    return int(free), int(total)


def set_per_process_memory_fraction(fraction: float, device=None) -> None:
    """Cap the memory pool at ``fraction`` of the GPU's memory (0 < fraction <= 1)."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(
            f"set_per_process_memory_fraction: fraction must be in (0, 1], got {fraction}"
        )
    pool = _pool()
    if pool is not None:
        pool.set_limit(fraction=float(fraction))


def _need_gpu(what: str) -> None:
    if not is_available():
        raise RuntimeError(f"cuda.{what}: no usable GPU ({why_unavailable()})")


def _gpu_generator(device, what: str):
    """The generator of GPU ``device`` (an index, ``"cuda:1"``, or a fake GPU, which tests
    name as ``"fakegpu"``/``"fakegpu:1"`` and which needs no real GPU)."""
    d = backend.device(device)
    if d.type == "fakegpu":
        return backend.generator(d)
    _need_gpu(what)
    return backend.generator(backend.device(f"cuda:{d.index or 0}"))


def get_rng_state(device="cuda"):
    """The GPU generator's state as a 1-d uint8 CPU tensor (``set_rng_state`` restores it).

    Example: ``st = mg.cuda.get_rng_state(); ...; mg.cuda.set_rng_state(st)``
    """
    return _rng_state.get(_gpu_generator(device, "get_rng_state"))


def set_rng_state(new_state, device="cuda") -> None:
    """Continue the GPU generator from ``new_state``, what ``get_rng_state`` returned (a
    state dict of an older manygrad is accepted too)."""
    _rng_state.load(_gpu_generator(device, "set_rng_state"), new_state, "cuda.set_rng_state")


def get_rng_state_all() -> list:
    """Every GPU's generator state, in device order."""
    return [get_rng_state(i) for i in range(device_count())]


def set_rng_state_all(new_states) -> None:
    for i, st in enumerate(new_states):
        set_rng_state(st, i)


def seed() -> None:
    """Seed the generators from the operating system's entropy."""
    from ..ops.random import seed as _seed

    _seed()


seed_all = seed


def initial_seed() -> int:
    s = _rng_state.seed_of(_gpu_generator(current_device(), "initial_seed"))
    return 0 if s is None else int(s)


def init() -> None:
    """Initialise the GPU runtime now (it also starts on first use)."""
    _need_gpu("init")
    backend.cuda_module().cuda.runtime.getDeviceCount()


def is_initialized() -> bool:
    return is_available()


def get_arch_list() -> list[str]:
    """The GPU architectures manygrad compiles its kernels for (``sm_80``, ``sm_90``), where
    a GPU is usable; PyTorch's answer on a machine without one is ``[]``."""
    return ["sm_80", "sm_90"] if is_available() else []


def can_device_access_peer(device: int, peer_device: int) -> bool:
    if not is_available():
        return False
    return bool(backend.cuda_module().cuda.runtime.deviceCanAccessPeer(device, peer_device))


def ipc_collect() -> None:
    """Accepted for PyTorch's API: memory shared between processes is freed by CuPy."""


_sync_debug = {"mode": 0}


def set_sync_debug_mode(debug_mode) -> None:
    """Kept for PyTorch's API (0/"default", 1/"warn", 2/"error"); manygrad reports host
    reads inside CUDA graph captures itself."""
    modes = {"default": 0, "warn": 1, "error": 2}
    _sync_debug["mode"] = modes.get(debug_mode, debug_mode)


def get_sync_debug_mode() -> int:
    return _sync_debug["mode"]


def set_stream(stream) -> None:
    """Make ``stream`` the current stream (``torch.cuda.set_stream``)."""
    from .streams import _stack

    st = _stack()
    if st:
        st[-1] = stream
    else:
        st.append(stream)


class StreamContext(stream):
    """``torch.cuda.StreamContext``: the class behind ``with mg.cuda.stream(s):``."""


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


class device_of(device):  # noqa: N801 - PyTorch's name
    """``with mg.cuda.device_of(t):``: run the block with ``t``'s GPU current (no change
    for CPU tensors)."""

    def __init__(self, obj):
        dev = getattr(obj, "device", None)
        self.dev = dev if dev is not None and dev.type == "cuda" else None

    def __enter__(self):
        if self.dev is None:
            return self
        return super().__enter__()

    def __exit__(self, *exc):
        if self.dev is None:
            return False
        return super().__exit__(*exc)


def __getattr__(name: str):
    # torch.cuda.FloatTensor and friends: typed tensors that live on the GPU
    from ..compat.torch_api import CUDA_TYPED

    if name in CUDA_TYPED:
        return CUDA_TYPED[name]
    raise AttributeError(f"module 'manygrad.cuda' has no attribute {name!r}")


def is_tf32_supported() -> bool:
    """True on GPUs with TF32 tensor cores (compute capability 8.0 and later)."""
    return is_bf16_supported()


# torch.cuda.memory, torch.cuda.random, torch.cuda.nccl and the NVML readings
from . import memory, nccl, random  # noqa: E402
from ._nvml import (  # noqa: E402
    clock_rate,
    list_gpu_processes,
    memory_usage,
    power_draw,
    temperature,
    utilization,
)
from .memory import (  # noqa: E402
    get_per_process_memory_fraction,
    max_memory_cached,
    memory_cached,
    memory_snapshot,
    memory_stats_as_nested_dict,
    reset_accumulated_memory_stats,
    reset_max_memory_cached,
)

__all__ += [
    "memory", "nccl", "random", "memory_cached", "max_memory_cached", "reset_max_memory_cached",
    "reset_accumulated_memory_stats", "memory_stats_as_nested_dict", "memory_snapshot",
    "get_per_process_memory_fraction", "is_tf32_supported", "list_gpu_processes",
    "utilization", "temperature", "power_draw", "clock_rate", "memory_usage",
]  # fmt: skip
