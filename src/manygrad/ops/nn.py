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
            f"{op}: not differentiable with respect to {arg} (as in PyTorch); pass {arg}.detach()"
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
        gx = g - (g * y).sum(axis=axis, keepdims=True)
        gx *= y
        return gx


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
            # NOTE: log p = z - lse with z = x - max; p itself is kept for backward, and
            # log p is never materialised (one exp over the logits in all)
            z = x3 - x3.max(axis=1, keepdims=True)
            p = xp.exp(z)
            se = p.sum(axis=1, keepdims=True)
            p /= se
            lse = xp.log(se)[:, 0, :]
        else:
            z, p, lse = x3, None, 0.0
        t2 = t.reshape(n, s).astype(D.int64.np, copy=False)
        valid = t2 != ignore_index
        in_range = (t2 >= 0) & (t2 < c)
        ts = xp.where(valid & in_range, t2, 0)
        # NOTE: flat positions of the target logits in the (N, C, S) layout; unique per
        # (n, s), so plain fancy assignment is a correct scatter in backward.
        flat = xp.arange(n, dtype=D.int64.np)[:, None] * (c * s) + xp.arange(
            s, dtype=D.int64.np)[None, :] + ts * s  # fmt: skip
        picked = z.reshape(-1)[flat] - lse
        vw = valid.astype(cdt) if w is None else xp.where(valid, w.astype(cdt)[ts], 0)
        loss = picked * vw * -(1.0 - eps)
        if eps:
            wz = z if w is None else z * w.astype(cdt).reshape(1, c, 1)
            wsum = c if w is None else w.astype(cdt).sum()
            loss -= (eps / c) * xp.where(valid, wz.sum(axis=1) - lse * wsum, 0)
        # NOTE: a class index outside [0, C) gives a NaN loss instead of an error:
        # checking the indices would need a host sync.
        loss = xp.where(valid & ~in_range, _NAN, loss)
        self.p = p
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
        nx, nt = self.needs_input_grad[:2]
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
    x = _float_input(input)
    c = x.shape[0 if x.ndim == 1 else 1]
    if weight is not None:
        _no_grad_for(weight, "weight", op)
        if tuple(weight.shape) != (c,):
            raise ShapeError(
                f"{op}: weight must have shape ({c},) (one per class) for input of shape "
                f"{tuple(x.shape)}, got {tuple(weight.shape)}"
            )
    if logits and tuple(target.shape) == tuple(x.shape):
        if not target.is_floating_point():
            raise DTypeError(
                f"{op}: a target of the input's shape {tuple(x.shape)} holds class "
                f"probabilities and must be floating point, got {target.dtype}; for class "
                f"indices pass a target of shape {tuple(x.shape[:1] + x.shape[2:])}"
            )
        return SoftTargetCE.apply(x, target, weight, reduction, eps)
    want = () if x.ndim == 1 else tuple(x.shape[:1] + x.shape[2:])
    if tuple(target.shape) != want:
        extra = f" or {tuple(x.shape)} (class probabilities)" if logits else ""
        raise ShapeError(
            f"{op}: for input of shape {tuple(x.shape)} (N, C, ...) the target must have "
            f"shape {want} (class indices){extra}, got {tuple(target.shape)}"
        )
    if target.dtype.is_floating_point or target.dtype is D.bool_:
        raise DTypeError(
            f"{op}: class-index targets must be an integer dtype (int64), got {target.dtype}; "
            "convert with target.long()"
        )
    return ClassNLL.apply(x, target, weight, ignore_index, reduction, eps, logits)


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


# ---------------------------------------------------------------------------- regression losses


class Regression(Function):
    """Elementwise loss of ``d = input - target``: mse, l1, smooth_l1 (beta) or huber (delta)."""

    def forward(self, a, b, kind, beta):
        xp = backend.array_module(a)
        d = a - b
        self.d, self.kind, self.beta = d, kind, beta
        if kind == "mse":
            return d * d
        ad = xp.abs(d)
        if kind == "l1":
            return ad
        if kind == "smooth_l1":
            return xp.where(ad < beta, (0.5 / beta) * d * d, ad - 0.5 * beta)
        return xp.where(ad < beta, 0.5 * d * d, beta * (ad - 0.5 * beta))

    def backward(self, g):
        xp = backend.array_module(g)
        d, kind, beta = self.d, self.kind, self.beta
        if kind == "mse":
            gd = g * (2 * d)
        elif kind == "l1":
            gd = g * xp.sign(d)
        elif kind == "smooth_l1":
            gd = g * xp.clip(d * (1.0 / beta), -1, 1)
        else:
            gd = g * xp.clip(d, -beta, beta)
        na, nb = self.needs_input_grad[:2]
        return (gd if na else None), (-gd if nb else None)


def _regression(input, target, reduction, kind, beta, op):  # noqa: A002
    _check_reduction(reduction, op)
    a, b = _promote(input, target)
    a, b = _float_input(a), _float_input(b)
    return _reduce(Regression.apply(a, b, kind, beta), reduction)


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Squared error ``(input - target) ** 2``, reduced.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.mse_loss(pred, y)``.
    """
    return _regression(input, target, reduction, "mse", 0.0, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Absolute error ``|input - target|``, reduced.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.l1_loss(pred, y)``.
    """
    return _regression(input, target, reduction, "l1", 0.0, "l1_loss")


def smooth_l1_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Squared error / (2 beta) below ``beta``, absolute error minus beta / 2 above.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "none", "mean" (default) or "sum".
        beta: where the loss turns from quadratic to linear (default 1.0; 0 gives l1).

    Example: ``loss = F.smooth_l1_loss(pred, y, beta=0.5)``.
    """
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    kind = "smooth_l1" if beta > 0 else "l1"
    return _regression(input, target, reduction, kind, beta, "smooth_l1_loss")


def huber_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
) -> Tensor:
    """Half squared error below ``delta``, ``delta * (|d| - delta / 2)`` above.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "none", "mean" (default) or "sum".
        delta: where the loss turns from quadratic to linear (default 1.0, > 0).

    Example: ``loss = F.huber_loss(pred, y, delta=2.0)``.
    """
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    return _regression(input, target, reduction, "huber", delta, "huber_loss")


# ---------------------------------------------------------------------------- binary losses


class BCE(Function):
    def forward(self, x, y, w):
        xp = backend.array_module(x)
        # NOTE: logs clamped at -100 as PyTorch does, so that x = 0 or 1 gives a finite loss
        lx = xp.maximum(xp.log(x), -100.0)
        l1x = xp.maximum(xp.log1p(-x), -100.0)
        self.x, self.y, self.w, self.dl = x, y, w, lx - l1x
        loss = -(y * self.dl + l1x)
        return loss if w is None else loss * w

    def backward(self, g):
        xp = backend.array_module(g)
        x, y, w = self.x, self.y, self.w
        gw = g if w is None else g * w
        nx, ny, _ = self.needs_input_grad
        gx = gw * (x - y) / xp.maximum(x * (1 - x), 1e-12) if nx else None
        return gx, (-gw * self.dl if ny else None), None


class BCEWithLogits(Function):
    def forward(self, x, y, w, pw):
        xp = backend.array_module(x)
        # NOTE: softplus(-x) = max(-x, 0) + log1p(exp(-|x|)) never overflows
        sp = xp.maximum(-x, 0) + xp.log1p(xp.exp(-xp.abs(x)))
        lw = 1 if pw is None else 1 + (pw - 1) * y
        self.x, self.y, self.w, self.pw, self.sp, self.lw = x, y, w, pw, sp, lw
        loss = (1 - y) * x + lw * sp
        return loss if w is None else loss * w

    def backward(self, g):
        xp = backend.array_module(g)
        x, y = self.x, self.y
        gw = g if self.w is None else g * self.w
        nx, ny, _, _ = self.needs_input_grad
        gx = gy = None
        if nx:
            e = xp.exp(-xp.abs(x))  # sigmoid(-x) without overflow
            sig_neg = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))
            gx = gw * ((1 - y) - self.lw * sig_neg)
        if ny:
            gy = gw * (-x if self.pw is None else (self.pw - 1) * self.sp - x)
        return gx, gy, None, None


def _binary_args(input, target, weight, op, pos_weight=None):  # noqa: A002
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(
            f"{op}: target shape {tuple(target.shape)} must be the same as input shape "
            f"{tuple(input.shape)}"
        )
    _no_grad_for(weight, "weight", op)
    _no_grad_for(pos_weight, "pos_weight", op)
    x = _float_input(input)
    dt = x.dtype
    return [None if t is None else (t if t.dtype is dt else cast(t, dt))
            for t in (x, target, weight, pos_weight)]  # fmt: skip


def binary_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross entropy between probabilities ``input`` and ``target``.

    Args:
        input: probabilities in [0, 1].
        target: targets in [0, 1] of the input's shape.
        weight: rescales each element's loss, broadcast to the input (default None).
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.binary_cross_entropy(mg.sigmoid(z), y)``.
    """
    _check_reduction(reduction, "binary_cross_entropy")
    x, y, w, _ = _binary_args(input, target, weight, "binary_cross_entropy")
    return _reduce(BCE.apply(x, y, w), reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross entropy on logits, ``sigmoid`` fused in for numerical stability.

    Args:
        input: logits.
        target: targets in [0, 1] of the input's shape.
        weight: rescales each element's loss, broadcast to the input (default None).
        reduction: "none", "mean" (default) or "sum".
        pos_weight: weight of the positive term, broadcast along the last dim (default None).

    Example: ``loss = F.binary_cross_entropy_with_logits(z, y, pos_weight=mg.tensor([3.0]))``.
    """
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    x, y, w, pw = _binary_args(input, target, weight, op, pos_weight)
    return _reduce(BCEWithLogits.apply(x, y, w, pw), reduction)


class KLDiv(Function):
    def forward(self, x, t, log_target):
        xp = backend.array_module(x)
        self.x, self.t, self.log_target = x, t, log_target
        if log_target:
            self.et = xp.exp(t)
            return self.et * (t - x)
        # NOTE: xlogy: 0 * log(0) is 0
        return xp.where(t == 0, 0, t * xp.log(xp.where(t == 0, 1, t))) - t * x

    def backward(self, g):
        xp = backend.array_module(g)
        nx, nt = self.needs_input_grad[:2]
        x, t = self.x, self.t
        w = self.et if self.log_target else t
        gx = -g * w if nx else None
        gt = None
        if nt:
            gt = g * (w * (t - x + 1)) if self.log_target else g * (xp.log(t) + 1 - x)
        return gx, gt, None


def kl_div(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)``, ``input`` in log space.

    Args:
        input: log-probabilities.
        target: probabilities (log-probabilities with ``log_target=True``).
        reduction: "none", "mean" (over elements, default), "batchmean" (the
            mathematically correct KL: sum / batch size) or "sum".
        log_target: whether ``target`` is given as log-probabilities (default False).

    Example: ``loss = F.kl_div(F.log_softmax(z, 1), p, reduction="batchmean")``.
    """
    _check_reduction(reduction, "kl_div", ("batchmean",))
    x, t = _promote(_float_input(input), target)
    loss = KLDiv.apply(x, t, log_target)
    if reduction == "batchmean":
        total = _sum(loss)
        return total / x.shape[0] if x.ndim else total
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------- embedding, dropout


class Embedding(Function):
    def forward(self, w, idx, padding_idx, by_freq):
        xp = backend.array_module(w)
        self.idx, self.shape, self.pad, self.by_freq = idx, w.shape, padding_idx, by_freq
        return xp.take(w, idx, axis=0)

    def backward(self, g):
        xp = backend.array_module(g)
        idx = self.idx.reshape(-1)
        gw = xp.zeros(self.shape, g.dtype)
        backend.index_add(gw, idx, g.reshape(-1, self.shape[1]))
        if self.by_freq:
            count = xp.zeros(self.shape[0], g.dtype)
            backend.index_add(count, idx, xp.ones(idx.shape, g.dtype))
            gw /= xp.maximum(count, 1)[:, None]
        if self.pad is not None:
            gw[self.pad] = 0
        return gw, None, None, None


def _renorm_rows(w, idx, max_norm, norm_type):
    """Scale the rows of ``w`` picked by ``idx`` in place to a norm of at most ``max_norm``."""
    xp = backend.array_module(w)
    flat = idx.reshape(-1)
    rows = w[flat]
    norm = (xp.abs(rows) ** norm_type).sum(axis=1, keepdims=True) ** (1.0 / norm_type)
    # NOTE: repeated indices write the same scaled row, so plain assignment is correct
    w[flat] = rows * xp.where(norm > max_norm, max_norm / (norm + 1e-7), 1.0).astype(w.dtype)


def embedding(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer indices ``input``.

    Indices must lie in [0, num_embeddings); they are not checked on the GPU.

    Args:
        input: integer indices of any shape.
        weight: the table, shape (num_embeddings, embedding_dim).
        padding_idx: the row at this index gets no gradient (default None).
        max_norm: rows looked up are first rescaled in place to this norm at most
            (default None).
        norm_type: the p of the p-norm for ``max_norm`` (default 2.0).
        scale_grad_by_freq: divide each row's gradient by its count in ``input`` (default
            False).
        sparse: sparse gradients are not supported (default False).

    Example: ``vecs = F.embedding(token_ids, table)``.
    """
    if sparse:
        raise NotImplementedError("embedding: sparse gradients are not supported; use sparse=False")
    if weight.ndim != 2:
        raise ShapeError(
            f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape "
            f"{tuple(weight.shape)}"
        )
    if input.is_floating_point() or input.dtype is D.bool_:
        raise DTypeError(
            f"embedding: indices must be an integer dtype (int64), got {input.dtype}; "
            "convert with idx.long()"
        )
    n = weight.shape[0]
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within [-{n}, {n})")
        padding_idx %= n
    if max_norm is not None:
        _renorm_rows(weight._data, input._data, max_norm, norm_type)
    return Embedding.apply(weight, input, padding_idx, scale_grad_by_freq)


class Dropout(Function):
    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, g):
        return g * self.mask


def dropout(
    input: Tensor,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The mask comes from the device's generator (``mg.manual_seed`` makes it repeatable).

    Args:
        input: a float tensor.
        p: probability of zeroing an element (default 0.5).
        training: apply dropout; when False the input is returned as is (default True).
        inplace: accepted for compatibility; the result is always a new tensor.

    Example: ``h = F.dropout(h, p=0.1, training=model.training)``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    x = _float_input(input)
    r = backend.generator(x._device).random(tuple(x.shape), D.float32.np)
    scale = 1.0 / (1.0 - p) if p < 1.0 else 0.0
    mask = (r >= p).astype(x._data.dtype) * scale
    return Dropout.apply(x, mask.astype(x._data.dtype, copy=False))


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding: a new last dim of size ``num_classes``.

    ``num_classes=-1`` reads ``tensor.max() + 1`` back to the host (a sync on GPUs);
    pass the number of classes in training loops. Indices outside [0, num_classes)
    give all-zero rows (they are not checked on the GPU).

    Args:
        tensor: integer class indices of any shape.
        num_classes: size of the new dim (default -1: one more than the largest index).

    Example: ``F.one_hot(mg.tensor([0, 2]), 3)`` is ``[[1, 0, 0], [0, 0, 1]]``.
    """
    if tensor.is_floating_point() or tensor.dtype is D.bool_:
        raise DTypeError(f"one_hot: expects an integer (int64) tensor, got {tensor.dtype}")
    xp = backend.array_module(tensor._data)
    if num_classes == -1:
        if tensor.numel() == 0:
            raise ShapeError("one_hot: can't infer num_classes from an empty tensor; pass it")
        num_classes = int(tensor._data.max()) + 1  # NOTE: the one host sync, asked for
    classes = xp.arange(num_classes, dtype=D.int64.np)
    out = (tensor._data[..., None] == classes).astype(D.int64.np)
    return Tensor._wrap(out, tensor._device)


from ._common import public  # noqa: E402

__all__ = public(globals())

# NOTE: ops/__init__.py reads each module's __all__ after `from .reduce import *` has
# rebound the name `norm` to the vector-norm function, which hides the norm module's list;
# re-exporting its ops here keeps layer_norm & co. in mg and mg.nn.functional.
from .norm import *  # noqa: E402, F403
from .norm import __all__ as _norm_all  # noqa: E402

__all__ += _norm_all
