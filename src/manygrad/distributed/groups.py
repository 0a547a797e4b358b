"""``new_group`` and the rank translations between a group and the default group.

Every rank of the default group calls ``new_group`` with the same ``ranks`` (PyTorch's
rule); the members get a ``ProcessGroup`` with its own MPI communicators, the other ranks
``GroupMember.NON_GROUP_MEMBER``, on which every collective warns and does nothing.
"""

from __future__ import annotations

import zlib

import numpy as np

from . import process_group as pg
from .checks import _meta, check_same
from .handles import GroupMember, ProcessGroup
from .mpi_backend import DistributedError, DistributedValueError, MPIComm


def _state(what: str, group) -> pg._Group:
    if group is None or group is GroupMember.WORLD:
        return pg._pg(what)
    if not isinstance(group, ProcessGroup):
        raise DistributedValueError(
            f"{what}: {group!r} is not a process group of this rank; use one that "
            "dist.new_group returned here (ranks outside a group get NON_GROUP_MEMBER)"
        )
    return group._live()


def get_process_group_ranks(group) -> list[int]:
    """The global ranks of ``group`` (None: the default group), in group-rank order."""
    return list(_state("get_process_group_ranks", group).ranks)


def get_global_rank(group, group_rank: int) -> int:
    """The global rank of rank ``group_rank`` of ``group``."""
    g = _state("get_global_rank", group)
    if not 0 <= group_rank < g.size:
        raise DistributedValueError(
            f"Group rank {group_rank} is not part of group {group} (its ranks are 0..{g.size - 1})"
        )
    return g.ranks[group_rank]


def get_group_rank(group, global_rank: int) -> int:
    """The rank within ``group`` of global rank ``global_rank``."""
    g = _state("get_group_rank", group)
    if global_rank not in g.group_rank:
        raise DistributedValueError(
            f"Global rank {global_rank} is not part of group {group} (global ranks {g.ranks})"
        )
    return g.group_rank[global_rank]


def group_rank_of(g: pg._Group, what: str, name: str, rank, group_rank, default=None) -> int:
    """The group rank a collective's ``src``/``dst`` (global) or ``group_src``/``group_dst``
    (group rank) argument names, checked; ``default`` is the global rank used when both are
    None (None: one of them is required)."""
    if rank is not None and group_rank is not None:
        raise ValueError(
            f"{what}: give either {name} (a global rank) or group_{name} (a rank of the group), "
            "not both"
        )
    if group_rank is not None:
        if not isinstance(group_rank, (int, np.integer)) or not 0 <= group_rank < g.size:
            raise DistributedValueError(
                f"{what}: group_{name}={group_rank!r} is not a rank of the group (ranks "
                f"0..{g.size - 1})"
            )
        return int(group_rank)
    if rank is None:
        if default is None:
            raise ValueError(f"{what}: give {name} (a global rank) or group_{name}")
        rank = default
    if not isinstance(rank, (int, np.integer)) or int(rank) not in g.group_rank:
        where = f"the world size is {g.size}" if g is pg._group else f"its ranks are {g.ranks}"
        raise DistributedValueError(
            f"{what}: {name}={rank!r} is not a rank of the process group ({where})"
        )
    return g.group_rank[int(rank)]


def new_group(ranks=None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization: bool = False, group_desc=None, device_id=None,
              sort_ranks: bool = True):  # fmt: skip
    """Make a process group of some of the default group's ranks; every rank calls it.

    Args:
        ranks: the global ranks of the members (default: every rank); sorted unless
            ``sort_ranks=False``, and a member's group rank is its place in that list.
        timeout: the group's collective timeout (default: the default group's).
        backend: None (the default group's), "mpi"/"gloo", or "nccl" when the default is.
        use_local_synchronization: only the members need to call it (non-members get None).
        pg_options, group_desc, device_id: accepted for PyTorch compatibility.

    Returns:
        A ``ProcessGroup`` on its members; ``GroupMember.NON_GROUP_MEMBER`` elsewhere.

    Example:
        >>> evens = dist.new_group([r for r in range(dist.get_world_size()) if r % 2 == 0])
        >>> dist.all_reduce(t, group=evens)   # a warning and no-op on odd ranks
    """
    world = pg._pg("new_group")
    n = world.size
    if ranks is None:
        ranks = list(range(n))
    try:
        ranks = [int(r) for r in ranks]
    except (TypeError, ValueError):
        raise TypeError(f"new_group: ranks must be a list of ints, got {ranks!r}") from None
    if sort_ranks:
        ranks = sorted(ranks)
    if len(set(ranks)) != len(ranks):
        raise ValueError(f"new_group: ranks list must not contain duplicate entries, got {ranks}")
    bad = [r for r in ranks if not 0 <= r < n]
    if bad:
        raise ValueError(
            f"new_group: Rank {bad[0]} is out of range. Valid ranks are 0 to {n - 1} "
            f"(world_size={n})"
        )
    name = world.backend if backend is None else pg._backend_name(backend)
    if name == "auto":
        name = world.backend
    if name == "nccl" and world.backend != "nccl":
        raise DistributedValueError(
            "new_group: backend='nccl' needs a default group on NCCL: "
            "init_process_group(backend='nccl')"
        )
    limit = world.mpi.timeout if timeout is None else pg._timeout_seconds(timeout)
    member = world.rank in ranks
    if use_local_synchronization:
        if not member:
            return None
        whole = world.mpi.comm.Get_group()
        part = whole.Incl(ranks)
        base = world.mpi.comm.Create_group(part)
        part.Free()
        whole.Free()
    else:
        seq = world.next_seq()
        # NOTE: compared before the (blocking) split, so that ranks passing different lists,
        # or a rank that never calls, raise or time out instead of hanging in MPI
        sig = zlib.crc32(repr(ranks).encode())
        check_same(world, "new_group", seq, _meta("new_group", seq, None, extra=sig))
        color = 0 if member else world.mpi.MPI.UNDEFINED
        base = world.mpi.comm.Split(color, ranks.index(world.rank) if member else 0)
    if not member:
        return GroupMember.NON_GROUP_MEMBER
    try:
        mpi = MPIComm(limit, world.mpi.abort_on_timeout, base=base, ranks=ranks)
    finally:
        base.Free()
    if mpi.rank != ranks.index(world.rank):  # NOTE: an internal invariant of the MPI split
        raise DistributedError(
            f"new_group: MPI made global rank {world.rank} rank {mpi.rank} of the group "
            f"{ranks}, expected {ranks.index(world.rank)}"
        )
    g = pg._Group(name, mpi, world.local_rank, world.local_size)
    g.device = world.device
    pg._subgroups.append(g)
    return g.handle


def new_subgroups(group_size: int | None = None, group=None, timeout=None, backend=None,
                  pg_options=None, group_desc=None):  # fmt: skip
    """Split the ranks of ``group`` into consecutive groups of ``group_size`` ranks.

    Returns:
        (this rank's group, all the groups); every rank calls it.

    Example:
        >>> mine, all_groups = dist.new_subgroups(group_size=2)
    """
    if group_size is None:
        from .. import backend as B  # noqa: PLC0415

        if not B.cuda_available():
            raise ValueError(
                "new_subgroups: give group_size; the default (one group per machine, of its "
                "GPU count) needs CUDA"
            )
        group_size = B.cuda_device_count()
    if group_size <= 0:
        raise ValueError(f"new_subgroups: The arg 'group_size' ({group_size}) must be positive")
    ranks = get_process_group_ranks(group)
    if len(ranks) < group_size:
        raise ValueError(
            f"new_subgroups: The arg 'group_size' ({group_size}) must not exceed the world "
            f"size ({len(ranks)})"
        )
    if len(ranks) % group_size:
        raise ValueError(
            f"new_subgroups: The world size ({len(ranks)}) must be divisible by "
            f"group_size={group_size}"
        )
    parts = [ranks[i : i + group_size] for i in range(0, len(ranks), group_size)]
    return new_subgroups_by_enumeration(parts, timeout, backend, pg_options, group_desc)


def new_subgroups_by_enumeration(ranks_per_subgroup_list, timeout=None, backend=None,
                                 pg_options=None, group_desc=None):  # fmt: skip
    """Make one group per list of ranks (the lists must not overlap); every rank calls it.

    Returns:
        (this rank's group or None, all the groups).
    """
    if not ranks_per_subgroup_list:
        raise ValueError("new_subgroups_by_enumeration: ranks_per_subgroup_list is empty")
    seen: dict[int, list] = {}
    for ranks in ranks_per_subgroup_list:
        for r in ranks:
            if r in seen:
                raise ValueError(f"Rank {r} has appeared in both subgroup {seen[r]} and {ranks}")
            seen[r] = ranks
    me = pg._pg("new_subgroups").rank
    mine, groups = None, []
    for ranks in ranks_per_subgroup_list:
        g = new_group(ranks, timeout=timeout, backend=backend, pg_options=pg_options)
        groups.append(g)
        if me in ranks:
            mine = g
    return mine, groups


def get_pg_count() -> int:
    """The number of process groups of this rank: the default one and each ``new_group``."""
    return 0 if pg._group is None else 1 + len(pg._subgroups)
