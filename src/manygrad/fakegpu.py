"""The fake GPU: NumPy arrays posing as CuPy arrays, for testing GPU code paths on
machines without a GPU.

Like CuPy's, its arrays refuse implicit conversion to NumPy (``np.asarray`` raises) and
refuse plain NumPy operands; reductions return 0-d arrays; reading a value on the host
(``.item()``, ``float()``, ``bool()``, ``.get()``) is counted in ``fake_stats.syncs``, and
copies in ``fake_stats.h2d`` / ``d2h``. Tests assert those counters to catch host syncs
and device leaks. ``fake_xp`` is the array module (``xp``) of the ``fakegpu`` device.

There are two fake GPUs, ``fakegpu`` (index 0) and ``fakegpu:1``, and, as in CuPy, a
current one per thread (``current()``, switched by ``backend.device_scope``): new arrays
are made on the current device, and a kernel given an array of the other device fails as
CuPy's do without peer access. Views (slices, reshapes, transposes) keep their device.

CUDA graphs are emulated (``mg.cuda.graph``): while a capture is open, every kernel-like
call (ufunc, array function, method or index that writes an output) is handed to the open
capture (``_CAP``, see ``manygrad/cuda/_fake_graph.py``), which records it for replay;
host reads, uploads and cuBLAS-style products are refused there as on a real GPU.
"""

from __future__ import annotations

import functools
import operator
import os
import sys
import threading
import types

import numpy as np


def _device(index: int = 0):
    from .backend import fake_device

    return fake_device(index)


class FakeStats:
    """Counters of the fake GPU; tests read and reset them."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.syncs = 0  # device->host reads that would make a real GPU wait
        self.h2d = 0
        self.d2h = 0
        # calls into the array library (ufuncs, functions, methods, fancy indexing): on a
        # real GPU each is a CuPy call costing host time, most of them a kernel launch
        self.calls = 0
        self.by_name = None  # a dict name -> count while counting by name (count_calls)


fake_stats = FakeStats()

_CAP = None  # the open CUDA graph capture on the fake GPU (cuda/_fake_graph.py), or None
_ident = threading.get_ident  # NOTE: a capture sees the work of the thread that opened it


def _count(name: str) -> None:
    """One call into the array library (see ``FakeStats.calls``)."""
    fake_stats.calls += 1
    if fake_stats.by_name is not None:
        f = sys._getframe(2)
        while f is not None and f.f_code.co_filename == __file__:
            f = f.f_back
        where = "?" if f is None else f"{os.path.basename(f.f_code.co_filename)}:{f.f_code.co_name}"
        key = (name, where)
        fake_stats.by_name[key] = fake_stats.by_name.get(key, 0) + 1


def _host_read(what: str) -> None:
    if _CAP is not None and _CAP.thread == _ident():
        _CAP.refuse(what, "reads the device on the host (a sync)")


COUNT = 2  # fake GPUs: fakegpu (0) and fakegpu:1
_LOCAL = threading.local()  # NOTE: as CuPy's current device, one per thread (0 at start)


def current() -> int:
    """Index of the current fake GPU in this thread."""
    return getattr(_LOCAL, "dev", 0)


class Scope:
    """``with Scope(i):`` makes fake GPU ``i`` current, as ``with cupy.cuda.Device(i):``."""

    __slots__ = ("index", "prev")

    def __init__(self, index: int):
        self.index = index

    def __enter__(self):
        self.prev = current()
        _LOCAL.dev = self.index
        return self

    def __exit__(self, *exc):
        _LOCAL.dev = self.prev
        return False


def _on_current(a: FakeArray) -> np.ndarray:
    """The array of ``a`` for a kernel: as CuPy without peer access, refuse another GPU's."""
    cur = current()
    if a._dev != cur:
        raise ValueError(
            f"The device where the array resides ({a._dev}) is different from the current "
            f"device ({cur}). Peer access is unavailable between these devices. "
            "(fakegpu: run the work under backend.device_scope of the array's device)"
        )
    return a._a


_NO_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
    "NumPy array explicitly."
)


# ---------------------------------------------------------------- what CuPy 14 lacks
# NOTE: code that uses these runs on cpu but fails on a real GPU, so the fake GPU refuses
# them too. Lists taken from CuPy 14.2 (names NumPy 2.4 has and CuPy does not).
_CUPY_LACKS = {
    "numpy": frozenset(
        "asmatrix block bmat busday_count busday_offset datetime_as_string datetime_data "
        "einsum_path errstate frompyfunc fromregex geomspace get_include getbufsize geterr "
        "geterrcall histogram_bin_edges info insert is_busday isnat matrix matvec memmap "
        "nanpercentile nanquantile ndenumerate nditer nested_iters polyder polydiv polyint "
        "recarray setbufsize seterr seterrcall show_runtime spacing unstack vecdot "
        "vecmat".split()
    ),
    "numpy.linalg": frozenset(
        "diagonal matrix_norm multi_dot outer svdvals tensordot trace vecdot vector_norm".split()
    ),
    "numpy.lib.stride_tricks": frozenset(),
}
_CUPY_LACKS_METHOD = frozenset(["ctypes", "getfield", "resize", "setfield", "setflags"])
# keyword arguments CuPy's ndarray methods accept where NumPy's accept more
_CUPY_METHOD_KWARGS = {
    **dict.fromkeys(["sum", "prod", "mean"], frozenset(["axis", "dtype", "out", "keepdims"])),
    **dict.fromkeys(["var", "std"], frozenset(["axis", "dtype", "out", "ddof", "keepdims"])),
    **dict.fromkeys(["max", "min", "all", "any"], frozenset(["axis", "out", "keepdims"])),
    **dict.fromkeys(["argmax", "argmin"], frozenset(["axis", "out", "dtype", "keepdims"])),
    **dict.fromkeys(["cumsum", "cumprod"], frozenset(["axis", "dtype", "out"])),
    "astype": frozenset(["dtype", "order", "casting", "subok", "copy"]),
    "copy": frozenset(["order"]),
    "clip": frozenset(["min", "max", "out"]),
}
_CUPY_UFUNC_KWARGS = frozenset(["out", "dtype", "casting"])
# dtypes of CUDA's atomicAdd, the only ones cupyx.scatter_add accepts
ATOMIC_ADD_DTYPES = frozenset(
    np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int32, np.uint32, np.uint64)
)


def _lacks(what: str, name: str):
    return AttributeError(
        f"{what} {name!r} does not exist in CuPy, so this code would fail on a CUDA device; "
        "use a construct that NumPy and CuPy both have (see manygrad.fakegpu)"
    )


def fake_scatter_add(a, slices, value) -> None:
    """``cupyx.scatter_add`` on the fake GPU, with its dtype limits."""
    if a.dtype not in ATOMIC_ADD_DTYPES:
        raise TypeError(
            f"scatter_add: dtype {a.dtype} is not supported by CUDA's atomicAdd (only "
            "float16/32/64, int32, uint32, uint64); use manygrad.backend.index_add"
        )
    if _CAP is not None and _CAP.thread == _ident():
        _CAP.call(_add_at, (a, slices, value), {}, (a,))
        return
    np.add.at(_on_current(a), _unwrap(slices), _unwrap(value))


def _add_at(a, slices, value):
    np.add.at(a, slices, value)


def _unwrap(x):
    t = type(x)
    if t is FakeArray:
        return _on_current(x)
    if t is np.ndarray:
        raise TypeError(f"Unsupported type {t}: fakegpu arrays do not mix with NumPy arrays")
    if t is list or t is tuple:
        return t(_unwrap(v) for v in x)
    return x


def _wrap(x):
    t = type(x)
    if t is np.ndarray:
        return FakeArray(x)
    if isinstance(x, np.generic):
        return FakeArray(np.asarray(x))  # CuPy reductions give 0-d arrays, not scalars
    if t is tuple or t is list:
        return t(_wrap(v) for v in x)
    if isinstance(x, tuple):  # NOTE: NumPy's named results (linalg.qr, svd, eigh, slogdet)
        return tuple(_wrap(v) for v in x)
    return x


class FakeArray:
    """A NumPy array posing as a CuPy array on fake GPU ``dev`` (default: the current one)."""

    __slots__ = ("_a", "_dev")
    __array_priority__ = 100

    def __init__(self, a: np.ndarray, dev: int | None = None):
        self._a = a
        self._dev = current() if dev is None else dev

    def _view(self, a: np.ndarray) -> FakeArray:
        return FakeArray(a, self._dev)

    # -- what CuPy refuses, and the counted syncs
    def __array__(self, *args, **kwargs):
        raise TypeError(_NO_IMPLICIT)

    def get(self, stream=None, out=None):
        _host_read(".get()")
        fake_stats.d2h += 1
        fake_stats.syncs += 1
        if out is None:
            return self._a.copy()
        out[...] = self._a
        return out

    def item(self):
        _host_read(".item()")
        fake_stats.syncs += 1
        return self._a.item()

    def tolist(self):
        _host_read(".tolist()")
        fake_stats.syncs += 1
        return self._a.tolist()

    def __float__(self):
        _host_read("float()")
        fake_stats.syncs += 1
        return float(self._a)

    def __int__(self):
        _host_read("int()")
        fake_stats.syncs += 1
        return int(self._a)

    def __bool__(self):
        _host_read("bool()")
        fake_stats.syncs += 1
        return bool(self._a)

    def __repr__(self):
        _host_read("repr() / print()")
        fake_stats.syncs += 1
        return "fakegpu " + repr(self._a)

    # -- NumPy protocols: compute on the wrapped arrays, refuse plain NumPy operands
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        extra = kwargs.keys() - _CUPY_UFUNC_KWARGS
        if extra:
            raise TypeError(f"{ufunc.__name__}: CuPy's ufuncs take no {sorted(extra)} argument")
        if ufunc is np.matmul and any(
            type(x) is FakeArray and x._a.dtype.name == "bfloat16" and x._a.ndim > 2 for x in inputs
        ):  # NOTE: CuPy 14 fails on batched bfloat16 matmul (2-d works)
            raise TypeError(
                "matmul: CuPy 14 has no batched (>2-d) bfloat16 matmul; use "
                "manygrad.backend.matmul, which computes it in float32"
            )
        if method == "at":
            raise TypeError(
                f"{ufunc.__name__}.at: CuPy supports it for few ufuncs and dtypes; use "
                "manygrad.backend.index_add for scatter-add"
            )
        _count(ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}")
        if _CAP is not None and _CAP.thread == _ident():
            if ufunc is np.matmul:
                _CAP.check_gemm("matmul")
            out = kwargs.get("out")
            writes = () if out is None else out if type(out) is tuple else (out,)
            return _CAP.call(getattr(ufunc, method), inputs, kwargs, writes)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        with np.errstate(all="ignore"):  # NOTE: CuPy's kernels give inf/NaN without warnings
            return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        if func.__name__ in _CUPY_LACKS.get(func.__module__, ()):
            return NotImplemented  # as CuPy: NumPy then raises "no implementation found"
        _count(func.__name__)
        if _CAP is not None and _CAP.thread == _ident():
            return _CAP.call_named(func.__name__, func, args, kwargs)
        return _wrap(func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

    # -- array attributes and methods
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: self._view(self._a.T))
    device = property(lambda self: _device(self._dev))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        _on_current(self)
        return (self[i] for i in range(len(self)))

    def __getitem__(self, idx):
        if _is_basic(idx):  # a view: no kernel, stays on its device
            r = self._a[idx]
            if type(r) is not np.ndarray:  # NOTE: as CuPy, a 0-d view, not a copy
                parts = idx if type(idx) is tuple else (idx,)
                r = self._a[tuple(p for p in parts if p is not Ellipsis) + (Ellipsis,)]
            return self._view(r)
        _count("getitem")
        if _CAP is not None and _CAP.thread == _ident():
            return _CAP.getitem(self, idx)
        return _wrap(_on_current(self)[_unwrap(idx)])

    def __setitem__(self, idx, value):
        _count("setitem")
        if _CAP is not None and _CAP.thread == _ident():
            _CAP.call(operator.setitem, (self, idx, value), {}, (self,))
            return
        _on_current(self)[_unwrap(idx)] = _unwrap(value)

    def __getattr__(self, name):
        if name.startswith("__"):  # NOTE: never forward __array_interface__ and friends
            raise AttributeError(name)
        if name in _CUPY_LACKS_METHOD:
            raise _lacks("cupy.ndarray attribute", name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)
        allowed = _CUPY_METHOD_KWARGS.get(name)
        view = name in _VIEW_METHODS

        def method(*args, **kwargs):
            if allowed is not None and not allowed.issuperset(kwargs):
                bad = sorted(set(kwargs) - allowed)
                raise TypeError(f"cupy.ndarray.{name}() takes no {bad} argument")
            if not view:
                _on_current(self)
                _count(name)
            if _CAP is not None and _CAP.thread == _ident():
                return _CAP.call_method(self, name, args, kwargs)
            r = attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
            if view and type(r) is np.ndarray and np.may_share_memory(r, self._a):
                return self._view(r)
            return _wrap(r)

        return method


# methods that give views where they can (no kernel: the result stays on the array's device)
_VIEW_METHODS = frozenset(["reshape", "transpose", "swapaxes", "squeeze", "view", "ravel"])


def _is_basic(idx) -> bool:
    """True for indices that only slice (a view, no kernel): ints, slices, None, Ellipsis."""
    parts = idx if type(idx) is tuple else (idx,)
    return all(p is None or p is Ellipsis or type(p) is slice or (type(p) is int) for p in parts)


def _binop(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def op(self, other):
        _count(ufunc.__name__)
        if _CAP is not None and _CAP.thread == _ident():
            _CAP.call(ufunc, (self, other), {"out": self}, (self,))
            return self
        a = _on_current(self)
        ufunc(a, _unwrap(other), out=a)
        return self

    return op


for _name, _uf in [
    ("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
    ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power),
    ("matmul", np.matmul), ("and", np.bitwise_and), ("or", np.bitwise_or),
    ("xor", np.bitwise_xor),
]:  # fmt: skip
    setattr(FakeArray, f"__{_name}__", _binop(_uf))
    setattr(FakeArray, f"__r{_name}__", _binop(_uf, reflected=True))
    if _name != "matmul":  # NOTE: CuPy has no in-place @=
        setattr(FakeArray, f"__i{_name}__", _inplace(_uf))
for _name, _uf in [
    ("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
    ("eq", np.equal), ("ne", np.not_equal),
]:  # fmt: skip
    setattr(FakeArray, f"__{_name}__", _binop(_uf))
FakeArray.__neg__ = lambda self: np.negative(self)
FakeArray.__abs__ = lambda self: np.absolute(self)
FakeArray.__invert__ = lambda self: np.invert(self)
FakeArray.__hash__ = None

_TRANSFER_IN = {"asarray", "array", "asanyarray", "ascontiguousarray"}
_GEMMS = frozenset(["matmul", "dot", "tensordot", "einsum", "inner", "vdot"])  # cuBLAS


def kernel(fn, *args, **kwargs):
    """``fn(*args)`` on the wrapped arrays as one fake-GPU kernel (recorded by a capture).

    For device helpers that compute on the NumPy arrays themselves (``backend.erf``,
    random draws): ``fn`` gets plain arrays and returns new ones.
    """
    _count(getattr(fn, "__name__", "kernel"))
    if _CAP is not None and _CAP.thread == _ident():
        return _CAP.call(fn, args, kwargs)
    return _wrap(fn(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))


def upload(host: np.ndarray, index: int = 0) -> FakeArray:
    """A host-to-device copy onto fake GPU ``index`` (refused while a graph captures)."""
    if _CAP is not None and _CAP.thread == _ident():
        _CAP.refuse("a host-to-device copy", "cannot be captured")
    fake_stats.h2d += 1
    return FakeArray(np.array(host), index)


class _FakeModule:
    """``xp`` of the fake GPU: NumPy's namespace with arrays kept wrapped."""

    def __init__(self, mod):
        self._mod = mod

    @functools.cache  # noqa: B019 - module-lifetime objects
    def __getattr__(self, name):
        if name in _CUPY_LACKS.get(self._mod.__name__, ()):
            raise _lacks(f"{self._mod.__name__.replace('numpy', 'cupy')} function", name)
        attr = getattr(self._mod, name)
        if isinstance(attr, types.ModuleType):
            return _FakeModule(attr)
        if name in _GEMMS and isinstance(attr, np.ufunc):  # matmul: marked as manygrad's GEMM
            return self._gemm_ufunc(attr)
        if isinstance(attr, type) or not callable(attr) or isinstance(attr, np.ufunc):
            return attr  # dtypes, constants; ufuncs dispatch through __array_ufunc__
        transfer = name in _TRANSFER_IN
        gemm = name in _GEMMS

        def fn(*args, **kwargs):
            _count(name)
            if _CAP is not None and _CAP.thread == _ident():
                if transfer and args and type(args[0]) is not FakeArray:
                    # NOTE: scalars too: CuPy copies them from (pinned) host memory
                    _CAP.refuse(f"xp.{name}() of host data (a host-to-device copy)")
                if gemm:  # NOTE: manygrad's own GEMM path: capture-safe unless switched off
                    with _CAP.safe_gemm():
                        return _CAP.call_named(name, attr, args, kwargs)
                return _CAP.call_named(name, attr, args, kwargs)
            if transfer and args and type(args[0]) is not FakeArray and not np.isscalar(args[0]):
                fake_stats.h2d += 1
                args = (np.array(args[0]),) + args[1:]
                return _wrap(attr(*args, **kwargs))
            return _wrap(attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        return fn

    @staticmethod
    def _gemm_ufunc(uf):
        def gemm(*args, **kwargs):
            _count(uf.__name__)
            if _CAP is None or _CAP.thread != _ident():
                return uf(*args, **kwargs)
            with _CAP.safe_gemm():
                return uf(*args, **kwargs)

        gemm.__name__ = uf.__name__
        return gemm


fake_xp = _FakeModule(np)
