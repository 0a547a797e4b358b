"""``F.linear_cross_entropy``, ``nn.LinearCrossEntropyLoss`` and
``nn.LinearCrossEntropyOptions`` (PyTorch 2.13): the cross entropy of a linear layer's
logits, optionally without ever holding the whole ``(batch, classes)`` logits (a language
model's vocabulary head, where those logits dwarf everything else).

``options=None`` is the reference, ``cross_entropy(linear(x, W, b), target, ...)``. With
options the batch runs in chunks through one autograd node: forward makes each chunk's
logits, keeps its log-sum-exp and the target's logit, and drops them; backward makes them
again to form that chunk's gradient. Peak memory for logits is one chunk's.

Example:
    >>> loss = F.linear_cross_entropy(hidden, head.weight, targets,
    ...                               options=nn.LinearCrossEntropyOptions())
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import NamedTuple

from .. import backend, jit
from .. import dtypes as D
from ..autograd import Function
from ..ops.nn import _cdt, _no_grad_for
from ..tensor import Tensor
from .linear import Linear
from .loss import _WeightedLoss

__all__ = ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions", "linear_cross_entropy"]


class _AutoDefault(NamedTuple):
    acc_policy: str
    chunking_method: str


# PyTorch's picks for the "auto" sentinels, keyed by (device type, input dtype name)
_AUTO_DEFAULTS = {
    ("cuda", "bfloat16"): _AutoDefault("compact", "aspect_ratio:2"),
    ("cuda", "float16"): _AutoDefault("compact", "aspect_ratio:2"),
    ("cpu", "bfloat16"): _AutoDefault("accurate", "aspect_ratio"),
    ("cpu", "float16"): _AutoDefault("accurate", "aspect_ratio"),
}
_AUTO_FALLBACK = _AutoDefault("compact", "aspect_ratio:2")
_ACC_DTYPES = ("float16", "bfloat16", "float32", "float64")


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """Opts ``linear_cross_entropy`` in to the chunked computation (PyTorch's fields).

    Args:
        allow_retain_graph: allow a second backward of a "mean"/"sum" loss (default False:
            it raises, as PyTorch's does; "none" always allows it).
        batch_chunk_size: rows per chunk (default None: from ``chunking_method``, or one
            chunk when that is None).
        chunking_method: "auto" (default), "aspect_ratio" or "aspect_ratio:N" (chunk
            logits about the size of the input, N times smaller), or None.
        acc_policy: "auto" (default), "accurate", "balanced" or "compact".
        acc_dtype: accumulation dtype, None (default) to pick from the input's.

    Example:
        >>> F.linear_cross_entropy(x, w, t, options=LinearCrossEntropyOptions(batch_chunk_size=64))
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.acc_policy not in {"auto", "accurate", "balanced", "compact"}:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            factor = factor if sep else "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        n = self.batch_chunk_size
        if not (n is None or (isinstance(n, int) and n > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got {n!r}")
        if self.acc_dtype is not None and getattr(self.acc_dtype, "name", None) not in _ACC_DTYPES:
            raise ValueError(
                "acc_dtype must be one of {None, torch.float16, torch.bfloat16, torch.float32, "
                f"torch.float64}}, got {self.acc_dtype!r}. Pass acc_dtype=None to let the op "
                "pick automatically."
            )

    @staticmethod
    def _chunk_rows(method: str, num_batches: int, in_features: int, num_classes: int) -> int:
        """Rows whose logits are about the input's size, divided by the method's factor."""
        factor = int(method.split(":", 1)[1]) if ":" in method else 1
        target = -(-num_batches // -(-num_classes // in_features))
        return min((1 << (target - 1).bit_length()) // factor, num_batches)

    def _adjust(self, num_batches, in_features, num_classes, dtype, device=None):
        """A copy with "auto" and None resolved for one call (PyTorch's rules)."""
        policy, method = self.acc_policy, self.chunking_method
        if method == "auto" and self.batch_chunk_size is not None:
            method = None  # an explicit chunk size wins over the automatic one
        if policy == "auto" or method == "auto":
            # NOTE: fakegpu stands in for cuda, so it takes cuda's picks
            kind = None if device is None else device.type.replace("fakegpu", "cuda")
            ap, cm = _AUTO_DEFAULTS.get((kind, dtype.name), _AUTO_FALLBACK)
            policy = ap if policy == "auto" else policy
            method = cm if method == "auto" else method
        rows = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size,
                                                                     num_batches)  # fmt: skip
        if method is not None:
            rows = self._chunk_rows(method, num_batches, in_features, num_classes)
            if self.batch_chunk_size is not None and self.batch_chunk_size != rows:
                raise ValueError(
                    f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method "
                    f"('{method}') give different chunk sizes ({self.batch_chunk_size} vs "
                    f"{rows}); pass only one."
                )
        acc = self.acc_dtype
        if acc is None:
            half = dtype.name in ("float16", "bfloat16") and device is not None
            acc = D.float32 if half and self.acc_policy == "auto" else dtype
        return dataclasses.replace(self, acc_policy=policy, chunking_method=method,
                                   batch_chunk_size=max(1, rows), acc_dtype=acc)  # fmt: skip


_TWICE = ("linear_cross_entropy chunked backward called twice; retain_graph=True / double "
          "backward are not supported.")  # fmt: skip


class LinearCrossEntropyChunked(Function):
    """The chunked loss of (N, D) ``x``, (C, D) ``w``, (N,) class indices ``t``, optional
    (C,) bias ``b`` and class weights ``wc``: one node, logits remade chunk by chunk in
    backward (never saved)."""

    op_name = "LinearCrossEntropy"

    def _logits(self, x, w, b, rows):
        """Each chunk's start and logits, in one reused (rows, C) buffer."""
        xp = backend.array_module(x)
        cdt = self.cdt
        w_t = w.astype(cdt, copy=False).T
        bias = None if b is None else b.astype(cdt, copy=False)
        buf = xp.empty((min(rows, x.shape[0]), w.shape[0]), dtype=cdt)
        for s in range(0, x.shape[0], rows):
            xc = x[s : s + rows].astype(cdt, copy=False)
            z = xp.matmul(xc, w_t, out=buf[: xc.shape[0]])
            if bias is not None:
                z += bias
            yield s, xc, z

    def forward(self, x, w, t, b, wc, reduction, ignore_index, rows, allow_retain):
        xp = backend.array_module(x)
        self.cdt = cdt = _cdt(x)
        n, c = x.shape[0], w.shape[0]
        valid = t != ignore_index
        in_range = (t >= 0) & (t < c)
        ts = xp.where(valid & in_range, t, 0)
        rw = valid.astype(cdt) if wc is None else xp.where(valid, wc.astype(cdt)[ts], 0)
        lse, picked = xp.empty(n, dtype=cdt), xp.empty(n, dtype=cdt)
        for s, _, z in self._logits(x, w, b, rows):
            k = z.shape[0]
            picked[s : s + k] = xp.take_along_axis(z, ts[s : s + k, None], axis=1)[:, 0]
            m = z.max(axis=1, keepdims=True)
            z -= m
            xp.exp(z, out=z)
            lse[s : s + k] = xp.log(z.sum(axis=1)) + m[:, 0]
        # NOTE: an index outside [0, C) on a GPU gives NaN (checking it would sync)
        loss = xp.where(valid & ~in_range, math.nan, (lse - picked) * rw)
        self.x, self.w, self.b, self.ts, self.rw, self.lse = x, w, b, ts, rw, lse
        self.reduction, self.rows, self.allow_retain = reduction, rows, allow_retain
        if reduction == "none":
            return loss.astype(x.dtype, copy=False)
        total = loss.sum()
        if reduction == "mean":
            self.denom = rw.sum()
            with backend.quiet_float_errors():  # every target ignored: 0 / 0, NaN as PyTorch
                total = total / self.denom
        return total.astype(x.dtype, copy=False)

    def backward(self, g):
        if self.__dict__.get("spent"):
            raise RuntimeError(_TWICE)
        if self.reduction != "none" and not self.allow_retain:
            self.spent = True  # NOTE: PyTorch's scalar-reduction node runs once
        xp = backend.array_module(g)
        x, w, b, cdt = self.x, self.w, self.b, self.cdt
        g = g.astype(cdt, copy=False)
        if self.reduction == "mean":
            with backend.quiet_float_errors():
                g = g / self.denom
        a = self.rw * g  # d loss / d logit-of-target, per row, before the softmax term
        nx, nw, _, nb = self.needs_input_grad[:4]
        gx = xp.empty(x.shape, dtype=cdt) if nx else None
        gw = xp.zeros(w.shape, dtype=cdt) if nw else None
        tmp = xp.empty(w.shape, dtype=cdt) if nw else None
        gb = xp.zeros(w.shape[:1], dtype=cdt) if nb else None
        wcd = w.astype(cdt, copy=False)
        for s, xc, z in self._logits(x, w, b, self.rows):
            k = z.shape[0]
            z -= self.lse[s : s + k, None]
            xp.exp(z, out=z)  # the chunk's softmax
            ak = a[s : s + k]
            z *= ak[:, None]
            z[xp.arange(k), self.ts[s : s + k]] -= ak
            if nx:
                # NOTE: as (W^T dZ^T)^T: OpenBLAS runs a few-row dZ @ W (a long inner
                # dim) 3-10x slower than the transposed product, the same numbers
                gx[s : s + k] = xp.matmul(wcd.T, z.T).T
            if nw:
                gw += xp.matmul(z.T, xc, out=tmp)
            if nb:
                gb += z.sum(axis=0)
        return (
            None if gx is None else gx.astype(x.dtype, copy=False),
            None if gw is None else gw.astype(w.dtype, copy=False),
            None,
            None if gb is None else gb.astype(b.dtype, copy=False),
            None, None, None, None, None,
        )  # fmt: skip


def _chunked(input, w, target, b, weight, reduction, ignore_index, options):  # noqa: A002
    """The chunked path for (D,) or (N, D) input and (C, D) weights."""
    from ..ops.loss import _check_targets

    op = "linear_cross_entropy"
    batched = input.ndim == 2
    x = input if batched else input.unsqueeze(0)
    t = target if batched else target.reshape(1)
    n, d = x.shape
    c = w.shape[0]
    if tuple(target.shape) != tuple(input.shape[:-1]):
        raise RuntimeError(
            f"{op}: for input of shape {tuple(input.shape)} the class-index target must "
            f"have shape {tuple(input.shape[:-1])}, got {tuple(target.shape)}"
        )
    for name, other in (("linear_weight", w), ("linear_bias", b)):
        if other is not None and other.dtype != x.dtype:
            raise RuntimeError(
                f"{op}: expected input and {name} of one dtype, got {x.dtype} and "
                f"{other.dtype}; cast one with .to()"
            )
    if weight is not None:
        _no_grad_for(weight, "weight", op)
        if tuple(weight.shape) != (c,):
            raise RuntimeError(
                f"{op}: weight must have shape ({c},) (one per class), got {tuple(weight.shape)}"
            )
    _check_targets(t, c, ignore_index, op)
    opts = options._adjust(n, d, c, x.dtype, x.device)
    acc, dt = opts.acc_dtype, x.dtype
    if acc != dt and not (dt.name in ("float16", "bfloat16") and acc.name == "float32"):
        raise RuntimeError(
            "linear_cross_entropy supports float32 acc_dtype with float16/bfloat16 inputs, "
            f"but got {acc} acc_dtype and {dt} inputs."
        )
    # NOTE: every acc_policy computes in float32 or wider (manygrad's "accurate"): NumPy and
    # CuPy have no float32-accumulating half matmul to save memory with
    out = LinearCrossEntropyChunked.apply(x, w, t, b, weight, reduction, ignore_index,
                                          opts.batch_chunk_size, opts.allow_retain_graph)  # fmt: skip
    return out if batched else out.reshape(())


def linear_cross_entropy(
    input: Tensor,  # noqa: A002
    linear_weight: Tensor,
    target: Tensor,
    *,
    linear_bias: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    options: LinearCrossEntropyOptions | None = None,
) -> Tensor:
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``; with
    ``options``, chunked over the batch so the (N, C) logits never exist at once.

    Args:
        input: (D,) or (N, D) samples.
        linear_weight: (C, D), or (C, d1, ..., dK, D) for a K-dimensional loss.
        target: class indices (), (N,) or (N, d1, ...), or class probabilities of the
            logits' shape.
        linear_bias: (C,) or (C, d1, ..., dK) (default None).
        weight: (C,) class weights (default None).
        reduction: "mean" (default), "sum" or "none".
        ignore_index: class index to skip (default None: -100 for class indices; must stay
            None for class probabilities).
        label_smoothing: in [0, 1] (default 0.0).
        options: a ``LinearCrossEntropyOptions`` for the chunked path (default None).

    Example:
        >>> F.linear_cross_entropy(h, head.weight, y, options=nn.LinearCrossEntropyOptions())
    """
    from .. import ops as F

    if input.ndim < 1 or input.ndim > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.ndim}")
    if linear_weight.ndim < 2:
        raise RuntimeError(
            f"expected linear_weight with dimensionality at least 2, got {linear_weight.ndim}"
        )
    num_batches, in_features = tuple(input.shape[:-1]), input.shape[-1]
    if in_features != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {in_features} and {linear_weight.shape[-1]}, respectively"
        )
    num_classes, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (num_classes, *out_features):
        raise RuntimeError(
            f"expected linear_bias shape {(num_classes, *out_features)}, "
            f"got {tuple(linear_bias.shape)}"
        )
    if out_features and not num_batches:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} "
            f"requires batched input, (N, {in_features}), got unbatched input with shape "
            f"{tuple(input.shape)}"
        )
    logits_shape = (*num_batches, num_classes, *out_features)
    if tuple(target.shape) == logits_shape and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    if options is not None:
        fits = (reduction in {"mean", "sum", "none"} and label_smoothing == 0.0
                and target.dtype == D.int64 and not out_features and not jit.is_tracing())  # fmt: skip
        if fits:
            return _chunked(input, linear_weight, target, linear_bias, weight, reduction,
                            ignore_index, options)  # fmt: skip
        bias_shape = tuple(linear_bias.shape) if linear_bias is not None else None
        warnings.warn(
            "linear_cross_entropy: ``options`` ignored; chunked path needs reduction in "
            "{'mean','sum','none'}, label_smoothing == 0, target.dtype == int64, "
            f"out_features == (). Got reduction={reduction!r}, label_smoothing="
            f"{label_smoothing}, target.dtype={target.dtype}, out_features={out_features}, "
            f"tracing={jit.is_tracing()}, linear_bias.shape={bias_shape}.",
            stacklevel=2,
        )
    w, b = linear_weight, linear_bias
    if out_features:  # NOTE: one flat (C * d1 * ... * dK, D) linear, logits reshaped after
        flat = math.prod(out_features, start=num_classes)
        w = w.reshape(flat, in_features)
        b = None if b is None else b.reshape(flat)
    logits = F.linear(input, w, b).reshape(logits_shape)
    return F.cross_entropy(logits, target, weight=weight, reduction=reduction,
                           ignore_index=ignore_index, label_smoothing=label_smoothing)  # fmt: skip


class LinearCrossEntropyLoss(_WeightedLoss):
    """A linear layer to ``num_classes`` (times ``out_features``) logits and their cross
    entropy with the target, as one module; the layer is ``self.linear``, stored flat
    (``(C * prod(out_features), in_features)``) as PyTorch's, reshaped in forward.

    Args:
        in_features, num_classes: the linear layer's sizes.
        out_features: (d1, ..., dK) for a K-dimensional loss (default ()).
        bias: whether the layer has a bias (default False).
        device, dtype: of the layer's parameters (default None).
        reduction, weight, ignore_index, label_smoothing, options: as in
            ``F.linear_cross_entropy``.

    Example:
        >>> nn.LinearCrossEntropyLoss(512, 32000, options=nn.LinearCrossEntropyOptions())(h, y)
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (),
                 bias: bool = False, device=None, dtype=None, reduction: str = "mean",
                 weight: Tensor | None = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0,
                 options: LinearCrossEntropyOptions | None = None) -> None:  # fmt: skip
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(
                f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}"
            )
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(
                f"expected label_smoothing to be in range [0, 1], got {label_smoothing}"
            )
        super().__init__(weight=weight, reduction=reduction)
        self.num_classes, self.out_features = num_classes, out_features
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        flat = math.prod(out_features, start=num_classes)
        self.linear = Linear(in_features, flat, bias=bias, device=device, dtype=dtype)
        self.options = options

    def forward(self, input: Tensor, target: Tensor) -> Tensor:  # noqa: A002
        shape = (self.num_classes, *self.out_features)
        lin = self.linear
        return linear_cross_entropy(
            input, lin.weight.reshape(*shape, lin.in_features), target,
            linear_bias=None if lin.bias is None else lin.bias.reshape(shape),
            weight=self.weight, reduction=self.reduction, ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing, options=self.options,
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
                f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
                f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
                f"label_smoothing={self.label_smoothing}, options={self.options}")  # fmt: skip
