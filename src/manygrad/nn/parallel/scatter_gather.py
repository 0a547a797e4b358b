"""``scatter`` (split a batch over devices) and ``gather`` (concatenate the pieces back),
as ``torch.nn.parallel.scatter_gather``; both are differentiable.

Devices are named as in PyTorch: an index (``0`` is the first GPU), a name (``"cuda:1"``)
or a device. Without a GPU an index names the CPU (or, in tests, the fake GPU the tensors
live on), so a CPU-only run sees one device.
"""

from __future__ import annotations

import warnings
from typing import Any

from ... import backend
from ...tensor import Tensor
from ...utils._pytree import tree_leaves


def _is_namedtuple(obj) -> bool:
    return isinstance(obj, tuple) and hasattr(obj, "_asdict") and hasattr(obj, "_fields")


def device_kind(*objs) -> str | None:
    """The type of device an index names: ``"cuda"`` with a GPU, else the type of a
    non-CPU tensor (or module parameter) in ``objs`` (the fake GPU in tests), else None."""
    if backend.cuda_available():
        return "cuda"
    for obj in objs:
        if hasattr(obj, "parameters") and hasattr(obj, "buffers"):
            leaves = list(obj.parameters()) + list(obj.buffers())
        else:
            leaves = tree_leaves(obj)
        for t in leaves:
            if isinstance(t, Tensor) and t.device.type != "cpu":
                return t.device.type
    return None


def as_device(d, kind: str | None) -> backend.Device:
    """Device ``d`` (an index, a name or a device); an index of ``kind``, -1 the CPU."""
    if isinstance(d, bool) or d is None:
        raise TypeError(f"expected a device index or a device, got {d!r}")
    if isinstance(d, int):
        if d == -1 or kind is None:
            return backend.CPU
        return backend.device(f"{kind}:{d}")
    return backend.device(d)


def device_index(d) -> int:
    """PyTorch's ``_get_device_index``: the index of a device (an int stays as it is)."""
    if isinstance(d, int):
        return d
    dev = backend.device(d)
    if dev.type == "cpu":
        raise ValueError(f"Expected a cuda device, but got: {dev}")
    return dev.index or 0


def _scatter_tensor(x: Tensor, devices: list, dim: int) -> tuple:
    # NOTE: PyTorch's chunking: len(devices) chunks of ceil(n / len(devices)), so a short
    # batch gives fewer pieces than devices
    return tuple(c.to(devices[i]) for i, c in enumerate(x.chunk(len(devices), dim)))


def scatter(inputs, target_gpus, dim: int = 0):
    """Split the tensors in ``inputs`` into ``len(target_gpus)`` chunks along ``dim``, one
    per device; other objects are repeated. Tuples, lists, dicts and namedtuples are
    followed: the result is a list with one ``inputs``-shaped object per device (a tuple
    of chunks for a tensor).

    Args:
        inputs: a tensor or a nest of them.
        target_gpus: device indices or devices.
        dim: the dimension to split (default 0).

    Example:
        >>> a, b = scatter(x, [0, 1])  # the two halves of x's batch, on cuda:0 and cuda:1
    """
    kind = device_kind(inputs)
    devices = [as_device(d, kind) for d in target_gpus]

    def scatter_map(obj):
        if isinstance(obj, Tensor):
            return _scatter_tensor(obj, devices, dim)
        if _is_namedtuple(obj):
            return [type(obj)(*args) for args in zip(*map(scatter_map, obj))]
        if isinstance(obj, tuple) and len(obj) > 0:
            return list(zip(*map(scatter_map, obj)))
        if isinstance(obj, list) and len(obj) > 0:
            return [list(i) for i in zip(*map(scatter_map, obj))]
        if isinstance(obj, dict) and len(obj) > 0:
            return [type(obj)(i) for i in zip(*map(scatter_map, obj.items()))]
        return [obj for _ in devices]

    return scatter_map(inputs)


def scatter_kwargs(inputs: tuple, kwargs: dict | None, target_gpus, dim: int = 0):
    """``scatter`` of positional and keyword arguments: a tuple of per-device argument
    tuples and one of per-device keyword dicts, padded to the same length."""
    scattered_inputs = scatter(inputs, target_gpus, dim) if inputs else []
    scattered_kwargs = scatter(kwargs, target_gpus, dim) if kwargs else []
    if len(scattered_inputs) < len(scattered_kwargs):
        scattered_inputs.extend(() for _ in range(len(scattered_kwargs) - len(scattered_inputs)))
    elif len(scattered_kwargs) < len(inputs):
        scattered_kwargs.extend({} for _ in range(len(scattered_inputs) - len(scattered_kwargs)))
    return tuple(scattered_inputs), tuple(scattered_kwargs)


def _gather_tensors(ts: list, target, dim: int) -> Tensor:
    from ...ops import cat

    if isinstance(target, int) and target == -1:
        warnings.warn(
            "Using -1 to represent CPU tensor is deprecated. Please use a device object or string "
            'instead, e.g., "cpu".',
            FutureWarning,
            stacklevel=4,
        )
    dev = backend.CPU if target == "cpu" else as_device(target, device_kind(ts))
    if dim == 0 and all(t.dim() == 0 for t in ts):
        warnings.warn(
            "Was asked to gather along dimension 0, but all input tensors were scalars; will "
            "instead unsqueeze and return a vector.",
            stacklevel=4,
        )
        ts = [t.view(1) for t in ts]
    return cat([t.to(dev) for t in ts], dim)


def gather(outputs: Any, target_device, dim: int = 0) -> Any:
    """Concatenate per-device results along ``dim`` on ``target_device`` (an index, a
    device, or ``"cpu"``), following tuples, lists, dicts and namedtuples.

    Example:
        >>> y = gather([y0, y1], 0)  # one batch on cuda:0
    """

    def gather_map(outs):
        out = outs[0]
        if isinstance(out, Tensor):
            return _gather_tensors(list(outs), target_device, dim)
        if out is None:
            return None
        if isinstance(out, dict):
            if not all(len(out) == len(d) for d in outs):
                raise ValueError("All dicts must have the same number of keys")
            return type(out)((k, gather_map([d[k] for d in outs])) for k in out)
        if _is_namedtuple(out):
            return type(out)._make(map(gather_map, zip(*outs)))
        return type(out)(map(gather_map, zip(*outs)))

    return gather_map(outputs)


__all__ = ["gather", "scatter", "scatter_kwargs"]
