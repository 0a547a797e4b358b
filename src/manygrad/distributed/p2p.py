"""Point-to-point messages (``send``/``recv``, ``isend``/``irecv``, ``batch_isend_irecv``)
and ``monitored_barrier``.

Every tensor moves through MPI on the host (CUDA tensors are copied to host memory first,
also with the NCCL backend). With checks on (the default; ``MANYGRAD_DIST_CHECK=0`` turns
them off on every rank), each message is preceded by a small header with its dtype and
shape, so a receive into a tensor of another dtype or size raises a clear error; the data
then travels under a tag of its own, so receives may be waited for in any order.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from .. import backend
from .. import dtypes as D
from ..tensor import Tensor
from .checks import _DT_IDX, _check_tensor
from .groups import group_rank_of
from .mpi_backend import DistBackendError, DistributedError
from .process_group import _member, _pg
from .work import Work

_HDR = 9  # dtype, elements, bytes, dims, 4 sizes, the tag of the data
_MONITOR_TAG = 7200


def _tag(g, what: str, tag) -> int:
    ub = g.mpi.p2p.Get_attr(g.mpi.MPI.TAG_UB)
    if isinstance(tag, bool) or not isinstance(tag, (int, np.integer)) or not 0 <= tag <= ub:
        raise ValueError(f"{what}: tag must be an int from 0 to {ub}, got {tag!r}")
    return int(tag)


def _header(t: Tensor, data_tag: int) -> np.ndarray:
    a = t._data
    dims = (tuple(a.shape) + (-1,) * 4)[:4]
    return np.array([_DT_IDX[a.dtype.name], a.size, a.nbytes, a.ndim, *dims, data_tag], np.int64)


def _describe(h) -> str:
    shape = tuple(int(d) for d in h[4 : 4 + min(int(h[3]), 4)])
    more = "..." if h[3] > 4 else ""
    return f"{D.ALL[h[0]].name} tensor of shape {shape}{more}"


def _wait(g, req, what: str, timeout, status=None) -> None:
    if timeout is None:  # NOTE: the group's timeout: past it the job is aborted, naming ranks
        g.mpi.wait(req, what, g.seq, status=status)
    elif not g.mpi.poll(lambda: req.Test(status), timeout):
        raise DistBackendError(f"{what}: not complete after {timeout:g} s (still pending)")


def _send(g, t: Tensor, peer: int, tag: int, what: str) -> Work:
    MPI = g.mpi.MPI  # noqa: N806
    a = t._data
    buf = np.ascontiguousarray(a if type(a) is np.ndarray else backend.to_numpy(a))
    reqs, hdr = [], None
    if g.check:
        g.p2p_sent += 1
        data_tag = g.p2p_sent % g.mpi.p2p.Get_attr(MPI.TAG_UB)
        hdr = _header(t, data_tag)
        reqs.append(g.mpi.p2p_meta.Isend([hdr, MPI.INT64_T], dest=peer, tag=tag))
        reqs.append(g.mpi.p2p.Isend(g.mpi._spec(buf), dest=peer, tag=data_tag))
    else:
        reqs.append(g.mpi.p2p.Isend(g.mpi._spec(buf), dest=peer, tag=tag))
    label = f"{what} to rank {g.ranks[peer]} (tag {tag})"

    def finish(timeout):
        for r in reqs:
            _wait(g, r, label, timeout)

    work = Work([t], finish=finish, test=lambda: all(r.Test() for r in reqs))
    work._keep = (buf, hdr)  # NOTE: the buffers live as long as the handle
    return work


def _recv(g, t: Tensor, peer: int | None, tag: int, what: str) -> Work:
    MPI = g.mpi.MPI  # noqa: N806
    a = t._data
    direct = type(a) is np.ndarray and a.flags.c_contiguous
    buf = a if direct else np.empty(a.shape, a.dtype)
    source = MPI.ANY_SOURCE if peer is None else peer
    st_h, st_d = MPI.Status(), MPI.Status()
    state = {"data": None, "source": peer, "err": None}
    label = f"{what} from {'any rank' if peer is None else f'rank {g.ranks[peer]}'} (tag {tag})"
    hdr = np.empty(_HDR, np.int64)
    r_h = None
    if g.check:
        r_h = g.mpi.p2p_meta.Irecv([hdr, MPI.INT64_T], source=source, tag=tag)
    else:
        state["data"] = g.mpi.p2p.Irecv(g.mpi._spec(buf), source=source, tag=tag)

    def on_header():
        src = state["source"] = st_h.Get_source()
        want = _header(t, 0)
        if hdr[0] != want[0] or hdr[1] != want[1]:
            state["err"] = DistributedError(
                f"{what}: rank {g.ranks[src]} sent a {_describe(hdr)} (tag {tag}) but this rank "
                f"receives into a {_describe(want)}; the sent and received tensors must have "
                "the same dtype and number of elements"
            )
            target = [np.empty(int(hdr[2]), np.uint8), MPI.BYTE]  # NOTE: drained, then raised
        else:
            target = g.mpi._spec(buf)
        state["data"] = g.mpi.p2p.Irecv(target, source=src, tag=int(hdr[-1]))

    def too_big(e) -> DistributedError:
        return DistributedError(
            f"{label}: {e}: the message is larger than the {tuple(a.shape)} {t.dtype} tensor "
            "that receives it; send and receive tensors of the same dtype and size"
        )

    def step() -> bool:
        try:
            if state["data"] is None:
                if not r_h.Test(st_h):
                    return False
                on_header()
            return state["data"].Test(st_d)
        except MPI.Exception as e:
            state["err"] = too_big(e)
            return True

    def finish(timeout):
        if state["err"] is None:
            try:
                if state["data"] is None:
                    _wait(g, r_h, label, timeout, st_h)
                    on_header()
                _wait(g, state["data"], label, timeout, st_d)
            except MPI.Exception as e:
                raise too_big(e) from None
        if state["err"] is not None:
            raise state["err"]
        if state["source"] is None:
            state["source"] = st_d.Get_source()
        got = st_d.Get_count(MPI.BYTE)
        if got != buf.nbytes:
            raise DistributedError(
                f"{label}: received {got} bytes but the {tuple(a.shape)} {t.dtype} tensor holds "
                f"{buf.nbytes}; send and receive tensors of the same dtype and size"
            )
        if buf is not a:
            a[...] = buf if type(a) is np.ndarray else backend.array_module(a).asarray(buf)

    return Work([t], finish=finish, test=step, source=lambda: state["source"])


def isend(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
          group_dst: int | None = None) -> Work | None:  # fmt: skip
    """Start sending ``tensor`` to global rank ``dst`` (or ``group_dst`` within ``group``);
    returns a ``Work``. Do not change ``tensor`` before ``wait()`` returns.

    Example:
        >>> work = dist.isend(mg.ones(3), dst=1)
        >>> work.wait()
    """
    g = _member("isend", group)
    if g is None:
        return None
    _check_tensor("isend", tensor)
    peer = group_rank_of(g, "isend", "dst", dst, group_dst)
    return _send(g, tensor, peer, _tag(g, "isend", tag), "isend")


def irecv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
          group_src: int | None = None) -> Work | None:  # fmt: skip
    """Start receiving into ``tensor`` from global rank ``src`` (or ``group_src``; None: from
    any rank); returns a ``Work`` (``work.source_rank()`` names the sender's group rank).

    Example:
        >>> buf = mg.empty(3)
        >>> dist.irecv(buf, src=0).wait()
    """
    g = _member("irecv", group)
    if g is None:
        return None
    _check_tensor("irecv", tensor)
    peer = None
    if src is not None or group_src is not None:
        peer = group_rank_of(g, "irecv", "src", src, group_src)
    return _recv(g, tensor, peer, _tag(g, "irecv", tag), "irecv")


def send(tensor: Tensor, dst: int | None = None, group=None, tag: int = 0,
         group_dst: int | None = None) -> None:  # fmt: skip
    """Send ``tensor`` to global rank ``dst`` (or ``group_dst``) and wait until it is sent.

    Example:
        >>> if rank == 0:
        ...     dist.send(mg.arange(3.0), dst=1)
    """
    g = _member("send", group)
    if g is None:
        return
    _check_tensor("send", tensor)
    peer = group_rank_of(g, "send", "dst", dst, group_dst)
    if peer == g.rank:
        raise ValueError("send: Invalid destination rank: destination rank should not be the "
                         "same as the rank of the current process.")  # fmt: skip
    _send(g, tensor, peer, _tag(g, "send", tag), "send").wait()


def recv(tensor: Tensor, src: int | None = None, group=None, tag: int = 0,
         group_src: int | None = None) -> int:  # fmt: skip
    """Receive into ``tensor`` from global rank ``src`` (or ``group_src``; None: any rank);
    returns the sender's global rank (-1 on a rank outside ``group``).

    Example:
        >>> buf = mg.empty(3)
        >>> sender = dist.recv(buf)       # from whichever rank sends first
    """
    g = _member("recv", group)
    if g is None:
        return -1
    _check_tensor("recv", tensor)
    peer = None
    if src is not None or group_src is not None:
        peer = group_rank_of(g, "recv", "src", src, group_src)
        if peer == g.rank:
            raise ValueError("recv: Invalid source rank: source rank should not be the same "
                             "as the rank of the current process.")  # fmt: skip
    work = _recv(g, tensor, peer, _tag(g, "recv", tag), "recv")
    work.wait()
    return g.ranks[work.source_rank()]


class P2POp:
    """One send or receive for ``batch_isend_irecv``.

    Args:
        op: ``dist.isend`` or ``dist.irecv``.
        tensor: the tensor to send, or to receive into.
        peer: the other side's global rank (or ``group_peer``, its rank within ``group``).
        tag: matches sends with receives.
    """

    def __init__(self, op, tensor: Tensor, peer: int | None = None, group=None, tag: int = 0,
                 group_peer: int | None = None):  # fmt: skip
        if op not in (isend, irecv):
            raise ValueError("P2POp: Invalid ``op``. Expected ``op`` to be of type "
                             "``torch.distributed.isend`` or ``torch.distributed.irecv``.")  # fmt: skip
        _check_tensor("P2POp", tensor)
        g = _pg("P2POp", group)
        self.op, self.tensor, self.group, self.tag = op, tensor, group, tag
        self.group_peer = group_rank_of(g, "P2POp", "peer", peer, group_peer)
        self.peer = g.ranks[self.group_peer]

    def __repr__(self) -> str:
        return (f"P2POp({self.op.__name__} peer={self.peer}, {tuple(self.tensor.shape)}, "
                f"{self.tensor.dtype}, tag={self.tag})")  # fmt: skip


def batch_isend_irecv(p2p_op_list: list) -> list:
    """Start every send and receive of ``p2p_op_list`` (P2POp's) at once; returns their
    ``Work``s. The order of sends and receives in the list cannot deadlock.

    Example:
        >>> right, left = (rank + 1) % world, (rank - 1) % world
        >>> ops = [dist.P2POp(dist.isend, x, right), dist.P2POp(dist.irecv, y, left)]
        >>> for work in dist.batch_isend_irecv(ops):
        ...     work.wait()
    """
    if not isinstance(p2p_op_list, list) or not all(isinstance(p, P2POp) for p in p2p_op_list):
        raise ValueError("batch_isend_irecv: Invalid ``p2p_op_list``. Each op is expected to "
                         "to be of type ``torch.distributed.P2POp``.")  # fmt: skip
    if not p2p_op_list:
        raise ValueError("batch_isend_irecv: p2p_op_list is empty; give at least one P2POp")
    first = p2p_op_list[0].group
    if any(p.group is not first for p in p2p_op_list):
        raise ValueError("batch_isend_irecv: All ops need to use the same group.")
    g = _member("batch_isend_irecv", first)
    if g is None:
        return []
    works = []
    for p in p2p_op_list:
        if p.op is isend:
            works.append(_send(g, p.tensor, p.group_peer, _tag(g, "isend", p.tag), "isend"))
        else:
            works.append(_recv(g, p.tensor, p.group_peer, _tag(g, "irecv", p.tag), "irecv"))
    return works


def monitored_barrier(group=None, timeout=None, wait_all_ranks: bool = False) -> None:
    """A barrier that names the ranks that did not reach it within ``timeout``.

    Rank 0 of the group waits for a message from every other rank, then answers each; a
    rank missing at the deadline makes rank 0 raise ``DistBackendError`` naming it (the
    first one, or all of them with ``wait_all_ranks=True``), and the others raise too.
    Unlike PyTorch (Gloo only) it works with every backend: it runs on the host.

    Args:
        timeout: seconds or a timedelta (default: the group's timeout).

    Example:
        >>> dist.monitored_barrier(timeout=datetime.timedelta(seconds=30), wait_all_ranks=True)
    """
    g = _member("monitored_barrier", group)
    if g is None:
        return
    limit = g.mpi.timeout if timeout is None else timeout
    limit = limit.total_seconds() if isinstance(limit, timedelta) else float(limit)
    g.monitored += 1
    tag = _MONITOR_TAG + g.monitored % 500
    n, ctrl, MPI = g.size, g.mpi.ctrl, g.mpi.MPI  # noqa: N806
    if n == 1:
        return
    ms = round(limit * 1000)
    reply = np.zeros(n + 1, np.int64)  # failed?, then a flag per rank that did not arrive
    if g.rank == 0:
        tokens = {r: np.empty(1, np.int64) for r in range(1, n)}
        reqs = {r: ctrl.Irecv([tokens[r], MPI.INT64_T], source=r, tag=tag) for r in tokens}
        arrived: set = set()

        def everyone():
            arrived.update(r for r, q in reqs.items() if r not in arrived and q.Test())
            return len(arrived) == n - 1

        g.mpi.poll(everyone, limit)
        missing = sorted(set(reqs) - arrived)
        for r in missing:
            reqs[r].Cancel()
            reqs[r].Wait()
        reply[0] = bool(missing)
        reply[[1 + r for r in missing]] = 1
        for s in [ctrl.Isend([reply, MPI.INT64_T], dest=r, tag=tag) for r in sorted(arrived)]:
            g.mpi.wait(s, "monitored_barrier", g.seq)
        if missing:
            shown = [g.ranks[r] for r in (missing if wait_all_ranks else missing[:1])]
            who = f"Rank {shown[0]}" if len(shown) == 1 else f"Ranks {', '.join(map(str, shown))}"
            raise DistBackendError(
                f"monitored_barrier: {who} failed to pass monitoredBarrier in {ms} ms: it did "
                "not reach the barrier in time (stalled, crashed, or out of step with the others)"
            )
        return
    token = np.ones(1, np.int64)
    s = ctrl.Isend([token, MPI.INT64_T], dest=0, tag=tag)
    q = ctrl.Irecv([reply, MPI.INT64_T], source=0, tag=tag)
    if not g.mpi.poll(q.Test, limit):
        q.Cancel()
        q.Wait()
        raise DistBackendError(
            f"monitored_barrier: rank {g.ranks[0]} (rank 0 of the group) did not confirm within "
            f"{ms} ms: it has not reached the barrier (stalled, or out of step) or gave up on "
            "this rank as too late"
        )
    g.mpi.wait(s, "monitored_barrier", g.seq)
    if reply[0]:
        late = [g.ranks[r] for r in range(n) if reply[1 + r]]
        raise DistBackendError(
            f"monitored_barrier: rank(s) {late} failed to pass monitoredBarrier in {ms} ms "
            f"(reported by rank {g.ranks[0]})"
        )
