"""Collectives of picklable Python objects (``broadcast_object_list``, ``gather_object``, ...).

Objects are pickled and move as bytes through MPI on the host, whatever the backend.
Unpickling runs code chosen by the sender: use them only with ranks you trust.
"""

from __future__ import annotations

import pickle

import numpy as np

from .. import backend
from ..tensor import Tensor
from .checks import _meta, agree
from .groups import group_rank_of
from .process_group import _member

_ARG_ERRORS = (TypeError, ValueError)


def _bytes(obj) -> np.ndarray:
    return np.frombuffer(pickle.dumps(obj), np.uint8)


def _padded(blobs: list, width: int) -> np.ndarray:
    out = np.zeros((len(blobs), width), np.uint8)
    for i, b in enumerate(blobs):
        out[i, : b.size] = b
    return out


def broadcast_object_list(object_list: list, src: int | None = None, group=None, device=None,
                          group_src: int | None = None) -> None:  # fmt: skip
    """Replace ``object_list``'s entries on every rank with rank ``src``'s (pickled).

    Args:
        object_list: picklable objects on ``src``; a list of the same length elsewhere.
        src: the global rank that sends (default 0; or ``group_src`` within ``group``).

    Example:
        >>> names = [run_dir if dist.get_rank() == 0 else None]
        >>> dist.broadcast_object_list(names, src=0)
    """
    g = _member("broadcast_object_list", group)
    if g is None:
        return
    seq, err, root = g.next_seq(), None, -1
    try:
        root = group_rank_of(g, "broadcast_object_list", "src", src, group_src, default=0)
    except _ARG_ERRORS as e:
        err = e
    agree(g, "broadcast_object_list", seq, _meta("broadcast_object_list", seq, None, src=root),
          err)  # fmt: skip
    data = pickle.dumps(list(object_list)) if g.rank == root else b""
    size = np.array([len(data)], np.int64)
    g.mpi.bcast(size, root, "broadcast_object_list", seq)
    buf = np.frombuffer(data, np.uint8).copy() if g.rank == root else np.empty(size[0], np.uint8)
    g.mpi.bcast(buf, root, "broadcast_object_list", seq)
    if g.rank != root:
        object_list[:] = pickle.loads(buf.tobytes())


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Fill ``object_list`` (group-size long) with ``obj`` from every rank (pickled).

    Example:
        >>> out = [None] * dist.get_world_size()
        >>> dist.all_gather_object(out, {"rank": dist.get_rank(), "loss": 0.5})
    """
    g = _member("all_gather_object", group)
    if g is None:
        return
    seq, err = g.next_seq(), None
    if not isinstance(object_list, list) or len(object_list) != g.size:
        got = len(object_list) if isinstance(object_list, list) else type(object_list).__name__
        err = ValueError(
            f"all_gather_object: object_list has {got} entries, expected the group size {g.size}"
        )
    agree(g, "all_gather_object", seq, _meta("all_gather_object", seq, None), err)
    data = _bytes(obj)
    sizes = np.empty(g.size, np.int64)
    g.mpi.allgather(np.array([data.size], np.int64), sizes, "all_gather_object", seq)
    recv = np.empty((g.size, int(sizes.max())), np.uint8)
    g.mpi.allgather(_padded([data], int(sizes.max()))[0], recv, "all_gather_object", seq)
    for r in range(g.size):
        object_list[r] = pickle.loads(recv[r, : sizes[r]].tobytes())


def gather_object(obj, object_gather_list: list | None = None, dst: int | None = None,
                  group=None, group_dst: int | None = None) -> None:  # fmt: skip
    """Gather ``obj`` of every rank into ``object_gather_list`` on rank ``dst`` (pickled).

    Args:
        object_gather_list: on ``dst``, a list of the group size (entry r from group rank
            r); None on the other ranks.
        dst: the global rank that receives (default 0; or ``group_dst`` within ``group``).

    Example:
        >>> out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
        >>> dist.gather_object({"rank": dist.get_rank()}, out, dst=0)
    """
    g = _member("gather_object", group)
    if g is None:
        return
    seq, err, root = g.next_seq(), None, -1
    try:
        root = group_rank_of(g, "gather_object", "dst", dst, group_dst, default=0)
        if g.rank == root:
            if not isinstance(object_gather_list, list) or len(object_gather_list) != g.size:
                raise ValueError(
                    "gather_object: Argument ``object_gather_list`` must be a list of the "
                    f"group size ({g.size}) on the destination rank, got {object_gather_list!r}"
                )
        elif object_gather_list:
            raise ValueError("gather_object: Argument ``object_gather_list`` must NOT be "
                             "specified on non-destination ranks.")  # fmt: skip
    except _ARG_ERRORS as e:
        err = e
    agree(g, "gather_object", seq, _meta("gather_object", seq, None, src=root), err)
    data = _bytes(obj)
    sizes = np.empty(g.size, np.int64)
    g.mpi.allgather(np.array([data.size], np.int64), sizes, "gather_object", seq)
    width = int(sizes.max())
    recv = np.empty((g.size, width), np.uint8) if g.rank == root else None
    g.mpi.gather(_padded([data], width)[0], recv, root, "gather_object", seq)
    if recv is not None:
        for r in range(g.size):
            object_gather_list[r] = pickle.loads(recv[r, : sizes[r]].tobytes())


def scatter_object_list(scatter_object_output_list: list, scatter_object_input_list=None,
                        src: int | None = None, group=None,
                        group_src: int | None = None) -> None:  # fmt: skip
    """Send ``scatter_object_input_list[r]`` of rank ``src`` to group rank r, which stores it
    as ``scatter_object_output_list[0]`` (pickled).

    Args:
        scatter_object_output_list: a list of at least one entry, on every rank.
        scatter_object_input_list: on ``src``, one object per rank of the group.
        src: the global rank that sends (default 0; or ``group_src`` within ``group``).

    Example:
        >>> out = [None]
        >>> dist.scatter_object_list(out, [{"shard": r} for r in range(2)] if rank == 0 else None)
    """
    what = "scatter_object_list"
    g = _member(what, group)
    if g is None:
        return
    seq, err, root = g.next_seq(), None, -1
    try:
        if not isinstance(scatter_object_output_list, list) or not scatter_object_output_list:
            raise ValueError(f"{what}: Expected argument scatter_object_output_list to be a "
                             "list of size at least 1.")  # fmt: skip
        root = group_rank_of(g, what, "src", src, group_src, default=0)
        if g.rank == root and (
            scatter_object_input_list is None or len(scatter_object_input_list) != g.size
        ):
            raise ValueError(
                f"{what}: the source rank must give scatter_object_input_list with one object "
                f"per rank of the group ({g.size}), got {scatter_object_input_list!r}"
            )
    except _ARG_ERRORS as e:
        err = e
    agree(g, what, seq, _meta(what, seq, None, src=root), err)
    blobs = [_bytes(o) for o in scatter_object_input_list] if g.rank == root else []
    sizes = np.array([b.size for b in blobs], np.int64) if blobs else None
    width = np.array([max((b.size for b in blobs), default=0)], np.int64)
    g.mpi.bcast(width, root, what, seq)
    mine = np.empty(1, np.int64)
    g.mpi.scatter(sizes, mine, root, what, seq)
    buf = np.empty(int(width[0]), np.uint8)
    g.mpi.scatter(_padded(blobs, int(width[0])) if blobs else None, buf, root, what, seq)
    scatter_object_output_list[0] = pickle.loads(buf[: mine[0]].tobytes())


def send_object_list(object_list: list, dst: int | None = None, group=None, device=None,
                     group_dst: int | None = None, use_batch: bool = False) -> None:  # fmt: skip
    """Send the picklable objects of ``object_list`` to global rank ``dst`` (or ``group_dst``),
    which receives them with ``recv_object_list`` into a list of the same length.

    Example:
        >>> dist.send_object_list([{"step": 3}, "done"], dst=1)
    """
    from .p2p import send  # noqa: PLC0415

    g = _member("send_object_list", group)
    if g is None:
        return
    blobs = [_bytes(o) for o in object_list]
    sizes = Tensor._wrap(np.array([b.size for b in blobs], np.int64), backend.CPU)
    data = np.concatenate(blobs) if blobs else np.zeros(0, np.uint8)
    send(sizes, dst, group, group_dst=group_dst)
    send(Tensor._wrap(data, backend.CPU), dst, group, group_dst=group_dst)


def recv_object_list(object_list: list, src: int | None = None, group=None, device=None,
                     group_src: int | None = None, use_batch: bool = False) -> int:  # fmt: skip
    """Receive the objects of a ``send_object_list`` into ``object_list`` (of the length
    sent) from global rank ``src`` (or ``group_src``; None: any rank); returns the sender's
    global rank (-1 on a rank outside ``group``).

    Example:
        >>> box = [None, None]
        >>> dist.recv_object_list(box, src=0)
    """
    from .p2p import recv  # noqa: PLC0415

    g = _member("recv_object_list", group)
    if g is None:
        return -1
    sizes = Tensor._wrap(np.empty(len(object_list), np.int64), backend.CPU)
    sender = recv(sizes, src, group, group_src=group_src)
    data = Tensor._wrap(np.empty(int(sizes._data.sum()), np.uint8), backend.CPU)
    recv(data, sender, group)
    start = 0
    for i, n in enumerate(sizes._data.tolist()):
        object_list[i] = pickle.loads(data._data[start : start + n].tobytes())
        start += n
    return sender
