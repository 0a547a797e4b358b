"""What every rank calls, compared across ranks before the data moves.

Each collective first all-gathers a small record (collective, op, root, device, dtype,
shape, and whether this rank found its own arguments wrong). Any difference, or a rank
with bad arguments, raises on every rank instead of corrupting data or leaving the other
ranks waiting in a collective that one rank never enters.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import dtypes as D
from ..errors import DTypeError
from ..tensor import Tensor
from .mpi_backend import DistributedError
from .names import ReduceOp

# NOTE: new collectives go at the end (records index this tuple)
_COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier", "ddp",
                "reduce", "gather", "scatter", "all_to_all", "gather_object",
                "scatter_object_list", "broadcast_object_list", "all_gather_object",
                "new_group")  # fmt: skip
_META_LEN = 15
_COLL_IDX = {c: i for i, c in enumerate(_COLLECTIVES)}
_OP_LIST = list(ReduceOp)
_OP_IDX = {op: i for i, op in enumerate(_OP_LIST)}
_DEV_IDX = {d: i for i, d in enumerate(backend.DEVICE_TYPES)}
_DT_IDX = {d.name: i for i, d in enumerate(D.ALL)}  # NOTE: by name (bfloat16 loads lazily)
_PAD = (-1,) * 5


def _meta(coll: str, seq: int, t: Tensor | None, op=None, src=-1, extra=0, bad=0) -> np.ndarray:
    """The record compared across ranks: collective, op, src, device, dtype, shape, bad."""
    head = [seq, _COLL_IDX[coll], _OP_IDX.get(op, -1), src, extra]
    if t is None:
        return np.array(head + [-1] * 9 + [bad], np.int64)
    a = t._data
    shape = a.shape
    tail = [_DEV_IDX[t._device.type], _DT_IDX[a.dtype.name], len(shape), a.size]
    return np.array(head + tail + list((shape + _PAD)[:5]) + [bad], np.int64)


def _describe(m: np.ndarray) -> str:
    coll = _COLLECTIVES[m[1]]
    s = f"{coll}"
    if m[5] >= 0:
        shape = tuple(int(v) for v in m[9 : 9 + min(int(m[7]), 5)])
        s += f" {shape}{'...' if m[7] > 5 else ''} {D.ALL[m[6]].name} on {backend.DEVICE_TYPES[m[5]]}"
    if m[2] >= 0:
        s += f" op={_OP_LIST[m[2]].name}"
    if m[3] >= 0:
        s += f" src={m[3]}"
    if m[4] > 0:
        s += f" ranks #{m[4]:x}" if coll == "new_group" else f" list of {m[4]}"
    return s


def check_same(group, coll: str, seq: int, meta: np.ndarray, err: BaseException | None = None,
               **wait) -> None:  # fmt: skip
    """All ranks compare what they are calling; any difference raises on every rank.

    Args:
        err: this rank's own argument error: raised here, and reported on the other ranks.
        wait: passed to the MPI wait (``timeout``, ``abort``).
    """
    if err is not None:
        meta = meta.copy()
        meta[-1] = 1
    table = np.empty((group.size, _META_LEN), np.int64)
    group.mpi.allgather(meta, table, coll, seq, **wait)
    if err is not None:
        raise err
    names = group.ranks
    bad = [names[r] for r in range(group.size) if table[r, -1]]
    if bad:
        raise DistributedError(
            f"{coll}: rank(s) {bad} called collective #{seq} with invalid arguments (the "
            "error is raised there); every rank of the group stops this call"
        )
    raw, n = table.tobytes(), meta.nbytes
    if raw == raw[:n] * group.size:
        return
    rows = "; ".join(f"rank {names[r]}: {_describe(table[r])}" for r in range(group.size))
    raise DistributedError(
        f"{coll}: ranks disagree about collective #{seq}: {rows}. Every rank must call the "
        "same collectives in the same order, with tensors of the same shape, dtype and device "
        "type (pad or split uneven data with DistributedSampler)"
    )


def agree(group, coll: str, seq: int, meta: np.ndarray, err: BaseException | None) -> None:
    """``check_same`` when checks are on; otherwise raise this rank's own error, if any."""
    if group.check:
        check_same(group, coll, seq, meta, err)
    elif err is not None:
        raise err


def _check_tensor(what: str, t, name: str = "tensor") -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: expected a manygrad Tensor for `{name}`, got {type(t).__name__}")
    if t.dtype.name not in _DT_IDX:
        raise DTypeError(
            f"{what}: {t.dtype} tensors cannot be sent between ranks; for complex tensors "
            "send torch.view_as_real(t) (float pairs) instead"
        )
