"""``mg.distributed``: data-parallel training over MPI (CPU tensors) and NCCL (CUDA tensors).

Start the ranks with ``manygrad launch -n N -- python train.py`` (or ``mpiexec``/``srun``),
then in every rank:

Example:
    >>> import manygrad.distributed as dist
    >>> dist.init_process_group()
    >>> model = mg.nn.parallel.DistributedDataParallel(model)
"""

from .alltoall import all_to_all, all_to_all_single
from .collectives import (
    all_gather,
    all_gather_into_tensor,
    all_reduce,
    barrier,
    broadcast,
    gather,
    reduce,
    reduce_scatter,
    reduce_scatter_tensor,
    scatter,
)
from .device_mesh import DeviceMesh, init_device_mesh
from .grad_bucket import GradBucket
from .groups import (
    get_global_rank,
    get_group_rank,
    get_pg_count,
    get_process_group_ranks,
    new_group,
    new_subgroups,
    new_subgroups_by_enumeration,
)
from .handles import GroupMember, ProcessGroup, group
from .mpi_backend import (
    DistBackendError,
    DistError,
    DistNetworkError,
    DistributedError,
    DistributedTimeoutError,
    DistStoreError,
)
from .names import (
    Backend,
    ReduceOp,
    default_pg_timeout,
    get_default_backend_for_device,
    is_backend_available,
    is_gloo_available,
    is_mpi_available,
    is_nccl_available,
    is_torchelastic_launched,
    is_ucc_available,
    is_xccl_available,
)
from .objects import (
    all_gather_object,
    broadcast_object_list,
    gather_object,
    recv_object_list,
    scatter_object_list,
    send_object_list,
)
from .p2p import P2POp, batch_isend_irecv, irecv, isend, monitored_barrier, recv, send
from .process_group import (
    destroy_process_group,
    get_backend,
    get_device,
    get_local_rank,
    get_local_world_size,
    get_node_local_rank,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_main_process,
)
from .work import Future, Work

__all__ = [
    "Backend",
    "DeviceMesh",
    "DistBackendError",
    "DistError",
    "DistNetworkError",
    "DistStoreError",
    "DistributedError",
    "DistributedTimeoutError",
    "Future",
    "GradBucket",
    "GroupMember",
    "P2POp",
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "all_reduce",
    "all_to_all",
    "all_to_all_single",
    "barrier",
    "batch_isend_irecv",
    "broadcast",
    "broadcast_object_list",
    "default_pg_timeout",
    "destroy_process_group",
    "gather",
    "gather_object",
    "get_backend",
    "get_default_backend_for_device",
    "get_device",
    "get_global_rank",
    "get_group_rank",
    "get_local_rank",
    "get_local_world_size",
    "get_node_local_rank",
    "get_pg_count",
    "get_process_group_ranks",
    "get_rank",
    "get_world_size",
    "group",
    "init_device_mesh",
    "init_process_group",
    "irecv",
    "is_available",
    "is_backend_available",
    "is_gloo_available",
    "is_initialized",
    "is_main_process",
    "is_mpi_available",
    "is_nccl_available",
    "is_torchelastic_launched",
    "is_ucc_available",
    "is_xccl_available",
    "isend",
    "monitored_barrier",
    "new_group",
    "new_subgroups",
    "new_subgroups_by_enumeration",
    "recv",
    "recv_object_list",
    "reduce",
    "reduce_scatter",
    "reduce_scatter_tensor",
    "scatter",
    "scatter_object_list",
    "send",
    "send_object_list",
]
