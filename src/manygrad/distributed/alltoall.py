"""``all_to_all`` and ``all_to_all_single``: every rank sends a piece to every rank.

Pieces may differ in size. Before any data moves, the ranks all-gather how many elements
each sends to and expects from every other rank (with the dtype and device type), so that
mismatched sizes raise on every rank instead of truncating or hanging.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from .. import dtypes as D
from ..errors import ManygradError
from ..tensor import Tensor
from .checks import _COLL_IDX, _DEV_IDX, _DT_IDX, _check_tensor
from .mpi_backend import DistributedError
from .process_group import _member
from .work import done_work

_ARG_ERRORS = (TypeError, ValueError, ManygradError)


def _counts(what: str, t: Tensor, splits, n: int, name: str) -> list[int]:
    """Elements per rank of ``t`` split along dim 0 by ``splits`` (None: evenly)."""
    if t.ndim == 0:
        raise ValueError(f"{what}: `{name}` must have at least one dim to split, got a scalar")
    rows = t.shape[0]
    per_row = math.prod(t.shape[1:])
    if splits is None or len(splits) == 0:
        if rows % n:
            raise ValueError(
                f"{what}: dim 0 of `{name}` ({rows}) must divide evenly by the group size {n}, "
                f"or give {name}_split_sizes"
            )
        return [rows // n * per_row] * n
    splits = [int(s) for s in splits]
    if len(splits) != n or min(splits) < 0 or sum(splits) != rows:
        raise ValueError(
            f"{what}: {name}_split_sizes={splits} must be {n} non-negative sizes (one per rank "
            f"of the group) adding up to dim 0 of `{name}` ({rows})"
        )
    return [s * per_row for s in splits]


def _exchange(g, what: str, seq: int, ref: Tensor | None, send: list, recv: list, err) -> None:
    """Compare dtype, device and the element counts across the group; raise on every rank
    when they do not fit (or when any rank had bad arguments)."""
    if not g.check:
        if err is not None:
            raise err
        return
    n = g.size
    head = [seq, _COLL_IDX["all_to_all"], -1, -1, int(err is not None)]
    if ref is not None and err is None:
        head[2:4] = [_DEV_IDX[ref._device.type], _DT_IDX[ref._data.dtype.name]]
    row = np.array(head + (list(send) + list(recv) if err is None else [0] * 2 * n), np.int64)
    table = np.empty((n, row.size), np.int64)
    g.mpi.allgather(row, table, what, seq)
    if err is not None:
        raise err
    name = g.ranks
    bad = [name[r] for r in range(n) if table[r, 4]]
    if bad:
        raise DistributedError(f"{what}: rank(s) {bad} called collective #{seq} with invalid "
                               "arguments (the error is raised there)")  # fmt: skip
    if (table[:, :4] != table[0, :4]).any():
        rows = "; ".join(
            f"rank {name[r]}: call #{table[r, 0]}, {D.ALL[table[r, 3]].name} on "
            f"{backend.DEVICE_TYPES[table[r, 2]]}"
            for r in range(n)
        )
        raise DistributedError(f"{what}: ranks disagree about collective #{seq}: {rows}; every "
                               "rank must call it with tensors of one dtype and device type")  # fmt: skip
    sends, recvs = table[:, 5 : 5 + n], table[:, 5 + n :]
    wrong = [
        f"rank {name[i]} sends {sends[i, j]} elements to rank {name[j]}, which expects "
        f"{recvs[j, i]}"
        for i in range(n)
        for j in range(n)
        if sends[i, j] != recvs[j, i]
    ]
    if wrong:
        raise DistributedError(
            f"{what}: the sizes do not fit: {'; '.join(wrong)}. Each rank's output split sizes "
            "must equal the input split sizes the other ranks send it"
        )


def _same_kind(what: str, tensors: list) -> None:
    first = tensors[0]
    for t in tensors[1:]:
        if t.dtype is not first.dtype or t._device.type != first._device.type:
            raise ValueError(
                f"{what}: Invalid usage of tensors with different dtypes or devices: found "
                f"{first.dtype} on {first.device} and {t.dtype} on {t.device}"
            )


def all_to_all_single(output: Tensor, input: Tensor, output_split_sizes=None,  # noqa: A002
                      input_split_sizes=None, group=None, async_op: bool = False):  # fmt: skip
    """Split ``input`` along dim 0, send piece j to group rank j, and concatenate the pieces
    received from every rank (in rank order) into ``output``.

    Args:
        output: receives the pieces, concatenated along dim 0.
        input: the pieces to send, concatenated along dim 0.
        output_split_sizes: rows received from each rank (None: dim 0 of output / size).
        input_split_sizes: rows sent to each rank (None: dim 0 of input / size).

    Example:
        >>> inp = mg.arange(4.0) + 4 * rank           # 2 ranks: [0,1,2,3] and [4,5,6,7]
        >>> out = mg.empty(4)
        >>> dist.all_to_all_single(out, inp)          # [0,1,4,5] and [2,3,6,7]
    """
    what = "all_to_all_single"
    g = _member(what, group)
    if g is None:
        return None
    seq, err, send, recv = g.next_seq(), None, [], []
    try:
        _check_tensor(what, output, "output")
        _check_tensor(what, input, "input")
        _same_kind(what, [output, input])
        send = _counts(what, input, input_split_sizes, g.size, "input")
        recv = _counts(what, output, output_split_sizes, g.size, "output")
    except _ARG_ERRORS as e:
        err = e
    _exchange(g, what, seq, input if err is None else None, send, recv, err)
    xp = backend.array_module(input._data)
    flat_in = xp.ascontiguousarray(input._data).reshape(-1)
    flat_out = xp.empty(output._data.size, output._data.dtype)
    g.engine(input._device).all_to_all(flat_in, send, flat_out, recv, what, seq)
    output._data[...] = flat_out.reshape(output._data.shape)
    return done_work(async_op, [output])


def all_to_all(output_tensor_list: list, input_tensor_list: list, group=None,
               async_op: bool = False):  # fmt: skip
    """Send ``input_tensor_list[j]`` to group rank j; ``output_tensor_list[i]`` receives the
    tensor rank i sent here. Pieces may differ in size (each pair must agree).

    Example:
        >>> out = [mg.empty(1) for _ in range(world)]
        >>> dist.all_to_all(out, [mg.tensor([10.0 * rank + j]) for j in range(world)])
    """
    what = "all_to_all"
    g = _member(what, group)
    if g is None:
        return None
    seq, err, send, recv = g.next_seq(), None, [], []
    try:
        for name, lst in (("output_tensor_list", output_tensor_list),
                          ("input_tensor_list", input_tensor_list)):  # fmt: skip
            if not isinstance(lst, (list, tuple)) or len(lst) != g.size:
                got = len(lst) if isinstance(lst, (list, tuple)) else type(lst).__name__
                raise ValueError(f"{what}: `{name}` must be a list of {g.size} tensors (one "
                                 f"per rank of the group), got {got}")  # fmt: skip
            for i, t in enumerate(lst):
                _check_tensor(what, t, f"{name}[{i}]")
        _same_kind(what, list(output_tensor_list) + list(input_tensor_list))
        send = [t._data.size for t in input_tensor_list]
        recv = [t._data.size for t in output_tensor_list]
    except _ARG_ERRORS as e:
        err = e
    _exchange(g, what, seq, input_tensor_list[0] if err is None else None, send, recv, err)
    first = input_tensor_list[0]
    xp = backend.array_module(first._data)
    flat_in = xp.concatenate([xp.ascontiguousarray(t._data).reshape(-1) for t in input_tensor_list])
    flat_out = xp.empty(sum(recv), first._data.dtype)
    g.engine(first._device).all_to_all(flat_in, send, flat_out, recv, what, seq)
    start = 0
    for t, k in zip(output_tensor_list, recv):
        t._data[...] = flat_out[start : start + k].reshape(t._data.shape)
        start += k
    return done_work(async_op, list(output_tensor_list))
