"""Data parallelism for the trainer: each rank trains on its slice of every global batch.

``--batch-size`` stays the *global* batch: with N ranks, rank r takes its contiguous slice of
each batch of the shared, seeded epoch order, and its loss is weighted by
``n_r * N / n_batch`` so that DistributedDataParallel's average of the ranks' gradients is
the gradient of the whole batch's mean loss. Training on N ranks therefore makes the same
steps as one process with the same settings (to rounding), and a run can be resumed with a
different number of ranks.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor

RANK_SEED_STRIDE = 1_000_003  # rank r's random stream (dropout) starts at seed + r * this


def active_group() -> bool:
    """True when a process group of more than one rank is initialised."""
    from .. import distributed as dist

    return dist.is_initialized() and dist.get_world_size() > 1


def slice_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """``[lo, hi)`` of rank ``rank``'s part of a batch of ``n`` samples (sizes differ by 1 at
    most; the first ``n % world`` ranks take one more).

    Example:
        >>> slice_bounds(10, 1, 4)
        (3, 6)
    """
    q, r = divmod(n, world)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (rank < r)


class Shard:
    """This rank's place in the process group, and the collectives the trainer needs."""

    def __init__(self):
        from .. import distributed as dist

        self.dist = dist
        self.rank, self.world = dist.get_rank(), dist.get_world_size()

    def wrap(self, model):
        """``model`` inside DistributedDataParallel (broadcasts rank 0's weights)."""
        from ..nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)

    def bounds(self, n: int) -> tuple[int, int]:
        """This rank's ``[lo, hi)`` in a global batch of ``n`` samples."""
        return slice_bounds(n, self.rank, self.world)

    def take(self, idx, n: int):
        """This rank's part of the batch index array ``idx`` (of ``n`` samples).

        A rank left without samples (a last batch smaller than the world) gets the batch's
        first sample to run with a loss weight of 0, so that every rank joins the gradient
        all-reduce.
        """
        lo, hi = self.bounds(n)
        return idx[lo:hi] if hi > lo else idx[:1]

    def weight(self, n: int) -> float:
        """Loss weight of this rank for a global batch of ``n`` samples (1.0 when even)."""
        lo, hi = self.bounds(n)
        return (hi - lo) * self.world / n

    def eval_order(self, n: int) -> np.ndarray:
        """This rank's contiguous share of ``range(n)`` for evaluation."""
        lo, hi = self.bounds(n)
        return np.arange(lo, hi)

    def sum(self, arr, device):
        """All-reduce (sum) a device array across ranks; returns the summed array."""
        t = Tensor._wrap(arr, device)
        self.dist.all_reduce(t)
        return t._data

    def sum_tensors(self, tensors: list, device) -> list:
        """Device scalars (or None: nothing on this rank) summed over the ranks, in float64."""
        xp = backend.xp_of(device)
        vals = [t._data.astype(xp.float64) if t is not None else xp.zeros((), xp.float64)
                for t in tensors]  # fmt: skip
        total = self.sum(xp.stack(vals), device)
        return [Tensor._wrap(total[i], device) for i in range(len(tensors))]

    def sum_logged(self, pending: list, stop: bool, device) -> tuple[np.ndarray, float, bool]:
        """One all-reduce of what the trainer logs: per-step loss sums, correct predictions
        and the stop request. ``pending`` holds ``(loss, correct or None, n_rank, n_batch)``;
        returns (global loss sum per step, global correct count, stop on any rank)."""
        xp = backend.xp_of(device)
        f8 = xp.float64
        vals = [p[0]._data.astype(f8) * p[2] for p in pending]
        counted = pending[0][1] is not None
        if counted:
            vals.append(xp.stack([p[1]._data.astype(f8) for p in pending]).sum())
        vals.append(backend.to_device(np.asarray(float(stop)), device))
        total = backend.to_numpy(self.sum(xp.stack(vals), device))
        k = len(pending)
        return total[:k], float(total[k]) if counted else 0.0, bool(total[-1] > 0)

    def gather(self, obj) -> list:
        """``obj`` from every rank, in rank order (pickled; small objects only)."""
        out: list = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        self.dist.barrier()
