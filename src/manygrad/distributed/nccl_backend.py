"""GPU collectives: NCCL through CuPy, a fake NCCL for ``fakegpu``, or staging through host.

``NcclEngine`` holds one NCCL communicator per process (the GPU of its local rank). Rank 0
creates the unique id and MPI broadcasts it; each collective is queued on the current
stream without a host wait, and a watchdog thread polls a CUDA event recorded after it
against the process group's deadline, so a stalled peer aborts the job with a named error
instead of hanging. On the ``fakegpu`` test device the
same engine drives ``FakeNcclCommunicator``, which has NCCL's call signatures but moves
the arrays through MPI, so the id exchange, dtype/op mapping, staging and in-place
write-back are tested on machines without a GPU.
"""

from __future__ import annotations

import collections
import importlib
import os
import sys
import threading
import time

import numpy as np

from .. import backend
from .. import dtypes as D
from .fake_nccl import FakeNcclCommunicator

# NCCL's enums (nccl.h); CuPy passes these integers straight through.
_NCCL_DTYPE = {
    np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int32): 2,
    np.dtype(np.uint32): 3, np.dtype(np.int64): 4, np.dtype(np.uint64): 5,
    np.dtype(np.float16): 6, np.dtype(np.float32): 7, np.dtype(np.float64): 8, D.bfloat16.np: 9,
}  # fmt: skip
_NCCL_OP = {"sum": 0, "product": 1, "max": 2, "min": 3, "avg": 4}
_NP_OF_NCCL = {v: k for k, v in _NCCL_DTYPE.items()}


def nccl_module():
    """CuPy's NCCL bindings, or a DistributedError saying how to get them."""
    from .mpi_backend import DistributedError  # noqa: PLC0415

    cp = backend.cuda_module()
    mod = getattr(cp.cuda, "nccl", None)
    if mod is None:
        try:
            mod = importlib.import_module(cp.__name__ + ".cuda.nccl")
        except ImportError:
            mod = None
    if mod is None or not getattr(mod, "available", False):
        raise DistributedError(
            "NCCL is not available to CuPy: install it with pip install nvidia-nccl-cu12 (or "
            "-cu13, matching CuPy), or use init_process_group(backend='mpi') to move CUDA "
            "tensors through host memory"
        )
    return mod


def nccl_available() -> bool:
    try:
        nccl_module()
    except Exception:  # noqa: BLE001 - no GPU, no CuPy or no NCCL
        return False
    return True


class HostStagingEngine:
    """CUDA tensors through host memory and MPI (backend 'mpi' on GPUs, no NCCL needed)."""

    def __init__(self, host):
        self.host = host

    def _round(self, arr, fn):
        h = backend.to_numpy(arr).copy()
        fn(h)
        arr[...] = backend.array_module(arr).asarray(h)

    def start_all_reduce(self, arr, op, what, seq):
        def wait():
            self._round(arr, lambda h: self.host.all_reduce(h, op, what, seq))

        return wait

    def all_reduce(self, arr, op, what, seq) -> None:
        self.start_all_reduce(arr, op, what, seq)()

    def broadcast(self, arr, src, what, seq) -> None:
        self._round(arr, lambda h: self.host.broadcast(h, src, what, seq))

    def all_gather(self, send, recv, what, seq) -> None:
        self._round(recv, lambda h: self.host.all_gather(backend.to_numpy(send), h, what, seq))

    def reduce_scatter(self, send, recv, op, what, seq) -> None:
        self._round(
            recv, lambda h: self.host.reduce_scatter(backend.to_numpy(send), h, op, what, seq)
        )

    def reduce(self, arr, root, op, what, seq) -> None:
        self._round(arr, lambda h: self.host.reduce(h, root, op, what, seq))

    def gather(self, send, recv, root, what, seq) -> None:
        if recv is None:
            self.host.gather(backend.to_numpy(send), None, root, what, seq)
        else:
            self._round(
                recv, lambda h: self.host.gather(backend.to_numpy(send), h, root, what, seq)
            )

    def scatter(self, send, recv, root, what, seq) -> None:
        h_send = None if send is None else backend.to_numpy(send)
        self._round(recv, lambda h: self.host.scatter(h_send, h, root, what, seq))

    def all_to_all(self, send, scounts, recv, rcounts, what, seq) -> None:
        h_send = backend.to_numpy(send)
        self._round(recv, lambda h: self.host.all_to_all(h_send, scounts, h, rcounts, what, seq))


BCAST_MAX = (1 << 31) - 1  # elements per NCCL broadcast call


class NcclEngine:
    """Collectives on device arrays through one NCCL communicator (or the fake one)."""

    def __init__(self, mpi, dev: backend.Device, seq: int):
        self.mpi, self.dev = mpi, dev
        self.fake = dev.type == "fakegpu"
        if self.fake:
            uid = os.urandom(128) if mpi.rank == 0 else bytes(128)
        else:
            self.nccl = nccl_module()
            uid = bytes(b % 256 for b in self.nccl.get_unique_id()) if mpi.rank == 0 else bytes(128)
        buf = np.frombuffer(uid, np.uint8).copy()
        mpi.bcast(buf, 0, "nccl unique id broadcast", seq)
        if self.fake:
            self.comm = FakeNcclCommunicator(mpi.size, buf.tobytes(), mpi.rank, mpi)
        else:
            # NOTE: CuPy converts the id's bytes to C char, signed on x86-64 but unsigned on
            # aarch64 (Grace Hopper): try signed values first, unsigned if they overflow.
            uid_t = tuple(int(b) - 256 if b > 127 else int(b) for b in buf)
            try:
                self.comm = self.nccl.NcclCommunicator(mpi.size, uid_t, mpi.rank)
            except OverflowError:
                uid_u = tuple(int(b) for b in buf)
                self.comm = self.nccl.NcclCommunicator(mpi.size, uid_u, mpi.rank)
        self.watchdog = None

    # -- staging: NCCL lacks int16 and bool; reduce those through int32 / uint8
    @staticmethod
    def _stage(arr, reduce: bool):
        """(contiguous NCCL-typed buffer, write-back function or None)."""
        xp = backend.array_module(arr)
        c = xp.ascontiguousarray(arr)
        if arr.dtype == np.int16 and reduce:
            c = arr.astype(np.int32)
        elif arr.dtype == np.bool_ or arr.dtype == np.int16:
            c = c.view(np.uint8)
        if c is arr:
            return c, None

        def back():
            if c.dtype.itemsize == arr.dtype.itemsize or c.dtype == np.uint8:
                arr[...] = c.view(arr.dtype).reshape(arr.shape)
            else:
                arr[...] = c.astype(arr.dtype)

        return c, back

    def _ptr(self, a):
        return a if self.fake else a.data.ptr

    def _stream(self):
        return 0 if self.fake else backend.cuda_module().cuda.get_current_stream().ptr

    def _wait(self, what: str, seq: int) -> None:
        """Hand the just-queued collective to the watchdog; the host does not wait for it."""
        if self.fake:
            return
        if self.watchdog is None:
            cuda = backend.cuda_module().cuda
            # NOTE: the thread's CUDA calls would otherwise open a context on GPU 0 in every
            # rank (hundreds of MB each): make the rank's own GPU the thread's current one
            index = self.dev.index or 0
            self.watchdog = Watchdog(
                self.mpi.timeout, self._on_timeout, setup=lambda: cuda.runtime.setDevice(index)
            )
        ev = backend.cuda_module().cuda.Event(disable_timing=True)
        ev.record()
        self.watchdog.watch(lambda: ev.done, what, seq)

    def _on_timeout(self, what: str, seq: int) -> None:
        try:
            self.comm.abort()
        finally:
            print(
                f"[rank {self.mpi.rank}] manygrad.distributed: NCCL {what} (call #{seq}) did "
                f"not complete within {self.mpi.timeout:g} s: a peer rank died or stalled, or "
                "NCCL cannot reach it (run with NCCL_DEBUG=INFO). Aborting the whole job "
                "(MPI_Abort) so that no rank hangs.",
                file=sys.stderr,
                flush=True,
            )
            self.mpi.world.Abort(1)

    def start_all_reduce(self, arr, op: str, what: str, seq: int):
        buf, back = self._stage(arr, reduce=True)
        nop = op
        if arr.dtype == np.bool_:
            nop = {"sum": "max", "product": "min"}.get(op, op)
        self.comm.allReduce(self._ptr(buf), self._ptr(buf), buf.size, _NCCL_DTYPE[buf.dtype],
                            _NCCL_OP[nop], self._stream())  # fmt: skip

        def wait():
            self._wait(what, seq)
            if back is not None:
                back()

        return wait

    def all_reduce(self, arr, op, what, seq) -> None:
        self.start_all_reduce(arr, op, what, seq)()

    def broadcast(self, arr, src, what, seq) -> None:
        buf, back = self._stage(arr, reduce=False)
        flat = buf.reshape(-1)
        # NOTE: CuPy's bcast takes a C int count (the other collectives a size_t): larger
        # buffers go in pieces
        for start in range(0, max(flat.size, 1), BCAST_MAX):
            part = flat[start : start + BCAST_MAX]
            self.comm.bcast(self._ptr(part), part.size, _NCCL_DTYPE[buf.dtype], src,
                            self._stream())  # fmt: skip
        self._wait(what, seq)
        if back is not None:
            back()

    def all_gather(self, send, recv, what, seq) -> None:
        s, _ = self._stage(send, reduce=False)
        r, back = self._stage(recv, reduce=False)
        self.comm.allGather(
            self._ptr(s), self._ptr(r), s.size, _NCCL_DTYPE[s.dtype], self._stream()
        )
        self._wait(what, seq)
        if back is not None:
            back()

    def reduce_scatter(self, send, recv, op, what, seq) -> None:
        s, _ = self._stage(send, reduce=True)
        r, back = self._stage(recv, reduce=True)
        if recv.dtype == np.bool_:
            op = {"sum": "max", "product": "min"}.get(op, op)
        self.comm.reduceScatter(self._ptr(s), self._ptr(r), r.size, _NCCL_DTYPE[r.dtype],
                                _NCCL_OP[op], self._stream())  # fmt: skip
        self._wait(what, seq)
        if back is not None:
            back()

    # NOTE: unverified on a GPU so far: reduce, gather, scatter and all-to-all below follow
    # the NCCL calls of the collectives above (ncclReduce; grouped ncclSend/ncclRecv, as
    # NCCL's documentation builds gather, scatter and all-to-all) and are tested on the
    # fake communicator only.
    def reduce(self, arr, root, op, what, seq) -> None:
        buf, back = self._stage(arr, reduce=True)
        nop = {"sum": "max", "product": "min"}.get(op, op) if arr.dtype == np.bool_ else op
        self.comm.reduce(self._ptr(buf), self._ptr(buf), buf.size, _NCCL_DTYPE[buf.dtype],
                         _NCCL_OP[nop], root, self._stream())  # fmt: skip
        self._wait(what, seq)
        if back is not None and self.mpi.rank == root:
            back()

    def _group_start(self) -> None:
        if self.fake:
            self.comm.groupStart()
        else:
            self.nccl.groupStart()

    def _group_end(self) -> None:
        if self.fake:
            self.comm.groupEnd()
        else:
            self.nccl.groupEnd()

    def _p2p(self, kind: str, a, peer: int) -> None:
        if a.size:
            fn = self.comm.send if kind == "send" else self.comm.recv
            fn(self._ptr(a), a.size, _NCCL_DTYPE[a.dtype], peer, self._stream())

    @staticmethod
    def _bytes(arr):
        """(flat contiguous uint8 view of ``arr``'s data, write-back function or None):
        gather, scatter and all-to-all move bytes, whatever the dtype."""
        c = backend.array_module(arr).ascontiguousarray(arr)
        flat = c.reshape(-1).view(np.uint8)
        if c is arr:
            return flat, None

        def back():
            arr[...] = c

        return flat, back

    def gather(self, send, recv, root, what, seq) -> None:
        s, _ = self._bytes(send)
        me, n = self.mpi.rank, s.size
        self._group_start()
        if me != root:
            self._p2p("send", s, root)
        else:
            r, _ = self._bytes(recv)  # NOTE: the caller's fresh contiguous buffer
            for peer in range(self.mpi.size):
                if peer != me:
                    self._p2p("recv", r[peer * n : (peer + 1) * n], peer)
        self._group_end()
        if me == root:
            r[me * n : (me + 1) * n] = s
        self._wait(what, seq)

    def scatter(self, send, recv, root, what, seq) -> None:
        r, back = self._bytes(recv)
        me, n = self.mpi.rank, r.size
        self._group_start()
        if me == root:
            s, _ = self._bytes(send)
            for peer in range(self.mpi.size):
                if peer != me:
                    self._p2p("send", s[peer * n : (peer + 1) * n], peer)
        else:
            self._p2p("recv", r, root)
        self._group_end()
        if me == root:
            r[...] = s[me * n : (me + 1) * n]
        self._wait(what, seq)
        if back is not None:
            back()

    def all_to_all(self, send, scounts, recv, rcounts, what, seq) -> None:
        s, _ = self._bytes(send)
        r, _ = self._bytes(recv)  # NOTE: the caller's fresh contiguous buffer
        k = send.dtype.itemsize
        sd = np.concatenate([[0], np.cumsum(scounts)]).astype(np.int64) * k
        rd = np.concatenate([[0], np.cumsum(rcounts)]).astype(np.int64) * k
        me = self.mpi.rank
        self._group_start()
        for peer in range(self.mpi.size):
            if peer != me:
                self._p2p("send", s[sd[peer] : sd[peer + 1]], peer)
                self._p2p("recv", r[rd[peer] : rd[peer + 1]], peer)
        self._group_end()
        r[rd[me] : rd[me + 1]] = s[sd[me] : sd[me + 1]]
        self._wait(what, seq)

    def free(self) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        self.comm.destroy()


class Watchdog:
    """A daemon thread that checks queued GPU collectives against their deadlines.

    NCCL kernels wait forever for a missing peer; rather than make the host wait for each
    collective (a sync per call), the host queues work and moves on while this thread
    polls the oldest unfinished collective and calls ``on_timeout(what, seq)`` when it is
    overdue.

    Args:
        timeout: seconds a collective may take once queued.
        on_timeout: called (from the thread) with the overdue collective's name and number.
        interval: polling period in seconds.
        setup: called first in the thread (e.g. to make the rank's GPU current there).
    """

    def __init__(self, timeout: float, on_timeout, interval: float = 0.05, setup=None):
        self.timeout, self.on_timeout, self.interval = timeout, on_timeout, interval
        self.setup = setup
        self._pending: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="manygrad-nccl-watchdog",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def watch(self, done, what: str, seq: int) -> None:
        """Track a collective; ``done()`` says whether it has completed."""
        self._pending.append((done, what, seq, time.monotonic() + self.timeout))

    def _loop(self) -> None:
        if self.setup is not None:
            self.setup()
        while not self._stop.wait(self.interval):
            while self._pending:
                done, what, seq, deadline = self._pending[0]
                if done():
                    self._pending.popleft()
                elif time.monotonic() > deadline:
                    self._pending.clear()
                    self.on_timeout(what, seq)
                    return
                else:
                    break

    def stop(self) -> None:
        self._stop.set()
