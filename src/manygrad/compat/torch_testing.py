"""``torch.testing``: ``assert_close`` with PyTorch's default tolerances."""

from __future__ import annotations

import numpy as np

from .. import backend
from .. import dtypes as D
from ..tensor import Tensor

# PyTorch's defaults (rtol, atol) by dtype
_TOL = {D.float16: (1e-3, 1e-5), D.bfloat16: (1.6e-2, 1e-5), D.float32: (1.3e-6, 1e-5),
        D.float64: (1e-7, 1e-7)}  # fmt: skip


def _host(x):
    if isinstance(x, Tensor):
        return backend.to_numpy(x.detach()._data).astype(np.float64
                                                         if x.is_floating_point() else x._data.dtype)  # fmt: skip
    return np.asarray(x)


def assert_close(actual, expected, *, rtol=None, atol=None, equal_nan=False, check_dtype=True,
                 check_device=True, msg=None) -> None:  # fmt: skip
    """Raise AssertionError unless ``actual`` and ``expected`` agree elementwise within
    ``atol + rtol * |expected|`` (defaults by dtype, as PyTorch's)."""
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        if len(actual) != len(expected):
            raise AssertionError(f"assert_close: lengths differ ({len(actual)} vs {len(expected)})")
        for a, e in zip(actual, expected):
            assert_close(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan,
                         check_dtype=check_dtype, check_device=check_device, msg=msg)  # fmt: skip
        return
    if isinstance(actual, Tensor) and isinstance(expected, Tensor):
        if check_dtype and actual.dtype is not expected.dtype:
            raise AssertionError(f"assert_close: dtypes differ ({actual.dtype} vs "
                                 f"{expected.dtype})")  # fmt: skip
        if check_device and actual.device != expected.device:
            raise AssertionError(f"assert_close: devices differ ({actual.device} vs "
                                 f"{expected.device})")  # fmt: skip
    dt = actual.dtype if isinstance(actual, Tensor) else None
    r, a = _TOL.get(dt, (0.0, 0.0)) if dt is not None else (1.3e-6, 1e-5)
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    x, y = _host(actual), _host(expected)
    if x.shape != y.shape:
        raise AssertionError(f"assert_close: shapes differ ({x.shape} vs {y.shape})")
    ok = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if not ok.all():
        bad = int((~ok).sum())
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        raise AssertionError(msg or (
            f"Tensor-likes are not close!\n\nMismatched elements: {bad} / {ok.size}\n"
            f"Greatest absolute difference: {np.nanmax(diff)} (up to {atol} allowed)\n"
            f"rtol={rtol}, atol={atol}"))  # fmt: skip


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad: bool = False,
                noncontiguous: bool = False, exclude_zero: bool = False,
                memory_format=None):  # fmt: skip
    """A random tensor for tests (PyTorch's ``torch.testing.make_tensor``): uniform in
    ``[low, high)`` (default [-9, 9) for floats, [-9, 10) for ints, {False, True} for bool);
    ``noncontiguous`` gives a strided view; ``exclude_zero`` replaces zeros."""
    from .. import creation

    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    dt = D.from_any(dtype)
    rng = np.random.default_rng()
    if dt is D.bool_:
        vals = rng.integers(0, 2, shape).astype(bool)
    elif dt.is_floating_point or dt.is_complex:
        lo = -9.0 if low is None else float(low)
        hi = 9.0 if high is None else float(high)
        if lo > hi:
            raise ValueError(f"make_tensor: low ({lo}) must not exceed high ({hi})")
        vals = rng.uniform(lo, hi, shape)
        if dt.is_complex:
            vals = vals + 1j * rng.uniform(lo, hi, shape)
        if exclude_zero:
            tiny = np.finfo(np.float32 if dt.itemsize <= 4 else np.float64).tiny
            vals = np.where(vals == 0, tiny, vals)
    else:
        lo = -9 if low is None else int(np.ceil(low))
        hi = 10 if high is None else int(np.ceil(high))
        if np.issubdtype(dt.np, np.unsignedinteger):
            lo = max(lo, 0)
        vals = rng.integers(lo, hi, shape)
        if exclude_zero:
            vals = np.where(vals == 0, 1, vals)
    if noncontiguous and vals.size > 1:
        wide = np.repeat(vals[..., None], 2, -1)
        t = creation.tensor(wide, dtype=dt, device=device)[..., 0]
    else:
        t = creation.tensor(vals, dtype=dt, device=device)
    if memory_format is not None:
        t = t.contiguous(memory_format=memory_format)
    return t.requires_grad_() if requires_grad else t
