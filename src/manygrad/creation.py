"""Tensor creation, named as in PyTorch: ``mg.tensor``, ``zeros``, ``randn``, ..."""

from __future__ import annotations

import builtins
import math

import numpy as np

from . import _float8, _random_args, backend
from . import dtypes as D
from ._size_args import one_form
from .errors import DTypeError
from .errors import ShapeError as _ShapeError
from .tensor import Size, Tensor


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    shape = tuple(int(s) for s in size)
    if shape and builtins.min(shape) < 0:  # NOTE: a RuntimeError, as PyTorch's
        raise _ShapeError(
            f"Trying to create tensor with negative dimension {builtins.min(shape)}: "
            f"{list(shape)}; sizes must be >= 0"
        )
    return shape


# Keywords PyTorch's creation functions take that change nothing here.
_IGNORED = {"layout", "pin_memory", "memory_format"}


def _size_kw(size: tuple, kw: dict, fn: str) -> tuple:
    """``zeros(2, 3)``, ``zeros((2, 3))`` and ``zeros(size=(2, 3))`` alike (``out=`` is
    taken by the wrapper in ``manygrad._out``)."""
    kw = dict(kw)
    if "size" in kw:
        s = kw.pop("size")
        size = one_form(fn, size, size=tuple(s) if isinstance(s, (tuple, list)) else s)
    bad = sorted(k for k in kw if k not in _IGNORED)
    if bad:
        raise TypeError(f"{fn}() got unexpected keyword argument(s) {bad}")
    return size


def _legacy_tensor(args: tuple, dtype=None, device=None) -> Tensor:
    """``torch.Tensor(...)``/``torch.FloatTensor(...)``: sizes give an uninitialised tensor;
    data (lists, NumPy arrays of bool, int or float) gives a copy in the default float dtype,
    as PyTorch's legacy constructor does, but for a CPU NumPy array of that dtype, whose
    memory the tensor shares; a tensor gives a tensor sharing its memory (cast when
    ``dtype`` differs)."""
    if not args:
        args = (0,)
    if len(args) == 1 and isinstance(args[0], Size):  # torch.Tensor(x.shape)
        args = tuple(args[0])
    if builtins.all(isinstance(a, int) and not isinstance(a, bool) for a in args):
        return empty(*args, dtype=dtype, device=device)
    if len(args) != 1:
        raise TypeError(f"Tensor(): expected sizes (ints) or one sequence/array, got {args!r}")
    data = args[0]
    if isinstance(data, Tensor) and (dtype is None or D.from_any(dtype) is data.dtype):
        if device is None or backend.device(device) == data.device:
            return data.view_as(data)  # NOTE: an alias, with data's autograd, as PyTorch
    if (type(data) is np.ndarray and dtype is None and data.dtype == D.get_default_dtype().np
            and (device is None or backend.device(device).type == "cpu")):  # fmt: skip
        return Tensor._wrap(data)  # NOTE: as PyTorch, an array of the default dtype is shared
    arr = _array_from(data, dtype, device)
    default = D.get_default_dtype().np
    if dtype is None and not isinstance(data, Tensor) and arr.dtype.kind in "biuf":
        if arr.dtype != default:
            with backend.device_scope(backend.device_of(arr)):
                arr = arr.astype(default)
    return Tensor._wrap(arr)


_PY_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(np.complex128))


def _numpy_scalar_of(data, dtype) -> bool:
    """Whether ``data`` (a scalar or nested lists) holds a NumPy scalar of ``dtype``; lists
    of more than 4096 elements are judged by their first element."""
    if isinstance(data, np.generic):
        return data.dtype == dtype
    if not isinstance(data, (list, tuple)):
        return False
    stack, seen = [data], 0
    while stack:
        for v in stack.pop():
            if isinstance(v, (list, tuple)):
                stack.append(v)
            elif isinstance(v, np.generic) and v.dtype == dtype:
                return True
            seen += 1
            if seen > 4096:
                return False
    return False


def _infer_np_dtype(data):
    """PyTorch's inference for Python data: floats -> default float, ints -> int64, NumPy
    scalars and arrays inside the data keep their dtype (``[np.int32(1)]`` is int32)."""
    flat = data
    while isinstance(flat, (list, tuple)) and flat:
        flat = flat[0]
    a = np.asarray(data)
    # NOTE: Python numbers alone give NumPy bool, int64, float64 or complex128; any other
    # dtype comes from NumPy scalars or arrays in the data, which PyTorch keeps
    if a.dtype.kind in "fiuc" and a.dtype not in _PY_DTYPES and a.dtype in D._BY_NP:
        return a.dtype
    if a.dtype == np.float64 and _numpy_scalar_of(data, a.dtype):
        return a.dtype
    if a.dtype == np.complex128 and _numpy_scalar_of(data, a.dtype):
        return a.dtype
    if a.dtype.kind == "c":  # NOTE: Python complex numbers give the default complex dtype
        return np.complex128 if D.get_default_dtype() is D.float64 else np.complex64
    if a.dtype.kind == "f" or isinstance(flat, float):
        return D.get_default_dtype().np
    if a.dtype.kind in "iu":
        return np.int64
    if a.dtype.kind == "b":
        return np.bool_
    if a.size == 0:
        return D.get_default_dtype().np
    raise DTypeError(
        f"can't build a tensor from data of type {a.dtype}; supported: {D.supported()}"
    )


def _device(device) -> backend.Device:
    return backend.device(device) if device is not None else backend.default_device()


def _array_from(data, dtype=None, device=None):
    if device is None and not isinstance(data, Tensor) and backend.default_device().type != "cpu":
        device = backend.default_device()  # NOTE: mg.set_default_device
    dev = backend.check_device(backend.device(device)) if device is not None else None
    dt = D.from_any(dtype).np if dtype is not None else None
    if dt is not None and dt.itemsize == 1 and dt.kind in "fV":  # float8: PyTorch's rounding
        return _float8.array_from(data, dt, dev)
    if isinstance(data, Tensor):
        arr = data._data
        src = data._device
        with backend.device_scope(src):  # NOTE: CuPy copies onto the current GPU
            if dt is not None and arr.dtype != dt:
                arr = arr.astype(dt)
            else:
                arr = arr.copy()
        return backend.to_device(arr, dev) if dev is not None and dev != src else arr
    if backend.is_array(data):
        with backend.device_scope(backend.device_of(data)):
            arr = data if dt is None else data.astype(dt)
            D.from_np(arr.dtype)  # raises for unsupported dtypes
            arr = arr.copy() if arr is data else arr
        return backend.to_device(arr, dev) if dev is not None else arr
    if dt is None:
        dt = _infer_np_dtype(data)
    arr = np.array(data, dtype=dt)
    D.from_np(arr.dtype)
    return backend.to_device(arr, dev) if dev is not None else arr


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (list, scalar, NumPy/CuPy array, Tensor).

    Example: ``mg.tensor([[1., 2.], [3., 4.]], requires_grad=True)``.
    """
    t = Tensor._wrap(_array_from(data, dtype, device))
    return t.requires_grad_() if requires_grad else t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with an array of the right dtype and device."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if backend.is_array(data) and dtype is None and device is None:
        D.from_np(data.dtype)
        return Tensor._wrap(data)
    return Tensor._wrap(_array_from(data, dtype, device))


def from_numpy(a: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with the NumPy array ``a``."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(a).__name__}")
    D.from_np(a.dtype)
    return Tensor._wrap(a, backend.CPU)


def _make(fill, size, dtype, device, requires_grad, default=None):
    dev = _device(device)
    xp = backend.xp_of(dev)
    d = D.from_any(dtype) if dtype is not None else (default or D.get_default_dtype())
    if d._f8 and dev.type != "cpu":
        raise _float8.device_error(d.name, dev)
    if dev is backend.META and size != ():  # NOTE: no data: empty, zeros, ones, full alike
        arr = backend.empty_on(dev, _shape(size), d.np)
    else:
        with backend.device_scope(dev):
            arr = fill(xp, _shape(size), d.np)
    t = Tensor._wrap(arr, dev)
    return t.requires_grad_() if requires_grad else t


def _layout(kw: dict, fn: str) -> bool:
    """Whether ``layout=`` asks for a sparse COO tensor (``zeros``/``empty`` make an empty
    one, as PyTorch's); other sparse layouts, and sparse for other fills, are refused."""
    lay = kw.get("layout")
    if lay is None or lay == "strided":
        return False
    if lay == "sparse_coo" and fn in ("zeros", "empty", "zeros_like"):
        return True
    raise NotImplementedError(
        f"{fn}(layout={lay!r}): manygrad makes strided tensors, and empty sparse COO ones with "
        "zeros/empty/zeros_like; build other sparse tensors with mg.sparse_coo_tensor"
    )


def _empty_sparse(size: tuple, dtype, device, requires_grad) -> Tensor:
    from .sparse import sparse_coo_tensor

    shape = _shape(size)
    idx = zeros(len(shape), 0, dtype=D.int64, device=device)
    vals = zeros(0, dtype=dtype, device=device)
    return sparse_coo_tensor(idx, vals, shape, requires_grad=requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    sparse = _layout(kw, "zeros")
    size = _size_kw(size, kw, "zeros")
    if sparse:
        return _empty_sparse(size, dtype, device, requires_grad)
    return _make(lambda xp, s, dt: xp.zeros(s, dt), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _layout(kw, "ones")
    size = _size_kw(size, kw, "ones")
    return _make(lambda xp, s, dt: xp.ones(s, dt), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    sparse = _layout(kw, "empty")
    size = _size_kw(size, kw, "empty")
    if sparse:
        return _empty_sparse(size, dtype, device, requires_grad)
    return _make(lambda xp, s, dt: xp.empty(s, dt), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False, **kw) -> Tensor:
    _layout(kw, "full")
    (size,) = _size_kw((size,), kw, "full")
    default = D.scalar_dtype(fill_value) if dtype is None else None
    if dtype is not None and D.from_any(dtype)._f8:  # NOTE: PyTorch's rounding, not ml_dtypes'
        n = math.prod(_shape((size,)))
        fill_value = _float8.fill_value(fill_value, D.from_any(dtype).np, n, "full")
    return _make(
        lambda xp, s, dt: xp.full(s, fill_value, dt), (size,), dtype, device, requires_grad,
        default,
    )  # fmt: skip


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    for name, v in (("n", n), ("m", m)):
        if v is not None and v < 0:
            raise _ShapeError(f"eye: {name} must be greater or equal to 0, got {v}")
    return _make(lambda xp, s, dt: xp.eye(n, m, dtype=dt), (), dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    is_float = any(isinstance(v, float) for v in (start, end, step))
    default = D.get_default_dtype() if is_float else D.int64
    if step == 0:
        raise _ShapeError("arange: step must be nonzero")
    if (end - start) * step < 0:  # NOTE: PyTorch refuses what NumPy makes empty
        raise _ShapeError(
            f"arange: upper bound and lower bound inconsistent with step sign (start {start}, "
            f"end {end}, step {step})"
        )
    return _make(
        lambda xp, s, dt: xp.arange(start, end, step).astype(dt), (), dtype, device,
        requires_grad, default,
    )  # fmt: skip


def logspace(start, end, steps, base=10.0, dtype=None, device=None,
             requires_grad=False) -> Tensor:  # fmt: skip
    """``steps`` values from ``base**start`` to ``base**end``, evenly spaced in the exponent."""
    return _make(
        lambda xp, s, dt: xp.logspace(start, end, int(steps), base=base).astype(dt), (), dtype,
        device, requires_grad,
    )  # fmt: skip


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    if steps < 0:
        raise _ShapeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _make(
        lambda xp, s, dt: xp.linspace(start, end, int(steps)).astype(dt), (), dtype, device,
        requires_grad,
    )  # fmt: skip


def _float_dtype(dtype, op: str) -> None:
    if dtype is not None and not (
        D.from_any(dtype).is_floating_point or D.from_any(dtype).is_complex
    ):
        raise DTypeError(
            f"{op}: samples need a floating dtype, got {D.from_any(dtype).name}; use "
            "randint for integers"
        )


def rand(*size, dtype=None, device=None, requires_grad=False, generator=None, **kw) -> Tensor:
    """Uniform samples in [0, 1)."""
    _layout(kw, "rand")
    size = _size_kw(size, kw, "rand")
    _float_dtype(dtype, "rand")
    dev = _device(device)
    g = _random_args.generator_for(generator, dev, "rand")
    return _make(lambda xp, s, dt: g.random(s, dt), size, dtype, dev, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False, generator=None, **kw) -> Tensor:
    """Standard normal samples."""
    _layout(kw, "randn")
    size = _size_kw(size, kw, "randn")
    _float_dtype(dtype, "randn")
    dev = _device(device)
    g = _random_args.generator_for(generator, dev, "randn")
    return _make(lambda xp, s, dt: g.normal(s, dt), size, dtype, dev, requires_grad)


def randint(*args, low=None, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False, **kw) -> Tensor:  # fmt: skip
    """Integers drawn uniformly from [low, high), as ``torch.randint``: ``(high, size)`` or
    ``(low, high, size)``, positionally or as keywords.

    Args:
        low: the smallest value (default 0); high: one above the largest.
        size: the shape, a tuple of ints.
        generator: the stream to draw from (default: the device's); dtype: default int64.

    Example: ``mg.randint(10, (2, 3))``, ``mg.randint(2, 10, size=(4,), dtype=mg.int32)``
    """
    _size_kw((), kw, "randint")
    a = _random_args.bind(args, {"low": low, "high": high, "size": size},
                          _random_args.RANDINT, "randint")  # fmt: skip
    lo = _random_args.int_arg(a.get("low", 0), "low", "randint")
    hi = _random_args.int_arg(a["high"], "high", "randint")
    shape = _random_args.size_arg(a["size"], "randint")
    d = D.from_any(dtype) if dtype is not None else D.int64
    _random_args.check_bounds(lo, hi, d, "randint")
    dev = _device(device)
    g = _random_args.generator_for(generator, dev, "randint")
    return _make(lambda xp, s, dt: g.integers(lo, hi, s, dt), (shape,), d, dev, requires_grad)


def randperm(n, dtype=None, device=None, *, generator=None) -> Tensor:
    if n < 0:
        raise _ShapeError(f"randperm: n must be non-negative, got {n}")
    dev = _device(device)
    g = _random_args.generator_for(generator, dev, "randperm")
    return _make(lambda xp, s, dt: g.permutation(n).astype(dt), (), dtype, dev, False, D.int64)


def _like(fn, input: Tensor, dtype, device, requires_grad, memory_format, *args, **kw):
    dtype = dtype if dtype is not None else input.dtype
    device = device if device is not None else input.device
    if memory_format is None or memory_format.order is None:
        # NOTE: row-major for preserve_format too (PyTorch copies input's strides): ops
        # accept any layout
        return fn(*args, dtype=dtype, device=device, requires_grad=requires_grad, **kw)
    from .memory_format import to_format

    out = to_format(
        fn(*args, dtype=dtype, device=device, **kw), memory_format, fn.__name__ + "_like"
    )
    return out.requires_grad_(requires_grad)


def zeros_like(
    input, dtype=None, device=None, requires_grad=False, *, memory_format=None, layout=None
) -> Tensor:
    if _layout({"layout": layout}, "zeros_like"):
        return _empty_sparse(input.shape, dtype or input.dtype, device or input.device,
                             requires_grad)  # fmt: skip
    return _like(zeros, input, dtype, device, requires_grad, memory_format, input.shape)


def ones_like(
    input, dtype=None, device=None, requires_grad=False, *, memory_format=None, layout=None
) -> Tensor:
    _layout({"layout": layout}, "ones_like")
    return _like(ones, input, dtype, device, requires_grad, memory_format, input.shape)


def empty_like(
    input, dtype=None, device=None, requires_grad=False, *, memory_format=None, layout=None
) -> Tensor:
    _layout({"layout": layout}, "empty_like")
    return _like(empty, input, dtype, device, requires_grad, memory_format, input.shape)


def full_like(
    input, fill_value, dtype=None, device=None, requires_grad=False, *, memory_format=None,
    layout=None,
) -> Tensor:  # fmt: skip
    _layout({"layout": layout}, "full_like")
    return _like(full, input, dtype, device, requires_grad, memory_format, input.shape, fill_value)


def rand_like(
    input, dtype=None, device=None, requires_grad=False, *, generator=None, memory_format=None,
    layout=None,
) -> Tensor:  # fmt: skip
    _layout({"layout": layout}, "rand_like")
    return _like(
        rand, input, dtype, device, requires_grad, memory_format, input.shape, generator=generator
    )


def randn_like(
    input, dtype=None, device=None, requires_grad=False, *, generator=None, memory_format=None,
    layout=None,
) -> Tensor:  # fmt: skip
    _layout({"layout": layout}, "randn_like")
    return _like(
        randn, input, dtype, device, requires_grad, memory_format, input.shape, generator=generator
    )


def randint_like(input, *args, low=None, high=None, generator=None, dtype=None, device=None,
                 requires_grad=False, **kw) -> Tensor:  # fmt: skip
    """``randint`` with ``input``'s shape, dtype and device (unless given): ``(input, high)``
    or ``(input, low, high)``. Example: ``mg.randint_like(x, 10)``"""
    kw.pop("memory_format", None)
    a = _random_args.bind(args, {"low": low, "high": high}, _random_args.RANDINT_LIKE,
                          "randint_like")  # fmt: skip
    return randint(a.get("low", 0), a["high"], tuple(input.shape), generator=generator,
                   dtype=dtype if dtype is not None else input.dtype,
                   device=device if device is not None else input.device,
                   requires_grad=requires_grad, **kw)  # fmt: skip


def numel(input: Tensor) -> int:
    return input.numel()


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


__all__ = [n for n in dir() if not n.startswith("_") and n not in ("builtins", "math", "np")]
_ = builtins, math
