"""CUDA graph capture and replay emulated on the fake GPU (``fakegpu``).

While a capture is open, ``fakegpu`` hands every kernel-like call to ``FakeCapture.call``,
which runs it (shapes must be known to go on) and records it as a node: the function, its
arguments (fake arrays by reference, Python scalars by value, as a kernel's arguments) and
the buffers it writes. ``replay`` recomputes every node in order from the buffers' current
contents into the same output buffers, which is what launching a CUDA graph does.

What a real capture does not do is undone when the capture ends: memory that existed before
and was written during the capture gets its old contents back, and buffers the capture
allocated hold NaN (integers their minimum) until the first replay (so code that relies on the capture having run
fails loudly). The fake random generators are rewound too: replays draw what eager steps
would have drawn. Host reads, uploads and (unless manygrad's capture-safe GEMM path made
the call) matrix products raise ``CaptureError`` naming the call and the fix.
"""

from __future__ import annotations

import contextlib
import operator
import threading

import numpy as np

from .. import fakegpu
from ..errors import CaptureError

# NOTE: the fake GPU emulates a GPU with a capture-safe GEMM (cuBLASLt through nvmath on a
# real one): products made through manygrad's xp.matmul path are recorded. Set this to False
# to emulate CuPy alone, whose cuBLAS calls refuse capture.
capture_safe_gemm = True

# functions whose result size depends on the data (CuPy syncs to size them)
_DATA_SIZED = frozenset(["nonzero", "flatnonzero", "argwhere", "unique", "compress", "extract"])
# functions that write into their first argument
_WRITE_FIRST = frozenset(["copyto", "put", "place", "putmask", "fill_diagonal", "put_along_axis"])
_NO_KERNEL = frozenset(["empty", "empty_like"])  # allocation only
_INPLACE_METHODS = frozenset(["fill", "sort", "partition", "put", "itemset"])
_FIX = "move it outside the captured region (before capture or after g.replay()) or run eagerly"


def _raw(x):
    """The NumPy arrays inside ``x`` (fake arrays by reference, any device)."""
    t = type(x)
    if t is fakegpu.FakeArray:
        return x._a
    if t is tuple or t is list:
        return t(_raw(v) for v in x)
    return x


def _owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _arrays(x):
    if type(x) is np.ndarray:
        yield x
    elif type(x) in (tuple, list):
        for v in x:
            yield from _arrays(v)


class FakeCapture:
    """The nodes of one capture on the fake GPU, and the memory its graph keeps alive."""

    def __init__(self):
        self.nodes: list = []  # (fn, args, kwargs, targets or None)
        self.pool: list[np.ndarray] = []  # arrays allocated by the capture
        self._pool_ids: set[int] = set()
        self._saved: list = []  # (array, contents before the capture wrote it)
        self._gemm_ok = 0
        self._rng: list = []
        self.thread = threading.get_ident()

    # ------------------------------------------------------------------ refusals
    def refuse(self, what: str, why: str = "cannot be captured") -> None:
        raise CaptureError(f"CUDA graph capture: {what} {why}; {_FIX}")

    def check_gemm(self, name: str) -> None:
        if self._gemm_ok and capture_safe_gemm:
            return
        raise CaptureError(
            f"CUDA graph capture: {name}() on cuBLAS (CuPy's cuBLAS calls refuse stream "
            "capture); compute products through manygrad's ops (xp.matmul, the capture-safe "
            "GEMM path) or run this step eagerly"
        )

    @contextlib.contextmanager
    def safe_gemm(self):
        self._gemm_ok += 1
        try:
            yield
        finally:
            self._gemm_ok -= 1

    # ------------------------------------------------------------------ recording
    def call_named(self, name: str, fn, args, kwargs):
        """A NumPy-namespace function (``xp.name`` or NumPy's dispatch) on fake arrays."""
        if name in _DATA_SIZED or (name == "where" and len(args) + len(kwargs) == 1):
            self.refuse(f"{name}()", "has a result size that depends on the data (CuPy syncs)")
        if name in fakegpu._GEMMS:
            self.check_gemm(name)
        out = kwargs.get("out")
        if name in _WRITE_FIRST:
            writes = (args[0],)
        else:
            writes = () if out is None else out if type(out) is tuple else (out,)
        return self.call(fn, args, kwargs, writes, record=name not in _NO_KERNEL)

    def call_method(self, a, name: str, args, kwargs):
        out = kwargs.get("out")
        writes = (a,) if name in _INPLACE_METHODS else () if out is None else (out,)
        return self.call(_Method(name), (a, *args), kwargs, writes)

    def getitem(self, a, idx):
        """Advanced indexing (a gather kernel); boolean masks are refused, as on CuPy."""
        if any(_is_mask(p) for p in (idx if type(idx) is tuple else (idx,))):
            self.refuse("boolean-mask indexing", "has a size that depends on the data")
        return self.call(operator.getitem, (a, idx), {})

    def call(self, fn, args, kwargs, writes=(), record: bool = True):
        """Run ``fn`` now (undone at the end) and record it; returns the wrapped result."""
        for w in writes:
            self._before_write(w._a)
        ins = _raw(args)
        kw = {k: _raw(v) for k, v in kwargs.items()}
        with np.errstate(all="ignore"):
            r = fn(*ins, **kw)
        if writes:
            self.nodes.append((fn, args, kwargs, None))
            return fakegpu._wrap(r) if not isinstance(r, np.ndarray) else _out_like(r, writes)
        res = fakegpu._wrap(r)
        outs = res if type(res) in (tuple, list) else (res,)
        inputs = list(_arrays(ins)) + list(_arrays(list(kw.values())))
        targets, fresh = [], False
        for o in outs:
            if type(o) is not fakegpu.FakeArray or any(
                np.may_share_memory(o._a, a) for a in inputs
            ):
                targets.append(None)  # a view of an input: nothing to compute
                continue
            targets.append(o)
            fresh = True
            own = _owner(o._a)
            if id(own) not in self._pool_ids:
                self._pool_ids.add(id(own))
                self.pool.append(own)
        if fresh and record:
            self.nodes.append((fn, args, kwargs, tuple(targets)))
        return res

    def _before_write(self, a: np.ndarray) -> None:
        if id(_owner(a)) not in self._pool_ids:
            self._saved.append((a, a.copy()))

    # ------------------------------------------------------------------ begin, end, replay
    def begin(self, generators) -> None:
        self._rng = [(g, g.bit_generator.state) for g in generators]

    def end(self) -> None:
        """Undo what the capture ran: old contents back, new buffers NaN, RNG rewound."""
        for a, old in reversed(self._saved):
            a[...] = old
        self._saved = []
        for a in self.pool:  # NOTE: integers get their most negative value, as loud
            if a.dtype.kind in "fc" or a.dtype.name == "bfloat16":
                a[...] = np.nan
            elif a.dtype.kind in "iu":
                a[...] = np.iinfo(a.dtype).min
        for g, st in self._rng:
            g.bit_generator.state = st
        self._rng = []

    def replay(self) -> None:
        with np.errstate(all="ignore"):
            for fn, args, kwargs, targets in self.nodes:
                r = fn(*_raw(args), **{k: _raw(v) for k, v in kwargs.items()})
                if targets is None:
                    continue
                rs = r if type(r) in (tuple, list) else (r,)
                for t, v in zip(targets, rs):
                    if t is not None:
                        t._a[...] = v


class _Method:
    """``a.name(*args)`` as a function of ``a``: a recorded method call."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __call__(self, a, *args, **kwargs):
        return getattr(a, self.name)(*args, **kwargs)

    def __repr__(self):
        return f".{self.name}()"


def _is_mask(p) -> bool:
    return (type(p) is fakegpu.FakeArray and p.dtype == np.bool_) or (
        type(p) is list and any(type(v) is bool for v in p)
    )


def _out_like(r, writes):
    """The result of a call that wrote ``writes``: the written fake array itself."""
    for w in writes:
        if w._a is r:
            return w
    return fakegpu._wrap(r)
