"""Launching kernel sources on a GPU through CuPy's ``RawModule`` (compiled once, cached).

UNVERIFIED: this module has never run on a GPU. Nothing calls it unless a fast path is
switched on (see ``fastpath.py``); the kernels' NumPy twins are the reference everywhere.
CuPy is reached through ``backend.cuda_module()`` (only backend.py imports it).
"""

from __future__ import annotations

from .. import backend
from ..errors import DeviceError
from ._common import check_args, storage
from .registry import Kernel

THREADS = 256  # elementwise block size
ROW_THREADS = 256  # threads per row for row kernels (a multiple of 32)
_MODULES: dict = {}  # (kernel name, device id) -> cupy.RawModule


class UnsupportedCallError(Exception):
    """A fast path cannot serve this call (the reason is the message); fall back."""


def require_contiguous(kernel: str, **arrays) -> None:
    """The launch needs C-contiguous CuPy arrays on one GPU: check, with clear errors."""
    dev = check_args(kernel, contiguous=True, **arrays)
    if dev is not None and dev.type != "cuda":
        raise UnsupportedCallError(f"{dev} runs no CUDA kernels (only cuda devices do)")


def module(kernel: Kernel):
    """The compiled ``RawModule`` of ``kernel`` on the current GPU (compiled on first use)."""
    cp = backend.cuda_module()
    if cp is None:
        raise DeviceError(f"kernel {kernel.name}: CuPy is not installed, so no GPU launch")
    key = (kernel.name, cp.cuda.runtime.getDevice())
    mod = _MODULES.get(key)
    if mod is None:
        mod = cp.RawModule(
            code=kernel.full_source(),
            options=("--std=c++17",),
            name_expressions=list(kernel.entries),
        )
        _MODULES[key] = mod
    return mod


def function(kernel: Kernel, template: str, dtype):
    """The ``__global__`` function ``template<storage of dtype>`` of ``kernel``."""
    name = f"{template}<{storage(dtype)}>"
    if name not in kernel.entries:
        raise UnsupportedCallError(f"{kernel.name} has no instantiation {name}")
    return module(kernel).get_function(name)


def _arg(a):
    """Kernel argument: arrays as themselves, None as a null pointer, ``Long`` as long long,
    other ints as int, floats as float."""
    cp = backend.cuda_module()
    if a is None:
        return cp.uint64(0)
    if isinstance(a, bool):
        return cp.int32(int(a))
    if isinstance(a, Long):
        return cp.int64(int(a))
    if isinstance(a, int):
        return cp.int32(a)
    if isinstance(a, float):
        return cp.float32(a)
    return a


class Long(int):
    """An int passed as ``long long`` (element counts, offsets); plain ints pass as ``int``."""


def elementwise(kernel: Kernel, template: str, dtype, n: int, args) -> None:
    """Launch a grid-stride elementwise kernel over ``n`` elements."""
    blocks = max(1, min((n + THREADS - 1) // THREADS, 65535))
    function(kernel, template, dtype)((blocks,), (THREADS,), tuple(_arg(a) for a in args))


def rows(
    kernel: Kernel,
    template: str,
    dtype,
    nrows: int,
    args,
    shared_bytes: int = 0,
    max_blocks: int = 1 << 20,
) -> None:
    """Launch a row kernel: blocks of ``ROW_THREADS`` threads striding over the rows."""
    fn = function(kernel, template, dtype)
    blocks = max(1, min(nrows, max_blocks))
    fn((blocks,), (ROW_THREADS,), tuple(_arg(a) for a in args), shared_mem=shared_bytes)
