"""PyTorch's top-level functions that are another manygrad function under a different name
or signature (``torch.alpha_dropout(x, p, train)``, ``torch.margin_ranking_loss(..., 1)``
with an integer reduction), window functions, the default device, DLPack, and the in-place
top-level forms (``torch.relu_(x)``).

Re-exported as ``manygrad.<name>``.

Example:
    >>> mg.hann_window(4)                  # tensor([0.0, 0.5, 1.0, 0.5])
    >>> mg.set_default_device("fakegpu")   # factory functions now build there
"""

from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from .. import backend
from .. import dtypes as D
from ..tensor import Tensor


def _F():  # noqa: N802
    from ..nn import functional

    return functional


def _creation():
    from .. import creation

    return creation


# ---------------------------------------------------------------------------- devices and modes


def set_default_device(device) -> None:
    """Factory functions (``zeros``, ``randn``, ``tensor`` of Python data, layers' weights)
    put tensors on ``device`` when they are given none; ``None`` restores ``cpu``."""
    backend.set_default_device(device)


def get_default_device() -> backend.Device:
    """The device factory functions use when given none."""
    return backend.default_device()


def is_inference_mode_enabled() -> bool:
    """True inside ``mg.inference_mode()``."""
    from ..autograd import is_inference_mode_enabled as enabled

    return enabled()


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Whether ``autocast`` is on for ``device_type`` (default ``cuda``)."""
    from ..amp import is_autocast_enabled as on

    return on(device_type or "cuda")


def get_autocast_dtype(device_type: str):
    from ..amp import get_autocast_dtype as get

    return get(device_type)


def get_autocast_gpu_dtype():
    return get_autocast_dtype("cuda")


def get_autocast_cpu_dtype():
    return get_autocast_dtype("cpu")


def set_autocast_enabled(device_type, enabled=None) -> None:
    """Autocast on or off for ``device_type`` (``manygrad.amp.set_autocast_enabled``)."""
    from ..amp import set_autocast_enabled as put

    put(device_type, enabled)


def set_autocast_dtype(device_type: str, dtype) -> None:
    """The dtype autocast uses on ``device_type`` (``manygrad.amp.set_autocast_dtype``)."""
    from ..amp import set_autocast_dtype as put

    put(device_type, dtype)


def _deprecated_autocast(old: str, new: str) -> None:
    import warnings

    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.",
                  DeprecationWarning, stacklevel=3)  # fmt: skip


def is_autocast_cpu_enabled() -> bool:
    """Deprecated in PyTorch: ``is_autocast_enabled("cpu")``."""
    _deprecated_autocast("is_autocast_cpu_enabled()", "is_autocast_enabled('cpu')")
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    """Deprecated in PyTorch: ``set_autocast_enabled("cpu", enabled)``."""
    _deprecated_autocast(
        "set_autocast_cpu_enabled(enabled)", "set_autocast_enabled('cpu', enabled)"
    )
    set_autocast_enabled("cpu", enabled)


def set_autocast_cpu_dtype(dtype) -> None:
    """Deprecated in PyTorch: ``set_autocast_dtype("cpu", dtype)``."""
    _deprecated_autocast("set_autocast_cpu_dtype(dtype)", "set_autocast_dtype('cpu', dtype)")
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    """Deprecated in PyTorch: ``set_autocast_dtype("cuda", dtype)``."""
    _deprecated_autocast("set_autocast_gpu_dtype(dtype)", "set_autocast_dtype('cuda', dtype)")
    set_autocast_dtype("cuda", dtype)


_AUTOCAST_CACHE = [True]


def autocast_increment_nesting() -> int:
    """PyTorch's count of open autocast blocks (each ``with autocast`` counts one), plus
    one, returned (for code that manages its own autocast state)."""
    from ..amp import NESTING

    NESTING[0] += 1
    return NESTING[0]


def autocast_decrement_nesting() -> int:
    """The count of open autocast blocks less one, returned."""
    from ..amp import NESTING

    NESTING[0] -= 1
    return NESTING[0]


def is_autocast_cache_enabled() -> bool:
    """Whether autocast may keep cast weights: manygrad casts per use, so a switch only."""
    return _AUTOCAST_CACHE[0]


def set_autocast_cache_enabled(enabled: bool) -> None:
    """Switch the autocast cast cache (a flag only: manygrad casts per use)."""
    _AUTOCAST_CACHE[0] = bool(enabled)


def clear_autocast_cache() -> None:
    """Nothing to clear: manygrad's autocast keeps no cast copies."""


def is_storage(obj) -> bool:
    """True for a storage object (``t.untyped_storage()``)."""
    from .tensor_methods import UntypedStorage

    return isinstance(obj, UntypedStorage)


def is_distributed(input: Tensor) -> bool:  # noqa: A002
    return False


# ---------------------------------------------------------------------------- creation


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=None):
    """A tensor of ``obj``, sharing memory when ``obj`` is a tensor or array of the right
    dtype and device (``copy=True`` always copies, ``copy=False`` refuses to).

    ``requires_grad``: None (default) keeps a tensor's own (the same tensor, in its graph),
    False gives a tensor detached from the graph, True one that requires grad."""
    c = _creation()
    if isinstance(obj, Tensor) and obj.requires_grad:
        if requires_grad is None or requires_grad:  # NOTE: stays in the graph
            out = obj if dtype is None and device is None else obj.to(device=device, dtype=dtype)
            return out.clone() if copy else out
        obj = obj.detach()
    requires_grad = bool(requires_grad)
    if copy:
        out = c.tensor(obj, dtype=dtype, device=device)
    else:
        out = c.as_tensor(obj, dtype=dtype, device=device)
        if copy is False and not _shares(out, obj):
            raise ValueError(
                "asarray: copy=False but the data can't be shared (another dtype, device or a "
                "Python sequence); pass copy=None to allow a copy"
            )
    return out.requires_grad_() if requires_grad else out


def _shares(t: Tensor, obj) -> bool:
    if isinstance(obj, Tensor):
        return t._data is obj._data or backend.shares_memory(t._data, obj._data)
    return backend.is_array(obj) and backend.shares_memory(t._data, obj)


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor of ``s`` in the default float dtype (unless ``dtype``)."""
    dt = dtype if dtype is not None else D.get_default_dtype()
    return _creation().tensor(s, dtype=dt, device=device, requires_grad=requires_grad)


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad=False, **_):
    """An uninitialised tensor of ``size`` laid out with ``stride`` (in elements)."""
    size, stride = tuple(size), tuple(stride)
    span = 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    buf = _creation().empty(span, dtype=dtype, device=device)
    out = buf.as_strided(size, stride) if span else buf.reshape(size)
    return out.detach().requires_grad_() if requires_grad else out


def empty_permuted(size, physical_layout, *, dtype=None, device=None, requires_grad=False, **_):
    """An uninitialised tensor of ``size`` whose dims lie in memory in the order
    ``physical_layout`` (outermost first)."""
    order = tuple(physical_layout)
    if sorted(order) != list(builtins.range(len(size))):
        raise ValueError(
            f"empty_permuted: physical_layout {list(order)} must be a permutation of the "
            f"{len(size)} dims"
        )
    base = _creation().empty(*[size[d] for d in order], dtype=dtype, device=device)
    out = base.permute(*np.argsort(order).tolist())
    return out.requires_grad_() if requires_grad else out


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad=False):
    """A CPU tensor sharing the memory of a Python buffer (``bytes`` give a read-only one)."""
    arr = np.frombuffer(buffer, dtype=D.from_any(dtype).np, count=count, offset=offset)
    out = Tensor._wrap(arr, backend.CPU)
    return out.requires_grad_() if requires_grad else out


def range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):  # noqa: A001
    """Values from ``start`` to ``end`` *inclusive* (deprecated in PyTorch: use arange)."""
    warnings.warn(
        "torch.range is deprecated and will be removed in a future release because its "
        "behavior is inconsistent with Python's range builtin. Instead, use torch.arange, "
        "which produces values in [start, end).",
        UserWarning,
        stacklevel=2,
    )
    if end is None:
        start, end = 0, start
    n = int(math.floor((end - start) / step)) + 1
    dt = dtype if dtype is not None else D.get_default_dtype()
    vals = start + step * np.arange(max(n, 0), dtype=np.float64)
    return _creation().tensor(vals, dtype=dt, device=device, requires_grad=requires_grad)


def fill(input: Tensor, value) -> Tensor:  # noqa: A002
    """A tensor of ``input``'s shape, dtype and device holding ``value``."""
    from ..autograd._inplace import overwrite

    return overwrite(input, value)


# ---------------------------------------------------------------------------- windows


def _window(name, n: int, periodic: bool, values, dtype, device, requires_grad):
    if n < 0:
        raise ValueError(f"{name}: window_length must be non-negative, got {n}")
    dt = dtype if dtype is not None else D.get_default_dtype()
    if not D.from_any(dt).is_floating_point:
        raise TypeError(f"{name}: expected a floating-point dtype, got {dt}")
    if n <= 1:
        vals = np.ones(n)
    else:
        m = n + 1 if periodic else n
        vals = values(np.arange(m, dtype=np.float64), m)[:n]
    return _creation().tensor(vals, dtype=dt, device=device, requires_grad=requires_grad)


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                requires_grad: bool = False, **_) -> Tensor:  # fmt: skip
    """The Hann window ``0.5 - 0.5 cos(2 pi n / (N - 1))`` (``periodic``: of N + 1 points
    without the last, for spectral analysis)."""
    return hamming_window(window_length, periodic, 0.5, 0.5, dtype=dtype, device=device,
                          requires_grad=requires_grad)  # fmt: skip


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54,
                   beta: float = 0.46, *, dtype=None, device=None, requires_grad=False,
                   **_) -> Tensor:  # fmt: skip
    """The Hamming window ``alpha - beta cos(2 pi n / (N - 1))``."""
    return _window("hamming_window", window_length, periodic,
                   lambda k, m: alpha - beta * np.cos(2 * np.pi * k / (m - 1)),
                   dtype, device, requires_grad)  # fmt: skip


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False, **_) -> Tensor:  # fmt: skip
    """The Blackman window ``0.42 - 0.5 cos(2 pi n/(N-1)) + 0.08 cos(4 pi n/(N-1))``."""

    def values(k, m):
        return (0.42 - 0.5 * np.cos(2 * np.pi * k / (m - 1))
                + 0.08 * np.cos(4 * np.pi * k / (m - 1)))  # fmt: skip

    return _window("blackman_window", window_length, periodic, values, dtype, device,
                   requires_grad)  # fmt: skip


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, device=None,
                    requires_grad: bool = False, **_) -> Tensor:  # fmt: skip
    """The triangular Bartlett window ``1 - |2n / (N - 1) - 1|``."""
    return _window("bartlett_window", window_length, periodic,
                   lambda k, m: 1 - np.abs(2 * k / (m - 1) - 1), dtype, device,
                   requires_grad)  # fmt: skip


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *,
                  dtype=None, device=None, requires_grad: bool = False, **_) -> Tensor:  # fmt: skip
    """The Kaiser window ``I0(beta sqrt(1 - (2n/(N-1) - 1)^2)) / I0(beta)``."""
    return _window("kaiser_window", window_length, periodic,
                   lambda k, m: np.i0(beta * np.sqrt(np.clip(1 - (2 * k / (m - 1) - 1) ** 2,
                                                             0, None))) / np.i0(beta),
                   dtype, device, requires_grad)  # fmt: skip


# ---------------------------------------------------------------------------- DLPack
# NOTE: torch.from_dlpack and torch.to_dlpack are torch.utils.dlpack's functions themselves
from ..utils.dlpack import from_dlpack, to_dlpack  # noqa: E402, F401

# ---------------------------------------------------------------------------- PyTorch's
# positional forms of nn.functional


def _reduction(r) -> str:
    return {0: "none", 1: "mean", 2: "sum"}.get(r, r) if isinstance(r, int) else r


def embedding(weight, indices, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False):  # fmt: skip
    """``torch.embedding(weight, indices, ...)``: rows of ``weight`` picked by ``indices``
    (the table first, unlike ``F.embedding(input, weight)``); a negative ``padding_idx``
    means none, as in PyTorch's op."""
    pad = None if padding_idx < 0 else padding_idx
    return _F().embedding(indices, weight, pad, scale_grad_by_freq=scale_grad_by_freq,
                          sparse=sparse)  # fmt: skip


def alpha_dropout(input, p: float, train: bool):  # noqa: A002
    return _F().alpha_dropout(input, p, train)


def feature_alpha_dropout(input, p: float, train: bool):  # noqa: A002
    return _F().feature_alpha_dropout(input, p, train)


def feature_dropout(input, p: float, train: bool):  # noqa: A002
    return _F().dropout2d(input, p, train) if input.ndim in (3, 4) else _F().dropout3d(
        input, p, train)  # fmt: skip


def dropout_(input, p: float, train: bool):  # noqa: A002
    return _F().dropout(input, p, train, inplace=True)


def alpha_dropout_(input, p: float, train: bool):  # noqa: A002
    return input.copy_(_F().alpha_dropout(input, p, train)) if train else input


def feature_alpha_dropout_(input, p: float, train: bool):  # noqa: A002
    return input.copy_(_F().feature_alpha_dropout(input, p, train)) if train else input


def feature_dropout_(input, p: float, train: bool):  # noqa: A002
    return input.copy_(feature_dropout(input, p, train)) if train else input


def adaptive_max_pool1d(input, output_size, return_indices: bool = True):  # noqa: A002
    """``(values, indices)``, as PyTorch's top-level function returns both (unless
    ``return_indices=False``, as ``F.adaptive_max_pool1d`` takes it)."""
    return _F().adaptive_max_pool1d(input, output_size, return_indices=return_indices)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices: bool = False):  # fmt: skip
    return _F().max_pool3d(input, kernel_size, stride or None, padding, dilation, ceil_mode,
                           return_indices)  # fmt: skip


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().cosine_embedding_loss(input1, input2, target, margin,
                                      reduction=_reduction(reduction))  # fmt: skip


def hinge_embedding_loss(input, target, margin=1.0, reduction=1):  # noqa: A002
    return _F().hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=1):
    return _F().margin_ranking_loss(input1, input2, target, margin,
                                    reduction=_reduction(reduction))  # fmt: skip


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False,
                        reduction=1):  # fmt: skip
    return _F().triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                    reduction=_reduction(reduction))  # fmt: skip


def poisson_nll_loss(input, target, log_input, full, eps, reduction):  # noqa: A002
    return _F().poisson_nll_loss(input, target, log_input, full, eps=eps,
                                 reduction=_reduction(reduction))  # fmt: skip


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=1,
             zero_infinity=False):  # fmt: skip
    return _F().ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                         _reduction(reduction), zero_infinity)  # fmt: skip


def convolution(input, weight, bias, stride, padding, dilation, transposed: bool,  # noqa: A002
                output_padding, groups: int):  # fmt: skip
    """The convolution of ``weight.ndim - 2`` spatial dims, transposed or not."""
    nd = weight.ndim - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"convolution: expected a weight of 3 to 5 dims, got {weight.ndim}")
    if transposed:
        fn = getattr(_F(), f"conv_transpose{nd}d")
        return fn(input, weight, bias, stride, padding, output_padding, groups, dilation)
    return getattr(_F(), f"conv{nd}d")(input, weight, bias, stride, padding, dilation, groups)


def constant_pad_nd(input, pad, value=0):  # noqa: A002
    return _F().pad(input, tuple(pad), "constant", value)


def frobenius_norm(input, dim=(-2, -1), keepdim: bool = False):  # noqa: A002
    return (input * input).sum(tuple(dim) if not isinstance(dim, int) else dim,
                               keepdim=keepdim).sqrt()  # fmt: skip


def nuclear_norm(input, dim=(-2, -1), keepdim: bool = False):  # noqa: A002
    from .. import linalg

    return linalg.matrix_norm(input, "nuc", dim=tuple(dim), keepdim=keepdim)


def split_with_sizes(input, split_sizes, dim: int = 0):  # noqa: A002
    return input.split(list(split_sizes), dim)


def unsafe_split(input, split_size, dim: int = 0):  # noqa: A002
    return input.split(split_size, dim)


def unsafe_chunk(input, chunks: int, dim: int = 0):  # noqa: A002
    return input.chunk(chunks, dim)


def put(input, index, source, accumulate: bool = False):  # noqa: A002
    return input.put(index, source, accumulate)


def detach(input):  # noqa: A002
    return input.detach()


def detach_(input):  # noqa: A002
    return input.detach_()


def resolve_conj(input):  # noqa: A002
    return input


def resolve_neg(input):  # noqa: A002
    return input


def is_conj(input) -> bool:  # noqa: A002
    return False


def is_neg(input) -> bool:  # noqa: A002
    return False


def is_inference(input) -> bool:  # noqa: A002
    return input.is_inference()


def native_channel_shuffle(input, groups: int):  # noqa: A002
    return _F().channel_shuffle(input, groups)


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    from ..func import vmap as _vmap

    return _vmap(func, in_dims, out_dims, randomness=randomness, chunk_size=chunk_size)


# ---------------------------------------------------------------------------- in-place forms
# NOTE: ``torch.relu_(x)`` and its kind are ``x.relu_()``; one forwarding function each
_INPLACE = """abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_
asinh_ atan_ atanh_ ceil_ clamp_ clamp_max_ clamp_min_ clip_ cos_ cosh_ deg2rad_ erf_ erfc_
exp2_ exp_ expm1_ fill_ fix_ floor_ frac_ gcd_ index_put_ lcm_ ldexp_ log10_ log1p_ log2_ log_
logit_ nan_to_num_ neg_ negative_ rad2deg_ reciprocal_ relu_ round_ rsqrt_ sigmoid_ sin_
sinc_ sinh_ sqrt_ square_ tan_ tanh_ trunc_ xlogy_ zero_""".split()


def _forward_to_method(name: str):
    def fn(input, *args, **kwargs):  # noqa: A002
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``input.{name}(...)``: the in-place op on ``input``, which it returns."
    return fn


globals().update({_n: _forward_to_method(_n) for _n in _INPLACE})

__all__ = sorted(
    [n for n, v in list(globals().items()) if callable(v) and not n.startswith("_")
     and getattr(v, "__module__", None) == __name__ and not isinstance(v, type)] + _INPLACE
    + ["from_dlpack", "to_dlpack"]
)  # fmt: skip
