"""``ZeroRedundancyOptimizer``: optimizer state sharded across the ranks (ZeRO stage 1,
Rajbhandari et al., 2020, https://arxiv.org/abs/1910.02054).

Each parameter belongs to one rank, chosen as PyTorch chooses (per parameter group, the
largest parameters first, each to the rank with the fewest elements so far), so a state
dict means the same under either. A rank keeps the optimizer state of its own parameters
only and steps only them; then every rank broadcasts its parameters to the others.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from ... import creation
from ...optim.optimizer import Optimizer
from ...tensor import Tensor
from .. import collectives, groups, objects
from .. import process_group as pgm
from ..algorithms.join import Join, Joinable, JoinHook

__all__ = ["ZeroRedundancyOptimizer"]


def _partition(param_groups: list[dict], world_size: int) -> list[list[dict]]:
    """PyTorch's sorted-greedy partition: per rank, its share of each parameter group."""
    per_rank: list[list[dict]] = [[] for _ in range(world_size)]
    sizes = [0] * world_size
    for group in param_groups:
        mine: list[list[Tensor]] = [[] for _ in range(world_size)]
        # NOTE: sorted() is stable: equal sizes keep their order in the group, as PyTorch's
        for p in sorted(group["params"], key=lambda t: t.numel(), reverse=True):
            rank = sizes.index(min(sizes))  # the first of the least loaded ranks
            mine[rank].append(p)
            sizes[rank] += p.numel()
        for rank, params in enumerate(mine):
            share = copy.copy(group)
            share["params"] = params
            per_rank[rank].append(share)
    return per_rank


def _to_cpu(value):
    if isinstance(value, Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


def _sync_param_groups(src: list[dict], dst: list[dict]) -> None:
    """Copy every option but ``params`` from ``src``'s groups to ``dst``'s (lr, betas, ...)."""
    for s, d in zip(src, dst):
        for k, v in s.items():
            if k != "params":
                d[k] = v


class _ZeROJoinHook(JoinHook):
    """A joined rank keeps stepping (its gradients are zeros) so that its broadcasts meet
    those of the ranks that still train."""

    def __init__(self, zero: ZeroRedundancyOptimizer):
        self.zero = zero

    def main_hook(self) -> None:
        self.zero.step()


class ZeroRedundancyOptimizer(Optimizer, Joinable):
    """Wrap an optimizer class so that each rank keeps and steps ~1/world_size of the state.

    Args:
        params: the parameters (or parameter groups) of the whole model, on every rank.
        optimizer_class: the local optimizer, e.g. ``mg.optim.Adam``.
        process_group: the ranks that share the state (default: every rank).
        parameters_as_bucket_view: send each rank's parameters as one flat buffer per
            step instead of one broadcast per parameter (default False).
        overlap_with_ddp: not supported (it needs PyTorch's ddp_zero_hook); must be False.
        **defaults: the local optimizer's options (``lr=...``).

    Example:
        >>> ddp = DDP(model)
        >>> opt = ZeroRedundancyOptimizer(ddp.parameters(), mg.optim.Adam, lr=1e-3)
        >>> ddp(x).sum().backward()
        >>> opt.step()
        >>> opt.consolidate_state_dict(to=0)           # every rank
        >>> if dist.get_rank() == 0:
        ...     mg.save(opt.state_dict(), "opt.pt")
    """

    def __init__(self, params, optimizer_class: type[Optimizer], process_group=None,
                 parameters_as_bucket_view: bool = False, overlap_with_ddp: bool = False,
                 **defaults: Any):  # fmt: skip
        if overlap_with_ddp:
            raise NotImplementedError(
                "ZeroRedundancyOptimizer: overlap_with_ddp=True is not supported by manygrad; "
                "pass overlap_with_ddp=False and call step() after backward()"
            )
        if isinstance(params, Tensor):
            raise TypeError(
                "`params` argument should be an iterable of Tensors, but got a single "
                "Tensor; wrap it in a list: [t]"
            )
        params = list(params)
        if not params:
            raise ValueError("ZeroRedundancyOptimizer got an empty parameter list")
        if all(isinstance(p, dict) for p in params):
            for g in params:
                if "params" not in g:
                    raise ValueError(
                        "Each parameter group passed-in via `params` must have a 'params' key "
                        "mapping to the parameters in the group"
                    )
            self._all_params = [p for g in params for p in g["params"]]
        elif all(isinstance(p, Tensor) for p in params):
            self._all_params = params
        else:
            raise TypeError("`params` argument should be an iterable of Tensors or dicts")
        kinds = {(p.dtype, p.device.type) for p in self._all_params}
        if len(kinds) > 1:
            raise ValueError(
                "ZeroRedundancyOptimizer only supports using the same dense type for all "
                f"parameters but got {sorted(map(str, kinds))}; cast the model to one dtype"
            )
        if isinstance(optimizer_class, type) and issubclass(optimizer_class, type(self)):
            raise ValueError("ZeroRedundancyOptimizer: optimizer_class must be a local optimizer")
        self.initialized = False
        Optimizer.__init__(self, params, defaults)
        Joinable.__init__(self)
        self.process_group = process_group
        self.world_size = pgm.get_world_size(process_group)
        self.rank = pgm.get_rank(process_group)
        self._ranks = groups.get_process_group_ranks(process_group)
        self.global_rank = self._ranks[self.rank]
        self._default_device = self._all_params[0].device
        self._optim_defaults = defaults
        self._optim_constructor = optimizer_class
        self._partition_cache: list[list[dict]] = []
        self._overlap_with_ddp = False
        self.parameters_as_bucket_view = parameters_as_bucket_view
        self.optim = optimizer_class(self._partition_parameters()[self.rank], **defaults)
        _sync_param_groups(self.optim.param_groups, self.param_groups)
        self._all_state_dicts: list[dict] = []
        self.initialized = True

    # ------------------------------------------------------------------ partition
    def _partition_parameters(self) -> list[list[dict]]:
        """Per rank, its share of each parameter group (PyTorch's rule; cached)."""
        if not self._partition_cache:
            self._partition_cache = _partition(self.param_groups, self.world_size)
        return self._partition_cache

    @property
    def _param_to_rank(self) -> dict[Tensor, int]:
        return {p: r for r, gs in enumerate(self._partition_parameters())
                for g in gs for p in g["params"]}  # fmt: skip

    @property
    def _index_to_param(self) -> list[Tensor]:
        return list(itertools.chain.from_iterable(g["params"] for g in self.param_groups))

    @property
    def _param_to_index(self) -> dict[Tensor, int]:
        return {p: i for i, p in enumerate(self._index_to_param)}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group (e.g. layers to fine-tune); every rank must call it.

        Example:
            >>> opt.add_param_group({"params": head.parameters(), "lr": 1e-2})
        """
        super().add_param_group(param_group)
        if not self.initialized:
            return
        # NOTE: the earlier groups keep their owners (the greedy pass sees them first), so
        # the local optimizer only gains this rank's share of the new group
        self._partition_cache = []
        mine = self._partition_parameters()[self.rank]
        if len(mine) == len(self.optim.param_groups) + 1:
            self.optim.add_param_group(mine[-1])

    # ------------------------------------------------------------------ step
    def _sync_params(self) -> None:
        """Every rank broadcasts its (just updated) parameters to the others."""
        g = self.process_group
        for rank, shares in enumerate(self._partition_parameters()):
            params = [p for share in shares for p in share["params"]]
            if not params:
                continue
            src = self._ranks[rank]
            if self.parameters_as_bucket_view:
                flat = _flatten(params)
                collectives.broadcast(flat, src=src, group=g)
                if rank != self.rank:
                    _unflatten(flat, params)
            else:
                for p in params:
                    collectives.broadcast(p.detach(), src=src, group=g)

    def step(self, closure: Callable | None = None, **kwargs):
        """Step this rank's parameters, then exchange the parameters between the ranks.

        Args:
            closure: re-evaluates the model and returns the loss (passed to the local
                optimizer).
        """
        Join.notify_join_context(self)
        _sync_param_groups(self.param_groups, self.optim.param_groups)
        if closure is None:
            loss = self.optim.step(**kwargs)
        else:
            loss = self.optim.step(closure=closure, **kwargs)
        _sync_param_groups(self.optim.param_groups, self.param_groups)
        self._sync_params()
        return loss

    # ------------------------------------------------------------------ state dicts
    def consolidate_state_dict(self, to: int = 0) -> None:
        """Collect every rank's optimizer state on rank ``to`` (of the process group), for
        ``state_dict()`` there; every rank must call it.

        Args:
            to: the rank that receives the states (default 0).
        """
        _sync_param_groups(self.param_groups, self.optim.param_groups)
        local = _to_cpu(self.optim.state_dict())
        out = [None] * self.world_size if self.rank == to else None
        objects.gather_object(local, out, dst=self._ranks[to], group=self.process_group)
        self._all_state_dicts = out if self.rank == to else []

    def state_dict(self) -> dict[str, Any]:
        """The whole optimizer's state (PyTorch's layout, indices over all parameters), as
        last consolidated onto this rank by ``consolidate_state_dict``."""
        if not self._all_state_dicts:
            raise RuntimeError(
                "Optimizer state has not been consolidated on this rank. Please call "
                f"`consolidate_state_dict(to={self.rank})` on all ranks beforehand if you "
                "meant to save the global state."
            )
        out = Optimizer.state_dict(self)
        index = self._param_to_index
        for local, shares in zip(self._all_state_dicts, self._partition_parameters()):
            for lg, share in zip(local["param_groups"], shares):
                for i, p in zip(lg["params"], share["params"]):
                    if i in local["state"]:
                        out["state"][index[p]] = local["state"][i]
        out["state"] = dict(sorted(out["state"].items()))
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state dict of ``state_dict()`` (or of a plain optimizer over the same
        parameters); each rank keeps the state of its own parameters."""
        owner, params = self._param_to_rank, self._index_to_param
        mine = {}
        for i, v in state_dict["state"].items():
            if owner[params[int(i)]] == self.rank:
                mine[i] = v
        Optimizer.load_state_dict(self, {**state_dict, "state": mine})
        for p, st in self.state.items():
            self.optim.state[p] = st
        self.state.clear()
        self._partition_cache = []
        shares = self._partition_parameters()[self.rank]
        for local_group, share in zip(self.optim.param_groups, shares):
            local_group["params"] = share["params"]
        _sync_param_groups(self.param_groups, self.optim.param_groups)

    # ------------------------------------------------------------------ Join
    def join_hook(self, **_kwargs) -> JoinHook:
        """The hook that lets a rank out of data keep up with the others' steps."""
        return _ZeROJoinHook(self)

    @property
    def join_device(self):
        return self._default_device

    @property
    def join_process_group(self):
        return self.process_group


def _flatten(params: list[Tensor]) -> Tensor:
    first = params[0]
    flat = creation.empty(sum(p.numel() for p in params), dtype=first.dtype, device=first.device)
    start = 0
    for p in params:
        n = p.numel()
        flat[start : start + n].copy_(p.detach().reshape(-1))
        start += n
    return flat


def _unflatten(flat: Tensor, params: list[Tensor]) -> None:
    start = 0
    for p in params:
        n = p.numel()
        p.detach().copy_(flat[start : start + n].reshape(p.shape))
        start += n
