"""``mg.distributed.nn`` (``torch.distributed.nn``): collectives that carry gradients.

Example:
    >>> from manygrad.distributed.nn import all_gather
    >>> everyone = mg.cat(all_gather(embeddings))
"""

from . import functional
from .functional import (
    ReduceOp,
    all_gather,
    all_reduce,
    all_to_all,
    all_to_all_single,
    broadcast,
    gather,
    group,
    reduce,
    reduce_scatter,
    scatter,
)

__all__ = [
    "ReduceOp",
    "all_gather",
    "all_reduce",
    "all_to_all",
    "all_to_all_single",
    "broadcast",
    "functional",
    "gather",
    "group",
    "reduce",
    "reduce_scatter",
    "scatter",
]
