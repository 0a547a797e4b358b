"""``mg.distributed``: data-parallel training over MPI (CPU tensors) and NCCL (CUDA tensors).

Start the ranks with ``manygrad launch -n N -- python train.py`` (or ``mpiexec``/``srun``),
then in every rank:

Example:
    >>> import manygrad.distributed as dist
    >>> dist.init_process_group()
    >>> model = mg.nn.parallel.DistributedDataParallel(model)
"""

from .collectives import (
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    reduce_scatter,
    reduce_scatter_tensor,
)
from .mpi_backend import DistributedError, DistributedTimeoutError
from .process_group import (
    ReduceOp,
    destroy_process_group,
    get_backend,
    get_device,
    get_local_rank,
    get_local_world_size,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_main_process,
)

__all__ = [
    "DistributedError",
    "DistributedTimeoutError",
    "ReduceOp",
    "all_gather",
    "all_gather_object",
    "all_gather_into_tensor",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "get_backend",
    "get_device",
    "get_local_rank",
    "get_local_world_size",
    "get_rank",
    "get_world_size",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_main_process",
    "reduce_scatter",
    "reduce_scatter_tensor",
]
