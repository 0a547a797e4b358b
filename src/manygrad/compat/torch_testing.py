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
