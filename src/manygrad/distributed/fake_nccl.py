"""``FakeNcclCommunicator``: NCCL's communicator API on ``fakegpu`` arrays, carried out with
MPI on the host, so that the NCCL engine's code runs on machines without a GPU."""

from __future__ import annotations

import numpy as np


def _np_of_nccl(datatype: int) -> np.dtype:
    from .nccl_backend import _NP_OF_NCCL  # noqa: PLC0415 - that module imports this one

    return _NP_OF_NCCL[datatype]


def _op(op: int) -> str:
    """The MPI reduction for NCCL op ``op`` (avg: a sum, divided afterwards)."""
    from .nccl_backend import _NCCL_OP  # noqa: PLC0415

    name = {v: k for k, v in _NCCL_OP.items()}[op]
    return "sum" if name == "avg" else name


class FakeNcclCommunicator:
    """NCCL's communicator API on ``fakegpu`` arrays, carried out with MPI on the host.

    Buffers are the FakeArrays themselves where NCCL takes device pointers.
    """

    def __init__(self, ndev: int, comm_id: bytes, rank: int, mpi):
        self.mpi, self._rank, self._ndev = mpi, rank, ndev
        ids = np.empty((mpi.size, len(comm_id)), np.uint8)
        mpi.allgather(np.frombuffer(comm_id, np.uint8).copy(), ids, "nccl init", 0)
        if not (ids == ids[0]).all():
            raise RuntimeError("FakeNcclCommunicator: ranks received different unique ids")

    def rank_id(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._ndev

    @staticmethod
    def _host(buf, count, datatype):
        a = buf._a.reshape(-1)
        assert a.size == count and a.dtype == _np_of_nccl(datatype), (a.size, count, a.dtype)
        return a

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):  # noqa: N802
        a = self._host(sendbuf, count, datatype).copy()
        self.mpi.allreduce(a, _op(op), "nccl allReduce", -1)
        if op == 4:
            a /= self._ndev
        self._host(recvbuf, count, datatype)[...] = a

    def bcast(self, buff, count, datatype, root, stream):
        self.mpi.bcast(self._host(buff, count, datatype), root, "nccl bcast", -1)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):  # noqa: N802
        s = self._host(sendbuf, count, datatype)
        self.mpi.allgather(
            s, self._host(recvbuf, count * self._ndev, datatype), "nccl allGather", -1
        )

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):  # noqa: N802
        s = self._host(sendbuf, recvcount * self._ndev, datatype)
        r = self._host(recvbuf, recvcount, datatype)
        out = np.empty_like(r)
        self.mpi.reduce_scatter(s, out, _op(op), "nccl reduceScatter", -1)
        r[...] = out / self._ndev if op == 4 else out

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        a = self._host(sendbuf, count, datatype).copy()
        self.mpi.reduce(a, _op(op), root, "nccl reduce", -1)
        if self._rank == root:
            self._host(recvbuf, count, datatype)[...] = a / self._ndev if op == 4 else a

    # NOTE: NCCL's send/recv only run inside groupStart/groupEnd here (as the engine calls
    # them); the group's transfers start together at groupEnd, as NCCL fuses them.
    def groupStart(self):  # noqa: N802
        self._group = []

    def send(self, sendbuf, count, datatype, peer, stream):
        self._group.append(("send", self._host(sendbuf, count, datatype), peer))

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._group.append(("recv", self._host(recvbuf, count, datatype), peer))

    def groupEnd(self):  # noqa: N802
        mpi, reqs = self.mpi, []
        for kind, a, peer in self._group:
            if kind == "send":
                reqs.append(mpi.comm.Isend(mpi._spec(np.ascontiguousarray(a)), dest=peer, tag=0))
            else:
                reqs.append(mpi.comm.Irecv(mpi._spec(a), source=peer, tag=0))
        for r in reqs:
            mpi.wait(r, "nccl send/recv group", -1)
        self._group = None

    def abort(self):
        pass

    def destroy(self):
        pass
