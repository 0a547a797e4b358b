"""PyTorch's names around the process group: ``ReduceOp``, ``Backend``, the availability
checks and the default timeout."""

from __future__ import annotations

import enum
import os
from datetime import timedelta

# NOTE: manygrad's own default (MANYGRAD_DIST_TIMEOUT overrides it when no timeout is given);
# PyTorch's is 30 minutes.
default_pg_timeout = timedelta(seconds=300)


class ReduceOp(enum.Enum):
    """How ``all_reduce``, ``reduce`` and ``reduce_scatter`` combine values across ranks."""

    SUM = "sum"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    AVG = "avg"


class Backend(str):
    """Names of the communication backends, as lower-case strings (``Backend.NCCL == "nccl"``).

    ``Backend(name)`` returns ``name`` in lower case. manygrad runs ``"mpi"`` and ``"gloo"``
    (the same MPI transport: CPU tensors through MPI, CUDA tensors through host memory) and
    ``"nccl"`` (CUDA tensors through NCCL, CPU tensors through MPI).

    Example:
        >>> dist.Backend("GLOO") == dist.Backend.GLOO == "gloo"
        True
    """

    UNDEFINED = "undefined"
    GLOO = "gloo"
    NCCL = "nccl"
    UCC = "ucc"
    MPI = "mpi"
    XCCL = "xccl"
    backend_list = [UNDEFINED, GLOO, NCCL, XCCL, UCC, MPI]
    default_device_backend_map = {"cpu": GLOO, "cuda": NCCL}

    def __new__(cls, name: str):
        if not isinstance(name, str):
            raise ValueError(
                f"Backend: expected a backend name string such as 'gloo' or 'nccl', got "
                f"{type(name).__name__}"
            )
        return name.lower()


def is_mpi_available() -> bool:
    """True when mpi4py can be imported: every backend of manygrad runs over MPI."""
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def is_gloo_available() -> bool:
    """True when ``init_process_group(backend="gloo")`` can work: manygrad serves "gloo"
    with its MPI transport, so this is ``is_mpi_available()``."""
    return is_mpi_available()


def is_nccl_available() -> bool:
    """True when a GPU and CuPy's NCCL are usable (never raises on a machine without GPU)."""
    from .nccl_backend import nccl_available  # noqa: PLC0415

    return is_mpi_available() and nccl_available()


def is_ucc_available() -> bool:
    return False


def is_xccl_available() -> bool:
    return False


def is_backend_available(backend: str) -> bool:
    """Whether ``backend`` ("gloo", "mpi", "nccl", or "cpu:gloo,cuda:nccl") can be used."""
    names = [part.rsplit(":", 1)[-1] for part in str(backend).lower().split(",")]
    checks = {"gloo": is_gloo_available, "mpi": is_mpi_available, "nccl": is_nccl_available}
    return all(n in checks and checks[n]() for n in names)


def is_torchelastic_launched() -> bool:
    """True when ``torchrun`` (torch.distributed.elastic) started this process
    (``TORCHELASTIC_RUN_ID`` is set)."""
    return os.getenv("TORCHELASTIC_RUN_ID") is not None


def get_default_backend_for_device(device) -> str:
    """The backend PyTorch picks for a device type: "gloo" for cpu, "nccl" for cuda."""
    kind = str(getattr(device, "type", device)).split(":")[0]
    if kind not in Backend.default_device_backend_map:
        raise ValueError(
            f"get_default_backend_for_device: no default backend for device {device!r}; "
            "use 'cpu' or 'cuda'"
        )
    return Backend.default_device_backend_map[kind]
