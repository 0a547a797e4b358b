"""``mg.nn.parallel``: data-parallel model wrappers (see ``manygrad.distributed``) and
PyTorch's functional single-process data parallelism: ``replicate``, ``scatter``,
``parallel_apply``, ``gather`` and ``data_parallel``.

Example:
    >>> y = mg.nn.parallel.data_parallel(model, x)  # x's batch split over the GPUs
"""

from ...distributed.ddp import DistributedDataParallel
from ..syncbn import DataParallel
from .data_parallel import data_parallel
from .parallel_apply import parallel_apply
from .replicate import replicate
from .scatter_gather import gather, scatter

DDP = DistributedDataParallel

__all__ = [
    "DDP",
    "DataParallel",
    "DistributedDataParallel",
    "data_parallel",
    "gather",
    "parallel_apply",
    "replicate",
    "scatter",
]
