"""Step counts and other 0-d optimizer state, kept as PyTorch keeps them.

A parameter's ``state["step"]`` is a 0-d float32 tensor (float64 while the default dtype is
float64) on the CPU, or on the parameter's device for ``capturable=True``; NAdam's
``mu_product`` and ASGD's ``eta`` and ``mu`` are 0-d tensors too. The updates read and
bump host scalars through their 0-d arrays: no kernel and no device sync per step.
"""

from __future__ import annotations

from .. import backend
from ..errors import CaptureError
from ..tensor import Tensor

_HOST = backend.xp_of(backend.CPU)  # NOTE: the host array module, for 0-d host scalars
_HOST_ARRAY = _HOST.ndarray


def _cast_scalar(p: Tensor, name: str, value, group: dict):
    """A loaded 0-d state entry (the step count, ...) as the optimizer keeps it.

    As PyTorch: a Python number (a file from an older version) becomes a 0-d tensor of
    ``scalar_dtype()``; a tensor keeps its dtype (a step is float32 on the parameter's
    device when capturable). NOTE: PyTorch casts the scalars other than the step to the
    parameter's dtype; they keep theirs here, so that a state dict loads back unchanged.
    Without ``capturable`` they go to the CPU, even from a GPU file, where the update
    reads them without a device sync.
    """
    on_device = group.get("capturable")
    if isinstance(value, Tensor):
        dt = "float32" if on_device and name == "step" else value._data.dtype
        arr = backend.to_device(value._data, p._device if on_device else backend.CPU)
        with backend.device_scope(p._device):
            arr = arr.astype(dt) if arr.dtype != dt else arr.copy()
        return Tensor._wrap(arr, backend.device_of(arr))
    if not isinstance(value, (int, float)):
        return value
    dt = scalar_dtype()
    if on_device:
        with backend.device_scope(p._device):
            arr = backend.array_module(p._data).full((), float(value), dt)
        return Tensor._wrap(arr, p._device)
    return Tensor._wrap(_HOST.full((), float(value), dt), backend.CPU)


def scalar_dtype(fused: bool = False) -> str:
    """PyTorch's dtype of step counts and other 0-d optimizer scalars: float32, or float64
    while the default dtype is float64 (never for a fused step)."""
    from ..dtypes import get_default_dtype

    return "float64" if not fused and str(get_default_dtype()) == "manygrad.float64" else "float32"


def host_scalar(value: float, dtype: str | None = None) -> Tensor:
    """A 0-d tensor on the CPU holding ``value`` (PyTorch's ``torch.tensor(value)``)."""
    return Tensor._wrap(_HOST.full((), float(value), dtype or scalar_dtype()), backend.CPU)


def new_step(p, group: dict) -> Tensor:
    """A parameter's step count before its first update, as PyTorch makes it: a 0-d
    tensor of 0 on the CPU, or on the raw array ``p``'s device for capturable groups.

    NOTE: ``fused=True`` groups keep theirs on the CPU too (PyTorch: on the parameter's
    device), where manygrad's multi-tensor GPU step reads it without a device sync.
    """
    if not group.get("capturable"):
        return Tensor._wrap(_HOST.zeros((), scalar_dtype()), backend.CPU)
    from ..cuda import graphs

    if graphs.current_capture() is not None:
        raise CaptureError(
            "CUDA graph capture: the optimizer's state is made by its first step; run "
            "warm-up steps (eager) before capturing optimizer.step()"
        )
    return Tensor._wrap(backend.array_module(p).zeros((), scalar_dtype()), backend.device_of(p))


def step_up(state: dict) -> float:
    """Count one more step in ``state["step"]`` (in place) and return the new count.

    NOTE: the hot path of every update: a host step is bumped through its 0-d array (no
    kernel, no device sync); anything else (a Python number set by hand, a device step)
    takes ``_step_up_slow``.
    """
    s = state["step"]
    if s.__class__ is Tensor:
        a = s._data
        if a.__class__ is _HOST_ARRAY:
            a[()] = a.item() + 1.0
            return a.item()
    return _step_up_slow(state)


def _step_up_slow(state: dict) -> float:
    s = state["step"]
    if not isinstance(s, Tensor):
        state["step"] = host_scalar(float(s))
        return step_up(state)
    with backend.device_scope(s._device):
        s._data += 1
    return float(s._data)  # NOTE: a device read, as PyTorch's non-capturable step does


def read_scalar(v) -> float:
    """A 0-d state entry (NAdam's ``mu_product``, ...) as a Python float (its float32
    value, as PyTorch reads it; a host read for a device tensor)."""
    return v._data.item() if isinstance(v, Tensor) else float(v)


def write_scalar(state: dict, key: str, value: float) -> None:
    """Set the 0-d state entry ``state[key]`` to ``value`` in place (rounded to its dtype)."""
    v = state[key]
    if v.__class__ is Tensor and v._data.__class__ is _HOST_ARRAY:
        v._data[()] = value
    elif isinstance(v, Tensor):
        with backend.device_scope(v._device):
            v._data.fill(value)
    else:
        state[key] = host_scalar(value)


def host_step(state: dict):
    """``state["step"]`` as a Python number when it lives on the host, else None."""
    s = state["step"]
    if s.__class__ is Tensor:
        return s._data.item() if s._data.__class__ is _HOST_ARRAY else None
    return float(s) if isinstance(s, (int, float)) else None
