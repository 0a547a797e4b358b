"""``mg.nn.parallel``: data-parallel model wrappers (see ``manygrad.distributed``)."""

from ..distributed.ddp import DistributedDataParallel
from .syncbn import DataParallel

DDP = DistributedDataParallel

__all__ = ["DDP", "DataParallel", "DistributedDataParallel"]
