"""``torch.distributed.algorithms``: ``Join`` for uneven inputs across ranks, and
DistributedDataParallel's communication hooks (``ddp_comm_hooks``)."""

from .join import Join, Joinable, JoinHook

__all__ = ["Join", "JoinHook", "Joinable"]
