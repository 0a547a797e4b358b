"""PyTorch's lower-level top-level names that library code calls directly.

- ``torch.native_layer_norm`` / ``native_batch_norm`` / ``native_group_norm`` /
  ``native_dropout``: the layer's output plus the statistics (or mask) it saved;
- ``torch.lstm_cell`` / ``gru_cell`` / ``rnn_tanh_cell`` / ``rnn_relu_cell``: one step of
  a recurrent cell from explicit weights;
- the ``torch.sym_*`` helpers, which on plain Python numbers are the plain operations;
- ``torch.get_device_module``, ``torch.set_flush_denormal``, ``torch.init_num_threads``.

Each is a composition of manygrad's differentiable ops, so gradients flow as in PyTorch.
Re-exported as ``manygrad.<name>``.

Example:
    >>> out, mean, rstd = mg.native_layer_norm(x, [x.shape[-1]], None, None, 1e-5)
    >>> h, c = mg.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
"""

from __future__ import annotations

import builtins
import math

from .. import dtypes as D
from ..tensor import Tensor

_HALF = (D.float16, D.bfloat16)  # statistics of 16-bit inputs come in float32, as PyTorch's


def _F():  # noqa: N802
    from ..nn import functional

    return functional


# ---------------------------------------------------------------------------- native_* layers


def native_layer_norm(input: Tensor, normalized_shape, weight, bias, eps: float):  # noqa: A002
    """``(output, mean, rstd)`` of layer normalization over the last
    ``len(normalized_shape)`` dims; ``mean`` and ``rstd`` keep those dims as size 1."""
    dims = tuple(range(input.ndim - len(tuple(normalized_shape)), input.ndim))
    out = _F().layer_norm(input, tuple(normalized_shape), weight, bias, eps)
    x = input.float() if input.dtype in _HALF else input
    mean = x.mean(dims, keepdim=True)
    rstd = (x.var(dims, unbiased=False, keepdim=True) + eps).rsqrt()
    return out, mean, rstd


def native_batch_norm(input: Tensor, weight, bias, running_mean, running_var,  # noqa: A002
                      training: bool, momentum: float, eps: float):  # fmt: skip
    """``(output, save_mean, save_invstd)`` of batch normalization; in training the batch's
    mean and 1/sqrt(biased variance + eps) per channel (and the running statistics are
    updated), in evaluation two empty tensors, as in PyTorch."""
    out = _F().batch_norm(input, running_mean, running_var, weight, bias, training,
                          momentum, eps)  # fmt: skip
    if not training:
        empty = input.new_zeros(0)
        return out, empty, empty.clone()
    dims = (0,) + tuple(range(2, input.ndim))
    x = input.float() if input.dtype in _HALF else input
    mean = x.mean(dims)
    invstd = (x.var(dims, unbiased=False) + eps).rsqrt()
    return out, mean, invstd


def native_group_norm(input: Tensor, weight, bias, N: int, C: int, HxW: int,  # noqa: A002, N803
                      group: int, eps: float):  # fmt: skip
    """``(output, mean, rstd)`` of group normalization; ``mean`` and ``rstd`` are (N, group)."""
    out = _F().group_norm(input, group, weight, bias, eps)
    x = input.float() if input.dtype in _HALF else input
    xg = x.reshape(N, group, C // group * HxW)
    mean = xg.mean(2)
    rstd = (xg.var(2, unbiased=False) + eps).rsqrt()
    return out, mean, rstd


def native_dropout(input: Tensor, p: float, train: bool | None):  # noqa: A002
    """``(output, mask)``: in training each element is kept with probability 1 - p and
    scaled by 1 / (1 - p); ``mask`` (bool) says which were kept. Outside training the
    output is the input and the mask all True."""
    from .. import creation

    if train is False:
        return input.clone(), creation.ones(input.shape, dtype=D.bool_, device=input.device)
    if p >= 1:
        return input * 0, creation.zeros(input.shape, dtype=D.bool_, device=input.device)
    keep = creation.rand(input.shape, device=input.device) >= p
    return input * keep * (1.0 / (1.0 - p)), keep


def nonzero_static(input: Tensor, *, size: int, fill_value: int = -1) -> Tensor:  # noqa: A002
    """The indices of the first ``size`` non-zero elements (rows, as ``nonzero``), padded
    with ``fill_value`` rows to exactly ``size`` rows: a fixed shape."""
    return input.nonzero_static(size=size, fill_value=fill_value)


# ---------------------------------------------------------------------------- recurrent cells


def _affine(x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    if x.shape[-1] != w.shape[-1]:
        from ..errors import ShapeError

        raise ShapeError(
            f"recurrent cell: input has inconsistent input_size: got {x.shape[-1]}, expected "
            f"{w.shape[-1]} (the weight's shape {tuple(w.shape)})"
        )
    y = x @ w.t()
    return y if b is None else y + b


def lstm_cell(input: Tensor, hx, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None):  # noqa: A002
    """One LSTM step: ``(h', c')`` from ``hx = (h, c)`` and the gate weights (i, f, g, o)."""
    h, c = hx
    gates = _affine(input, w_ih, b_ih) + _affine(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, -1)
    c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
    return o.sigmoid() * c2.tanh(), c2


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None):  # noqa: A002
    """One GRU step: ``h'`` from ``hx`` and the gate weights (r, z, n)."""
    gi_r, gi_z, gi_n = _affine(input, w_ih, b_ih).chunk(3, -1)
    gh_r, gh_z, gh_n = _affine(hx, w_hh, b_hh).chunk(3, -1)
    r = (gi_r + gh_r).sigmoid()
    z = (gi_z + gh_z).sigmoid()
    n = (gi_n + r * gh_n).tanh()
    return n + z * (hx - n)


def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None,  # noqa: A002
                  b_hh=None) -> Tensor:  # fmt: skip
    """One Elman RNN step with tanh: ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    return (_affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh)).tanh()


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None,  # noqa: A002
                  b_hh=None) -> Tensor:  # fmt: skip
    """One Elman RNN step with ReLU."""
    return (_affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh)).relu()


# ---------------------------------------------------------------------------- sym_* helpers
# NOTE: PyTorch's symbolic-shape helpers; on plain Python numbers each is the plain
# operation (manygrad traces no shapes symbolically).


def sym_int(a):
    """``int(a)``, rounding toward zero."""
    return int(a)


def sym_float(a):
    """``float(a)``."""
    return float(a)


def _as_float_if_any(r, a, b):
    return float(r) if isinstance(a, float) or isinstance(b, float) else r


def sym_max(a, b):
    """``max(a, b)``, a float if either is one (as PyTorch's)."""
    return _as_float_if_any(builtins.max(a, b), a, b)


def sym_min(a, b):
    """``min(a, b)``, a float if either is one (as PyTorch's)."""
    return _as_float_if_any(builtins.min(a, b), a, b)


def sym_not(a):
    """``not a``."""
    return not a


def sym_ite(b, t, f):
    """``t if b else f``."""
    return t if b else f


def sym_sqrt(a):
    """``math.sqrt(a)``."""
    return math.sqrt(a)


def sym_sum(args):
    """``sum(args)``."""
    return builtins.sum(args)


# ---------------------------------------------------------------------------- runtime switches


def get_device_module(device=None):
    """The device module of ``device`` (``manygrad.cuda`` for "cuda", ``manygrad.cpu`` for
    "cpu"); of the current accelerator, else the CPU, when None."""
    import importlib

    from .. import backend

    if device is None:
        from .. import cuda

        kind = "cuda" if cuda.is_available() else "cpu"
    else:
        kind = backend.device(device).type
    if kind == "fakegpu":
        kind = "cuda"
    return importlib.import_module(f"manygrad.{kind}")


def set_flush_denormal(mode: bool) -> bool:
    """Whether flushing denormal floats to zero could be switched: False, manygrad's CPU
    arithmetic (NumPy) keeps IEEE denormals, as PyTorch does where the CPU lacks the
    switch. ``mode=False`` is what manygrad does already."""
    return False


def init_num_threads() -> None:
    """PyTorch's per-thread OpenMP set-up; manygrad's threads need none."""


__all__ = sorted(
    k for k, v in globals().items() if callable(v) and not k.startswith("_")
    and getattr(v, "__module__", None) == __name__
)  # fmt: skip
