"""Small top-level PyTorch utilities that ported programs use: typed tensor classes
(``FloatTensor``, ...), ``finfo``/``iinfo``, print options, ``compile``.

Re-exported as ``manygrad.<name>``.

Example:
    >>> x = mg.FloatTensor(2, 3)              # uninitialised float32, shape (2, 3)
    >>> isinstance(mg.zeros(2), mg.FloatTensor)
    True
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as D
from ..tensor import Tensor

# ----------------------------------------------------------------------------- typed tensors


class _TypedTensorMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return (isinstance(obj, Tensor) and obj.dtype is cls.dtype
                and obj.device.type == cls.device_type)  # fmt: skip

    def __call__(cls, *args, device=None):
        from ..creation import _legacy_tensor

        return _legacy_tensor(args, dtype=cls.dtype, device=device or cls.device_type)

    def __repr__(cls) -> str:
        return f"<class '{cls.__qualname__}'>"


def _typed(name: str, dt, device_type: str = "cpu"):
    qual = f"torch.{'cuda.' if device_type == 'cuda' else ''}{name}"
    cls = _TypedTensorMeta(name, (), {"dtype": dt, "device_type": device_type,
                                      "__qualname__": qual, "__module__": "manygrad"})  # fmt: skip
    cls.__doc__ = f"``{qual}``: builds {dt} tensors; ``isinstance`` checks dtype and device."
    return cls


_TYPED = {
    "FloatTensor": D.float32, "DoubleTensor": D.float64, "HalfTensor": D.float16,
    "BFloat16Tensor": D.bfloat16, "LongTensor": D.int64, "IntTensor": D.int32,
    "ShortTensor": D.int16, "CharTensor": D.int8, "ByteTensor": D.uint8, "BoolTensor": D.bool_,
}  # fmt: skip
FloatTensor = _typed("FloatTensor", D.float32)
DoubleTensor = _typed("DoubleTensor", D.float64)
HalfTensor = _typed("HalfTensor", D.float16)
BFloat16Tensor = _typed("BFloat16Tensor", D.bfloat16)
LongTensor = _typed("LongTensor", D.int64)
IntTensor = _typed("IntTensor", D.int32)
ShortTensor = _typed("ShortTensor", D.int16)
CharTensor = _typed("CharTensor", D.int8)
ByteTensor = _typed("ByteTensor", D.uint8)
BoolTensor = _typed("BoolTensor", D.bool_)
CUDA_TYPED = {n: _typed(n, dt, "cuda") for n, dt in _TYPED.items()}


def type_name(dt, device_type: str = "cpu") -> str:
    """PyTorch's legacy type string: ``"torch.FloatTensor"``, ``"torch.cuda.LongTensor"``."""
    name = next((n for n, d in _TYPED.items() if d is dt), None)
    if name is None and dt._f8:  # NOTE: PyTorch names these too, with no class behind them
        name = f"{dt.name.capitalize()}Tensor"
    if name is None:
        raise TypeError(f"no legacy tensor type for dtype {dt}")
    return f"torch.{'cuda.' if device_type == 'cuda' else ''}{name}"


def dtype_of_type_name(name: str):
    """The dtype (and device type) of ``"torch.FloatTensor"`` / ``"torch.cuda.LongTensor"``."""
    parts = name.split(".")
    dev = "cuda" if len(parts) == 3 and parts[1] == "cuda" else "cpu"
    dt = _TYPED.get(parts[-1]) if parts[0] in ("torch", "manygrad") else None
    if dt is None and parts[-1].startswith("Float8_") and parts[-1].endswith("Tensor"):
        dt = D._BY_NAME.get(parts[-1][: -len("Tensor")].lower())
    if dt is None:
        raise TypeError(f"invalid tensor type {name!r}; expected e.g. 'torch.FloatTensor' or "
                        "a dtype such as torch.float32")  # fmt: skip
    return dt, dev


# ----------------------------------------------------------------------------- dtype info


class finfo:  # noqa: N801 - PyTorch's name
    """Limits of a floating dtype: ``bits``, ``eps``, ``max``, ``min``, ``tiny``, ``resolution``.

    Example: ``mg.finfo(mg.float32).eps``
    """

    def __init__(self, type=None):  # noqa: A002
        dt = D.get_default_dtype() if type is None else D.from_any(type)
        if not dt.is_floating_point:
            raise TypeError(f"finfo: {dt} is not a floating dtype; use iinfo for integers")
        info = np.finfo(dt.np)
        self.dtype = str(dt).replace("manygrad.", "")
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = float(info.resolution)
        if dt._f8:  # NOTE: PyTorch's values: resolution 1 (no decimal digit), e5m2fnuz's eps 1/8
            self.resolution = 1.0
            self.eps = 0.125 if dt.name == "float8_e5m2fnuz" else self.eps

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, "
                f"eps={self.eps}, tiny={self.tiny}, dtype={self.dtype})")  # fmt: skip


class iinfo:  # noqa: N801 - PyTorch's name
    """Limits of an integer dtype: ``bits``, ``max``, ``min``."""

    def __init__(self, type):  # noqa: A002
        dt = D.from_any(type)
        if dt.is_floating_point:
            raise TypeError(f"iinfo: {dt} is a floating dtype; use finfo")
        info = np.iinfo(dt.np) if dt is not D.bool_ else np.iinfo(np.uint8)
        self.dtype = str(dt).replace("manygrad.", "")
        self.bits, self.max, self.min = int(info.bits), int(info.max), int(info.min)

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"


def is_floating_point(x: Tensor) -> bool:
    return x.is_floating_point()


def is_complex(x: Tensor) -> bool:
    """False: manygrad has no complex dtypes."""
    return False


def is_nonzero(x: Tensor) -> bool:
    if x.numel() != 1:
        raise RuntimeError(f"is_nonzero: expected a one-element tensor, got shape {x.shape}")
    return bool(x.item())


def typename(obj) -> str:
    """A tensor's type string (``"torch.FloatTensor"``), else the module-qualified name of a
    class, function or object's class (builtins unqualified), as PyTorch's."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        name = obj.__qualname__
    elif hasattr(obj, "__name__"):
        name = obj.__name__
    else:
        module, name = type(obj).__module__ or "", type(obj).__qualname__
    return name if module in ("", "builtins") else f"{module}.{name}"


# ----------------------------------------------------------------------------- printing


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:  # fmt: skip
    """Options for printing tensors, as PyTorch's.

    Args:
        precision: digits after the point (default 4).
        threshold: elements before summarising with "..." (default 1000).
        edgeitems: items shown at each end of each dim when summarising (default 3).
        linewidth: characters per line (default 80).
        profile: ``"default"``, ``"short"`` or ``"full"`` (sets the four above).
        sci_mode: True forces scientific notation, False forbids it, None chooses.
    """
    from .._tensor_str import PRINT_OPTS

    if profile is not None:
        presets = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80),
                   "full": (4, math.inf, 3, 80)}  # fmt: skip
        if profile not in presets:
            raise ValueError(f"set_printoptions: profile must be one of {sorted(presets)}")
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = presets[profile]  # fmt: skip
    for k, v in (("precision", precision), ("threshold", threshold),
                 ("edgeitems", edgeitems), ("linewidth", linewidth)):  # fmt: skip
        if v is not None:
            setattr(PRINT_OPTS, k, v if k == "threshold" and v == math.inf else int(v))
    PRINT_OPTS.sci_mode = sci_mode


# ----------------------------------------------------------------------------- global switches
# NOTE: manygrad's kernels are deterministic and its float32 matmuls use full float32 on the
# CPU; these switches record what a script asks for (and validate it) so that it runs and
# reads back the same values, as documented in docs/porting.md.
_switches = {"deterministic": False, "warn_only": False, "matmul_precision": "highest",
             "interop_threads": 1, "warn_always": False}  # fmt: skip


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted as in PyTorch; manygrad's ops are deterministic either way."""
    _switches["deterministic"], _switches["warn_only"] = bool(mode), bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _switches["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _switches["warn_only"]


def set_float32_matmul_precision(precision: str) -> None:
    """``"highest"``, ``"high"`` or ``"medium"``; recorded (manygrad's CPU matmuls are full
    float32)."""
    if precision not in ("highest", "high", "medium"):
        raise ValueError(f"set_float32_matmul_precision: expected 'highest', 'high' or "
                         f"'medium', got {precision!r}")  # fmt: skip
    _switches["matmul_precision"] = precision


def get_float32_matmul_precision() -> str:
    return _switches["matmul_precision"]


def set_num_interop_threads(n: int) -> None:
    """Accepted as in PyTorch (manygrad runs one op at a time; see ``set_num_threads``)."""
    if int(n) < 1:
        raise ValueError(f"set_num_interop_threads: expected a positive number, got {n}")
    _switches["interop_threads"] = int(n)


def get_num_interop_threads() -> int:
    return _switches["interop_threads"]


def set_warn_always(b: bool) -> None:
    _switches["warn_always"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _switches["warn_always"]


def set_default_tensor_type(t) -> None:
    """``torch.set_default_tensor_type("torch.DoubleTensor")``: sets the default float dtype.

    The CUDA types are refused: manygrad has no default device; create tensors with
    ``device="cuda"`` or move them with ``.to("cuda")``.
    """
    if isinstance(t, str):
        dt, dev = dtype_of_type_name(t)
    elif isinstance(t, _TypedTensorMeta):
        dt, dev = t.dtype, t.device_type
    else:
        raise TypeError(f"set_default_tensor_type: expected a type string such as "
                        f"'torch.FloatTensor' or a typed tensor class, got {t!r}")  # fmt: skip
    if dev != "cpu":
        from ..errors import DeviceError

        raise DeviceError(f"set_default_tensor_type({type_name(dt, dev)!r}): manygrad has no "
                          "default device; create tensors with device='cuda' or move them "
                          "with .to('cuda')")  # fmt: skip
    if not dt.is_floating_point:
        raise TypeError(f"set_default_tensor_type: only floating types can be the default, got "
                        f"{type_name(dt)}")  # fmt: skip
    D.set_default_dtype(dt)


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None,  # noqa: A001
            options=None, disable=False):  # fmt: skip
    """``torch.compile``: returns ``model`` unchanged (manygrad runs eagerly); usable as a
    decorator with or without arguments."""
    if model is None:
        return lambda m: m
    return model


__all__ = [
    "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor",
    "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor", "finfo", "iinfo",
    "is_floating_point", "is_complex", "is_nonzero", "typename", "set_printoptions", "compile",
    "set_default_tensor_type", "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled", "is_deterministic_algorithms_warn_only_enabled",
    "set_float32_matmul_precision", "get_float32_matmul_precision", "set_num_interop_threads",
    "get_num_interop_threads", "set_warn_always", "is_warn_always_enabled",
]  # fmt: skip
