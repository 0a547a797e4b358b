"""``data_parallel``: the functional form of ``DataParallel`` (split the batch over the
devices, run a replica of the module on each, gather the results), as
``torch.nn.parallel.data_parallel``."""

from __future__ import annotations

from itertools import chain
from typing import Any

from ... import backend
from ..syncbn import DataParallel
from .parallel_apply import parallel_apply
from .replicate import replicate
from .scatter_gather import as_device, device_index, device_kind, gather, scatter_kwargs


def _device_count(kind: str) -> int:
    if kind == "cuda":
        return backend.cuda_device_count()
    from ... import fakegpu

    return fakegpu.COUNT


def data_parallel(module, inputs, device_ids=None, output_device=None, dim: int = 0,
                  module_kwargs: dict | None = None) -> Any:  # fmt: skip
    """``module(inputs)`` with the batch split over ``device_ids``.

    As PyTorch: the module's parameters and buffers must be on ``device_ids[0]``; with one
    device the (moved) inputs go straight to the module and the result stays there; with
    several, replicas run on the batch's chunks and their results are concatenated on
    ``output_device`` (default ``device_ids[0]``). Without a GPU (the CPU is the only
    device) the module runs on ``inputs`` as they are.

    Args:
        module: the module to run.
        inputs: its argument, or a tuple of arguments.
        device_ids: device indices or devices (default: every GPU).
        output_device: where the gathered result goes (default ``device_ids[0]``).
        dim: the batch dimension to split (default 0).
        module_kwargs: keyword arguments for the module (split as the inputs are).

    Example:
        >>> y = data_parallel(model.cuda(), x, device_ids=[0, 1])
    """
    if not isinstance(inputs, tuple):
        inputs = (inputs,) if inputs is not None else ()
    kind = device_kind(module, inputs)
    if kind is None:  # NOTE: CPU only: one device, nothing to split
        return module(*inputs, **(module_kwargs or {}))
    if device_ids is None:
        device_ids = list(range(_device_count(kind)))
    if not device_ids:
        raise RuntimeError("no available devices were found")
    if output_device is None:
        output_device = device_ids[0]
    ids = [device_index(d) for d in device_ids]
    out_id = device_index(output_device)
    src = as_device(ids[0], kind)
    for t in chain(module.parameters(), module.buffers()):
        if t.device != src:
            raise RuntimeError(
                f"module must have its parameters and buffers on device {src} (device_ids[0]) "
                f"but found one of them on device: {t.device}; move the module there first, "
                f"e.g. module.to('{src}')"
            )
    devices = [as_device(i, kind) for i in ids]
    inputs, module_kwargs = scatter_kwargs(inputs, module_kwargs, devices, dim)
    if not inputs and not module_kwargs:
        inputs, module_kwargs = ((),), ({},)
    if len(devices) == 1:
        return module(*inputs[0], **module_kwargs[0])
    used = devices[: len(inputs)]
    replicas = replicate(module, used)
    outputs = parallel_apply(replicas, inputs, module_kwargs, used)
    return gather(outputs, out_id, dim)


__all__ = ["DataParallel", "data_parallel"]
