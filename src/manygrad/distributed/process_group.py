"""Process groups: start-up over MPI, rank queries, and the groups the collectives run on.

CPU tensors go through mpi4py on their NumPy buffers; CUDA tensors through NCCL (or through
host memory and MPI when NCCL is missing); ``fakegpu`` tensors through a stand-in NCCL
communicator that exercises the same staging code. Every collective first exchanges a
small record of what each rank is calling (collective, shape, dtype, device), so a
mismatch raises on every rank instead of corrupting data or hanging (see ``checks.py``).

``init_process_group`` makes the default group (``dist.group.WORLD``); ``dist.new_group``
makes groups of some of its ranks, each with its own MPI communicators (and its own NCCL
communicator once a CUDA tensor meets it).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from datetime import timedelta

import numpy as np

from .. import backend
from .checks import _check_tensor, _meta, check_same  # noqa: F401 - used by ddp, reducer
from .handles import GroupMember, ProcessGroup
from .mpi_backend import DistributedError, DistributedValueError, HostEngine, MPIComm
from .names import Backend, ReduceOp, default_pg_timeout  # noqa: F401

_START_HINT = (
    "call mg.distributed.init_process_group() first, and start the ranks with "
    "`manygrad launch -n 2 -- python your_script.py` (or mpiexec -n 2 / srun)"
)


class _Group:
    def __init__(self, backend_name: str, mpi: MPIComm, local_rank: int, local_size: int):
        self.backend = backend_name
        self.mpi = mpi
        self.rank, self.size = mpi.rank, mpi.size
        self.ranks = mpi.ranks  # global rank of each group rank
        self.group_rank = {r: i for i, r in enumerate(self.ranks)}
        self.local_rank, self.local_size = local_rank, local_size
        self.seq = 0
        self.monitored = 0  # monitored_barrier calls so far (their message tags)
        self.p2p_sent = 0  # messages sent so far (the tags of their data)
        self.check = os.environ.get("MANYGRAD_DIST_CHECK", "1") != "0"
        self.engines: dict = {}
        self.device = backend.CPU
        self.handle = ProcessGroup(self)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def engine(self, dev: backend.Device):
        """The object that moves arrays of device type ``dev.type``."""
        eng = self.engines.get(dev.type)
        if eng is None:
            from . import nccl_backend  # noqa: PLC0415

            if dev.type == "cpu":
                eng = HostEngine(self.mpi)
            elif dev.type == "cuda" and self.backend != "nccl":
                eng = nccl_backend.HostStagingEngine(HostEngine(self.mpi))
            else:  # NOTE: creating a communicator is collective: every rank gets here together
                eng = nccl_backend.NcclEngine(self.mpi, dev, self.next_seq())
            self.engines[dev.type] = eng
        return eng

    def free(self) -> None:
        for eng in self.engines.values():
            if hasattr(eng, "free"):
                eng.free()
        self.mpi.free()
        self.handle._state = None


_group: _Group | None = None
_subgroups: list[_Group] = []


def _not_initialized(what: str) -> DistributedValueError:
    return DistributedValueError(
        f"{what}: the default process group is not initialised; {_START_HINT}"
    )


def _pg(what: str, group=None) -> _Group:
    """The group to run on: the default one for None or ``group.WORLD``."""
    if _group is None:
        raise _not_initialized(what)
    if group is None:
        return _group
    if isinstance(group, ProcessGroup):
        return group._live()
    if _is_non_member(group):
        raise DistributedValueError(
            f"{what}: this rank is not a member of the group (new_group returned "
            "GroupMember.NON_GROUP_MEMBER here); call it only on the group's ranks"
        )
    raise TypeError(
        f"{what}: group must be a ProcessGroup (from dist.new_group) or None for the default "
        f"group, got {type(group).__name__}"
    )


def _is_non_member(group) -> bool:
    return type(group) is int and group == GroupMember.NON_GROUP_MEMBER


def _member(what: str, group) -> _Group | None:
    """The group to run on, or None (after PyTorch's warning) on a rank outside it."""
    if _is_non_member(group):
        rank = -1 if _group is None else _group.rank
        warnings.warn(
            f"Running {what} on global rank {rank} which does not belong to the given group.",
            stacklevel=3,
        )
        return None
    return _pg(what, group)


# ---------------------------------------------------------------------------- start-up


def _timeout_seconds(timeout) -> float:
    if timeout is None:
        timeout = float(os.environ.get("MANYGRAD_DIST_TIMEOUT", "300"))
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    if timeout <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout}")
    return float(timeout)


def _local_rank(mpi: MPIComm) -> tuple[int, int]:
    node = mpi.world.Split_type(mpi.MPI.COMM_TYPE_SHARED)
    local, local_size = node.Get_rank(), node.Get_size()
    node.Free()
    env = os.environ
    # NOTE: under srun, Slurm's own numbering is authoritative when it agrees with MPI's.
    if env.get("SLURM_LOCALID") and env.get("SLURM_PROCID") == str(mpi.rank):
        local = int(env["SLURM_LOCALID"])
        per_node = env.get("SLURM_NTASKS_PER_NODE", "").split("(")[0].split(",")[0]
        local_size = int(per_node) if per_node.isdigit() else local_size
    return local, local_size


def _install_excepthook(mpi: MPIComm) -> None:
    """An uncaught error on one rank aborts the job instead of leaving the others waiting."""
    previous = sys.excepthook

    def hook(tp, value, tb):
        if _group is None or _group.size == 1:
            return previous(tp, value, tb)
        msg = "".join(traceback.format_exception(tp, value, tb))
        sys.stderr.write(f"[rank {mpi.rank}] uncaught error, aborting all ranks:\n{msg}")
        sys.stderr.flush()
        time.sleep(0.5)  # NOTE: lets the launcher forward the message before it tears down
        mpi.world.Abort(1)

    sys.excepthook = hook


def init_process_group(
    backend: str | None = "auto",
    init_method: str | None = None,
    timeout: timedelta | float | None = None,
    world_size: int = -1,
    rank: int = -1,
    store=None,
    group_name: str = "",
    pg_options=None,
    device_id=None,
    *,
    verbose: bool = False,
) -> None:
    """Join the ranks started by ``mpiexec``/``srun`` into the default process group.

    Args:
        backend: "mpi" or "gloo" (CPU tensors through MPI; CUDA tensors through host memory),
            "nccl" (CUDA tensors through NCCL, CPU tensors through MPI), "cpu:gloo,cuda:nccl"
            (the same as "nccl") or "auto"/None (default: nccl when a GPU is usable, else mpi).
        init_method: accepted for PyTorch compatibility; MPI needs none (so do ``store``,
            ``group_name``, ``pg_options`` and ``device_id``).
        timeout: longest wait of any collective (seconds or timedelta; default 300 or
            MANYGRAD_DIST_TIMEOUT); past it the job is aborted with an error naming the ranks.
        world_size: optional check against the number of MPI ranks.
        rank: optional check against this process's MPI rank.
        verbose: rank 0 prints the preflight result and the all-reduce bandwidth.

    Example:
        >>> mg.distributed.init_process_group()   # under `manygrad launch -n 2 -- ...`
    """
    global _group
    if _group is not None:
        raise DistributedError(
            "init_process_group: the default process group is already initialised; call "
            "destroy_process_group() first to start a new one"
        )
    backend = _backend_name(backend)
    try:
        mpi = MPIComm(_timeout_seconds(timeout))
    except ImportError as e:
        raise DistributedError(
            f"init_process_group: mpi4py is not importable ({e}); install it with an MPI: "
            "pip install 'manygrad[mpi]' (MPICH wheel), or build mpi4py against your cluster's "
            "MPI (see docs/distributed.md)"
        ) from e
    launched = _launcher_size()
    if launched is not None and launched != mpi.size:
        raise DistributedError(
            f"init_process_group: the launcher started {launched} ranks but MPI sees a world "
            f"of {mpi.size}: mpiexec and the MPI library of mpi4py differ ({_mpi_library(mpi)}). "
            "Use the mpiexec of the same MPI (set MANYGRAD_MPIEXEC), see docs/distributed.md"
        )
    if world_size not in (-1, mpi.size) or rank not in (-1, mpi.rank):
        raise DistributedError(
            f"init_process_group: asked for world_size={world_size}, rank={rank} but MPI "
            f"started this process as rank {mpi.rank} of {mpi.size}; start the job with "
            f"mpiexec -n {world_size} (or drop the arguments)"
        )
    if backend == "auto":
        backend = "nccl" if backend_cuda_ready() else "mpi"
    local, local_size = _local_rank(mpi)
    group = _Group(backend, mpi, local, local_size)
    if backend == "nccl":
        group.device = _claim_gpu(local, mpi.rank)
    _group = group
    _install_excepthook(mpi)
    _preflight(group, verbose)


def _backend_name(name) -> str:
    """The backend name ("auto", "mpi", "gloo" or "nccl") for init_process_group's argument."""
    if name is None:
        return "auto"
    if not isinstance(name, str):
        raise TypeError(f"init_process_group: backend must be a string, got {type(name).__name__}")
    low = name.lower()
    if ":" in low:  # PyTorch's per-device form, e.g. "cpu:gloo,cuda:nccl"
        parts = dict(p.split(":", 1) for p in low.replace(" ", "").split(",") if ":" in p)
        low = "nccl" if parts.get("cuda") == "nccl" else parts.get("cpu", "mpi")
    if low not in ("auto", "mpi", "nccl", "gloo"):
        raise ValueError(
            f"init_process_group: unknown backend {name!r}; use 'gloo' or 'mpi' (CPU), 'nccl' "
            "(GPUs) or 'auto'"
        )
    return low


def _launcher_size() -> int | None:
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE"):
        v = os.environ.get(var, "")
        if v.isdigit():
            return int(v)
    return None


def _mpi_library(mpi: MPIComm) -> str:
    try:
        return mpi.MPI.Get_library_version().splitlines()[0].strip()
    except Exception:  # noqa: BLE001
        return "unknown MPI"


def backend_cuda_ready() -> bool:
    """True when a GPU and CuPy's NCCL are usable (what backend="auto" picks nccl for)."""
    if not backend.cuda_available():
        return False
    from .nccl_backend import nccl_available  # noqa: PLC0415

    return nccl_available()


def _claim_gpu(local: int, rank: int) -> backend.Device:
    if os.environ.get("MANYGRAD_DIST_FAKEGPU") == "1":  # tests: the nccl path on fakegpu
        return backend.FAKEGPU
    if not backend.cuda_available():
        raise DistributedError(
            f"init_process_group(backend='nccl'): {backend.cuda_status()[1]}; use backend='mpi' "
            "for CPU training"
        )
    n = backend.cuda_device_count()
    if local >= n:
        raise DistributedError(
            f"rank {rank} has local rank {local} but its node has only {n} GPU(s): start at "
            f"most {n} ranks per node (manygrad launch -n {n}), or train with --device cpu"
        )
    backend.cuda_module().cuda.Device(local).use()
    return backend.Device("cuda", local)


def _preflight(group: _Group, verbose: bool) -> None:
    """Check that every rank can talk: an all-reduce of ones must give the world size."""
    seq = group.next_seq()
    one = np.ones(1, np.int64)
    group.mpi.allreduce(one, "sum", "preflight all_reduce", seq)
    if int(one[0]) != group.size:
        raise DistributedError(
            f"preflight: an all-reduce of ones gave {int(one[0])}, expected {group.size}; the "
            "MPI library of mpi4py and the one of mpiexec probably differ (see docs/distributed.md)"
        )
    if group.backend == "nccl":  # creates the NCCL communicator now, where errors are clear
        xp = backend.xp_of(group.device)
        with backend.device_scope(group.device):
            ones = xp.ones(1, np.float32)
            group.engine(group.device).all_reduce(ones, "sum", "preflight NCCL all_reduce", seq)
            if float(ones[0]) != group.size:
                raise DistributedError(
                    f"preflight: an NCCL all-reduce of ones gave {float(ones[0])}, expected "
                    f"{group.size}; run with NCCL_DEBUG=INFO to see what NCCL chose"
                )
    if verbose:
        buf = np.ones(4 << 20, np.float32)  # 16 MB
        group.mpi.allreduce(buf, "sum", "preflight bandwidth", group.next_seq())
        t0 = time.perf_counter()
        for _ in range(5):
            group.mpi.allreduce(buf, "sum", "preflight bandwidth", group.next_seq())
        dt = (time.perf_counter() - t0) / 5
        busbw = 2 * (group.size - 1) / group.size * buf.nbytes / dt / 1e9
        if group.rank == 0:
            print(
                f"manygrad.distributed: {group.size} rank(s) on backend '{group.backend}' ok; "
                f"host all-reduce 16 MB: {dt * 1e3:.2f} ms, bus bandwidth {busbw:.2f} GB/s",
                flush=True,
            )


def destroy_process_group(group=None) -> None:
    """Free a process group: the default one (and with it every group) when ``group`` is
    None or ``group.WORLD``, else the given group from ``new_group``."""
    global _group
    if _group is None:
        return
    if group is not None and group is not _group.handle:
        if _is_non_member(group):
            return
        g = _pg("destroy_process_group", group)
        g.free()
        _subgroups.remove(g)
        return
    for g in reversed(_subgroups):
        g.free()
    _subgroups.clear()
    _group.free()
    _group = None


def is_initialized() -> bool:
    """True between ``init_process_group`` and ``destroy_process_group``."""
    return _group is not None


def is_available() -> bool:
    """True when mpi4py can be imported (distributed training is possible)."""
    try:
        import mpi4py  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (default: the default group); -1 outside it."""
    if _is_non_member(group):
        return -1
    return _pg("get_rank", group).rank


def get_world_size(group=None) -> int:
    """The number of ranks in ``group`` (default: the default group); -1 outside it."""
    if _is_non_member(group):
        return -1
    return _pg("get_world_size", group).size


def get_local_rank() -> int:
    """This process's rank among the ranks on its node (its GPU index)."""
    return _pg("get_local_rank").local_rank


def get_local_world_size() -> int:
    return _pg("get_local_world_size").local_size


def get_node_local_rank(fallback_rank: int | None = None) -> int:
    """This process's rank on its node: ``LOCAL_RANK`` when set (torchrun), else the
    process group's local rank, else ``fallback_rank``."""
    if os.environ.get("LOCAL_RANK", "").isdigit():
        return int(os.environ["LOCAL_RANK"])
    if _group is not None:
        return _group.local_rank
    if fallback_rank is not None:
        return int(fallback_rank)
    raise RuntimeError(
        "get_node_local_rank: LOCAL_RANK is not set and no process group runs; pass "
        "fallback_rank or call init_process_group() first"
    )


def get_backend(group=None) -> str:
    """The backend of ``group`` (default: the default group): "mpi", "gloo" or "nccl"."""
    if _is_non_member(group):
        raise DistributedValueError("Invalid process group specified: this rank is not in it")
    return Backend(_pg("get_backend", group).backend)


def get_device() -> backend.Device:
    """The device this rank trains on: ``cuda:<local rank>`` with NCCL, else ``cpu``."""
    return _pg("get_device").device


def is_main_process() -> bool:
    """True on rank 0, or when no process group runs: the rank that prints and saves."""
    return _group is None or _group.rank == 0
