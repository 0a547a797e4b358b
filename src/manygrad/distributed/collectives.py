"""The collectives of ``mg.distributed``, with PyTorch's names and in-place semantics."""

from __future__ import annotations

import pickle

import numpy as np

from .. import backend
from ..tensor import Tensor
from .mpi_backend import DistributedError
from .process_group import ReduceOp, _check_tensor, _done, _meta, _pg, check_same


def _op(what: str, op) -> ReduceOp:
    if isinstance(op, ReduceOp):
        return op
    try:
        return ReduceOp(str(op).lower().rsplit(".", 1)[-1])
    except ValueError:
        raise ValueError(
            f"{what}: unknown op {op!r}; use mg.distributed.ReduceOp.SUM, PRODUCT, MIN, MAX or AVG"
        ) from None


def _check_avg(what: str, t: Tensor, op: ReduceOp) -> None:
    if op is ReduceOp.AVG and not t.is_floating_point():
        raise DistributedError(
            f"{what}: ReduceOp.AVG needs a floating tensor, got {t.dtype}; use SUM and divide"
        )


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` across all ranks, in place; every rank gets the result.

    Args:
        tensor: the same shape, dtype and device type on every rank.
        op: ReduceOp.SUM (default), PRODUCT, MIN, MAX or AVG.
        group: only the default group (None) is supported.
        async_op: return a work handle (already completed) instead of None.

    Example:
        >>> t = mg.ones(3) * (dist.get_rank() + 1)
        >>> dist.all_reduce(t)          # on 2 ranks t is now [3., 3., 3.]
    """
    g = _pg("all_reduce", group)
    _check_tensor("all_reduce", tensor)
    op = _op("all_reduce", op)
    seq = g.next_seq()
    if g.check:
        check_same(g, "all_reduce", seq, _meta("all_reduce", seq, tensor, op))
    _check_avg("all_reduce", tensor, op)
    g.engine(tensor._device).all_reduce(tensor._data, op.value, "all_reduce", seq)
    return _done(async_op)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False):
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every other rank, in place.

    Args:
        tensor: the data on ``src``; the destination elsewhere (same shape and dtype).
        src: the rank that sends.

    Example:
        >>> dist.broadcast(weights, src=0)
    """
    g = _pg("broadcast", group)
    _check_tensor("broadcast", tensor)
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: src={src} is not a rank (world size {g.size})")
    seq = g.next_seq()
    if g.check:
        check_same(g, "broadcast", seq, _meta("broadcast", seq, tensor, src=src))
    g.engine(tensor._device).broadcast(tensor._data, src, "broadcast", seq)
    return _done(async_op)


def _check_list(what: str, tensors, ref: Tensor, n: int) -> None:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != n:
        got = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{what}: expected a list of {n} tensors (one per rank), got {got}")
    for i, t in enumerate(tensors):
        _check_tensor(what, t)
        if t.shape != ref.shape or t.dtype is not ref.dtype or t._device != ref._device:
            raise ValueError(
                f"{what}: list entry {i} is {tuple(t.shape)} {t.dtype} on {t.device}, expected "
                f"{tuple(ref.shape)} {ref.dtype} on {ref.device} like the other tensor"
            )


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Gather ``tensor`` from every rank into ``tensor_list`` (entry r from rank r).

    Args:
        tensor_list: world-size tensors shaped like ``tensor``, written in place.
        tensor: this rank's contribution (same shape and dtype on every rank).

    Example:
        >>> out = [mg.zeros(2) for _ in range(dist.get_world_size())]
        >>> dist.all_gather(out, mg.full((2,), dist.get_rank()))
    """
    g = _pg("all_gather", group)
    _check_tensor("all_gather", tensor)
    _check_list("all_gather", tensor_list, tensor, g.size)
    seq = g.next_seq()
    if g.check:
        check_same(g, "all_gather", seq, _meta("all_gather", seq, tensor, extra=len(tensor_list)))
    xp = backend.array_module(tensor._data)
    recv = xp.empty((g.size,) + tuple(tensor.shape), tensor._data.dtype)
    send = xp.ascontiguousarray(tensor._data)
    g.engine(tensor._device).all_gather(send, recv, "all_gather", seq)
    for r, t in enumerate(tensor_list):
        t._data[...] = recv[r]
    return _done(async_op)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):  # fmt: skip
    """Gather ``input_tensor`` from every rank, stacked along dim 0 of ``output_tensor``."""
    g = _pg("all_gather_into_tensor", group)
    chunks = [Tensor._wrap(c, output_tensor._device) for c in _split0(output_tensor, g.size)]
    return all_gather(chunks, input_tensor, group, async_op)


def reduce_scatter(output: Tensor, input_list: list, op: ReduceOp = ReduceOp.SUM, group=None,
                   async_op: bool = False):  # fmt: skip
    """Reduce ``input_list[r]`` across ranks and leave the result on rank r in ``output``.

    Args:
        output: receives this rank's reduced piece (shape of each input entry).
        input_list: world-size tensors, entry r destined for rank r.
        op: ReduceOp.SUM (default), PRODUCT, MIN, MAX or AVG.

    Example:
        >>> dist.reduce_scatter(out, [mg.ones(2) for _ in range(dist.get_world_size())])
    """
    g = _pg("reduce_scatter", group)
    _check_tensor("reduce_scatter", output)
    _check_list("reduce_scatter", input_list, output, g.size)
    op = _op("reduce_scatter", op)
    seq = g.next_seq()
    if g.check:
        meta = _meta("reduce_scatter", seq, output, op, extra=len(input_list))
        check_same(g, "reduce_scatter", seq, meta)
    _check_avg("reduce_scatter", output, op)
    xp = backend.array_module(output._data)
    send = xp.stack([t._data for t in input_list])
    g.engine(output._device).reduce_scatter(send, output._data, op.value, "reduce_scatter", seq)
    return _done(async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,  # noqa: A002
                          group=None, async_op: bool = False):  # fmt: skip
    """``reduce_scatter`` with the inputs stacked along dim 0 of one tensor."""
    g = _pg("reduce_scatter_tensor", group)
    chunks = [Tensor._wrap(c, input._device) for c in _split0(input, g.size)]
    return reduce_scatter(output, chunks, op, group, async_op)


def _split0(t: Tensor, n: int):
    if t.ndim == 0 or t.shape[0] % n:
        raise ValueError(
            f"expected dim 0 of {tuple(t.shape)} to be a multiple of the world size {n}"
        )
    k = t.shape[0] // n
    return [t._data[i * k : (i + 1) * k] for i in range(n)]


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Wait until every rank reaches this call (bounded by the process group's timeout)."""
    g = _pg("barrier", group)
    seq = g.next_seq()
    if g.check:
        check_same(g, "barrier", seq, _meta("barrier", seq, None))
    else:
        g.mpi.barrier("barrier", seq)
    return _done(async_op)


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replace ``object_list``'s entries on every rank with rank ``src``'s (pickled).

    Args:
        object_list: picklable objects on ``src``; a list of the same length elsewhere.
        src: the rank that sends.

    Example:
        >>> names = [run_dir if dist.get_rank() == 0 else None]
        >>> dist.broadcast_object_list(names, src=0)
    """
    g = _pg("broadcast_object_list", group)
    seq = g.next_seq()
    data = pickle.dumps(list(object_list)) if g.rank == src else b""
    size = np.array([len(data)], np.int64)
    g.mpi.bcast(size, src, "broadcast_object_list", seq)
    buf = np.frombuffer(data, np.uint8).copy() if g.rank == src else np.empty(size[0], np.uint8)
    g.mpi.bcast(buf, src, "broadcast_object_list", seq)
    if g.rank != src:
        object_list[:] = pickle.loads(buf.tobytes())


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Fill ``object_list`` (world-size long) with ``obj`` from every rank (pickled).

    Example:
        >>> out = [None] * dist.get_world_size()
        >>> dist.all_gather_object(out, {"rank": dist.get_rank(), "loss": 0.5})
    """
    g = _pg("all_gather_object", group)
    if len(object_list) != g.size:
        raise ValueError(
            f"all_gather_object: object_list has {len(object_list)} entries, expected the "
            f"world size {g.size}"
        )
    seq = g.next_seq()
    data = pickle.dumps(obj)
    sizes = np.empty(g.size, np.int64)
    g.mpi.allgather(np.array([len(data)], np.int64), sizes, "all_gather_object", seq)
    width = int(sizes.max())
    send = np.zeros(width, np.uint8)
    send[: len(data)] = np.frombuffer(data, np.uint8)
    recv = np.empty((g.size, width), np.uint8)
    g.mpi.allgather(send, recv, "all_gather_object", seq)
    for r in range(g.size):
        object_list[r] = pickle.loads(recv[r, : sizes[r]].tobytes())
