"""The handles users hold: ``ProcessGroup``, ``dist.group.WORLD``, ``GroupMember``."""

from __future__ import annotations

from .mpi_backend import DistributedValueError


class ProcessGroup:
    """A set of ranks that run collectives together: ``dist.group.WORLD`` (every rank, made
    by ``init_process_group``) or a group from ``dist.new_group(ranks)``. Pass it as the
    ``group=`` argument of any collective.

    Example:
        >>> g = dist.new_group([0, 1])
        >>> g.rank(), g.size()
        (0, 2)
    """

    def __init__(self, state):
        self._state = state

    def _live(self):
        if self._state is None:
            raise DistributedValueError(
                "this process group was destroyed (destroy_process_group); make a new one with "
                "dist.new_group(ranks)"
            )
        return self._state

    def rank(self) -> int:
        """This process's rank within the group."""
        return self._live().rank

    def size(self) -> int:
        """The number of ranks in the group."""
        return self._live().size

    def name(self) -> str:
        """The group's backend name ("mpi", "gloo" or "nccl"), as PyTorch's ``name()``."""
        return self._live().backend

    @property
    def group_name(self) -> str:
        return "ranks " + ",".join(map(str, self._live().ranks))

    def __repr__(self) -> str:
        if self._state is None:
            return "ProcessGroup(destroyed)"
        return f"ProcessGroup(ranks={self._state.ranks}, backend={self._state.backend!r})"


class _WorldMeta(type):
    """Gives ``group`` and ``GroupMember`` their class attribute ``WORLD``."""

    @property
    def WORLD(cls) -> ProcessGroup | None:  # noqa: N802 - PyTorch's name
        from .process_group import _group  # noqa: PLC0415 - that module imports this one

        return None if _group is None else _group.handle


class group(metaclass=_WorldMeta):  # noqa: N801 - PyTorch's name
    """``dist.group.WORLD``: the default process group (None before ``init_process_group``)."""


class GroupMember(metaclass=_WorldMeta):
    """``GroupMember.WORLD`` (the default group) and ``GroupMember.NON_GROUP_MEMBER``, what
    ``new_group`` returns on the ranks it leaves out."""

    NON_GROUP_MEMBER = -100
