"""PyTorch's argument forms of the random factories (``randint``, ``randint_like``): which
overload a call means, the integer bounds each dtype can hold, and the generator's device.

``torch.randint`` has two overloads, ``(high, size)`` and ``(low, high, size)``, each callable
positionally or by keyword; a call binds to the first that fits, as PyTorch's argument
parser does: ``randint(10, (2, 2))`` is ``high=10``; ``randint(2, high=5, size=(3,))`` is
``low=2``; ``randint(5)`` and ``randint(low=2, size=(3,))`` fit neither.
"""

from __future__ import annotations

import operator
import warnings

from . import backend
from . import dtypes as D
from ._rng_state import RandomError
from .errors import DeviceError, DTypeError, ShapeError

RANDINT = (("high", "size"), ("low", "high", "size"))
RANDINT_LIKE = (("high",), ("low", "high"))
_I64 = (-(1 << 63), (1 << 63) - 1)
# NOTE: the integers a float dtype holds exactly: PyTorch warns beyond +-2**digits
_FLOAT_DIGITS = {"float16": 11, "bfloat16": 8, "float32": 24, "float64": 53}


def bind(args: tuple, given: dict, forms, fn: str) -> dict:
    """The arguments of the first of ``forms`` (tuples of names) that ``args`` and the
    keywords in ``given`` (None: not given) fill exactly."""
    kw = {k: v for k, v in given.items() if v is not None}
    for names in forms:
        if len(args) > len(names) or set(kw) & set(names[: len(args)]):
            continue
        bound = {**dict(zip(names, args)), **kw}
        if set(bound) == set(names):
            return bound
    got = [type(a).__name__ for a in args] + [f"{k}={type(v).__name__}" for k, v in kw.items()]
    forms_s = " or ".join(f"({', '.join(names)})" for names in forms)
    raise TypeError(
        f"{fn}(): got ({', '.join(got)}), but it takes {forms_s}, positionally or as "
        f"keywords; e.g. {fn}({'x, ' if fn.endswith('_like') else ''}10"
        f"{'' if fn.endswith('_like') else ', (2, 3)'})"
    )


def int_arg(v, name: str, fn: str) -> int:
    """An int argument as PyTorch takes it: ints and 0-d integer tensors, not bools or floats."""
    if isinstance(v, bool) or not hasattr(v, "__index__"):
        raise TypeError(f"{fn}(): argument '{name}' must be int, not {type(v).__name__}")
    i = operator.index(v)
    if not _I64[0] <= i <= _I64[1]:
        raise ValueError(f"{fn}(): argument '{name}' = {i} does not fit int64")
    return i


def size_arg(size, fn: str) -> tuple:
    """``size`` as a tuple of non-negative ints (a tuple, list or ``Size``, not an int)."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__iter__"):
        raise TypeError(
            f"{fn}(): argument 'size' must be a tuple of ints, not {type(size).__name__}; "
            "e.g. size=(3,)"
        )
    dims = tuple(int_arg(s, "size", fn) for s in size)
    if any(s < 0 for s in dims):
        raise ShapeError(f"{fn}(): size {dims} has a negative dimension")
    return dims


def check_bounds(low: int, high: int, dtype: D.dtype, fn: str) -> None:
    """Refuse bounds ``dtype`` can't hold (as PyTorch does); warn where floats lose integers."""
    if low >= high:
        raise RandomError(
            f"{fn}(): expected low < high, got low={low} >= high={high}; draws lie in [low, high)"
        )
    if dtype.is_complex or dtype._f8:
        raise DTypeError(
            f"{fn}(): can't draw integers as {dtype.name}; use an integer, floating or bool dtype"
        )
    if dtype.is_floating_point:
        digits = _FLOAT_DIGITS.get(dtype.name)
        if digits is not None and (low < -(1 << digits) or high - 1 > 1 << digits):
            warnings.warn(
                f"{fn}(): [low, high - 1] = [{low}, {high - 1}] goes beyond "
                f"[-(2^{digits}), 2^{digits}], where {dtype.name} holds every integer; "
                "some values can't be drawn",
                UserWarning,
                stacklevel=3,
            )
        return
    lo, hi = (0, 1) if dtype.name == "bool" else _int_range(dtype)
    if low < lo or high - 1 > hi:
        raise RandomError(
            f"{fn}(): [low, high - 1] = [{low}, {high - 1}] is out of bounds for {dtype.name} "
            f"([{lo}, {hi}]); pass bounds inside it or a wider dtype"
        )


def _int_range(dtype: D.dtype) -> tuple[int, int]:
    import numpy as np

    info = np.iinfo(dtype.np)
    return int(info.min), int(info.max)


def generator_for(generator, dev: backend.Device, fn: str):
    """``generator`` (default: ``dev``'s own stream), which must draw on ``dev``."""
    if generator is None:
        return backend.generator(dev)
    gd = generator.device
    if gd.type != dev.type or (gd.index or 0) != (dev.index or 0):
        raise DeviceError(
            f"{fn}(): the generator draws on {gd} but the result is made on {dev}; pass a "
            f"generator of that device (mg.Generator({str(dev)!r})) or device={str(gd)!r}"
        )
    return generator
