"""The collectives of ``mg.distributed``, with PyTorch's names and in-place semantics.

Every collective takes ``group=`` (None: the default group; a group from ``new_group``; on a
rank outside the group it warns and does nothing, returning None, as PyTorch does) and
``async_op=`` (True returns a ``Work``). Roots (``src``/``dst``) are global ranks;
``group_src``/``group_dst`` name them by their rank within the group instead. Arguments are
checked on each rank and the result is compared across the group before any data moves, so
a bad argument on one rank raises on every rank of the group (on that rank its own error).
"""

from __future__ import annotations

from .. import backend
from ..errors import ManygradError
from ..tensor import Tensor
from .checks import _check_tensor, _meta, agree, check_same
from .groups import group_rank_of
from .mpi_backend import DistBackendError, DistributedError
from .names import ReduceOp
from .objects import all_gather_object, broadcast_object_list  # noqa: F401 - their old home
from .process_group import _member
from .work import Work, done_work

# NOTE: what a bad argument raises; such errors are exchanged with the other ranks first
_ARG_ERRORS = (TypeError, ValueError, ManygradError)


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


def _check_list(what: str, tensors, ref: Tensor, n: int, name: str = "tensor_list") -> None:
    if not isinstance(tensors, (list, tuple)) or len(tensors) != n:
        got = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{what}: expected `{name}` to be a list of {n} tensors (one per rank "
                         f"of the group), got {got}")  # fmt: skip
    for i, t in enumerate(tensors):
        _check_tensor(what, t, f"{name}[{i}]")
        if t.shape != ref.shape or t.dtype is not ref.dtype or t._device != ref._device:
            raise ValueError(
                f"{what}: {name}[{i}] is {tuple(t.shape)} {t.dtype} on {t.device}, expected "
                f"{tuple(ref.shape)} {ref.dtype} on {ref.device} like the other tensor"
            )


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None, async_op: bool = False):
    """Combine ``tensor`` across the ranks of the group, in place; every rank gets the result.

    Args:
        tensor: the same shape, dtype and device type on every rank.
        op: ReduceOp.SUM (default), PRODUCT, MIN, MAX or AVG.
        group: the process group (default: every rank).
        async_op: return a ``Work`` at once; the reduction runs meanwhile and ``tensor``
            holds the result once ``work.wait()`` returns.

    Example:
        >>> t = mg.ones(3) * (dist.get_rank() + 1)
        >>> dist.all_reduce(t)          # on 2 ranks t is now [3., 3., 3.]
    """
    g = _member("all_reduce", group)
    if g is None:
        return None
    seq, err = g.next_seq(), None
    try:
        _check_tensor("all_reduce", tensor)
        op = _op("all_reduce", op)
        _check_avg("all_reduce", tensor, op)
    except _ARG_ERRORS as e:
        err = e
    agree(g, "all_reduce", seq, _meta("all_reduce", seq, None if err else tensor, op), err)
    wait = g.engine(tensor._device).start_all_reduce(tensor._data, op.value, "all_reduce", seq)
    if not async_op:
        wait()
        return None
    test = getattr(wait, "test", None)

    def finish(timeout):
        if timeout is not None and test is not None and not g.mpi.poll(test, timeout):
            raise DistBackendError(
                f"all_reduce (call #{seq}): not complete after {timeout:g} s (still pending)"
            )
        wait()

    return Work([tensor], finish=finish, test=test)


def broadcast(tensor: Tensor, src: int | None = None, group=None, async_op: bool = False,
              group_src: int | None = None):  # fmt: skip
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every other rank, in place.

    Args:
        tensor: the data on ``src``; the destination elsewhere (same shape and dtype).
        src: the global rank that sends (or ``group_src``: its rank within ``group``).

    Example:
        >>> dist.broadcast(weights, src=0)
    """
    g = _member("broadcast", group)
    if g is None:
        return None
    seq, err, root = g.next_seq(), None, -1
    try:
        _check_tensor("broadcast", tensor)
        root = group_rank_of(g, "broadcast", "src", src, group_src)
    except _ARG_ERRORS as e:
        err = e
    agree(g, "broadcast", seq, _meta("broadcast", seq, None if err else tensor, src=root), err)
    g.engine(tensor._device).broadcast(tensor._data, root, "broadcast", seq)
    return done_work(async_op, [tensor])


def reduce(tensor: Tensor, dst: int | None = None, op: ReduceOp = ReduceOp.SUM, group=None,
           async_op: bool = False, group_dst: int | None = None):  # fmt: skip
    """Combine ``tensor`` across the ranks into ``tensor`` on rank ``dst`` (in place); the
    other ranks keep their ``tensor`` unchanged.

    Args:
        dst: the global rank that receives the result (or ``group_dst`` within ``group``).
        op: ReduceOp.SUM (default), PRODUCT, MIN, MAX or AVG.

    Example:
        >>> dist.reduce(loss_sum, dst=0)    # rank 0 holds the total
    """
    g = _member("reduce", group)
    if g is None:
        return None
    seq, err, root = g.next_seq(), None, -1
    try:
        _check_tensor("reduce", tensor)
        root = group_rank_of(g, "reduce", "dst", dst, group_dst)
        op = _op("reduce", op)
        _check_avg("reduce", tensor, op)
    except _ARG_ERRORS as e:
        err = e
    agree(g, "reduce", seq, _meta("reduce", seq, None if err else tensor, op, root), err)
    g.engine(tensor._device).reduce(tensor._data, root, op.value, "reduce", seq)
    return done_work(async_op, [tensor])


def _all_gather(what: str, chunks, tensor: Tensor, group, async_op: bool):
    """all_gather into the list ``chunks()`` gives (called where argument errors are caught)."""
    g = _member(what, group)
    if g is None:
        return None
    seq, err = g.next_seq(), None
    try:
        _check_tensor(what, tensor, "input_tensor" if what != "all_gather" else "tensor")
        tensor_list = chunks(g)
        _check_list(what, tensor_list, tensor, g.size)
    except _ARG_ERRORS as e:
        err = e
    agree(g, "all_gather", seq, _meta("all_gather", seq, None if err else tensor,
                                      extra=g.size), err)  # fmt: skip
    xp = backend.array_module(tensor._data)
    recv = xp.empty((g.size,) + tuple(tensor.shape), tensor._data.dtype)
    send = xp.ascontiguousarray(tensor._data)
    g.engine(tensor._device).all_gather(send, recv, what, seq)
    for r, t in enumerate(tensor_list):
        t._data[...] = recv[r]
    return done_work(async_op, tensor_list)


def all_gather(tensor_list: list, tensor: Tensor, group=None, async_op: bool = False):
    """Gather ``tensor`` from every rank into ``tensor_list`` (entry r from group rank r).

    Args:
        tensor_list: group-size tensors shaped like ``tensor``, written in place.
        tensor: this rank's contribution (same shape and dtype on every rank).

    Example:
        >>> out = [mg.zeros(2) for _ in range(dist.get_world_size())]
        >>> dist.all_gather(out, mg.full((2,), dist.get_rank()))
    """
    return _all_gather("all_gather", lambda g: tensor_list, tensor, group, async_op)


def _chunks(what: str, t: Tensor, ref: Tensor, n: int, name: str) -> list:
    """``t`` as n tensors shaped like ``ref``: its pieces along dim 0 (concatenated ranks), or
    its entries along a leading dim of n (stacked ranks)."""
    _check_tensor(what, t, name)
    if tuple(t.shape) == (n,) + tuple(ref.shape):
        return [Tensor._wrap(t._data[i], t._device) for i in range(n)]
    if t.ndim == 0 or ref.ndim == 0 or t.shape[0] != n * ref.shape[0]:
        raise ValueError(
            f"{what}: `{name}` {tuple(t.shape)} must be the group size ({n}) times the other "
            f"tensor {tuple(ref.shape)} along dim 0 (or of shape {(n,) + tuple(ref.shape)})"
        )
    k = ref.shape[0]
    return [Tensor._wrap(t._data[i * k : (i + 1) * k], t._device) for i in range(n)]


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False):  # fmt: skip
    """Gather ``input_tensor`` from every rank into ``output_tensor``: concatenated along dim 0
    (shape ``(size * n, ...)``) or stacked (shape ``(size, *input.shape)``)."""

    def chunks(g):
        _check_tensor("all_gather_into_tensor", input_tensor, "input_tensor")
        return _chunks("all_gather_into_tensor", output_tensor, input_tensor, g.size,
                       "output_tensor")  # fmt: skip

    return _all_gather("all_gather_into_tensor", chunks, input_tensor, group, async_op)


def _reduce_scatter(what, output: Tensor, inputs, op, group, async_op: bool):
    g = _member(what, group)
    if g is None:
        return None
    seq, err = g.next_seq(), None
    try:
        _check_tensor(what, output, "output")
        input_list = inputs(g)
        _check_list(what, input_list, output, g.size, "input_list")
        op = _op(what, op)
        _check_avg(what, output, op)
    except _ARG_ERRORS as e:
        err = e
    meta = _meta("reduce_scatter", seq, None if err else output, op, extra=g.size)
    agree(g, "reduce_scatter", seq, meta, err)
    xp = backend.array_module(output._data)
    send = xp.stack([t._data for t in input_list])
    g.engine(output._device).reduce_scatter(send, output._data, op.value, what, seq)
    return done_work(async_op, [output])


def reduce_scatter(output: Tensor, input_list: list, op: ReduceOp = ReduceOp.SUM, group=None,
                   async_op: bool = False):  # fmt: skip
    """Reduce ``input_list[r]`` across ranks and leave the result on group rank r in ``output``.

    Args:
        output: receives this rank's reduced piece (shape of each input entry).
        input_list: group-size tensors, entry r destined for group rank r.
        op: ReduceOp.SUM (default), PRODUCT, MIN, MAX or AVG.

    Example:
        >>> dist.reduce_scatter(out, [mg.ones(2) for _ in range(dist.get_world_size())])
    """
    return _reduce_scatter("reduce_scatter", output, lambda g: input_list, op, group, async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,  # noqa: A002
                          group=None, async_op: bool = False):  # fmt: skip
    """``reduce_scatter`` with the inputs concatenated along dim 0 of one tensor (or stacked
    along a leading dim of the group size)."""

    def inputs(g):
        _check_tensor("reduce_scatter_tensor", output, "output")
        return _chunks("reduce_scatter_tensor", input, output, g.size, "input")

    return _reduce_scatter("reduce_scatter_tensor", output, inputs, op, group, async_op)


def _check_root_list(op, g, root, tensors, tensor, what, role) -> None:
    """PyTorch's rule for the list of gather/scatter: given on the root rank only (with one
    tensor per group rank, shaped like ``tensor``)."""
    if g.rank == root:
        if not tensors:
            raise ValueError(f"{op}: Argument ``{what}`` must be specified on {role} rank.")
        _check_list(op, tensors, tensor, g.size, what)
    elif tensors:
        raise ValueError(f"{op}: Argument ``{what}`` must NOT be specified on non-{role} ranks.")


def gather(tensor: Tensor, gather_list: list | None = None, dst: int | None = None, group=None,
           async_op: bool = False, group_dst: int | None = None):  # fmt: skip
    """Gather ``tensor`` of every rank into ``gather_list`` on rank ``dst``.

    Args:
        tensor: this rank's contribution (the same shape and dtype on every rank).
        gather_list: on ``dst`` only, group-size tensors shaped like ``tensor`` (entry r from
            group rank r); None (or empty) on the other ranks.
        dst: the global rank that receives (default 0; or ``group_dst`` within ``group``).

    Example:
        >>> out = [mg.zeros(2) for _ in range(dist.get_world_size())] if rank == 0 else None
        >>> dist.gather(mg.full((2,), float(rank)), out, dst=0)
    """
    g = _member("gather", group)
    if g is None:
        return None
    seq, err, root = g.next_seq(), None, -1
    try:
        _check_tensor("gather", tensor)
        root = group_rank_of(g, "gather", "dst", dst, group_dst, default=0)
        _check_root_list("gather", g, root, gather_list, tensor, "gather_list", "destination")
    except _ARG_ERRORS as e:
        err = e
    agree(g, "gather", seq, _meta("gather", seq, None if err else tensor, src=root), err)
    xp = backend.array_module(tensor._data)
    recv = xp.empty((g.size,) + tuple(tensor.shape), tensor._data.dtype) if g.rank == root else None
    g.engine(tensor._device).gather(xp.ascontiguousarray(tensor._data), recv, root, "gather", seq)
    if recv is not None:
        for r, t in enumerate(gather_list):
            t._data[...] = recv[r]
    return done_work(async_op, list(gather_list) if gather_list else [])


def scatter(tensor: Tensor, scatter_list: list | None = None, src: int | None = None,
            group=None, async_op: bool = False, group_src: int | None = None):  # fmt: skip
    """Send ``scatter_list[r]`` of rank ``src`` to group rank r, into its ``tensor``.

    Args:
        tensor: receives this rank's piece (the same shape and dtype on every rank).
        scatter_list: on ``src`` only, group-size tensors shaped like ``tensor``; None (or
            empty) on the other ranks.
        src: the global rank that sends (default 0; or ``group_src`` within ``group``).

    Example:
        >>> parts = list(mg.arange(4.0).chunk(dist.get_world_size())) if rank == 0 else None
        >>> dist.scatter(piece, parts, src=0)
    """
    g = _member("scatter", group)
    if g is None:
        return None
    seq, err, root = g.next_seq(), None, -1
    try:
        _check_tensor("scatter", tensor)
        root = group_rank_of(g, "scatter", "src", src, group_src, default=0)
        _check_root_list("scatter", g, root, scatter_list, tensor, "scatter_list", "source")
    except _ARG_ERRORS as e:
        err = e
    agree(g, "scatter", seq, _meta("scatter", seq, None if err else tensor, src=root), err)
    xp = backend.array_module(tensor._data)
    send = xp.stack([t._data for t in scatter_list]) if g.rank == root else None
    g.engine(tensor._device).scatter(send, tensor._data, root, "scatter", seq)
    return done_work(async_op, [tensor])


def barrier(group=None, async_op: bool = False, device_ids=None, timeout=None):
    """Wait until every rank of the group reaches this call.

    Args:
        timeout: give up after this long (seconds or timedelta) with ``DistBackendError``
            naming the ranks that did not arrive; default: the group's timeout, past which
            the job is aborted.
    """
    g = _member("barrier", group)
    if g is None:
        return None
    seq = g.next_seq()
    wait = {}
    if timeout is not None:
        seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
        wait = {"timeout": float(seconds), "abort": False}
    if g.check:
        check_same(g, "barrier", seq, _meta("barrier", seq, None), **wait)
    else:
        g.mpi.barrier("barrier", seq, **wait)
    return done_work(async_op)
