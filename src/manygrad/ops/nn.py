"""Neural-network ops: softmax, losses, embedding, dropout, one_hot.

Softmax, log_softmax and the class losses are single fused Functions with analytic
backward passes; none of them reads tensor values on the host, so they run on a GPU
without waiting for it. float16/bfloat16 inputs are computed in float32 and the results
returned in the input's dtype.
"""

from __future__ import annotations

from .. import backend
from .. import dtypes as D
from ..autograd import Function, is_grad_enabled
from ..errors import AutogradError, DTypeError, ShapeError
from ..tensor import Tensor
from .elementwise import _float_input, _promote, cast
from .reduce import _axes
from .reduce import mean as _mean
from .reduce import sum as _sum

_NAN = float("nan")


def _cdt(a):
    """NumPy dtype to compute in: float32 for 16-bit floats (as PyTorch's kernels do)."""
    return D.float32.np if a.dtype.itemsize < 4 else a.dtype


def _check_reduction(reduction, op, extra=()):
    allowed = ("none", "mean", "sum") + extra
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _no_grad_for(t, arg, op):
    if isinstance(t, Tensor) and t.requires_grad and is_grad_enabled():
        raise AutogradError(
            f"{op}: not differentiable with respect to {arg} (as in PyTorch); pass "
            f"{arg}.detach()"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _mean(loss)
    return _sum(loss) if reduction == "sum" else loss


# ---------------------------------------------------------------------------- softmax


class Softmax(Function):
    def forward(self, x, axis, log):
        xp = backend.array_module(x)
        self.axis, self.log, out_dt = axis, log, x.dtype
        if x.ndim == 0 or x.size == 0:
            self.y = None
            return (xp.zeros_like if log else xp.ones_like)(x)
        x = x.astype(_cdt(x), copy=False)
        z = x - x.max(axis=axis, keepdims=True)
        if log:
            z -= xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
        else:
            xp.exp(z, out=z)
            z /= z.sum(axis=axis, keepdims=True)
        self.y = z
        return z.astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        y, axis = self.y, self.axis
        if y is None:
            return xp.zeros_like(g)
        g = g.astype(y.dtype, copy=False)
        if self.log:
            return g - xp.exp(y) * g.sum(axis=axis, keepdims=True)
        return y * (g - (g * y).sum(axis=axis, keepdims=True))


def _softmax(x, dim, dtype, log, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if dim is None:
        raise TypeError(
            f"{op}: dim is required (the implicit choice is deprecated in PyTorch); "
            f"write {op}(x, dim=-1) for the last dim of shape {tuple(x.shape)}"
        )
    if dtype is not None:
        x = cast(x, dtype)
    x = _float_input(x)
    axes = _axes(x, dim, op)
    return Softmax.apply(x, axes[0] if axes else None, log)


def softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """``exp(x) / sum(exp(x))`` along ``dim``, computed without overflow.

    Args:
        input: the scores.
        dim: the dim that sums to 1 (required).
        dtype: cast the input to this dtype first (default None).

    Example: ``p = mg.softmax(logits, dim=-1)``.
    """
    return _softmax(input, dim, dtype, False, "softmax")


def log_softmax(input: Tensor, dim: int | None = None, dtype=None) -> Tensor:  # noqa: A002
    """``log(softmax(x, dim))``, computed stably as ``x - logsumexp(x, dim)``.

    Args:
        input: the scores.
        dim: the dim to normalise over (required).
        dtype: cast the input to this dtype first (default None).

    Example: ``logp = mg.log_softmax(logits, dim=1)``.
    """
    return _softmax(input, dim, dtype, True, "log_softmax")


# ---------------------------------------------------------------------------- class losses


def _ncs(shape):
    """(N, C, S) view of an input of shape (C,), (N, C) or (N, C, d1, ...)."""
    if len(shape) == 1:
        return 1, shape[0], 1
    s = 1
    for d in shape[2:]:
        s *= d
    return shape[0], shape[1], s


class ClassNLL(Function):
    """Negative log-likelihood of class indices, on log-probabilities or (``logits``) scores.

    With label smoothing ``eps`` the target is ``(1 - eps) * one_hot + eps / C``.
    """

    def forward(self, x, t, w, ignore_index, reduction, eps, logits):
        xp = backend.array_module(x)
        out_dt, cdt = x.dtype, _cdt(x)
        n, c, s = _ncs(x.shape)
        x3 = x.astype(cdt, copy=False).reshape(n, c, s)
        if logits:
            logp = x3 - x3.max(axis=1, keepdims=True)
            logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        else:
            logp = x3
        t2 = t.reshape(n, s)
        valid = t2 != ignore_index
        in_range = (t2 >= 0) & (t2 < c)
        ts = xp.where(valid & in_range, t2, 0).astype(D.int64.np)
        # NOTE: flat positions of the target logits in the (N, C, S) layout; unique per
        # (n, s), so plain fancy assignment is a correct scatter in backward.
        flat = xp.arange(n, dtype=D.int64.np)[:, None] * (c * s) + xp.arange(
            s, dtype=D.int64.np)[None, :] + ts * s  # fmt: skip
        picked = logp.reshape(-1)[flat]
        vw = valid.astype(cdt) if w is None else xp.where(valid, w.astype(cdt)[ts], 0)
        loss = picked * vw * -(1.0 - eps)
        if eps:
            wl = logp if w is None else logp * w.astype(cdt).reshape(1, c, 1)
            loss -= (eps / c) * xp.where(valid, wl.sum(axis=1), 0)
        # NOTE: a class index outside [0, C) gives a NaN loss instead of an error:
        # checking the indices would need a host sync.
        loss = xp.where(valid & ~in_range, _NAN, loss)
        self.p = xp.exp(logp) if logits else None
        self.flat, self.vw, self.valid, self.w = flat, vw, valid, w
        self.shape, self.ncs, self.cdt = x.shape, (n, c, s), cdt
        self.reduction, self.eps = reduction, eps
        if reduction == "none":
            return loss.reshape(t.shape).astype(out_dt, copy=False)
        total = loss.sum()
        if reduction == "mean":
            self.denom = vw.sum()
            total = total / self.denom
        return total.astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        n, c, s = self.ncs
        eps, vw = self.eps, self.vw
        g = g.astype(self.cdt, copy=False)
        if self.reduction == "none":
            a = g.reshape(n, s)
        else:
            a = g / self.denom if self.reduction == "mean" else g
        coef = a * vw
        if self.p is not None:
            tot = coef * (1.0 - eps)
            if eps:
                wsum = c if self.w is None else self.w.astype(self.cdt).sum()
                tot = tot + (a * self.valid) * ((eps / c) * wsum)
            gx = self.p * tot[:, None, :]
        else:
            gx = xp.zeros((n, c, s), self.cdt)
        if eps:
            av = (a * self.valid)[:, None, :] * (eps / c)
            gx -= av if self.w is None else av * self.w.astype(self.cdt).reshape(1, c, 1)
        gflat = gx.reshape(-1)
        gflat[self.flat] = gflat[self.flat] - coef * (1.0 - eps)
        return gx.reshape(self.shape), None, None


class SoftTargetCE(Function):
    """Cross entropy with class-probability targets of the input's shape."""

    def forward(self, x, t, w, reduction, eps):
        xp = backend.array_module(x)
        out_dt, cdt = x.dtype, _cdt(x)
        n, c, s = _ncs(x.shape)
        x3 = x.astype(cdt, copy=False).reshape(n, c, s)
        logp = x3 - x3.max(axis=1, keepdims=True)
        logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        q = t.astype(cdt, copy=False).reshape(n, c, s)
        if eps:
            q = q * (1.0 - eps) + eps / c
        self.wc = None if w is None else w.astype(cdt).reshape(1, c, 1)
        if self.wc is not None:
            q = q * self.wc
        loss = -(q * logp).sum(axis=1)
        self.logp, self.q, self.eps, self.reduction = logp, q, eps, reduction
        self.shape, self.ncs, self.cdt = x.shape, (n, c, s), cdt
        if reduction == "none":
            return loss.reshape(x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()).astype(out_dt)
        total = loss.sum()
        if reduction == "mean":
            total = total / (n * s) if n * s else total * _NAN
        return total.astype(out_dt, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        n, c, s = self.ncs
        g = g.astype(self.cdt, copy=False)
        if self.reduction == "none":
            a = g.reshape(n, 1, s)
        else:
            a = g / (n * s) if self.reduction == "mean" else g
        nx, nt, _ = self.needs_input_grad
        gx = gt = None
        if nx:
            q = self.q
            gx = (a * (xp.exp(self.logp) * q.sum(axis=1, keepdims=True) - q)).reshape(self.shape)
        if nt:
            gt = self.logp * (a * -(1.0 - self.eps))
            gt = (gt if self.wc is None else gt * self.wc).reshape(self.shape)
        return gx, gt, None


def _class_loss(input, target, weight, ignore_index, reduction, eps, logits, op):  # noqa: A002
    _check_reduction(reduction, op)
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be tensors")
    if input.ndim == 0:
        raise ShapeError(f"{op}: input needs a class dim, got a 0-d tensor")
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {eps}")
    input = _float_input(input)
    c = input.shape[0 if input.ndim == 1 else 1]
    if weight is not None:
        _no_grad_for(weight, "weight", op)
        if tuple(weight.shape) != (c,):
            raise ShapeError(f"{op}: weight must have shape ({c},) (one per class) for "
                             f"input of shape {tuple(input.shape)}, got {tuple(weight.shape)}")  # fmt: skip
    if logits and tuple(target.shape) == tuple(input.shape):
        if not target.is_floating_point():
            raise DTypeError(
                f"{op}: a target of the input's shape {tuple(input.shape)} holds class "
                f"probabilities and must be floating point, got {target.dtype}; for class "
                f"indices pass a target of shape {tuple(input.shape[:1] + input.shape[2:])}"
            )
        return SoftTargetCE.apply(input, target, weight, reduction, eps)
    want = () if input.ndim == 1 else tuple(input.shape[:1] + input.shape[2:])
    if tuple(target.shape) != want:
        extra = f" or {tuple(input.shape)} (class probabilities)" if logits else ""
        raise ShapeError(
            f"{op}: for input of shape {tuple(input.shape)} (N, C, ...) the target must have "
            f"shape {want} (class indices){extra}, got {tuple(target.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype is D.bool_:
        raise DTypeError(
            f"{op}: class-index targets must be an integer dtype (int64), got {target.dtype}; "
            "convert with target.long()"
        )
    return ClassNLL.apply(input, target, weight, ignore_index, reduction, eps, logits)


def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy between scores ``input`` (N, C, ...) and class indices or probabilities.

    Out-of-range class indices give a NaN loss (checking them would stall the GPU).

    Args:
        input: unnormalised scores, shape (C,), (N, C) or (N, C, d1, ...).
        target: class indices of shape (), (N,) or (N, d1, ...), or class probabilities
            of the input's shape.
        weight: per-class weights of shape (C,) (default None).
        ignore_index: index targets equal to this add nothing (default -100).
        reduction: "none", "mean" (default) or "sum".
        label_smoothing: mix the target with the uniform distribution (default 0.0).

    Example: ``loss = mg.nn.functional.cross_entropy(logits, labels)``.
    """
    return _class_loss(input, target, weight, ignore_index, reduction, label_smoothing, True,
                       "cross_entropy")  # fmt: skip


def nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities ``input``.

    Args:
        input: log-probabilities, shape (C,), (N, C) or (N, C, d1, ...).
        target: class indices of shape (), (N,) or (N, d1, ...).
        weight: per-class weights of shape (C,) (default None).
        ignore_index: targets equal to this add nothing (default -100).
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.nll_loss(F.log_softmax(logits, 1), labels)``.
    """
    return _class_loss(input, target, weight, ignore_index, reduction, 0.0, False, "nll_loss")
