"""``join()`` of ``DistributedDataParallel``: uneven inputs across ranks (PyTorch's ``Join``).

While some ranks still train, a rank that ran out of inputs runs ``_DDPJoinHook.main_hook``
once per iteration of theirs: the same collectives their forward and backward issue (the
buffer broadcast from the highest training rank, one all-reduce saying whether backward
synchronises, then the reducer's ``shadow``: the bucket all-reduces with zeros). At the end,
every rank takes the parameters (and buffers) of the highest rank that joined last.
"""

from __future__ import annotations

from .. import creation
from .. import dtypes as D
from . import collectives
from .algorithms.join import Join, Joinable, JoinHook
from .mpi_backend import DistributedError
from .names import ReduceOp


class _DDPJoinHook(JoinHook):
    """What a joined rank runs for DDP: the buffer broadcast and the gradient all-reduces
    of each iteration the others still train; at the end, every rank takes the model of
    the last rank to join."""

    def __init__(self, ddp, divide_by_initial_world_size: bool):
        if not isinstance(ddp, DDPJoin):
            raise TypeError(f"DDP join hook: expected a DistributedDataParallel, got {type(ddp)}")
        self.ddp = ddp
        ddp.__dict__["_divide_by_initial_world_size"] = divide_by_initial_world_size

    def main_hook(self) -> None:
        ddp = self.ddp
        if ddp._will_sync_buffers():
            ddp._broadcast(ddp._buffers_list(), ddp._find_common_rank(ddp._group.rank, False))
        sync = ddp._check_global_requires_backward_grad_sync(is_joined_rank=True)
        ddp.require_forward_param_sync = sync
        if sync:
            ddp._reducer.shadow()

    def post_hook(self, is_last_joiner: bool) -> None:
        self.ddp._sync_final_model(is_last_joiner)


class DDPJoin(Joinable):
    """The ``Joinable`` side of ``DistributedDataParallel``."""

    def __init__(self) -> None:
        super().__init__()

    def join(self, divide_by_initial_world_size: bool = True, enable: bool = True,
             throw_on_early_termination: bool = False) -> Join:  # fmt: skip
        """Context manager for ranks with different numbers of inputs (PyTorch's ``Join``).

        A rank that runs out of inputs waits at the end of the block and takes part in the
        others' collectives with zero gradients until every rank is done; then all ranks
        take the model of the last rank to finish.

        Args:
            divide_by_initial_world_size: divide gradients by the group size (True) or by
                the number of ranks still training (False).
            enable: False makes it a no-op (inputs known to be even).
            throw_on_early_termination: raise ``RuntimeError`` on every rank once one rank
                runs out of inputs.

        Example:
            >>> with model.join():
            ...     for x in loader:                 # a different length on each rank
            ...         model(x).sum().backward(); opt.step()
        """
        return Join([self], enable, throw_on_early_termination,
                    divide_by_initial_world_size=divide_by_initial_world_size)  # fmt: skip

    def join_hook(self, **kwargs) -> JoinHook:
        """The ``JoinHook`` of this model (``divide_by_initial_world_size``, default True)."""
        return _DDPJoinHook(self, kwargs.get("divide_by_initial_world_size", True))

    @property
    def join_device(self):
        return self.device

    @property
    def join_process_group(self):
        return self.process_group

    def _check_global_requires_backward_grad_sync(self, is_joined_rank: bool,
                                                  sync: bool = False) -> bool:  # fmt: skip
        """One all-reduce telling joined ranks whether this iteration's backward syncs."""
        flag = creation.ones(1, device=self.device) if sync and not is_joined_rank else \
            creation.zeros(1, device=self.device)  # fmt: skip
        collectives.all_reduce(flag, group=self.process_group)
        return bool(flag.item() != 0) if is_joined_rank else sync

    def _find_common_rank(self, rank: int, candidate: bool) -> int:
        """The highest group rank among the candidates (an all-reduce of the maximum)."""
        t = creation.tensor([rank if candidate else -1], dtype=D.int64, device=self.device)
        collectives.all_reduce(t, op=ReduceOp.MAX, group=self.process_group)
        common = int(t.item())
        if common < 0:
            raise DistributedError("DistributedDataParallel join: no rank qualified to lead")
        return common

    def _sync_final_model(self, is_last_joiner: bool) -> None:
        src = self._find_common_rank(self._group.rank, is_last_joiner)
        tensors = list(self.module.parameters())
        if self.forward_sync_buffers:
            tensors += self._buffers_list()
        if self._group.size > 1:
            self._broadcast(tensors, src)
