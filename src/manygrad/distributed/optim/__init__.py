"""``mg.distributed.optim`` (``torch.distributed.optim``): ``ZeroRedundancyOptimizer``.

Example:
    >>> from manygrad.distributed.optim import ZeroRedundancyOptimizer
    >>> opt = ZeroRedundancyOptimizer(ddp.parameters(), mg.optim.Adam, lr=1e-3)
"""

from .zero_redundancy_optimizer import ZeroRedundancyOptimizer

__all__ = ["ZeroRedundancyOptimizer"]
