"""``torch.utils.dlpack``: tensors to and from DLPack, sharing memory with NumPy, CuPy,
PyTorch and any other library that speaks it.

``from_dlpack`` takes an object with ``__dlpack__`` or a raw capsule from ``to_dlpack``
(a capsule is consumed once, as in PyTorch). CPU memory gives a CPU tensor, CUDA memory a
CUDA tensor; writes through either side are seen by the other.

The fake GPU (``fakegpu``) reports DLPack's test device type ``kDLExtDev`` (12) with its
index, not ``kDLCUDA``: its memory lives on the host, and no other library must take it
for GPU memory. manygrad reads such capsules back as fake-GPU tensors; NumPy and PyTorch
refuse them as they refuse GPU memory.

DLPack knows bfloat16 and the float8 types that NumPy can't exchange: they travel as
unsigned integers of their width through NumPy, with the DLPack type code set right.

Example:
    >>> from manygrad.utils.dlpack import from_dlpack, to_dlpack
    >>> t = from_dlpack(to_dlpack(mg.ones(3)))
"""

from __future__ import annotations

import ctypes
import enum

import numpy as np

from .. import backend
from .. import dtypes as D
from .. import fakegpu as _fakegpu
from ..tensor import Tensor

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


# DLPack's device types (``torch.utils.dlpack.DLDeviceType``)
DLDeviceType = enum.IntEnum(
    "DLDeviceType",
    {"kDLCPU": 1, "kDLCUDA": 2, "kDLCUDAHost": 3, "kDLOpenCL": 4, "kDLVulkan": 7,
     "kDLMetal": 8, "kDLVPI": 9, "kDLROCM": 10, "kDLROCMHost": 11, "kDLExtDev": 12,
     "kDLCUDAManaged": 13, "kDLOneAPI": 14, "kDLWebGPU": 15, "kDLHexagon": 16,
     "kDLMAIA": 17},
    module=__name__,
)  # fmt: skip


_HOST = {DLDeviceType.kDLCPU, DLDeviceType.kDLCUDAHost, DLDeviceType.kDLROCMHost}
_GPU = {DLDeviceType.kDLCUDA, DLDeviceType.kDLCUDAManaged}
_UINT = 1  # DLPack's type code of unsigned integers
# manygrad dtypes NumPy can't exchange -> DLPack (type code, bits)
_EXT = {
    "bfloat16": (4, 16),
    "float8_e4m3fn": (10, 8),
    "float8_e4m3fnuz": (11, 8),
    "float8_e5m2": (12, 8),
    "float8_e5m2fnuz": (13, 8),
    "float8_e8m0fnu": (14, 8),
}
_EXT_BY_CODE = {v: k for k, v in _EXT.items()}


# ---------------------------------------------------------------------------- the C structs
class _DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", _DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", _DLDataType),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("byte_offset", ctypes.c_uint64),
    ]


# NOTE: DLManagedTensor starts with its DLTensor; DLManagedTensorVersioned has the version
# (2 x uint32), manager_ctx, deleter and flags (8 bytes each) before it
_OFFSET = {b"dltensor": 0, b"dltensor_versioned": 32}
_capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(
    ("PyCapsule_GetName", ctypes.pythonapi)
)
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)


def _is_capsule(obj) -> bool:
    return type(obj).__name__ == "PyCapsule"


def _dltensor(capsule) -> _DLTensor:
    """The DLTensor inside a capsule not consumed yet (a view: writes change the capsule)."""
    name = _capsule_name(capsule)
    if name not in _OFFSET:
        raise RuntimeError(
            f"from_dlpack(): the capsule is not an unused DLPack tensor (its name is {name!r});"
            " a DLPack capsule can be consumed only once: call to_dlpack() again for another"
        )
    return _DLTensor.from_address(_capsule_pointer(capsule, name) + _OFFSET[name])


class _CapsuleHolder:
    """A raw capsule behind ``__dlpack__``: NumPy's and CuPy's ``from_dlpack`` take only
    objects with the protocol."""

    def __init__(self, capsule, device: tuple[int, int]):
        self._capsule, self._device = capsule, device

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        # NOTE: consumers take unversioned capsules from producers that predate versions
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


# ---------------------------------------------------------------------------- export
def device_of(t: Tensor) -> tuple[DLDeviceType, int]:
    """``Tensor.__dlpack_device__``: (DLPack device type, index)."""
    d = t._device
    if d.type == "cpu":
        return DLDeviceType.kDLCPU, 0
    if d.type == "fakegpu":
        return DLDeviceType.kDLExtDev, d.index or 0
    return DLDeviceType.kDLCUDA, d.index or 0


def export(t: Tensor, stream=None, max_version=None, dl_device=None, copy=None):
    """A capsule of ``t``'s memory (``Tensor.__dlpack__`` without the gradient check)."""
    kw = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
    kw = {k: v for k, v in kw.items() if v is not None}
    arr, kind = t._data, t._device.type
    if kind == "cuda":
        return arr.__dlpack__(**kw)
    if kind == "fakegpu":
        arr = arr._a  # NOTE: the host array behind the fake GPU's; shared, not copied
        kw.pop("stream", None)
        if dl_device is not None and tuple(dl_device) != device_of(t):
            raise BufferError(
                f"__dlpack__: a {t._device} tensor exports only on its own device, not "
                f"{tuple(dl_device)}; copy it there first (t.cpu())"
            )
        kw.pop("dl_device", None)
    ext = _EXT.get(t.dtype.name)
    if ext is not None:
        arr = arr.view(np.uint16 if ext[1] == 16 else np.uint8)
    capsule = arr.__dlpack__(**kw)
    if ext is not None or kind == "fakegpu":
        dl = _dltensor(capsule)
        if ext is not None:
            dl.dtype.code = ext[0]
        if kind == "fakegpu":
            dl.device.device_type, dl.device.device_id = device_of(t)
    return capsule


def to_dlpack(tensor: Tensor):
    """A DLPack capsule sharing ``tensor``'s memory, for another library's ``from_dlpack``
    (or manygrad's); a capsule is consumed once.

    Example: ``arr = cupy.from_dlpack(to_dlpack(t))`` (``t`` on a GPU)
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(
            f"to_dlpack(): expected a manygrad Tensor, got {type(tensor).__name__}; pass "
            "such objects to from_dlpack directly, or use their own __dlpack__()"
        )
    return export(tensor)


# ---------------------------------------------------------------------------- import
class _Writable:
    """The memory of a read-only array ``ro`` as a writable one that keeps ``ro`` alive."""

    def __init__(self, ro: np.ndarray):
        self._ro = ro
        iface = dict(ro.__array_interface__)
        iface["data"] = (iface["data"][0], False)
        self.__array_interface__ = iface


def _from_capsule(capsule) -> Tensor:
    legacy = _capsule_name(capsule) == b"dltensor"
    dl = _dltensor(capsule)
    dev_type, dev_id = dl.device.device_type, dl.device.device_id
    ext = _EXT_BY_CODE.get((dl.dtype.code, dl.dtype.bits))
    if dev_type in _GPU or dev_type == DLDeviceType.kDLROCM:
        cp = backend.cuda_module()
        arr = cp.from_dlpack(_CapsuleHolder(capsule, (dev_type, dev_id)))
        return Tensor._wrap(arr, backend.device("cuda", int(dev_id)))
    fake = dev_type == DLDeviceType.kDLExtDev
    if not (fake or dev_type in _HOST):
        known = dev_type in DLDeviceType._value2member_map_
        name = DLDeviceType(dev_type).name if known else dev_type
        raise BufferError(
            f"from_dlpack(): the data sits on DLPack device {name}, which manygrad can't "
            "read; copy it to the CPU or a CUDA GPU first"
        )
    if fake and not 0 <= dev_id < _fakegpu.COUNT:
        raise BufferError(f"from_dlpack(): there is no fake GPU {dev_id}")
    if fake:  # NOTE: host memory tagged as the fake GPU's: read it as the host's
        dl.device.device_type, dl.device.device_id = DLDeviceType.kDLCPU, 0
    if ext is not None:
        dl.dtype.code = _UINT
    arr = np.from_dlpack(_CapsuleHolder(capsule, (int(dl.device.device_type), 0)))
    if legacy and not arr.flags.writeable:
        # NOTE: NumPy reads unversioned capsules as read-only; they carry no such flag, and
        # PyTorch writes through them
        arr = np.asarray(_Writable(arr))
    if ext is not None:
        arr = arr.view(getattr(D, ext).np)
    D.from_np(arr.dtype)  # raises for dtypes manygrad lacks
    if fake:
        return Tensor._wrap(_fakegpu.FakeArray(arr, dev_id), backend.device(f"fakegpu:{dev_id}"))
    return Tensor._wrap(arr, backend.CPU)


def _capsule_of(obj):
    try:
        return obj.__dlpack__(max_version=(1, 0))
    except TypeError:  # NOTE: a producer older than DLPack 1.0's versioned capsules
        return obj.__dlpack__()


def from_dlpack(ext_tensor, *, device=None, copy=None) -> Tensor:
    """A tensor sharing the memory of ``ext_tensor``: an object with ``__dlpack__`` (NumPy,
    CuPy, PyTorch, manygrad ...) or a capsule from ``to_dlpack``.

    Args:
        ext_tensor: the array or capsule.
        device: where the result lives (default: where the data is; elsewhere copies).
        copy: True always copies; False refuses to (default None: copy only to move).

    Example: ``t = mg.from_dlpack(np.arange(3.0))`` (writes to ``t`` change the array)
    """
    if isinstance(ext_tensor, Tensor):
        if ext_tensor.requires_grad:
            raise BufferError(
                "from_dlpack(): can't export a tensor that requires grad; pass t.detach()"
            )
        t = Tensor._wrap(ext_tensor._data, ext_tensor._device)
    elif _is_capsule(ext_tensor):
        t = _from_capsule(ext_tensor)
    elif hasattr(ext_tensor, "__dlpack__") and hasattr(ext_tensor, "__dlpack_device__"):
        dev_type, dev_id = ext_tensor.__dlpack_device__()
        if int(dev_type) in _GPU:  # NOTE: CuPy orders the producer's stream before its own
            arr = backend.cuda_module().from_dlpack(ext_tensor)
            t = Tensor._wrap(arr, backend.device("cuda", int(dev_id)))
        else:
            t = _from_capsule(_capsule_of(ext_tensor))
    else:
        raise TypeError(
            f"from_dlpack(): expected an object with __dlpack__ (a NumPy, CuPy or PyTorch "
            f"array, a tensor) or a DLPack capsule, got {type(ext_tensor).__name__}"
        )
    if device is not None and backend.device(device) != t._device:
        if copy is False:
            raise BufferError(
                f"from_dlpack(): the data is on {t._device}; device={device!r} needs a copy, "
                "which copy=False forbids"
            )
        return t.to(backend.device(device))
    return t.clone() if copy else t
