"""float8 tensors as PyTorch 2.13 has them on the CPU, on ml_dtypes' NumPy types.

Casts to a float8 type go through float32 first (as PyTorch's do: a float64 is rounded
twice), then to nearest-even, and PyTorch's ends differ from ml_dtypes' in three places:

- ``float8_e4m3fn`` has no inf: PyTorch saturates values beyond ±448 (and ±inf) to ±448,
  where ml_dtypes gives NaN;
- ``float8_e5m2``'s NaN is ``0x7f``/``0xff`` in PyTorch (ml_dtypes: ``0x7e``/``0xfe``);
- ``float8_e8m0fnu`` (powers of two, 2**-127 .. 2**127, NaN ``0xff``): PyTorch keeps
  float32's exponent, rounded up when the mantissa is at least one half (ties up from
  normals, to even from subnormals), ignores the sign and maps 0 to 2**-127 and inf to NaN;
  ml_dtypes rounds in the log domain and gives NaN for 0 and negative values.

The fnuz types round as in ml_dtypes (one NaN, ``0x80``, which reads as a positive NaN in
PyTorch). Ops: PyTorch 2.13's CPU kernels for float8 tensors move and pick values (cat,
indexing, where, clone, ...) and compute only a few things (see ``_COMPUTES``), in float32
with the result rounded back; every other op is refused with an error that names the fix
(``Function.apply`` calls ``gate``; in-place ops on float8 tensors go through the ops).
float8 tensors live on the CPU only: CuPy has no float8 dtype.
"""

from __future__ import annotations

import numpy as np

from .errors import DTypeError

_E4M3FN_MAX = 448.0
_TABLES: dict = {}


def _is_f8(npdt) -> bool:
    # NOTE: ml_dtypes gives float8_e5m2 the kind "f" and the others "V"; NumPy itself has
    # no 1-byte float
    return npdt.itemsize == 1 and npdt.kind in "fV"


def device_error(name: str, dev) -> DTypeError:
    return DTypeError(
        f"{name} tensors live on the CPU only in manygrad: CuPy has no float8 dtype, so they "
        f"can't go to {dev}. Keep them on the CPU, move their bits (x.view(mg.uint8).to("
        f"'{dev}'), back with .cpu().view(mg.{name})), or cast first: x.to(mg.bfloat16)"
    )


def _host(a, name: str) -> np.ndarray:
    if type(a) is not np.ndarray:
        from . import backend

        raise device_error(name, backend.device_of(a))
    return a


def to_float8(a: np.ndarray, npdt: np.dtype) -> np.ndarray:
    """``a`` (a real or bool host array) as the float8 type ``npdt``, rounded as PyTorch
    rounds."""
    a = _host(a, npdt.name)
    if a.dtype.kind == "c":
        a = a.real  # NOTE: PyTorch drops the imaginary part here (no warning)
    if a.dtype != np.float32:
        with np.errstate(over="ignore"):  # NOTE: beyond float32's range is inf, as in PyTorch
            a = a.astype(np.float32)
    f, name = a, npdt.name
    if name == "float8_e8m0fnu":
        return _e8m0_bits(f).view(npdt)
    if name == "float8_e4m3fn":
        f = np.clip(f, -_E4M3FN_MAX, _E4M3FN_MAX, out=np.empty_like(f))  # NaN stays NaN
    out = f.astype(npdt)
    if name == "float8_e5m2":
        nan = np.isnan(f)
        if nan.any():
            bits = out.view(np.uint8)
            bits[nan] |= 0x7F
    return out


def _e8m0_bits(f: np.ndarray) -> np.ndarray:
    """float32 values as float8_e8m0fnu bits: the exponent, rounded by the mantissa's top
    bit when the rest is non-zero or the value is normal (PyTorch's rule)."""
    bits = f.view(np.uint32)
    e = (bits >> 23) & 0xFF
    half = ((bits >> 22) & 1).astype(bool)
    up = half & (((bits & 0x3FFFFF) != 0) | (e != 0))
    return np.asarray(np.where(e == 0xFF, 0xFF, e + up), dtype=np.uint8)


def _table(npdt: np.dtype) -> np.ndarray:
    t = _TABLES.get(npdt)
    if t is None:
        t = np.arange(256, dtype=np.uint8).view(npdt).astype(np.float32)
        if npdt.name.endswith("fnuz"):
            t[0x80] = np.nan  # NOTE: PyTorch's NaN reads positive; ml_dtypes' negative
        _TABLES[npdt] = t
    return t


def to_float32(a: np.ndarray) -> np.ndarray:
    """A float8 host array's values as float32 (exact)."""
    out = _table(a.dtype)[_host(a, a.dtype.name).view(np.uint8)]
    return out if out.ndim == a.ndim else np.asarray(out, dtype=np.float32)


def astype(a, npdt: np.dtype) -> np.ndarray:
    """``a.astype(npdt)`` where either side is a float8 type, with PyTorch's rounding."""
    npdt = np.dtype(npdt)
    if _is_f8(a.dtype):
        if a.dtype == npdt:
            return _host(a, npdt.name).copy()
        a = to_float32(a)
        if npdt == np.float32:
            return a
    if _is_f8(npdt):
        return to_float8(a, npdt)
    with np.errstate(invalid="ignore", over="ignore"):  # NOTE: NaN and inf to ints, as C casts
        return a.astype(npdt)


def cast_any(a, npdt: np.dtype):
    """``a.astype(npdt)`` for any array, rounded as PyTorch where a float8 type is involved."""
    if _is_f8(a.dtype) or _is_f8(np.dtype(npdt)):
        return astype(a, npdt)
    return a.astype(npdt)


def array_from(data, npdt: np.dtype, dev=None) -> np.ndarray:
    """``mg.tensor(data, dtype=<float8>)``'s array: data of any kind, rounded as PyTorch."""
    from . import backend
    from .tensor import Tensor

    if dev is not None and dev.type != "cpu":
        raise device_error(npdt.name, dev)
    if isinstance(data, Tensor):
        data = data._data
    if backend.is_array(data):
        if dev is not None:  # NOTE: device="cpu" asked: the data comes to the host first
            data = backend.to_numpy(data)
        return _host(data, npdt.name).copy() if data.dtype == npdt else astype(data, npdt)
    return to_float8(np.array(data), npdt)


def scalar(v, npdt: np.dtype) -> np.ndarray:
    """A Python number as a 0-d float8 array of type ``npdt`` (PyTorch's rounding)."""
    return to_float8(np.asarray(v, dtype=np.float32), npdt)


def value_of(v, npdt: np.dtype):
    """A number or array written into a float8 array of type ``npdt``, rounded as PyTorch
    (not by NumPy's assignment, which rounds as ml_dtypes does)."""
    if type(v) is np.ndarray:
        return v if v.dtype == npdt else astype(v, npdt)
    return scalar(v, npdt) if isinstance(v, (int, float)) else v


# the range a number filled in must be in: (lowest, max, has inf)
_RANGE = {"float8_e4m3fn": (-448.0, 448.0, False), "float8_e5m2": (-57344.0, 57344.0, True),
          "float8_e4m3fnuz": (-240.0, 240.0, False), "float8_e5m2fnuz": (-57344.0, 57344.0, False),
          "float8_e8m0fnu": (2.0**-127, 2.0**127, False)}  # fmt: skip


def fill_value(v, npdt: np.dtype, numel: int, op: str) -> np.ndarray:
    """``full``/``fill_``'s number as a 0-d float8 array. NOTE: PyTorch refuses a number out
    of the type's range there (when filling more than one element), where casts saturate."""
    if numel != 1 and isinstance(v, (int, float)) and v == v:
        lo, hi, has_inf = _RANGE[npdt.name]
        if not (lo <= v <= hi or has_inf and abs(v) == float("inf")):
            raise DTypeError(
                f"{op}: value {v} cannot be converted to {npdt.name} without overflow (its "
                f"range is [{lo:g}, {hi:g}]), as in PyTorch; clamp it first, or cast a float32 "
                f"tensor, which saturates: mg.full(size, v).to(mg.{npdt.name})"
            )
    return scalar(v, npdt)


# ---------------------------------------------------------------------------- ops


def _two_tensors(args, name):
    # NOTE: PyTorch's CPU kernel multiplies a float8 tensor by a dimensioned float8 tensor
    # only (a number or 0-d second operand takes a path with no float8 loop)
    ok = len(args) == 2 and all(hasattr(a, "_data") for a in args) and args[1].ndim > 0
    return None if ok else "with a number or 0-d tensor as the second operand"


def _matrices(args, name):
    if name == "float8_e8m0fnu":
        return ""
    a, b = args[0], args[1]
    ok = a.ndim in (1, 2) and b.ndim == 2
    shapes = f"{tuple(a.shape)} @ {tuple(b.shape)}"
    return None if ok else f"for shapes {shapes} (only 2-d @ 2-d and 1-d @ 2-d)"


def _not_e8m0(args, name):
    return "" if name == "float8_e8m0fnu" else None


def _e5m2_only(args, name):
    # NOTE: isinf/isfinite run on e5m2 only (PyTorch's isfinite also runs on e8m0fnu, where
    # it is true even on NaN: refused here)
    return None if name == "float8_e5m2" else ""


def _always(args, name):
    return None


def _sum_to_dtype(args, name):
    dt = args[3] if len(args) > 3 else None
    ok = dt is not None and not _is_f8(np.dtype(dt))
    return None if ok else "without dtype= (it sums with x.sum(dtype=mg.float32))"


# Ops that compute on float8 tensors on PyTorch's CPU: a rule (of the op's arguments) gives
# None where it runs, else a reason ("" for none in particular).
_COMPUTES = {
    "Mul": _two_tensors, "Matmul": _matrices, "Linear": _not_e8m0, "Abs": _not_e8m0,
    "Eq": _always, "Ne": _always, "IsNan": _always, "IsInf": _e5m2_only,
    "IsFinite": _e5m2_only, "Sum": _sum_to_dtype,
}  # fmt: skip
# Ops that only move or pick values: exact on any dtype. NOTE: PyTorch 2.13 has no float8
# kernel for a few of them (flip, gather, scatter, masked_fill, tril/triu, take): they run
# here all the same, as nothing is computed
_MOVES = frozenset([
    "Cast", "ToDevice", "Clone", "Conj", "Where", "Cat", "Index", "IndexSelect", "IndexPut",
    "Gather", "Scatter", "Put", "Flip", "Roll", "Repeat", "Pad", "Tri", "MaskedFill",
    "MaskedScatter", "IndexFill", "DiagEmbed", "Overwrite", "CopySlices", "ViewOf", "_Take",
    "_Put", "Adjoint", "ToLayout",
])  # fmt: skip


# the argument of these ops that is a value to fill in
_VALUE_ARG = {"Overwrite": 1, "Pad": 3, "MaskedFill": 2, "IndexFill": 3, "IndexPut": 1}


def refused(op: str, name: str, why: str = "") -> DTypeError:
    """The error for an op that PyTorch's CPU does not compute on float8 tensors."""
    return DTypeError(
        f"{op}: PyTorch has no CPU kernel for {name} tensors{' ' + why if why else ''} "
        f"(float8 types store values for casts and scaled matmuls); compute in a wider "
        f"type and cast back, e.g. x.float() or x.to(mg.bfloat16), then .to(mg.{name})"
    )


def gate(cls, args: tuple, raw: list, npdt: np.dtype) -> None:
    """Let op ``cls`` run on float8 arrays as PyTorch's CPU does: ops in ``_MOVES`` as they
    are, ops in ``_COMPUTES`` on float32 copies of ``raw`` (the arrays of ``args``, changed
    in place; the caller rounds a float32 result back), and refuse the rest."""
    op = cls.op_name
    i = _VALUE_ARG.get(op)
    if op == "IndexPut" and len(raw) == 6:  # NOTE: index_add (adds) or index_copy (moves)
        if raw[5]:
            raise refused("index_add", npdt.name)
        i = None
    if i is not None:
        # NOTE: the value filled in, rounded as PyTorch rounds it (not as ml_dtypes: 0 is
        # 2**-127 in e8m0fnu, not NaN); fill_ refuses one out of range, zero_ is fine
        v = raw[i]
        if op == "Overwrite" and type(v) is not np.ndarray and v != 0:
            raw[i] = fill_value(v, npdt, raw[0].size, "fill_")
        else:
            raw[i] = value_of(v, npdt)
    if op in _MOVES or cls._user:
        return
    rule = _COMPUTES.get(op)
    why = "" if rule is None else rule(args, npdt.name)
    if why is not None:
        raise refused(op.lstrip("_").lower(), npdt.name, why)
    for i, a in enumerate(raw):
        if type(a) is np.ndarray and a.dtype == npdt:
            raw[i] = to_float32(a)
        elif op in ("Eq", "Ne") and isinstance(a, (int, float)):
            # NOTE: PyTorch rounds a number compared with float8 values to the float8 type
            # first (x == 1.1 holds where x is 1.125, and x == 500 where x is 448 in e4m3fn)
            raw[i] = float(to_float32(scalar(a, npdt)))
