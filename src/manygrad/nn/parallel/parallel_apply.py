"""``parallel_apply``: run each module replica on its own inputs, as
``torch.nn.parallel.parallel_apply``."""

from __future__ import annotations

import traceback
from typing import Any

from ... import backend
from ...tensor import Tensor
from .scatter_gather import as_device, device_kind


def get_a_var(obj) -> Tensor | None:
    """The first tensor in ``obj`` (a tensor, or a list, tuple or dict holding some)."""
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, (list, tuple)):
        for result in map(get_a_var, obj):
            if isinstance(result, Tensor):
                return result
    if isinstance(obj, dict):
        for result in map(get_a_var, obj.items()):
            if isinstance(result, Tensor):
                return result
    return None


def _reraise(e: Exception, where: str):
    msg = f"Caught {type(e).__name__} {where}.\nOriginal {traceback.format_exc()}"
    try:
        err = type(e)(msg)
    except Exception:  # NOTE: an exception type whose constructor takes other arguments
        err = RuntimeError(msg)
    raise err from e


def parallel_apply(modules, inputs, kwargs_tup=None, devices=None) -> list[Any]:
    """``[modules[i](*inputs[i], **kwargs_tup[i])]``, each replica with its device current.

    An entry of ``inputs`` that is not a list or tuple is the module's only argument. An
    error in a replica is raised again with the replica and device named. NOTE: manygrad
    runs the replicas one after another from one thread; on GPUs their kernels are queued
    without waiting, so the devices still work at the same time.

    Args:
        modules: the replicas.
        inputs: one argument (or tuple of arguments) per replica.
        kwargs_tup: one keyword dict per replica (default none).
        devices: one device per replica (default: that of its first tensor argument).

    Example:
        >>> outs = parallel_apply(replicate(model, [0, 1]), scatter(x, [0, 1]))
    """
    if len(modules) != len(inputs):
        raise AssertionError(
            f"The number of modules {len(modules)} is not equal to the number of inputs "
            f"{len(inputs)}"
        )
    if kwargs_tup is not None:
        if len(modules) != len(kwargs_tup):
            raise AssertionError(
                f"The number of modules {len(modules)} is not equal to the number of "
                f"kwargs_tup {len(kwargs_tup)}"
            )
    else:
        kwargs_tup = ({},) * len(modules)
    if devices is not None:
        if len(modules) != len(devices):
            raise AssertionError(
                f"The number of modules {len(modules)} is not equal to the number of devices "
                f"{len(devices)}"
            )
    else:
        devices = [None] * len(modules)
    kind = device_kind(inputs, *modules)
    outputs = []
    for i, (module, inp, kwargs, dev) in enumerate(zip(modules, inputs, kwargs_tup, devices)):
        if dev is not None:
            dev = as_device(dev, kind)
        else:
            t = get_a_var(inp)
            dev = t.device if t is not None else None
        if not isinstance(inp, (list, tuple)):
            inp = (inp,)
        scope = backend.device_scope(dev) if dev is not None else _NoScope()
        try:
            with scope:
                outputs.append(module(*inp, **kwargs))
        except Exception as e:
            _reraise(e, f"in replica {i} on device {dev}")
    return outputs


class _NoScope:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


__all__ = ["get_a_var", "parallel_apply"]
