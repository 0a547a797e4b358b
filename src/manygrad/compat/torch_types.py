"""``torch.types``: the type aliases annotated library code imports (``Number``,
``Device``, ``_size``, ``_TensorOrTensors``, ...), in manygrad's terms.

Example:
    >>> from manygrad.compat.torch_types import Number, Device
    >>> def scale(x: "Tensor", by: Number) -> "Tensor": ...
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any, Union

from ..backend import Device as _DeviceClass
from ..dtypes import dtype as _dtype
from ..tensor import Tensor
from .torch_names_extra import SymBool, SymFloat, SymInt

_int = int
_float = float
_bool = bool
_complex = complex
_str = str
_bytes = bytes
_device = _DeviceClass
_layout = Any
_qscheme = Any
_dispatchkey = Union[str, Any]  # noqa: UP007
_size = Union[tuple[int, ...], list[int]]  # noqa: UP007
_symsize = _size
Size = tuple
Number = Union[int, float, bool]  # noqa: UP007
_Number = (int, float, bool)
Device = Union[_DeviceClass, str, int, None]  # noqa: UP007
IntLikeType = Union[int, SymInt]  # noqa: UP007
FloatLikeType = Union[float, SymFloat]  # noqa: UP007
BoolLikeType = Union[bool, SymBool]  # noqa: UP007
PySymType = Union[SymInt, SymFloat, SymBool]  # noqa: UP007
py_sym_types = (SymInt, SymFloat, SymBool)
_TensorOrTensors = Union[Tensor, Sequence[Tensor]]  # noqa: UP007
_TensorOrOptionalTensors = Union[Tensor, Sequence[Union[Tensor, None]]]  # noqa: UP007
FileLike = Union[str, IO[bytes]]  # noqa: UP007
Storage = Any

__all__ = [
    "Device",
    "FileLike",
    "Number",
    "Size",
    "Storage",
    "SymBool",
    "SymFloat",
    "SymInt",
    "Tensor",
    "_TensorOrTensors",
    "_dtype",
    "_size",
]
