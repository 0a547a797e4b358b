"""The fake GPU: NumPy arrays posing as CuPy arrays, for testing GPU code paths on
machines without a GPU.

Like CuPy's, its arrays refuse implicit conversion to NumPy (``np.asarray`` raises) and
refuse plain NumPy operands; reductions return 0-d arrays; reading a value on the host
(``.item()``, ``float()``, ``bool()``, ``.get()``) is counted in ``fake_stats.syncs``, and
copies in ``fake_stats.h2d`` / ``d2h``. Tests assert those counters to catch host syncs
and device leaks. ``fake_xp`` is the array module (``xp``) of the ``fakegpu`` device.
"""

from __future__ import annotations

import functools
import types

import numpy as np


def _device():
    from .backend import FAKEGPU

    return FAKEGPU


class FakeStats:
    """Counters of the fake GPU; tests read and reset them."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.syncs = 0  # device->host reads that would make a real GPU wait
        self.h2d = 0
        self.d2h = 0


fake_stats = FakeStats()

_NO_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
    "NumPy array explicitly."
)


def _unwrap(x):
    t = type(x)
    if t is FakeArray:
        return x._a
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
    return x


class FakeArray:
    """A NumPy array posing as a CuPy array on the ``fakegpu`` device."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, a: np.ndarray):
        self._a = a

    # -- what CuPy refuses, and the counted syncs
    def __array__(self, *args, **kwargs):
        raise TypeError(_NO_IMPLICIT)

    def get(self, stream=None, out=None):
        fake_stats.d2h += 1
        fake_stats.syncs += 1
        return self._a.copy()

    def item(self):
        fake_stats.syncs += 1
        return self._a.item()

    def tolist(self):
        fake_stats.syncs += 1
        return self._a.tolist()

    def __float__(self):
        fake_stats.syncs += 1
        return float(self._a)

    def __int__(self):
        fake_stats.syncs += 1
        return int(self._a)

    def __index__(self):
        fake_stats.syncs += 1
        return self._a.__index__()

    def __bool__(self):
        fake_stats.syncs += 1
        return bool(self._a)

    def __repr__(self):
        fake_stats.syncs += 1
        return "fakegpu " + repr(self._a)

    # -- NumPy protocols: compute on the wrapped arrays, refuse plain NumPy operands
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        return _wrap(getattr(ufunc, method)(*_unwrap(inputs), **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
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
    T = property(lambda self: FakeArray(self._a.T))
    device = property(lambda self: _device())

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __getitem__(self, idx):
        return _wrap(self._a[_unwrap(idx)])

    def __setitem__(self, idx, value):
        self._a[_unwrap(idx)] = _unwrap(value)

    def __getattr__(self, name):
        if name.startswith("__"):  # NOTE: never forward __array_interface__ and friends
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        return method


def _binop(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


def _inplace(ufunc):
    def op(self, other):
        ufunc(self._a, _unwrap(other), out=self._a)
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


class _FakeModule:
    """``xp`` of the fake GPU: NumPy's namespace with arrays kept wrapped."""

    def __init__(self, mod):
        self._mod = mod

    @functools.cache  # noqa: B019 - module-lifetime objects
    def __getattr__(self, name):
        attr = getattr(self._mod, name)
        if isinstance(attr, types.ModuleType):
            return _FakeModule(attr)
        if isinstance(attr, type) or not callable(attr) or isinstance(attr, np.ufunc):
            return attr  # dtypes, constants; ufuncs dispatch through __array_ufunc__
        transfer = name in _TRANSFER_IN

        def fn(*args, **kwargs):
            if transfer and args and type(args[0]) is not FakeArray and not np.isscalar(args[0]):
                fake_stats.h2d += 1
                args = (np.array(args[0]),) + args[1:]
                return _wrap(attr(*args, **kwargs))
            return _wrap(attr(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))

        return fn


fake_xp = _FakeModule(np)
