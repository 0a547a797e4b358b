"""``torch.utils.checkpoint``'s helpers: input detaching, device random states, the default
device type, and ``CheckpointFunction`` (the reentrant checkpoint as an autograd Function).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable
from typing import Any

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor
from ._pytree import tree_leaves


def detach_variable(inputs: tuple) -> tuple:
    """``inputs`` with each tensor detached, keeping its ``requires_grad`` (a tuple only).

    Example:
        >>> xs = detach_variable((x, 3))  # xs[0] is a leaf that still requires grad
    """
    if not isinstance(inputs, tuple):
        raise RuntimeError(
            "Only tuple of tensors is supported. Got Unsupported input type: "
            f"{type(inputs).__name__}"
        )
    out = []
    for inp in inputs:
        if not isinstance(inp, Tensor):
            out.append(inp)
            continue
        x = inp.detach()
        x.requires_grad = inp.requires_grad
        out.append(x)
    return tuple(out)


def check_backward_validity(inputs: Iterable[Any]) -> None:
    """Warn when no tensor in ``inputs`` requires a gradient (the reentrant checkpoint
    would give no gradients then)."""
    if not any(inp.requires_grad for inp in inputs if isinstance(inp, Tensor)):
        warnings.warn(
            "None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2
        )


class DefaultDeviceType:
    """The device type whose random states checkpoint saves when no argument is on a GPU:
    the accelerator's (``"cuda"``) where there is one, else ``"cpu"``.

    Example:
        >>> DefaultDeviceType.set_device_type("cuda")
    """

    _default_device_type: str | None = None

    @staticmethod
    def set_device_type(device: str = "cuda") -> None:
        """Set the default device type (default ``"cuda"``)."""
        DefaultDeviceType._default_device_type = device

    @staticmethod
    def get_device_type() -> str:
        """The default device type."""
        if not DefaultDeviceType._default_device_type:
            DefaultDeviceType._default_device_type = "cuda" if backend.cuda_available() else "cpu"
        return DefaultDeviceType._default_device_type


def _gpu_tensors(args) -> list[Tensor]:
    return [a for a in tree_leaves(args) if isinstance(a, Tensor) and a.device.type != "cpu"]


def infer_device_type(*args) -> str:
    """The device type of the non-CPU tensors in ``args`` (``"cuda"`` first when several
    types appear, with a warning), else ``DefaultDeviceType.get_device_type()``."""
    types = [t.device.type for t in _gpu_tensors(args)]
    if len(set(types)) > 1:
        warnings.warn(
            "Tensor arguments, excluding CPU tensors, are detected on at least two types of "
            "devices. Device state will only be saved for devices of a single device type, and "
            "the remaining devices will be ignored. Consequently, if any checkpointed "
            "functions involve randomness, this may result in incorrect gradients. (Note that "
            "if CUDA devices are among the devices detected, it will be prioritized; "
            "otherwise, the first device encountered will be selected.)\nDevice types: "
            f"{sorted(set(types))} first device type: {types[0]}",
            stacklevel=2,
        )
    if not types:
        return DefaultDeviceType.get_device_type()
    return "cuda" if "cuda" in types else types[0]


def _generator(device_type: str, index: int):
    return backend.generator(backend.device(f"{device_type}:{index}"))


def get_device_states(*args) -> tuple[list[int], list]:
    """The device indices of the GPU tensors in ``args`` (one per tensor, nested ones
    included) and their random generators' states, to restore with ``set_device_states``.

    Example:
        >>> ids, states = get_device_states(x, h)
    """
    ids = [t.get_device() for t in _gpu_tensors(args)]
    dtype = infer_device_type(*args)
    states = [_generator(dtype, i).get_state() for i in ids]
    return ids, states


def set_device_states(devices, states, *, device_type=None) -> None:
    """Restore the random generators of ``devices`` (indices) to ``states``.

    Args:
        devices: device indices, as ``get_device_states`` gives them.
        states: their generators' states.
        device_type: their type (default: ``DefaultDeviceType.get_device_type()``).
    """
    if device_type is None:
        device_type = DefaultDeviceType.get_device_type()
    if device_type == "meta":
        return
    for device, state in zip(devices, states):
        _generator(device_type, device).set_state(state)


def autocast_state() -> dict:
    """The autocast blocks open now (device type -> dtype), for the recomputation."""
    return dict(autograd.autocast_dtypes)


@contextlib.contextmanager
def autocast_as(state: dict):
    """Run a block under the autocast state ``autocast_state()`` returned earlier."""
    cur = autograd.autocast_dtypes
    before = dict(cur)
    cur.clear()
    cur.update(state)
    try:
        yield
    finally:
        cur.clear()
        cur.update(before)


def _rng_snapshot(args, device_type: str):
    ids, states = get_device_states(*args)
    return backend.generator(backend.CPU).get_state(), ids, states, device_type


def _rng_restore(snap) -> None:
    cpu, ids, states, device_type = snap
    backend.generator(backend.CPU).set_state(cpu)
    set_device_states(ids, states, device_type=device_type)


class CheckpointFunction(Function):
    """The reentrant checkpoint as an autograd Function (PyTorch's ``use_reentrant=True``
    form): forward runs ``run_function`` without recording a graph; backward runs it again
    (same random state and autocast) and backpropagates through that.

    Only tensors given as ``args`` get gradients through the recomputation's inputs;
    parameters used inside get theirs from the inner backward.

    Example:
        >>> y = CheckpointFunction.apply(block, True, x)  # preserve_rng_state=True
    """

    @staticmethod
    def forward(ctx, run_function, preserve_rng_state, *args):
        check_backward_validity(args)
        ctx.run_function = run_function
        ctx.preserve_rng_state = preserve_rng_state
        ctx.device_type = infer_device_type(*args)
        ctx.autocast = autocast_state()
        if preserve_rng_state:
            ctx.rng = _rng_snapshot(args, ctx.device_type)
        ctx.inputs, ctx.tensor_indices, tensors = [], [], []
        for i, arg in enumerate(args):
            if isinstance(arg, Tensor):
                tensors.append(arg)
                ctx.tensor_indices.append(i)
                ctx.inputs.append(None)
            else:
                ctx.inputs.append(arg)
        ctx.save_for_backward(*tensors)
        with autograd.no_grad():
            return run_function(*args)

    @staticmethod
    def backward(ctx, *grads):
        inputs = list(ctx.inputs)
        for i, t in zip(ctx.tensor_indices, ctx.saved_tensors):
            inputs[i] = t
        outer = None
        if ctx.preserve_rng_state:
            outer = _rng_snapshot(inputs, ctx.device_type)
            _rng_restore(ctx.rng)
        try:
            detached = detach_variable(tuple(inputs))
            with autograd.enable_grad(), autocast_as(ctx.autocast):
                outputs = ctx.run_function(*detached)
        finally:
            if outer is not None:
                _rng_restore(outer)
        if isinstance(outputs, Tensor):
            outputs = (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]  # fmt: skip
        if not pairs:
            raise RuntimeError(
                "none of output has requires_grad=True, this checkpoint() is not necessary"
            )
        autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None, None) + tuple(x.grad if isinstance(x, Tensor) else None for x in detached)


__all__ = [
    "CheckpointFunction",
    "DefaultDeviceType",
    "check_backward_validity",
    "detach_variable",
    "get_device_states",
    "set_device_states",
]
