"""``mg.nn.parallel``: data-parallel model wrappers (see ``manygrad.distributed``)."""

from ..distributed.ddp import DistributedDataParallel

DDP = DistributedDataParallel

__all__ = ["DDP", "DistributedDataParallel"]
