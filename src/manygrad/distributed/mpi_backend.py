"""Collectives on host (NumPy) buffers through mpi4py, with a deadline on every wait.

Every collective is started non-blocking (``Iallreduce``, ``Ibcast``, ...) and polled until
it completes or the process group's timeout passes. On timeout this rank asks every other
rank, over a separate control communicator, which collective it is waiting in; ranks that
do not answer are named as dead or stalled, the error is printed, and ``MPI_Abort`` tears
the whole job down so that no rank hangs silently.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..errors import ManygradError

_TAG_QUERY, _TAG_REPLY = 7101, 7102
# NOTE: 2-byte floats have no standard MPI type: they move as uint16 and reduce in float32.
_HALF = ("float16", "bfloat16")  # NOTE: by name: bfloat16's dtype loads ml_dtypes
_SPIN_SECONDS = 0.001  # spin this long, then yield the core between polls
_SLEEP_AFTER = 0.1  # and sleep between polls after this long


class DistError(ManygradError, RuntimeError):
    """Base of the errors of ``mg.distributed`` (``torch.distributed.DistError``)."""


class DistBackendError(DistError):
    """The communication itself failed or timed out (``torch.distributed.DistBackendError``)."""


class DistNetworkError(DistError):
    """A network failure (``torch.distributed.DistNetworkError``)."""


class DistStoreError(DistError):
    """A key-value store failure (``torch.distributed.DistStoreError``)."""


class DistributedError(DistError):
    """A collective was called wrongly, or ranks disagree about it."""


class DistributedValueError(DistributedError, ValueError):
    """A bad argument (a rank out of range, a wrong list, no process group yet); also a
    ``ValueError``, as PyTorch's argument checks raise."""


class DistributedTimeoutError(DistributedError, DistBackendError):
    """A collective did not complete on every rank within the timeout."""


def _mpi():
    from mpi4py import MPI  # noqa: PLC0415 - MPI initialises on import; only when asked

    return MPI


class MPIComm:
    """The world communicator plus a control channel for fault reports.

    Args:
        timeout: seconds any single collective may wait before the job is aborted.
        abort_on_timeout: call ``MPI_Abort`` after printing the error (default True);
            False raises ``DistributedTimeoutError`` instead (single-rank tests).
    """

    def __init__(self, timeout: float, abort_on_timeout: bool = True, base=None,
                 ranks: list[int] | None = None):  # fmt: skip
        MPI = _mpi()  # noqa: N806 - mpi4py's name
        self.MPI = MPI
        self.world = MPI.COMM_WORLD
        base = self.world if base is None else base
        self.comm = base.Dup()
        self.ctrl = base.Dup()
        self.ctrl.Set_errhandler(MPI.ERRORS_RETURN)
        self.p2p = base.Dup()  # send/recv of users, apart from the collectives' traffic
        self.p2p_meta = base.Dup()  # and the small headers that describe each message
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        # NOTE: global rank of each rank of this communicator (messages name global ranks)
        self.ranks = list(range(self.size)) if ranks is None else list(ranks)
        self.timeout = float(timeout)
        self.abort_on_timeout = abort_on_timeout
        self.current = (0, "init")  # (sequence number, collective) this rank waits in
        self._replies: list = []
        self._types = {
            np.dtype(np.float32): MPI.FLOAT,
            np.dtype(np.float64): MPI.DOUBLE,
            np.dtype(np.int8): MPI.INT8_T,
            np.dtype(np.int16): MPI.INT16_T,
            np.dtype(np.int32): MPI.INT32_T,
            np.dtype(np.int64): MPI.INT64_T,
            np.dtype(np.uint8): MPI.UINT8_T,
            np.dtype(np.uint16): MPI.UINT16_T,
            np.dtype(np.uint32): MPI.UINT32_T,
            np.dtype(np.uint64): MPI.UINT64_T,
        }
        self._ops = {"sum": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}

    # ------------------------------------------------------------------ buffers
    def _spec(self, a: np.ndarray):
        t = self._types.get(a.dtype)
        if t is None:  # 2-byte floats and bool travel as raw words
            a = a.view(np.uint8 if a.dtype == np.bool_ else np.uint16)
            t = self._types[a.dtype]
        return [a, t]

    # ------------------------------------------------------------------ waiting
    def wait(self, req, what: str, seq: int, status=None, timeout: float | None = None,
             abort: bool | None = None) -> None:  # fmt: skip
        """Poll ``req`` until done; past the deadline, report and abort.

        Args:
            status: an ``MPI.Status`` filled when the request completes (receives).
            timeout: seconds instead of the process group's timeout.
            abort: False raises ``DistributedTimeoutError`` instead of aborting the job.
        """
        if req.Test(status):
            return
        self.current = (seq, what)
        start = time.perf_counter()
        deadline = start + (self.timeout if timeout is None else timeout)
        nap, next_serve = 0.0, start + 0.05
        # NOTE: spin first (lowest latency), then yield the core (ranks often share cores
        # with each other), and only sleep once the wait is clearly long.
        while not req.Test(status):
            now = time.perf_counter()
            if now > next_serve:
                self._serve()
                next_serve = now + 0.05
                if now > deadline:
                    self._timed_out(what, seq, abort, deadline - start)
            waited = now - start
            if waited > _SLEEP_AFTER:
                nap = min(0.002, nap * 1.5 + 1e-5)
                time.sleep(nap)
            elif waited > _SPIN_SECONDS:
                os.sched_yield()

    def _serve(self) -> None:
        """Answer other ranks asking which collective this rank waits in."""
        MPI = self.MPI  # noqa: N806
        st = MPI.Status()
        while self.ctrl.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_QUERY, status=st):
            q = np.empty(1, np.int64)
            self.ctrl.Recv([q, MPI.INT64_T], source=st.Get_source(), tag=_TAG_QUERY)
            seq, what = self.current
            msg = np.frombuffer(f"{seq}|{what}".encode()[:120].ljust(120), np.uint8).copy()
            self._replies.append(
                (self.ctrl.Isend([msg, MPI.UINT8_T], dest=st.Get_source(), tag=_TAG_REPLY), msg)
            )
        self._replies = [r for r in self._replies if not r[0].Test()]

    def poll(self, done, limit: float) -> bool:
        """Call ``done()`` until it is true or ``limit`` seconds pass (answering fault
        queries meanwhile); returns whether it became true."""
        deadline = time.perf_counter() + limit
        nap = 0.0
        while not done():
            if time.perf_counter() > deadline:
                return False
            self._serve()
            nap = min(0.002, nap * 1.5 + 1e-5)
            time.sleep(nap)
        return True

    def _timed_out(self, what: str, seq: int, abort: bool | None = None, waited=None) -> None:
        MPI = self.MPI  # noqa: N806
        others = [r for r in range(self.size) if r != self.rank]
        q = np.array([seq], np.int64)
        pending = []
        for r in others:
            try:
                pending.append(self.ctrl.Isend([q, MPI.INT64_T], dest=r, tag=_TAG_QUERY))
            except Exception:  # noqa: BLE001 - an unreachable rank is what we report
                pass
        answers: dict[int, str] = {}
        limit = self.timeout if waited is None else waited
        grace = time.perf_counter() + min(5.0, max(1.0, 0.2 * limit))
        st = MPI.Status()
        while len(answers) < len(others) and time.perf_counter() < grace:
            self._serve()
            try:
                while self.ctrl.Iprobe(source=MPI.ANY_SOURCE, tag=_TAG_REPLY, status=st):
                    buf = np.empty(120, np.uint8)
                    src = st.Get_source()
                    self.ctrl.Recv([buf, MPI.UINT8_T], source=src, tag=_TAG_REPLY)
                    answers[src] = buf.tobytes().decode(errors="replace").strip()
            except Exception:  # noqa: BLE001
                break
            time.sleep(0.01)
        aborting = self.abort_on_timeout if abort is None else abort
        msg = self._timeout_message(what, seq, others, answers, limit, aborting)
        err = DistributedTimeoutError(msg)
        if not aborting:
            raise err
        print(f"[rank {self.rank}] {err}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        time.sleep(0.5)  # NOTE: lets the launcher forward the message before it tears down
        self.world.Abort(1)

    def _timeout_message(self, what, seq, others, answers, limit, aborting=True) -> str:
        g = self.ranks  # NOTE: messages name global ranks
        silent = [g[r] for r in others if r not in answers]
        same, elsewhere = [], []
        for r, a in sorted(answers.items()):
            s, _, w = a.partition("|")
            if s == str(seq) and w == what:
                same.append(g[r])
            else:
                elsewhere.append(f"rank {g[r]} is waiting in {w} (call #{s})")
        where = f"rank {g[self.rank]} of {self.size}"
        if g != list(range(self.size)):
            where += f" in the group of ranks {g}"
        parts = [
            f"manygrad.distributed: {what} (call #{seq}) timed out after {limit:g} s on {where}."
        ]
        if silent:
            parts.append(
                f"Rank(s) {silent} never reached it and do not answer: they died, stalled "
                "outside a collective (data loading, a deadlock, a debugger) or are unreachable."
            )
        if elsewhere:
            parts.append(
                "Ranks disagree on the order of collectives: " + "; ".join(elsewhere) + "."
            )
        if same:
            parts.append(f"Rank(s) {same} are waiting in the same collective.")
        if not aborting:
            parts.append("The call is still pending on this rank; wait for it again or stop.")
            return " ".join(parts)
        parts.append(
            "Aborting the whole job (MPI_Abort) so that no rank hangs. If the ranks are only "
            "slow, raise the limit: init_process_group(timeout=...) or MANYGRAD_DIST_TIMEOUT="
            "<seconds>."
        )
        return " ".join(parts)

    # ------------------------------------------------------------------ collectives
    def start_allreduce(self, a: np.ndarray, op: str):
        """Begin an in-place all-reduce of the contiguous array ``a``; returns (req, finish)."""
        if a.dtype.name in _HALF:
            # NOTE: MPI has no 2-byte float type; reduce a float32 copy, then round once.
            tmp = a.astype(np.float32)
            req = self.comm.Iallreduce(self.MPI.IN_PLACE, [tmp, self.MPI.FLOAT], self._ops[op])

            def finish():
                a[...] = tmp

            return req, finish
        if a.dtype == np.bool_:  # sum = or, product = and, as PyTorch does for bool
            op = {"sum": "max", "product": "min"}.get(op, op)
        return self.comm.Iallreduce(self.MPI.IN_PLACE, self._spec(a), self._ops[op]), None

    def allreduce(self, a: np.ndarray, op: str, what: str, seq: int) -> None:
        req, finish = self.start_allreduce(a, op)
        self.wait(req, what, seq)
        if finish is not None:
            finish()

    def bcast(self, a: np.ndarray, src: int, what: str, seq: int) -> None:
        self.wait(self.comm.Ibcast(self._spec(a), root=src), what, seq)

    def allgather(self, send: np.ndarray, recv: np.ndarray, what: str, seq: int, **wait) -> None:
        self.wait(self.comm.Iallgather(self._spec(send), self._spec(recv)), what, seq, **wait)

    def reduce(self, a: np.ndarray, op: str, root: int, what: str, seq: int) -> None:
        """Reduce the contiguous array ``a`` into ``a`` on ``root`` (others keep theirs)."""
        MPI = self.MPI  # noqa: N806
        tmp = a.astype(np.float32) if a.dtype.name in _HALF else a
        if a.dtype == np.bool_:
            op = {"sum": "max", "product": "min"}.get(op, op)
        spec = [tmp, MPI.FLOAT] if tmp is not a else self._spec(a)
        if self.rank == root:
            req = self.comm.Ireduce(MPI.IN_PLACE, spec, self._ops[op], root=root)
        else:
            req = self.comm.Ireduce(spec, None, self._ops[op], root=root)
        self.wait(req, what, seq)
        if tmp is not a and self.rank == root:
            a[...] = tmp

    def gather(self, send: np.ndarray, recv, root: int, what: str, seq: int) -> None:
        """``recv`` (on ``root`` only) gets every rank's ``send``, stacked along dim 0."""
        r = self._spec(recv) if self.rank == root else None
        self.wait(self.comm.Igather(self._spec(send), r, root=root), what, seq)

    def scatter(self, send, recv: np.ndarray, root: int, what: str, seq: int) -> None:
        """Rank r's ``recv`` gets ``send[r]`` of ``root`` (``send`` stacked along dim 0)."""
        s = self._spec(send) if self.rank == root else None
        self.wait(self.comm.Iscatter(s, self._spec(recv), root=root), what, seq)

    def alltoallv(self, send, scounts, recv, rcounts, what: str, seq: int) -> None:
        """Send ``scounts[j]`` elements of the flat ``send`` to rank j, in order; receive
        ``rcounts[j]`` elements from rank j into the flat ``recv``."""
        s, t = self._spec(send)
        r, _ = self._spec(recv)
        sd = np.concatenate([[0], np.cumsum(scounts)[:-1]]).astype(np.int64)
        rd = np.concatenate([[0], np.cumsum(rcounts)[:-1]]).astype(np.int64)
        # NOTE: counts and displacements go as Python ints: MPI takes C ints here
        req = self.comm.Ialltoallv([s, (list(map(int, scounts)), list(map(int, sd))), t],
                                   [r, (list(map(int, rcounts)), list(map(int, rd))), t])  # fmt: skip
        self.wait(req, what, seq)

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op: str, what, seq) -> None:
        if send.dtype.name in _HALF or send.dtype == np.bool_:
            tmp_s = send.astype(np.float32)
            tmp_r = np.empty(recv.shape, np.float32)
            op = {"sum": "max", "product": "min"}.get(op, op) if send.dtype == np.bool_ else op
            req = self.comm.Ireduce_scatter_block(
                [tmp_s, self.MPI.FLOAT], [tmp_r, self.MPI.FLOAT], self._ops[op]
            )
            self.wait(req, what, seq)
            recv[...] = tmp_r.astype(recv.dtype)
            return
        req = self.comm.Ireduce_scatter_block(self._spec(send), self._spec(recv), self._ops[op])
        self.wait(req, what, seq)

    def barrier(self, what: str, seq: int, **wait) -> None:
        self.wait(self.comm.Ibarrier(), what, seq, **wait)

    def free(self) -> None:
        for r in self._replies:
            r[0].Cancel()
        self._replies = []
        for c in (self.comm, self.ctrl, self.p2p, self.p2p_meta):
            try:
                c.Free()
            except Exception:  # noqa: BLE001 - MPI may already be finalised at exit
                pass


class HostEngine:
    """Collectives on NumPy arrays through MPI (any layout; copies when not contiguous)."""

    def __init__(self, mpi: MPIComm):
        self.mpi = mpi

    def start_all_reduce(self, arr, op: str, what: str, seq: int):
        buf = np.ascontiguousarray(arr)
        req, finish = self.mpi.start_allreduce(buf, "sum" if op == "avg" else op)

        def wait():
            self.mpi.wait(req, what, seq)
            if finish is not None:
                finish()
            if op == "avg":
                np.divide(buf, self.mpi.size, out=buf, casting="unsafe")
            if buf is not arr:
                arr[...] = buf

        wait.test = req.Test  # NOTE: whether it is done, without waiting (Work.is_completed)
        return wait

    def all_reduce(self, arr, op, what, seq) -> None:
        self.start_all_reduce(arr, op, what, seq)()

    def broadcast(self, arr, src, what, seq) -> None:
        buf = np.ascontiguousarray(arr)
        self.mpi.bcast(buf, src, what, seq)
        if buf is not arr:
            arr[...] = buf

    def all_gather(self, send, recv, what, seq) -> None:
        self.mpi.allgather(np.ascontiguousarray(send), recv, what, seq)

    def reduce_scatter(self, send, recv, op, what, seq) -> None:
        out = np.empty(recv.shape, recv.dtype)
        self.mpi.reduce_scatter(send, out, "sum" if op == "avg" else op, what, seq)
        if op == "avg":
            np.divide(out, self.mpi.size, out=out, casting="unsafe")
        recv[...] = out

    def reduce(self, arr, root, op, what, seq) -> None:
        buf = np.ascontiguousarray(arr)
        self.mpi.reduce(buf, "sum" if op == "avg" else op, root, what, seq)
        if self.mpi.rank != root:
            return
        if op == "avg":
            np.divide(buf, self.mpi.size, out=buf, casting="unsafe")
        if buf is not arr:
            arr[...] = buf

    def gather(self, send, recv, root, what, seq) -> None:
        self.mpi.gather(np.ascontiguousarray(send), recv, root, what, seq)

    def scatter(self, send, recv, root, what, seq) -> None:
        buf = np.ascontiguousarray(recv)
        self.mpi.scatter(send, buf, root, what, seq)
        if buf is not recv:
            recv[...] = buf

    def all_to_all(self, send, scounts, recv, rcounts, what, seq) -> None:
        self.mpi.alltoallv(send, scounts, recv, rcounts, what, seq)
