"""Gradient utilities: ``clip_grad_norm_``, ``clip_grad_value_``, parameter vectors.

Clipping runs entirely on the device: the total norm stays a 0-d tensor and the scale
``min(max_norm / (norm + 1e-6), 1)`` is applied without reading it on the host.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

from ... import backend
from ... import dtypes as D
from ... import ops as F
from ...autograd import no_grad
from ...errors import LayoutError
from ...tensor import Tensor

_tensor_or_tensors = Tensor | Iterable[Tensor]


def _grads(parameters, op: str) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return _dense_only([p.grad for p in parameters if p.grad is not None], op)


def _dense_only(tensors: list, op: str) -> list:
    if any(t.is_sparse for t in tensors):  # NOTE: as in PyTorch, which has no sparse kernel
        raise LayoutError(
            f"{op}: sparse gradients (nn.Embedding(sparse=True)) are not supported; leave "
            "the embedding's parameters out of the ones passed, or use sparse=False"
        )
    return tensors


def _norm_array(g, norm_type: float):
    """The ``norm_type``-norm of one gradient array, as a 0-d array (float32 or wider)."""
    xp = backend.array_module(g)
    if g.dtype.kind == "c":  # NOTE: a complex value's size is its modulus
        g = xp.abs(g)
    if g.dtype.kind != "f" or g.dtype.itemsize < 4:
        g = g.astype(D.float32.np)
    a = xp.abs(g)
    if norm_type == math.inf:
        return a.max() if a.size else xp.zeros((), a.dtype)
    if norm_type == 0:
        return (a != 0).sum().astype(a.dtype)
    if norm_type == 2:
        return xp.sqrt((g * g).sum())
    if norm_type == 1:
        return a.sum()
    return (a**norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors: _tensor_or_tensors, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:  # fmt: skip
    """The norm of all ``tensors`` together, as if concatenated into one vector (0-d tensor).

    Args:
        tensors: tensors (e.g. gradients).
        norm_type: p of the p-norm; ``math.inf`` for the max norm (default 2.0).
        error_if_nonfinite: raise if the norm is nan/inf (reads it on the host).

    Example:
        >>> mg.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    """
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = _dense_only([t for t in tensors if t is not None], "get_total_norm")
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._wrap(backend.xp_of(backend.CPU).zeros((), D.float32.np))
    dev = tensors[0]._device
    out_dt = D.from_np(tensors[0]._data.dtype)
    for t in tensors[1:]:
        out_dt = D.promote_types(out_dt, D.from_np(t._data.dtype))
    norms = []
    for t in tensors:
        with backend.device_scope(t._device):  # NOTE: CuPy works on the current GPU
            n = backend.array_module(t._data).asarray(_norm_array(t._data, norm_type))
        norms.append(backend.to_device(n, dev) if t._device != dev else n)
    with backend.device_scope(dev):
        total = _combine(norms, norm_type, out_dt, error_if_nonfinite)
    return Tensor._wrap(total, dev)


def _combine(norms, norm_type: float, out_dt, error_if_nonfinite: bool):
    """The norm of the per-tensor norms (0-d arrays on one device)."""
    xp = backend.array_module(norms[0])
    acc = norms[0].dtype
    for n in norms[1:]:
        acc = xp.promote_types(acc, n.dtype)
    stacked = xp.stack([n.astype(acc) for n in norms])
    if norm_type == math.inf:
        total = stacked.max()
    elif norm_type == 0:
        total = stacked.sum()
    else:
        total = (stacked**norm_type).sum() ** (1.0 / norm_type)
    total = xp.asarray(total).astype(out_dt.np if out_dt.is_floating_point else acc)
    if error_if_nonfinite and not bool(xp.isfinite(total)):  # NOTE: a host sync, on request
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the "
            "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(parameters: _tensor_or_tensors, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:  # fmt: skip
    """Scale gradients in place by ``min(max_norm / (total_norm + 1e-6), 1)``."""
    grads = _grads(parameters, "clip_grads_with_norm_")
    if not grads:
        return
    xp = backend.array_module(total_norm._data)
    with backend.device_scope(total_norm._device):  # NOTE: CuPy works on the current GPU
        coef = xp.minimum(float(max_norm) / (total_norm._data + 1e-6), 1.0)
    with no_grad():
        for g in grads:
            c = coef if g._device == total_norm._device else backend.to_device(coef, g._device)
            gx = backend.array_module(g._data)
            with backend.device_scope(g._device):
                gx.multiply(g._data, c.astype(g._data.dtype), out=g._data)


def clip_grad_norm_(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:  # fmt: skip
    """Rescale gradients in place so that their total norm is at most ``max_norm``.

    Args:
        parameters: a tensor or an iterable of tensors whose ``.grad`` is clipped.
        max_norm: the largest allowed total norm.
        norm_type: p of the p-norm; ``math.inf`` for the max norm (default 2.0).
        error_if_nonfinite: raise if the norm is nan/inf (reads it on the host).
        foreach: accepted for compatibility.

    Returns:
        The total norm of the gradients before clipping (a 0-d tensor on their device).

    Example:
        >>> loss.backward(); mg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters, "clip_grad_norm_")
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_norm(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach=None) -> Tensor:  # fmt: skip
    """Deprecated: ``clip_grad_norm_`` (same arguments), after PyTorch's FutureWarning."""
    warnings.warn(
        "`torch.nn.utils.clip_grad_norm` is now deprecated in favor of "
        "`torch.nn.utils.clip_grad_norm_`.",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters: _tensor_or_tensors, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place.

    Example:
        >>> mg.nn.utils.clip_grad_value_(model.parameters(), 0.5)
    """
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters, "clip_grad_value_"):
            xp = backend.array_module(g._data)
            with backend.device_scope(g._device):
                xp.clip(g._data, -clip_value, clip_value, out=g._data)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable).

    Example:
        >>> vec = mg.nn.utils.parameters_to_vector(model.parameters())
    """
    parameters = list(parameters)
    if not parameters:
        raise ValueError("parameters_to_vector: got no parameters")
    dev = parameters[0]._device
    for p in parameters:
        if p._device != dev:
            raise RuntimeError(
                f"parameters_to_vector: parameters are on {dev} and {p._device}; move the "
                "model to one device first"
            )
    return F.cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy slices of the 1-D ``vec`` into ``parameters`` in place (in order).

    Example:
        >>> mg.nn.utils.vector_to_parameters(vec, model.parameters())
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected vec to be a Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            chunk = vec._data[offset : offset + n].reshape(p._data.shape)
            if vec._device != p._device:
                chunk = backend.to_device(chunk, p._device)
            xp = backend.array_module(p._data)
            with backend.device_scope(p._device):
                xp.copyto(p._data, chunk.astype(p._data.dtype, copy=False))
            offset += n
    if offset != vec.numel():
        raise ValueError(
            f"vector_to_parameters: vec has {vec.numel()} elements, parameters need {offset}"
        )


# torch.nn.utils.rnn, .parametrize, .parametrizations, .prune, .fusion, .stateless
from . import fusion, parametrizations, parametrize, prune, rnn, stateless  # noqa: E402, F401
from ._legacy_norms import (  # noqa: E402, F401
    remove_spectral_norm,
    remove_weight_norm,
    spectral_norm,
    weight_norm,
)
from .fusion import (  # noqa: E402, F401
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from .init import skip_init  # noqa: E402, F401


def convert_conv2d_weight_memory_format(module, memory_format):
    """Lay out the weights of every ``Conv2d`` / ``ConvTranspose2d`` in ``module`` in
    ``memory_format`` (e.g. ``mg.channels_last``); returns ``module``."""
    from ..conv import Conv2d, ConvTranspose2d

    for m in module.modules():
        if isinstance(m, (Conv2d, ConvTranspose2d)):
            w = m.weight
            w._data = w.detach().contiguous(memory_format=memory_format)._data
    return module


def convert_conv3d_weight_memory_format(module, memory_format):
    """``convert_conv2d_weight_memory_format`` for ``Conv3d`` / ``ConvTranspose3d``."""
    from ..conv3d import Conv3d, ConvTranspose3d

    for m in module.modules():
        if isinstance(m, (Conv3d, ConvTranspose3d)):
            w = m.weight
            w._data = w.detach().contiguous(memory_format=memory_format)._data
    return module
