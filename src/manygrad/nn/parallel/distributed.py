"""``torch.nn.parallel.distributed``: the module PyTorch defines DDP in, for scripts that
import it from there.

Example:
    >>> from torch.nn.parallel.distributed import DistributedDataParallel
"""

from ...distributed.ddp import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
