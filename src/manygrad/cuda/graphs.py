"""CUDA graphs with PyTorch's API: ``CUDAGraph``, ``graph``, ``make_graphed_callables``.

A captured graph replays a whole training step with one launch. On the fake GPU (and on
the CPU-only machines of CI) capture and replay are emulated by ``_fake_graph``: every
kernel is recorded and replay recomputes them all into the same buffers, so tests prove that
replays equal eager steps. On a real GPU, capture goes through CuPy's stream capture
(``Stream.begin_capture`` / ``end_capture`` -> ``Graph.launch``) with a private memory pool
per graph; that path has not run on a GPU yet and is off unless ``MANYGRAD_CUDA_GRAPHS=1``.

Host-side values that change between replays (a scheduler's learning rate, a loss scale
set by hand) reach replays through *prologues*: callbacks registered during capture that
write the current host value into a device buffer before every launch.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from .. import backend, fakegpu
from ..errors import CaptureError
from . import _fake_graph, streams


class GraphStats:
    """Counters tests and the trainer read: ``captures`` and ``replays`` so far."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.captures = 0
        self.replays = 0


stats = GraphStats()
_OPEN: list = []  # the graph being captured (at most one)


def _cuda_in_use() -> bool:
    """CuPy loaded and a GPU usable (never imports CuPy: fake-GPU captures need none)."""
    return backend._cupy is not None and backend.cuda_available()


def real_capture_enabled() -> bool:
    """True when captures should use the GPU (CUDA usable and ``MANYGRAD_CUDA_GRAPHS=1``)."""
    return os.environ.get("MANYGRAD_CUDA_GRAPHS") == "1" and backend.cuda_available()


class _Pool:
    """A graph memory pool: the buffers the graphs sharing it keep alive."""

    def __init__(self):
        self.arrays: list = []
        self.cupy_pool = None  # cupy.cuda.MemoryPool on a real GPU

    def __repr__(self):
        return f"<manygrad.cuda graph pool, {len(self.arrays)} buffers>"


def graph_pool_handle() -> _Pool:
    """A new memory pool that several graphs can share (``pool=`` of ``graph``)."""
    return _Pool()


def current_capture() -> CUDAGraph | None:
    """The graph being captured now, or None."""
    return _OPEN[-1] if _OPEN else None


def is_current_stream_capturing() -> bool:
    return bool(_OPEN)


def device_scalar(value: float, dtype, like):
    """A 0-d buffer on ``like``'s device holding ``value``, made outside any open capture
    (no graph node, no upload); a prologue refreshes it before each replay."""
    if type(like) is fakegpu.FakeArray:  # NOTE: as the prologue's host write, not a node
        return fakegpu.FakeArray(np.full((), value, dtype), like._dev)
    xp = backend.array_module(like)
    return xp.full((), value, dtype) if not _OPEN else xp.empty((), dtype)


class CUDAGraph:
    """A captured sequence of kernels replayed with one call (``torch.cuda.CUDAGraph``).

    Example:
        >>> g = mg.cuda.CUDAGraph()
        >>> with mg.cuda.graph(g): static_y = model(static_x)
        >>> static_x.copy_(batch); g.replay()  # static_y now holds model(batch)
    """

    def __init__(self, keep_graph: bool = False):
        self._fake: _fake_graph.FakeCapture | None = None
        self._real = None  # (cupy Graph, stream) on a GPU
        self._pool: _Pool | None = None
        self._prologues: list[Callable[[], None]] = []
        self._prologue_keys: set = set()
        self._captured = False
        self._debug = False

    # ------------------------------------------------------------------ capture
    def capture_begin(self, pool: _Pool | None = None, capture_error_mode: str = "global"):
        """Start capturing the work queued from now on (prefer ``with mg.cuda.graph(g)``)."""
        if _OPEN:
            raise CaptureError("a CUDA graph capture is already open; end it first")
        if self._captured:
            raise CaptureError("this CUDAGraph was already captured; call g.reset() first")
        self._pool = pool if pool is not None else _Pool()
        self._fake = cap = _fake_graph.FakeCapture()
        cap.begin([g._g for d, g in backend._generators.items() if d.type == "fakegpu"])
        if real_capture_enabled():
            self._real = _real_begin(self._pool)
        elif _cuda_in_use():
            backend.set_graph_xp(_RefuseCupy())
        _OPEN.append(self)
        fakegpu._CAP = cap

    def capture_end(self) -> None:
        """End the capture: the graph is ready to ``replay``."""
        if not _OPEN or _OPEN[-1] is not self:
            raise CaptureError("capture_end() without capture_begin() on this graph")
        _OPEN.pop()
        fakegpu._CAP = None
        self._fake.end()
        self._pool.arrays.extend(self._fake.pool)
        if self._real is not None:
            self._real = _real_end(self._real)
        elif _cuda_in_use():
            backend.set_graph_xp(None)
        self._captured = True
        stats.captures += 1

    def _abort(self) -> None:
        """Drop a failed capture and its memory."""
        if _OPEN and _OPEN[-1] is self:
            _OPEN.pop()
            fakegpu._CAP = None
            self._fake.end()
            if self._real is not None:
                _real_abort(self._real)
            elif _cuda_in_use():
                backend.set_graph_xp(None)
        self.reset()

    def register_prologue(self, fn: Callable[[], None], key=None) -> None:
        """Run ``fn`` (host work, e.g. writing a new lr into its device buffer) before
        every replay (manygrad; used by capturable optimizers). ``key``: register once."""
        if key is not None:
            if key in self._prologue_keys:
                return
            self._prologue_keys.add(key)
        self._prologues.append(fn)

    # ------------------------------------------------------------------ use
    def replay(self) -> None:
        """Run the captured work again, on the buffers' current contents."""
        if not self._captured:
            raise CaptureError("replay() of a CUDAGraph that was not captured")
        if _OPEN:
            raise CaptureError("replay() while a capture is open; end the capture first")
        for fn in self._prologues:
            fn()
        if self._real is not None:
            graph, _ = self._real
            graph.launch(backend.cuda_module().cuda.get_current_stream())
        self._fake.replay()
        stats.replays += 1

    def reset(self) -> None:
        """Forget the captured work and release the graph's memory."""
        self._fake = self._real = None
        self._prologues = []
        self._prologue_keys = set()
        self._captured = False
        self._pool = None

    def pool(self) -> _Pool:
        """The graph's memory pool, to share with another graph (``pool=g.pool()``)."""
        if self._pool is None:
            raise CaptureError("this CUDAGraph has no pool yet: capture it first")
        return self._pool

    def instantiate(self) -> None:
        """Accepted for PyTorch's API (capture_end instantiates already)."""

    def enable_debug_mode(self) -> None:
        self._debug = True

    def debug_dump(self, path: str) -> None:
        """Write the recorded nodes (fake GPU) or the graph's DOT text (GPU) to ``path``."""
        if self._real is not None:
            text = self._real[0].debug_dot_str()
        else:
            nodes = self._fake.nodes if self._fake else []
            text = "\n".join(f"{i}: {getattr(n[0], '__name__', n[0])}" for i, n in enumerate(nodes))
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, path)  # NOTE: never a half-written file

    @property
    def num_nodes(self) -> int:
        """Kernels recorded (fake GPU)."""
        return len(self._fake.nodes) if self._fake else 0


class graph:  # noqa: N801 - PyTorch's name
    """``with mg.cuda.graph(g, pool=None, stream=None):`` captures the work inside into ``g``.

    As PyTorch: the work is captured on a side stream; nothing inside runs (outputs made
    inside hold NaN on the fake GPU until ``g.replay()``); a host read, an upload or a call
    that cannot be captured raises ``CaptureError`` and drops the capture.

    Args:
        cuda_graph: the ``CUDAGraph`` to fill.
        pool: a memory pool shared with other graphs (``graph_pool_handle()`` or
            ``other.pool()``), default: a private one.
        stream: the stream to capture on (default: a side stream).
    """

    _side: streams.Stream | None = None

    def __init__(self, cuda_graph: CUDAGraph, pool=None, stream=None, capture_error_mode="global"):
        self.g = cuda_graph
        self.pool = pool
        if stream is None and _cuda_in_use():  # NOTE: a side stream, as PyTorch's
            if graph._side is None:
                graph._side = streams.Stream()
            stream = graph._side
        self.stream_ctx = streams.stream(stream)
        self.mode = capture_error_mode

    def __enter__(self):
        if _cuda_in_use():
            backend.synchronize()
        self.stream_ctx.__enter__()
        try:
            self.g.capture_begin(self.pool, self.mode)
        except BaseException:
            self.stream_ctx.__exit__(None, None, None)
            raise
        return self.g

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                try:
                    self.g.capture_end()
                except BaseException:
                    self.g._abort()
                    raise
            else:
                self.g._abort()
                if isinstance(ev, NotImplementedError) and "capture" in str(ev):
                    raise CaptureError(
                        f"CUDA graph capture: {ev} (CuPy refuses cuBLAS, cuRAND, cuSOLVER and "
                        "cuSPARSE calls while a stream captures); manygrad's matmul goes "
                        "through cuBLASLt (nvmath-python) when it is installed, other calls "
                        "(dot, tensordot, linalg) must run eagerly, outside the capture"
                    ) from ev
        finally:
            self.stream_ctx.__exit__(None, None, None)
        return False


# ---------------------------------------------------------------------------- real GPU
# NOTE: unverified on a GPU (see docs/cuda-graphs.md); used only with MANYGRAD_CUDA_GRAPHS=1.


def _real_begin(pool: _Pool):
    cp = backend.cuda_module()
    if pool.cupy_pool is None:
        pool.cupy_pool = cp.cuda.MemoryPool()
    cur = streams.current_stream()._s  # NOTE: graph() made its side stream current
    if cur is None or cur.ptr == 0:  # the legacy default stream cannot capture
        s = cp.cuda.Stream(non_blocking=True)
        s.wait_event(cp.cuda.get_current_stream().record())
    else:
        s = cur
    alloc = cp.cuda.using_allocator(pool.cupy_pool.malloc)
    alloc.__enter__()
    s.__enter__()
    backend.set_graph_xp(_capture_xp())
    try:
        s.begin_capture()
    except BaseException:
        backend.set_graph_xp(None)
        s.__exit__(None, None, None)
        alloc.__exit__(None, None, None)
        raise
    return (s, alloc)


def _real_end(state):
    s, alloc = state
    try:
        g = s.end_capture()
    finally:
        backend.set_graph_xp(None)
        s.__exit__(None, None, None)
        alloc.__exit__(None, None, None)
    g.upload(s)
    backend.cuda_module().cuda.get_current_stream().wait_event(s.record())
    return (g, s)


def _real_abort(state):
    s, alloc = state
    try:
        if s.is_capturing():
            s.end_capture()
    except Exception:  # NOTE: an invalidated capture raises here; the pool is dropped anyway
        pass
    finally:
        backend.set_graph_xp(None)
        s.__exit__(None, None, None)
        alloc.__exit__(None, None, None)


class _RefuseCupy:
    def __getattr__(self, name):
        raise CaptureError(
            "CUDA graph capture of cuda tensors has not been verified on a GPU yet and is off "
            "by default; set MANYGRAD_CUDA_GRAPHS=1 to try it, or run eagerly"
        )


def _capture_xp():
    """CuPy's namespace with products routed to cuBLASLt called directly (``ltgemm``: no
    events, no syncs, so capture-safe) and row-wise ``einsum`` as multiply-and-sum."""
    cp = backend.cuda_module()

    class _XP:
        def __getattr__(self, name):
            return getattr(cp, name)

        @staticmethod
        def matmul(a, b, out=None):
            r = capture_matmul(a, b)
            if out is None:
                return r
            out[...] = r
            return out

        @staticmethod
        def einsum(subscripts, *operands, **kwargs):
            return capture_einsum(cp, subscripts, *operands)

    return _XP()


def capture_matmul(a, b):
    """``a @ b`` inside a capture (vectors as NumPy's matmul treats them); errors name the
    product and the way out."""
    from ..kernels.launch import UnsupportedCallError
    from . import ltgemm

    why = ltgemm.nvmath_missing()
    if why:
        raise CaptureError(
            "CUDA graph capture: CuPy's cuBLAS refuses stream capture and the capture-safe "
            f"product needs nvmath-python's cuBLASLt bindings: {why}; or run this step eagerly"
        )
    va, vb = a.ndim == 1, b.ndim == 1
    try:
        r = ltgemm.matmul(a[None] if va else a, b[:, None] if vb else b)
    except UnsupportedCallError as e:
        raise CaptureError(
            f"CUDA graph capture: the product {tuple(a.shape)} @ {tuple(b.shape)} ({a.dtype}) "
            f"cannot run on cuBLASLt ({e}); run this step eagerly"
        ) from e
    if vb:
        r = r[..., 0]
    if va:
        r = r[..., 0, :] if not vb else r[..., 0]
    return r


def capture_einsum(xp, subscripts: str, *operands):
    """``einsum`` inside a capture for the row-wise products manygrad's kernels use
    (``"ij,ij->i"``, ``"...ji,...ji->...i"``): multiply, then sum the letters the output
    drops. CuPy's own einsum contracts through cuBLAS, which refuses capture."""
    eq = subscripts.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if "->" in eq and len(terms) == 2 and terms[0] == terms[1] and len(operands) == 2:
        letters = terms[0].replace("...", "")
        prod = operands[0] * operands[1]
        lead = prod.ndim - len(letters)
        kept = [c for c in letters if c in rhs]
        if "".join(kept) == rhs.replace("...", ""):
            drop = tuple(lead + i for i, c in enumerate(letters) if c not in rhs)
            return prod.sum(axis=drop) if drop else prod
    raise CaptureError(
        f"CUDA graph capture: einsum({subscripts!r}) contracts through cuBLAS, which refuses "
        "stream capture; use mg.einsum (built on the capture-safe matmul) or run eagerly"
    )


# ---------------------------------------------------------------------------- graphed callables
from ._graphed import make_graphed_callables  # noqa: E402,F401
