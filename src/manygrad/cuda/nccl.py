"""``torch.cuda.nccl``: whether NCCL can serve a set of tensors, and its version, as
manygrad's NCCL backend finds it (CuPy's NCCL bindings). Collectives go through
``mg.distributed``.

Example:
    >>> mg.cuda.nccl.is_available([t0, t1])  # True for contiguous tensors, one per GPU
"""

from __future__ import annotations

import warnings


def _module():
    from ..distributed.nccl_backend import nccl_module

    return nccl_module()


def is_available(tensors) -> bool:
    """True when NCCL is usable and ``tensors`` are dense, contiguous CUDA tensors on
    distinct GPUs (PyTorch's condition); warns when NCCL itself is missing."""
    try:
        _module()
    except Exception as e:  # noqa: BLE001 - no GPU, no CuPy, or no NCCL
        warnings.warn(f"NCCL is not available: {e}", stacklevel=2)
        return False
    seen = set()
    for t in tensors:
        dev = t.device
        if t.is_sparse or not t.is_contiguous() or dev.type != "cuda" or dev.index in seen:
            return False
        seen.add(dev.index)
    return True


def version() -> tuple[int, int, int]:
    """NCCL's version as ``(major, minor, patch)``.

    Raises:
        RuntimeError: NCCL is not available (the message says how to install it).
    """
    try:
        v = int(_module().get_version())
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(f"cuda.nccl.version: {e}") from None
    # NOTE: NCCL encodes 2.9 and later as major * 10000 + minor * 100 + patch, older
    # releases as major * 1000 + minor * 100 + patch
    if v >= 20900:
        return v // 10000, v % 10000 // 100, v % 100
    return v // 1000, v % 1000 // 100, v % 100


__all__ = ["is_available", "version"]
