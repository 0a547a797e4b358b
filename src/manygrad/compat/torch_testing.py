"""``torch.testing``: ``assert_close`` with PyTorch's default tolerances."""

from __future__ import annotations

import cmath
import collections.abc
import math

import numpy as np

from .. import backend, creation
from .. import dtypes as D
from ..sparse import SparseCooTensor
from ..tensor import Tensor

# the default (rtol, atol) by dtype; other dtypes compare exactly
_TOL = {D.float16: (1e-3, 1e-5), D.bfloat16: (1.6e-2, 1e-5), D.float32: (1.3e-6, 1e-5),
        D.float64: (1e-7, 1e-7), D.complex64: (1.3e-6, 1e-5),
        D.complex128: (1e-7, 1e-7)}  # fmt: skip
# a Python number compares as a tensor of this dtype would (for its default tolerances)
_NUM_DTYPE = {int: D.int64, float: D.float64, complex: D.complex128}


class _MismatchError(AssertionError):
    """A failed comparison; ``custom`` says whether the caller's ``msg`` may replace it."""

    def __init__(self, text, custom=True):
        super().__init__(text)
        self.text, self.custom = text, custom


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None,
                 equal_nan=False, check_device=True, check_dtype=True, check_layout=True,
                 check_stride=False, msg=None) -> None:  # fmt: skip
    """Raise AssertionError unless ``actual`` and ``expected`` are close: tensors (or NumPy
    arrays, or Python numbers) agree elementwise within ``atol + rtol * |expected|`` and
    have the same shape, device, dtype and layout (and strides with ``check_stride``);
    sequences and mappings are compared item by item (mappings by key, in any order).

    Args:
        actual, expected: the inputs; except for Python numbers, their types must be
            directly related (the same with ``allow_subclasses=False``).
        rtol, atol: tolerances; give both or neither (the defaults depend on the dtype:
            float32 ``1.3e-6, 1e-5``, float64 ``1e-7, 1e-7``, exact for integers).
        equal_nan: count NaN as equal to NaN.
        check_device, check_dtype, check_layout, check_stride: which attributes must match;
            unchecked dtypes are promoted to a common one before comparing.
        msg: a message replacing the generated one, or a callable that rewrites it.

    Example::

        >>> torch.testing.assert_close({"w": torch.ones(2)}, {"w": torch.ones(2)})
    """
    if (rtol is None) != (atol is None):
        missing = "atol" if atol is None else "rtol"
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, "
                         f"but got no {missing}.")  # fmt: skip
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is not None and tol < 0:
            raise ValueError(f"assert_close: {name} must be greater than or equal to zero, "
                             f"but got {tol}")  # fmt: skip
    opts = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                check_device=check_device, check_dtype=check_dtype,
                check_layout=check_layout, check_stride=check_stride)  # fmt: skip
    try:
        _compare(actual, expected, (), opts)
    except _MismatchError as err:
        text = err.text
        if err.custom and msg is not None:
            text = msg(text) if callable(msg) else msg
        raise AssertionError(text) from None


def _fail(text, path, custom=True):
    if path:
        where = "".join(f"[{k!r}]" for k in path)
        text = f"{text}\n\nThe failure occurred for item {where}"
    raise _MismatchError(text, custom)


def _is_bool(x) -> bool:
    return isinstance(x, (bool, np.bool_))


def _is_number(x) -> bool:
    return isinstance(x, (int, float, complex, np.number)) and not _is_bool(x)


def _is_tensor_like(x) -> bool:
    return isinstance(x, (Tensor, np.ndarray, SparseCooTensor))


def _compare(actual, expected, path, opts) -> None:
    seq = (collections.abc.Sequence, str, bytes)
    if all(isinstance(x, seq[0]) and not isinstance(x, seq[1:]) for x in (actual, expected)):
        if len(actual) != len(expected):
            _fail(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}",
                  path, custom=False)  # fmt: skip
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, (*path, i), opts)
    elif all(isinstance(x, collections.abc.Mapping) for x in (actual, expected)):
        _compare_mappings(actual, expected, path, opts)
    elif actual is None or expected is None:
        if actual is not expected:
            _fail(f"None mismatch: {actual} is not {expected}", path)
    elif _is_bool(actual) and _is_bool(expected):
        if bool(actual) is not bool(expected):
            _fail(f"Booleans mismatch: {bool(actual)} is not {bool(expected)}", path)
    elif _is_number(actual) and _is_number(expected):
        _compare_numbers(actual, expected, path, opts)
    elif _is_tensor_like(actual) and _is_tensor_like(expected) and _related(actual, expected,
                                                                            opts):  # fmt: skip
        _compare_tensors(actual, expected, path, opts)
    else:
        raise TypeError(f"No comparison pair was able to handle inputs of type {type(actual)} "
                        f"and {type(expected)}.")  # fmt: skip


def _related(actual, expected, opts) -> bool:
    # a sparse tensor counts as a Tensor (its layout is checked later)
    ta, te = (Tensor if isinstance(x, SparseCooTensor) else type(x) for x in (actual, expected))
    if not opts["allow_subclasses"]:
        return ta is te
    return issubclass(ta, te) or issubclass(te, ta)


def _compare_mappings(actual, expected, path, opts) -> None:
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    if missing or extra:
        _fail(f"The keys of the mappings do not match:\nMissing keys in the actual mapping: "
              f"{_sorted(missing)}\nAdditional keys in the actual mapping: "
              f"{_sorted(extra)}", path, custom=False)  # fmt: skip
    for k in _sorted(expected):
        _compare(actual[k], expected[k], (*path, k), opts)


def _sorted(keys) -> list:
    try:
        return sorted(keys)
    except TypeError:  # keys of mixed types keep their order
        return list(keys)


def _tolerances(dtypes, opts):
    if opts["rtol"] is not None:
        return opts["rtol"], opts["atol"]
    pairs = [_TOL.get(d, (0.0, 0.0)) for d in dtypes]
    return max(p[0] for p in pairs), max(p[1] for p in pairs)


def _compare_numbers(actual, expected, path, opts) -> None:
    a = actual.item() if isinstance(actual, np.generic) else actual
    e = expected.item() if isinstance(expected, np.generic) else expected
    kinds = [next(k for k in (complex, float, int) if isinstance(v, k)) for v in (a, e)]
    if opts["check_dtype"] and kinds[0] is not kinds[1]:
        _fail(f"The (d)types do not match: {kinds[0]} != {kinds[1]}.", path)
    rtol, atol = _tolerances([_NUM_DTYPE[k] for k in kinds], opts)
    _scalar_check(a, e, rtol, atol, opts["equal_nan"], path)


def _scalar_check(a, e, rtol, atol, equal_nan, path) -> None:
    if a == e or (equal_nan and cmath.isnan(a) and cmath.isnan(e)):
        return
    diff = abs(a - e)
    if cmath.isfinite(a) and cmath.isfinite(e) and diff <= atol + rtol * abs(e):
        return
    rel = diff / abs(e) if e != 0 else (math.nan if math.isnan(diff) else math.inf)
    exact = rtol == 0 and atol == 0
    _fail(f"Scalars are not {'equal' if exact else 'close'}!\n\nExpected {e} but got {a}.\n"
          f"Absolute difference: {diff}{'' if exact else f' (up to {atol} allowed)'}\n"
          f"Relative difference: {rel}{'' if exact else f' (up to {rtol} allowed)'}",
          path)  # fmt: skip


def _describe(x):
    """(shape, layout, strides, device, dtype, dense tensor) of a tensor-like input."""
    if isinstance(x, np.ndarray):
        strides = tuple(s // x.itemsize for s in x.strides) if x.itemsize else (0,) * x.ndim
        t = creation.tensor(x.copy(order="C"), dtype=D.from_any(x.dtype))
        return t.shape, "strided", strides, t.device, t.dtype, t
    if isinstance(x, SparseCooTensor):
        dense = x.to_dense().detach()
        return dense.shape, "sparse_coo", None, dense.device, dense.dtype, dense
    t = x.detach()
    return t.shape, "strided", t.stride(), t.device, t.dtype, t


def _compare_tensors(actual, expected, path, opts) -> None:
    (sa, la, da, va, ta, a), (se, le, de, ve, te, e) = _describe(actual), _describe(expected)

    def attr(name, x, y):
        _fail(f"The values for attribute '{name}' do not match: {x} != {y}.", path)

    if sa != se:
        attr("shape", sa, se)
    if la != le and opts["check_layout"]:
        attr("layout", f"{D.display_module}.{la}", f"{D.display_module}.{le}")
    if la == le == "strided" and opts["check_stride"] and da != de:
        attr("stride()", da, de)
    if opts["check_device"] and va != ve:
        attr("device", va, ve)
    if opts["check_dtype"] and ta is not te:
        attr("dtype", ta, te)
    rtol, atol = _tolerances([ta, te], opts)
    dt = ta if ta is te else D.promote_types(ta, te)
    x, y = _host(a, dt), _host(e, dt)
    if x.size == 0:
        return
    if x.ndim == 0:
        cast = bool if dt is D.bool_ else (lambda v: v)
        _scalar_check(cast(x.item()), cast(y.item()), rtol, atol, opts["equal_nan"], path)
        return
    exact = rtol == 0 and atol == 0
    inexact = dt.is_floating_point or dt.is_complex  # NOTE: bfloat16's NumPy kind is "V"
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # inf - inf, x / 0
        diff = np.abs(x - y)
        if inexact:
            ok = np.isclose(x, y, rtol=rtol, atol=atol, equal_nan=opts["equal_nan"])
        else:
            ok = diff <= atol + rtol * np.abs(y)
        if ok.all():
            return
        # NOTE: only the mismatched elements take part in the greatest differences
        diff = np.where(ok, 0, diff)
        rel = diff / np.abs(y)
    if not inexact:
        rel = rel.astype(np.float32)
    rel = np.where(ok, 0, rel).astype(rel.dtype)
    bad = int((~ok).sum())
    lines = [f"Tensor-likes are not {'equal' if exact else 'close'}!", "",
             f"Mismatched elements: {bad} / {ok.size} ({bad / ok.size * 100:.1f}%)"]  # fmt: skip
    for name, vals, tol in (("absolute", diff, atol), ("relative", rel, rtol)):
        flat = vals.ravel()
        nan = np.isnan(flat) if inexact else np.zeros(flat.shape, bool)
        i = int(np.argmax(nan)) if nan.any() else int(np.argmax(flat))
        where = tuple(int(j) for j in np.unravel_index(i, vals.shape))
        lines.append(f"Greatest {name} difference: {flat[i].item()} at index {where}"
                     + ("" if exact else f" (up to {tol} allowed)"))  # fmt: skip
    _fail("\n".join(lines), path)


def _host(t, dt):
    """A tensor's values on the host in dtype ``dt``: integers and booleans widen to int64
    so that differences cannot wrap around."""
    arr = backend.to_numpy(t.to(dtype=dt)._data)
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64)
    return np.asarray(arr)


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad: bool = False,
                noncontiguous: bool = False, exclude_zero: bool = False,
                memory_format=None):  # fmt: skip
    """A random tensor for tests (PyTorch's ``torch.testing.make_tensor``): uniform in
    ``[low, high)`` (default [-9, 9) for floats, [-9, 10) for ints, {False, True} for bool);
    ``noncontiguous`` gives a strided view; ``exclude_zero`` replaces zeros."""
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
