"""PyTorch's building blocks of synchronized batch normalization, and ``native_norm``.

``nn.SyncBatchNorm`` runs batch normalization across processes from these pieces: each
rank computes its per-channel statistics (``batch_norm_stats``), the ranks exchange them,
``batch_norm_gather_stats_with_counts`` merges them (and updates the running statistics),
``batch_norm_elemt`` normalizes; backwards, ``batch_norm_backward_reduce`` gives each
rank's sums, which are all-reduced, and ``batch_norm_backward_elemt`` the input gradient.

PyTorch has kernels for most of them on CUDA only (its CPU build raises
NotImplementedError); manygrad computes them on every device with the formulas of
PyTorch's CUDA kernels, in float32 for 16-bit inputs (statistics are float32 there, as
PyTorch's accumulation type). ``batch_norm_update_stats`` runs on PyTorch's CPU too.
Re-exported as ``manygrad.<name>``.

Example:
    >>> mean, invstd = mg.batch_norm_stats(x, 1e-5)
    >>> y = mg.batch_norm_elemt(x, weight, bias, mean, invstd, 1e-5)
"""

from __future__ import annotations

from .. import dtypes as D
from ..autograd import no_grad
from ..errors import ShapeError
from ..tensor import Tensor

_HALF = (D.float16, D.bfloat16)


def _acc(t: Tensor) -> Tensor:
    """``t`` in PyTorch's CUDA accumulation type: float32 for 16-bit floats."""
    return t.float() if t.dtype in _HALF else t


def _dims(x: Tensor, name: str) -> tuple:
    if x.ndim < 2:
        raise ShapeError(f"{name}: expected input of at least 2 dims (N, C, ...), got shape "
                         f"{tuple(x.shape)}")  # fmt: skip
    return (0,) + tuple(range(2, x.ndim))


def _chan(v: Tensor, x: Tensor) -> Tensor:
    """A per-channel (C,) vector shaped to broadcast over (N, C, ...)."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _invstd(var: Tensor, eps: float) -> Tensor:
    # NOTE: PyTorch's InvStd gives 0, not inf, for a zero variance with eps == 0
    if eps:
        return (var + eps).rsqrt()
    zero = var == 0
    return var.masked_fill(zero, 1.0).rsqrt().masked_fill(zero, 0.0)


def batch_norm_stats(input: Tensor, eps: float):  # noqa: A002
    """``(mean, invstd)`` per channel (dim 1) of ``input``: invstd = 1 / sqrt(biased
    variance + eps).

    Example:
        >>> mean, invstd = mg.batch_norm_stats(mg.randn(8, 3, 4, 4), 1e-5)
    """
    dims = _dims(input, "batch_norm_stats")
    x = _acc(input)
    return x.mean(dims), _invstd(x.var(dims, unbiased=False), eps)


def batch_norm_elemt(input: Tensor, weight, bias, mean: Tensor, invstd: Tensor,  # noqa: A002
                     eps: float) -> Tensor:  # fmt: skip
    """``weight * (input - mean) * invstd + bias`` per channel, in ``input``'s dtype
    (``eps`` is unused: ``invstd`` has it already).

    Example:
        >>> y = mg.batch_norm_elemt(x, w, b, mean, invstd, 1e-5)
    """
    _dims(input, "batch_norm_elemt")
    y = _acc(input) - _chan(mean, input)
    if weight is not None:
        y = _chan(_acc(weight), input) * y
    y = y * _chan(invstd, input)
    if bias is not None:
        y = y + _chan(_acc(bias), input)
    return y.to(input.dtype)


def batch_norm_gather_stats_with_counts(input: Tensor, mean: Tensor, invstd: Tensor,  # noqa: A002
                                        running_mean, running_var, momentum: float,
                                        eps: float, counts: Tensor):  # fmt: skip
    """Merge per-rank statistics into global ``(mean, invstd)``.

    Args:
        input: this rank's input (for its device and dtype only).
        mean, invstd: (world, C), each rank's ``batch_norm_stats``.
        running_mean, running_var: (C,) or None; updated in place with ``momentum``, the
            variance unbiased over all ``sum(counts)`` elements.
        counts: (world,), each rank's elements per channel.

    Example:
        >>> m, inv = mg.batch_norm_gather_stats_with_counts(x, means, invstds, rm, rv, 0.1,
        ...                                                 1e-5, mg.tensor([96., 32.]))
    """
    if mean.ndim != 2 or tuple(invstd.shape) != tuple(mean.shape):
        raise ShapeError(f"batch_norm_gather_stats_with_counts: expected mean and invstd of "
                         f"the same shape (world, C), got {tuple(mean.shape)} and "
                         f"{tuple(invstd.shape)}")  # fmt: skip
    if counts.numel() < mean.shape[0]:
        raise ShapeError(
            "batch_norm_gather_stats_with_counts: expected counts to have at least one "
            f"element per entry in mean's first dimension ({mean.shape[0]}), but got "
            f"{counts.numel()} elements"
        )
    with no_grad():
        m_all, inv_all = _acc(mean.detach()), _acc(invstd.detach())
        c_all = counts.detach().reshape(-1).to(m_all.dtype)
        # NOTE: the ranks merged one after another (Chan et al.'s pairwise update), as
        # PyTorch's batch_norm_reduce_statistics_kernel does
        avg = var_n = None
        n = 0.0
        for j in range(mean.shape[0]):
            c, m = c_all[j], m_all[j]
            v = ((1.0 / inv_all[j]) ** 2 - eps) * c
            if avg is None:
                avg, var_n, n = m * 1.0, v, c
                continue
            factor = 1.0 / (n + c)
            var_n = var_n + v + (avg - m) ** 2 * n * c * factor
            avg = n * factor * avg + c * factor * m
            n = n + c
        invstd_out = 1.0 / (var_n / n + eps).sqrt()
        if running_mean is not None:
            running_mean.copy_((1 - momentum) * running_mean + momentum * avg)
        if running_var is not None:
            running_var.copy_((1 - momentum) * running_var + momentum * (var_n / (n - 1)))
    return avg, invstd_out


def batch_norm_gather_stats(input: Tensor, mean: Tensor, invstd: Tensor, running_mean,  # noqa: A002
                            running_var, momentum: float, eps: float,
                            count: int):  # fmt: skip
    """``batch_norm_gather_stats_with_counts`` with ``count`` elements on every rank.

    Example:
        >>> m, inv = mg.batch_norm_gather_stats(x, means, invstds, rm, rv, 0.1, 1e-5, 64)
    """
    from .. import creation

    counts = creation.full((mean.shape[0],), float(count), dtype=_acc(mean).dtype,
                           device=mean.device)  # fmt: skip
    return batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var,
                                               momentum, eps, counts)  # fmt: skip


def batch_norm_update_stats(input: Tensor, running_mean, running_var, momentum: float):  # noqa: A002
    """``(mean, var)`` per channel of ``input`` (var biased), updating ``running_mean`` and
    ``running_var`` (unbiased) in place with ``momentum``, as batch norm in training does.

    Example:
        >>> mean, var = mg.batch_norm_update_stats(x, bn.running_mean, bn.running_var, 0.1)
    """
    dims = _dims(input, "batch_norm_update_stats")
    with no_grad():
        x = input.detach()
        if running_mean is not None and x.dtype != running_mean.dtype:
            x = x.to(running_mean.dtype)
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        n = input.numel() // input.shape[1]
        if running_mean is not None:
            running_mean.copy_(momentum * mean + (1 - momentum) * running_mean)
        if running_var is not None:
            unbiased = var * (n / (n - 1)) if n > 1 else var * float("nan")
            running_var.copy_(momentum * unbiased + (1 - momentum) * running_var)
    return mean, var


def batch_norm_backward_reduce(grad_out: Tensor, input: Tensor, mean: Tensor,  # noqa: A002
                               invstd: Tensor, weight, input_g: bool, weight_g: bool,
                               bias_g: bool):  # fmt: skip
    """This rank's sums for the batch-norm backward: ``(sum_dy, sum_dy_xmu, grad_weight,
    grad_bias)`` per channel, sum_dy = sum(grad_out), sum_dy_xmu = sum(grad_out * (input
    - mean)), grad_weight = sum_dy_xmu * invstd, grad_bias = sum_dy; each None when its
    flag (``input_g`` for the first two) is False.

    Example:
        >>> sum_dy, sum_dy_xmu, gw, gb = mg.batch_norm_backward_reduce(dy, x, m, inv, w,
        ...                                                            True, True, True)
    """
    dims = _dims(input, "batch_norm_backward_reduce")
    dy = _acc(grad_out)
    sum_dy = dy.sum(dims)
    sum_dy_xmu = (dy * (_acc(input) - _chan(mean, input))).sum(dims)
    wdt = weight.dtype if weight is not None else mean.dtype
    grad_weight = (sum_dy_xmu * invstd).to(wdt) if weight_g else None
    grad_bias = sum_dy.to(wdt) if bias_g else None
    if not input_g:
        sum_dy = sum_dy_xmu = None
    else:
        sum_dy, sum_dy_xmu = sum_dy.to(mean.dtype), sum_dy_xmu.to(mean.dtype)
    return sum_dy, sum_dy_xmu, grad_weight, grad_bias


def batch_norm_backward_elemt(grad_out: Tensor, input: Tensor, mean: Tensor,  # noqa: A002
                              invstd: Tensor, weight, sum_dy: Tensor, sum_dy_xmu: Tensor,
                              count: Tensor) -> Tensor:  # fmt: skip
    """The input gradient of batch norm from the all-reduced sums: with N = sum(count),
    ``(grad_out - sum_dy / N - (input - mean) * invstd^2 * sum_dy_xmu / N) * invstd *
    weight``, in ``input``'s dtype.

    Example:
        >>> dx = mg.batch_norm_backward_elemt(dy, x, m, inv, w, sum_dy, sum_dy_xmu,
        ...                                   mg.tensor([96, 32], dtype=mg.int32))
    """
    _dims(input, "batch_norm_backward_elemt")
    total = count.sum().item() if isinstance(count, Tensor) else sum(count)
    norm = 1.0 / float(total)
    inv = _acc(invstd)
    f1 = _chan(inv * inv * _acc(sum_dy_xmu) * norm, input)
    f2 = inv if weight is None else _acc(weight) * inv
    dy = _acc(grad_out) - _chan(_acc(sum_dy) * norm, input)
    out = (dy - (_acc(input) - _chan(mean, input)) * f1) * _chan(f2, input)
    return out.to(input.dtype)


def native_norm(input: Tensor, p=2, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A002
    """The ``p``-norm of ``input`` (``p`` None is 2), over ``dim`` (default all), as
    ``linalg.vector_norm``. PyTorch serves it for sparse tensors only, over all dims;
    manygrad also for dense ones.

    Example:
        >>> mg.native_norm(mg.tensor([3.0, 4.0]))
        tensor(5.)
    """
    from .. import linalg

    if getattr(input, "is_sparse", False):
        input = input.to_dense()  # noqa: A001
    if isinstance(dim, int):
        dim = (dim,)
    return linalg.vector_norm(input, 2 if p is None else p, dim=None if dim in (None, ()) else
                              tuple(dim), keepdim=keepdim, dtype=dtype)  # fmt: skip


__all__ = [
    "batch_norm_backward_elemt",
    "batch_norm_backward_reduce",
    "batch_norm_elemt",
    "batch_norm_gather_stats",
    "batch_norm_gather_stats_with_counts",
    "batch_norm_stats",
    "batch_norm_update_stats",
    "native_norm",
]
