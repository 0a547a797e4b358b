"""dtypes, named as in PyTorch, and PyTorch's type-promotion rules."""

from __future__ import annotations

import numpy as np

from .errors import DTypeError

# the module name dtypes and sizes print under: "torch" while a PyTorch script runs on
# manygrad (``manygrad run``), so that ``str(x.dtype) == "torch.float32"`` holds there
display_module = "manygrad"


class dtype:  # noqa: N801 - PyTorch's name
    """A tensor element type; ``mg.float32`` etc. Wraps a NumPy dtype (``.np``)."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize",
                 "_cat", "_f8")  # fmt: skip

    def __init__(self, name: str, npdt):
        self.name = name
        if npdt is not None:  # None: ml_dtypes' types, whose NumPy dtypes load on first use
            self.np = np.dtype(npdt)
            self.itemsize = self.np.itemsize
        self.is_floating_point = name.startswith(("float", "bfloat", "half"))
        self.is_complex = name.startswith("complex")
        self.is_signed = not name.startswith(("uint", "bool", "quint")) and name != "float8_e8m0fnu"
        self._f8 = name.startswith("float8")
        # promotion category: bool < integer < floating < complex
        self._cat = 0 if name == "bool" else 3 if self.is_complex else (
            2 if self.is_floating_point else 1)  # fmt: skip

    def __getattr__(self, attr: str):
        # NOTE: reached only while a slot is unset, i.e. the ``np`` and ``itemsize`` of
        # bfloat16 and the float8 types before ml_dtypes is imported (it takes most of
        # `import manygrad`'s time)
        if attr in ("np", "itemsize") and self.name in _ML_NAMES:
            _load_ml_dtypes()
            return object.__getattribute__(self, attr)
        raise AttributeError(attr)

    def __repr__(self) -> str:
        return f"{display_module}.{self.name}"

    def __reduce__(self):
        return (from_any, (self.name,))


float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
float16 = dtype("float16", np.float16)
bfloat16 = dtype("bfloat16", None)
int8 = dtype("int8", np.int8)
int16 = dtype("int16", np.int16)
int32 = dtype("int32", np.int32)
int64 = dtype("int64", np.int64)
uint8 = dtype("uint8", np.uint8)
# NOTE: PyTorch's "limited support" unsigned types: storage, casts, comparisons, indexing
# and arithmetic within the type; promotion with another dtype is refused, as in PyTorch
uint16 = dtype("uint16", np.uint16)
uint32 = dtype("uint32", np.uint32)
uint64 = dtype("uint64", np.uint64)
bool_ = dtype("bool", np.bool_)
complex64 = dtype("complex64", np.complex64)
complex128 = dtype("complex128", np.complex128)
# NOTE: PyTorch's float8 types are for storage, casts and scaled matmuls: on the CPU it
# computes few ops on them (manygrad._float8 lists which) and promotes them with no other
# dtype. They live on the CPU only: CuPy has no float8 dtype.
float8_e4m3fn = dtype("float8_e4m3fn", None)
float8_e5m2 = dtype("float8_e5m2", None)
float8_e4m3fnuz = dtype("float8_e4m3fnuz", None)
float8_e5m2fnuz = dtype("float8_e5m2fnuz", None)
float8_e8m0fnu = dtype("float8_e8m0fnu", None)
# NOTE: the element types of quantized tensors (manygrad.ao.qtensor); ``.np`` is the
# integer representation's dtype. Not in ALL or _BY_NP: an int8 array stays int8.
qint8 = dtype("qint8", np.int8)
quint8 = dtype("quint8", np.uint8)
qint32 = dtype("qint32", np.int32)
quint4x2 = dtype("quint4x2", np.uint8)  # two 4-bit values a byte in int_repr()
QUANTIZED = (qint8, quint8, qint32, quint4x2)
# PyTorch's aliases
float_ = float32
double = float64
half = float16
long = int64
int_ = int32
short = int16
cfloat = complex64
cdouble = complex128

# NOTE: new dtypes go at the end (distributed messages index this tuple)
ALL = (float32, float64, float16, bfloat16, int8, int16, int32, int64, uint8, bool_, uint16,
       uint32, uint64, float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz,
       float8_e8m0fnu)  # fmt: skip
FLOAT8 = (float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz, float8_e8m0fnu)
_ML_NAMES = frozenset(["bfloat16", *(d.name for d in FLOAT8)])  # dtypes of ml_dtypes
_WIDE_UNSIGNED = ("uint16", "uint32", "uint64")
COMPLEX = (complex64, complex128)
_BY_NP = {d.np: d for d in ALL + COMPLEX if d.name not in _ML_NAMES}
_BY_NAME = {d.name: d for d in ALL + COMPLEX + QUANTIZED}
_BY_NAME.update(float=float32, double=float64, half=float16, long=int64, int=int32, short=int16,
                cfloat=complex64, cdouble=complex128)  # fmt: skip

_default_float = float32


def _load_ml_dtypes() -> None:
    """Import ml_dtypes and give bfloat16 and the float8 types their NumPy dtypes (once)."""
    import ml_dtypes

    for d in (bfloat16, *FLOAT8):
        npdt = np.dtype(getattr(ml_dtypes, d.name))
        d.np, d.itemsize = npdt, npdt.itemsize
        _BY_NP[npdt] = d


def supported() -> str:
    return ", ".join(d.name for d in ALL + COMPLEX)


def from_np(npdt) -> dtype:
    """The manygrad dtype of a NumPy dtype (raises for unsupported ones)."""
    d = _BY_NP.get(npdt)
    if d is None:
        d = _BY_NP.get(np.dtype(npdt))
        if d is None and np.dtype(npdt).name in _ML_NAMES:
            _load_ml_dtypes()
            d = _BY_NAME[np.dtype(npdt).name]
        if d is None:
            raise DTypeError(f"unsupported dtype {np.dtype(npdt)}; supported: {supported()}")
    return d


def from_any(x) -> dtype:
    """Accept a manygrad dtype, NumPy dtype, name string or Python type."""
    if isinstance(x, dtype):
        return x
    if isinstance(x, str):
        d = _BY_NAME.get(x.replace("torch.", "").replace("manygrad.", ""))
        if d is None:
            raise DTypeError(f"unknown dtype {x!r}; supported: {supported()}")
        return d
    if x is builtins_float:
        return float64
    if x is builtins_int:
        return int64
    if x is builtins_bool:
        return bool_
    try:
        return from_np(np.dtype(x))
    except TypeError:
        raise DTypeError(f"not a dtype: {x!r}; supported: {supported()}") from None


import builtins as _b  # noqa: E402

builtins_float, builtins_int, builtins_bool = _b.float, _b.int, _b.bool


def get_default_dtype() -> dtype:
    return _default_float


def set_default_dtype(d) -> None:
    global _default_float
    d = from_any(d)
    if not d.is_floating_point:
        raise DTypeError(f"default dtype must be floating point, got {d}")
    _default_float = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """PyTorch's promotion of two tensor dtypes."""
    if a is b:
        return a
    if a._f8 or b._f8:
        raise DTypeError(
            f"Promotion for Float8 Types is not supported, attempted to promote {a.name} and "
            f"{b.name} (as in PyTorch); cast one side first, e.g. x.to(mg.float32)"
        )
    if (a.name in _WIDE_UNSIGNED or b.name in _WIDE_UNSIGNED) and not (
        a.is_floating_point or b.is_floating_point
    ):  # NOTE: with a floating type the float wins, as in PyTorch
        raise DTypeError(
            f"Promotion for uint16, uint32, uint64 types is not supported, attempted to "
            f"promote {a.name} and {b.name}; cast one side first (e.g. x.to(mg.int64))"
        )
    if a._cat == 3 or b._cat == 3:
        # NOTE: complex with a float keeps the wider precision (float64 + complex64 gives
        # complex128), as PyTorch does
        wide = complex128 in (a, b) or float64 in (a, b)
        return complex128 if wide else complex64
    if a._cat != b._cat:
        return a if a._cat > b._cat else b
    if a._cat == 2 and {a.name, b.name} == {"float16", "bfloat16"}:
        return float32
    if a is bfloat16 or b is bfloat16:
        return b if a is bfloat16 else a  # bf16 with f32/f64: the wider one
    return from_np(np.promote_types(a.np, b.np))


def py_scalar(v):
    """A NumPy scalar (``arr.max()``, ``np.float32(0.5)``) as the Python number PyTorch takes
    it for: a wrapped number that promotes by category only; anything else unchanged."""
    return v.item() if isinstance(v, np.generic) and v.dtype.kind in "biufc" else v


def scalar_dtype(v) -> dtype:
    """The category a Python scalar promotes with (as a 'wrapped number')."""
    v = py_scalar(v)
    if isinstance(v, _b.bool):
        return bool_
    if isinstance(v, _b.int):
        return int64
    if isinstance(v, _b.float):
        return _default_float
    if isinstance(v, complex):
        return complex128 if _default_float is float64 else complex64
    raise DTypeError(f"expected a number, got {type(v).__name__}")


def result_type(*operands) -> dtype:
    """Result dtype of an op over tensors and Python scalars, as PyTorch computes it.

    Dimensioned tensors decide within a category; 0-d tensors and then Python scalars only
    matter when they bring a higher category (int -> float, bool -> int).
    """
    dim = zero = wrapped = None
    for o in operands:
        d = getattr(o, "dtype", None)
        if isinstance(d, dtype):
            if o.ndim:
                dim = d if dim is None else promote_types(dim, d)
            else:
                zero = d if zero is None else promote_types(zero, d)
        else:
            s = scalar_dtype(o)
            wrapped = s if wrapped is None else promote_types(wrapped, s)
    res = dim
    if zero is not None:
        res = zero if res is None else (promote_types(res, zero) if zero._cat > res._cat else res)
    if wrapped is not None:
        if res is None:
            res = wrapped
        elif wrapped._cat > res._cat:
            res = _default_float if wrapped._cat == 2 else promote_types(res, wrapped)
    return res
