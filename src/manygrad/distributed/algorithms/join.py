"""``Join``: training on uneven inputs (PyTorch's ``torch.distributed.algorithms.join``).

A rank that runs out of data leaves the training loop and enters ``Join.__exit__``. While
other ranks still train, it repeatedly runs each joinable's ``main_hook``, which issues
the collectives the training ranks issue in one iteration (DDP: the buffer broadcast and
one all-reduce per gradient bucket, with zeros), so nobody waits for a rank that is gone.
Every iteration starts with one all-reduce that counts the ranks still training: a
training rank adds 1 (``notify_join_context``, called by the joinable at the start of its
iteration), a joined rank 0. When the count reaches 0, every rank runs ``post_hook``
(DDP: all ranks take the model of the last rank to join).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

from ... import creation
from .. import collectives, process_group

__all__ = ["Join", "JoinHook", "Joinable"]


class JoinHook:
    """What a joined rank does for one joinable: ``main_hook()`` while some rank still
    trains (shadow one iteration's collectives), ``post_hook(is_last_joiner)`` once all
    ranks have joined."""

    def main_hook(self) -> None:
        """Issue the collectives of one training iteration of the non-joined ranks."""

    def post_hook(self, is_last_joiner: bool) -> None:
        """Run once every rank has joined; ``is_last_joiner`` is True on the ranks that
        joined last."""


class _JoinConfig(NamedTuple):
    enable: bool
    throw_on_early_termination: bool
    is_first_joinable: bool

    @staticmethod
    def construct_disabled_join_config() -> _JoinConfig:
        return _JoinConfig(enable=False, throw_on_early_termination=False, is_first_joinable=False)


class Joinable(ABC):
    """A class whose instances can take part in ``Join``: it gives a ``join_hook``, the
    device and process group of the join's own collectives, and calls
    ``Join.notify_join_context(self)`` at the start of each iteration."""

    @abstractmethod
    def __init__(self) -> None:
        super().__init__()
        self._join_config = _JoinConfig.construct_disabled_join_config()

    @abstractmethod
    def join_hook(self, **kwargs) -> JoinHook:
        """The ``JoinHook`` of this object (``kwargs``: those given to ``Join``)."""

    @property
    @abstractmethod
    def join_device(self):
        """The device of the join's collectives."""

    @property
    @abstractmethod
    def join_process_group(self) -> Any:
        """The process group of the join's collectives."""


class Join:
    """Context manager around a training loop whose ranks have different numbers of inputs.

    Args:
        joinables: the objects taking part (e.g. ``[ddp_model]``); their hooks run in order.
        enable: False turns the manager off (for inputs known to be even; default True).
        throw_on_early_termination: raise ``RuntimeError`` on every rank as soon as one rank
            runs out of inputs, instead of shadowing its collectives (default False).
        kwargs: passed to every joinable's ``join_hook`` (DDP:
            ``divide_by_initial_world_size``).

    Example:
        >>> with Join([model]):
        ...     for x in my_inputs:            # a different count on each rank
        ...         model(x).sum().backward()
    """

    def __init__(self, joinables: list, enable: bool = True,
                 throw_on_early_termination: bool = False, **kwargs):  # fmt: skip
        if len(joinables) == 0:
            raise ValueError("The join context manager requires at least one joinable")
        for j in joinables:
            if not isinstance(j, Joinable):
                raise TypeError(
                    f"Join: {type(j).__name__} is not a Joinable (e.g. DistributedDataParallel)"
                )
        self._joinables = list(joinables)
        self._join_hooks = [j.join_hook(**kwargs) for j in self._joinables]
        self._enable = enable
        self._throw_on_early_termination = throw_on_early_termination
        for i, j in enumerate(self._joinables):
            j._join_config = _JoinConfig(enable, throw_on_early_termination, i == 0)
        groups = {id(j.join_process_group) for j in self._joinables}
        if len(groups) > 1:
            raise ValueError("Using join context manager with multiple process groups")
        self._process_group = self._joinables[0].join_process_group
        self._device = self._joinables[0].join_device
        self._rank = process_group.get_rank(self._process_group)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> None:
        """Shadow the other ranks' iterations until every rank has joined, then run the
        post-hooks (an exception raised inside the block goes on at once)."""
        try:
            if not self._enable or kind is not None:
                return
            is_last_joiner, rounds, warned = True, 0, False
            while self._count_nonjoined() > 0:
                if self._throw_on_early_termination:
                    self._notify_procs_to_terminate()
                for hook in self._join_hooks:
                    hook.main_hook()
                is_last_joiner = False
                rounds += 1
                if rounds > 1000 and not warned:
                    warned = True
                    warnings.warn(
                        f"Detected uneven input skew of greater than 1000. This means that "
                        f"rank {self._rank} has at least 1000 fewer inputs than other "
                        "currently-active ranks. This level of skew could lead to performance "
                        "degradation during training.",
                        stacklevel=2,
                    )
            for hook in self._join_hooks:
                hook.post_hook(is_last_joiner)
        finally:
            for j in self._joinables:
                j._join_config = _JoinConfig.construct_disabled_join_config()

    def _count_nonjoined(self) -> int:
        """The number of ranks still training (this rank counts 0)."""
        n = creation.zeros(1, device=self._device)
        collectives.all_reduce(n, group=self._process_group)
        return int(n.item())

    def _notify_procs_to_terminate(self) -> None:
        ones = creation.ones(1, device=self._device)
        collectives.all_reduce(ones, group=self._process_group)
        raise RuntimeError(f"Rank {self._rank} exhausted all inputs.")

    @staticmethod
    def notify_join_context(joinable: Joinable):
        """Tell the join context that this rank has not joined (call at the start of each
        iteration, before the iteration's collectives).

        Returns:
            For the first joinable of an enabled ``Join``, the ``Work`` of the all-reduce
            that counts the ranks still training (its tensor holds the count once it is
            waited for); otherwise None. With ``throw_on_early_termination``, raises
            ``RuntimeError`` once some rank has run out of inputs.
        """
        if not hasattr(joinable, "_join_config"):
            raise AssertionError(
                f"Check that the {type(joinable)} constructor calls the ``Joinable`` constructor"
            )
        config = joinable._join_config
        if not config.is_first_joinable or not config.enable:
            return None
        device, group = joinable.join_device, joinable.join_process_group
        ones = creation.ones(1, device=device)
        work = collectives.all_reduce(ones, group=group, async_op=True)
        if config.throw_on_early_termination:
            zeros = creation.zeros(1, device=device)
            collectives.all_reduce(zeros, group=group)
            if zeros.item():
                raise RuntimeError(
                    "Detected at least one rank that exhausted inputs. Throwing across all ranks."
                )
        return work
