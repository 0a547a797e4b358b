"""Losses: cross entropy and NLL (class indices or probabilities), regression losses,
binary cross entropy, KL divergence. Each is one Function with an analytic backward.

The dtypes each loss takes, and the dtype of its result, are PyTorch's: see the NOTEs at
``_class_loss``, ``SoftTargetCE``, ``_regression``, ``binary_cross_entropy`` and
``binary_cross_entropy_with_logits``, and ``kl_div``."""

from __future__ import annotations

from .. import _native, backend
from .. import dtypes as D
from ..autograd import Function, autocast_fp32
from ..errors import DimError, DTypeError, ShapeError
from ..tensor import Tensor
from ._common import axis_sum, warn_caller
from ._dtype_rules import check_class_targets, check_not_integer, check_same_as_input
from .elementwise import _float_input, _promote, cast
from .nn import _NAN, _cdt, _check_reduction, _legacy_reduction, _no_grad_for, _reduce
from .reduce import sum as _sum

# ---------------------------------------------------------------------------- class losses


def _fusable(x, w, logits):
    """Whether ``F.cross_entropy`` on ``x`` goes through ``kernels.cross_entropy``: (N, C)
    logits on a GPU, no class weights, a dtype the kernel takes, the path switched on."""
    if not logits or w is not None or x.ndim != 2 or backend.device_of(x).type == "cpu":
        return False
    from ..kernels import fastpath

    return fastpath.wired("kernels.cross_entropy", x)


def _targets(xp, t, n, c, s, ignore_index, w, cdt):
    """Index state of class targets: flat target positions, per-row weights, validity."""
    t2 = t.reshape(n, s).astype(D.int64.np, copy=False)
    valid = t2 != ignore_index
    in_range = (t2 >= 0) & (t2 < c)
    ts = xp.where(valid & in_range, t2, 0)
    # NOTE: flat positions of the target logits in the (N, C, S) layout; unique per
    # (n, s), so plain fancy assignment is a correct scatter in backward.
    flat = xp.arange(n, dtype=D.int64.np)[:, None] * (c * s) + xp.arange(
        s, dtype=D.int64.np)[None, :] + ts * s  # fmt: skip
    vw = valid.astype(cdt) if w is None else xp.where(valid, w.astype(cdt)[ts], 0)
    return flat, vw, valid, in_range, ts


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

    fused = False
    native = False  # the forward ran the CPU kernels (_native.cross_entropy)

    def forward(self, x, t, w, ignore_index, reduction, eps, logits):
        if _fusable(x, w, logits):
            return self._fused_forward(x, t, ignore_index, reduction, eps)
        grad = reduction if self.needs_input_grad[0] else None
        if logits and (fast := _native.cross_entropy(x, t, w, ignore_index, eps, grad)):
            return self._native_forward(x, t, w, ignore_index, reduction, eps, *fast)
        if logits and w is None and not eps and x.ndim == 2 and backend.device_of(x).type == "cpu":
            return self._rows_forward(x, t, ignore_index, reduction)
        xp = backend.array_module(x)
        self.x = x
        out_dt, cdt = x.dtype, _cdt(x)
        n, c, s = _ncs(x.shape)
        x3 = x.astype(cdt, copy=False).reshape(n, c, s)
        if logits:
            # NOTE: log p = z - lse with z = x - max; p itself is kept for backward, and
            # log p is never materialised (one exp over the logits in all)
            z = x3 - x3.max(axis=1, keepdims=True)
            p = xp.exp(z)
            se = axis_sum(p, 1)
            p /= se
            lse = xp.log(se)[:, 0, :]
        else:
            z, p, lse = x3, None, 0.0
        flat, vw, valid, in_range, ts = _targets(xp, t, n, c, s, ignore_index, w, cdt)
        picked = z.reshape(-1)[flat] - lse
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
            with backend.quiet_float_errors():  # every target ignored: 0 / 0, NaN silently
                total = total / self.denom
        return total.astype(out_dt, copy=False)

    def _native_forward(self, x, t, w, ignore_index, reduction, eps, loss, lse, wt, dx=None):
        """(N, C) float32 logits on the CPU: the CPU kernels' loss of each row (log-sum-exp,
        the target's logit, weight and smoothing in one pass a row), reduced as PyTorch's.
        When the logits need a gradient, the same pass writes it for an upstream gradient
        of 1 (``dx``), which backward scales; else backward writes it from the logits and
        the kept log-sum-exp."""
        self.native, self.x, self.t, self.w, self.ii, self.lse = True, x, t, w, ignore_index, lse
        self.dx = dx
        self.shape, self.ncs, self.cdt, self.p = x.shape, (x.shape[0], x.shape[1], 1), x.dtype, True
        self.reduction, self.eps = reduction, eps
        if reduction == "none":
            return loss
        total = loss.sum()
        if reduction == "mean":
            self.denom = wt.sum()  # NOTE: the targets' weights (1 each), ignored ones 0
            with backend.quiet_float_errors():  # every target ignored: 0 / 0, NaN silently
                total = total / self.denom
        return total

    def _native_backward(self, g):
        g = g.astype(self.cdt, copy=False)
        if self.dx is not None:  # NOTE: handed over once; a second backward recomputes
            dx, self.dx = self.dx, None
            up = g if self.reduction == "none" else float(g)
            if (dx := _native.cross_entropy_scale(dx, self.t, self.ii, up)) is not None:
                return dx, None, None
        if self.reduction == "none":
            ga, gs = g, 0.0
        else:
            with backend.quiet_float_errors():  # every target ignored: rows of zeros
                ga, gs = None, float(g / self.denom if self.reduction == "mean" else g)
        args = (self.x, self.t, self.w, self.lse, ga, gs, self.ii, self.eps)
        return _native.cross_entropy_backward(*args), None, None

    def _rows_forward(self, x, t, ignore_index, reduction):
        """(N, C) logits on the CPU, no class weights, no smoothing: the softmax and the
        picked logits in a few NumPy passes (half the calls of the general path).

        NOTE: on the CPU ``_check_targets`` has refused indices outside [0, C) already, so
        only ``ignore_index`` needs masking; ``self.p`` is the softmax, kept for backward."""
        xp = backend.array_module(x)
        n, c = x.shape
        cdt = _cdt(x)
        x2 = x.astype(cdt, copy=False)
        t1 = t.astype(D.int64.np, copy=False)
        valid = t1 != ignore_index
        every = bool(valid.all())
        ts = t1 if every else xp.where(valid, t1, 0)
        rows = xp.arange(n)
        with backend.row_loops(c):
            p = x2 - x2.max(axis=1, keepdims=True)
            picked = p[rows, ts]
            xp.exp(p, out=p)
            se = axis_sum(p, 1)
            p *= 1 / se
        loss = xp.log(se[:, 0]) - picked
        if not every:
            loss = xp.where(valid, loss, 0)
        self.p, self.rows, self.ts, self.every = p, rows, ts, every
        self.t, self.ii, self.x, self.w = t1, ignore_index, x, None
        self.valid = valid
        self.shape, self.ncs, self.cdt = x.shape, (n, c, 1), cdt
        self.reduction, self.eps = reduction, 0.0
        if reduction == "none":
            return loss.astype(x.dtype, copy=False)
        total = loss.sum()
        if reduction == "mean":
            self.denom = xp.asarray(n, cdt) if every else valid.sum().astype(cdt)
            total = total / self.denom
        return xp.asarray(total).astype(x.dtype, copy=False)

    def _rows_backward(self, g):
        g = g.astype(self.cdt, copy=False)
        if self.reduction == "none":
            a = g if self.every else g * self.valid
            gx = self.p * a[:, None]
        else:
            a = g / self.denom if self.reduction == "mean" else g
            gx = self.p * a
        gx[self.rows, self.ts] -= a
        if not self.every and self.reduction != "none":
            gx[~self.valid] = 0
        return gx, None, None

    def _fused_forward(self, x, t, ignore_index, reduction, eps):
        """Softmax + cross entropy in one kernel pass a row (``kernels.cross_entropy``);
        with a reduced loss that needs a gradient, the same pass writes dlogits for an
        upstream gradient of 1, and backward only scales them."""
        from .. import kernels

        xp = backend.array_module(x)
        x = xp.ascontiguousarray(x)
        t1 = xp.ascontiguousarray(t.astype(D.int64.np, copy=False))
        n, c = x.shape
        scale = None
        if reduction == "mean":
            nvalid = (t1 != ignore_index).sum().astype(D.float32.np)
            scale = (1 / nvalid).astype(D.float32.np)
        elif reduction == "sum":
            scale = xp.ones((), D.float32.np)
        want = scale if reduction != "none" and self.needs_input_grad[0] else None
        rows, lse, dx = kernels.cross_entropy(x, t1, ignore_index, eps, dloss=want)
        self.fused, self.x, self.t, self.lse, self.dx, self.scale = True, x, t1, lse, dx, scale
        self.ii, self.w, self.shape, self.ncs, self.cdt = (
            ignore_index,
            None,
            x.shape,
            (n, c, 1),
            _cdt(x),
        )
        self.reduction, self.eps, self.p = reduction, eps, True
        if reduction == "none":
            return rows.astype(x.dtype, copy=False)
        total = rows.sum()
        if reduction == "mean":
            total = total * scale
        return total.astype(x.dtype, copy=False)

    def _fused_backward(self, g):
        from .. import kernels

        xp = backend.array_module(g)
        if self.dx is not None:
            return self.dx * g.astype(self.dx.dtype, copy=False), None, None
        g = g.astype(D.float32.np, copy=False)
        dloss = xp.ascontiguousarray(g) if self.reduction == "none" else g * self.scale
        dx = kernels.cross_entropy_backward(self.x, self.t, self.lse, dloss, self.ii, self.eps)
        return dx, None, None

    def backward(self, g):
        if self.fused:
            return self._fused_backward(g)
        if self.native:
            return self._native_backward(g)
        if "rows" in self.__dict__:
            return self._rows_backward(g)
        xp = backend.array_module(g)
        n, c, s = self.ncs
        eps, vw = self.eps, self.vw
        g = g.astype(self.cdt, copy=False)
        if self.reduction == "none":
            a = g.reshape(n, s)
        else:
            with backend.quiet_float_errors():
                a = g / self.denom if self.reduction == "mean" else g
        # NOTE: with every target ignored the mean divides by 0 and ``a`` is inf; PyTorch's
        # gradient of an ignored target is 0, not inf * 0
        a = xp.where(self.valid, a, 0)
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
        # NOTE: gx follows the input's memory layout (a transposed input gives a transposed
        # gx), where reshape(-1) would copy and the write below would be lost
        gx = xp.ascontiguousarray(gx)
        gflat = gx.reshape(-1)
        gflat[self.flat] = gflat[self.flat] - coef * (1.0 - eps)
        return gx.reshape(self.shape), None, None

    def backward_graph(self, g):
        from .elementwise import where
        from .indexing import AddAt
        from .nn import softmax

        n, c, s = self.ncs
        eps, cdt = self.eps, self.cdt
        if "flat" not in self.__dict__:  # index state the fused or row pass skipped
            xp = backend.array_module(self.t)
            self.flat, self.vw, self.valid, _, _ = _targets(xp, self.t, n, c, s, self.ii,
                                                            self.w, cdt)  # fmt: skip
            self.denom = self.vw.sum()
        if g._data.dtype != cdt:
            g = g.to(D.from_np(cdt))
        const = lambda a: Tensor._wrap(a, g._device)  # noqa: E731
        vw, valid = const(self.vw), const(self.valid.astype(cdt))
        if self.reduction == "none":
            a = g.reshape(n, s)
        else:
            a = g / const(self.denom) if self.reduction == "mean" else g
        a = where(const(self.valid), a, 0.0)  # an ignored target: 0, not inf * 0 (see backward)
        coef = a * vw
        w3 = None if self.w is None else const(self.w.astype(cdt).reshape(1, c, 1))
        if self.p is not None:
            x3 = self.saved_input(0, self.x).reshape(n, c, s)
            if x3._data.dtype != cdt:
                x3 = x3.to(D.from_np(cdt))
            tot = coef * (1.0 - eps)
            if eps:
                wsum = c if self.w is None else float(self.w.astype(cdt).sum())
                tot = tot + (a * valid) * ((eps / c) * wsum)
            gx = softmax(x3, 1) * tot.unsqueeze(1)
        else:
            gx = const(backend.array_module(g._data).zeros((n, c, s), cdt))
        if eps:
            av = (a * valid).unsqueeze(1) * (eps / c)
            gx = gx - (av if w3 is None else av * w3)
        hit = AddAt.apply((coef * (1.0 - eps)).reshape(-1), self.flat.reshape(-1), (n * c * s,))
        return (gx.reshape(-1) - hit).reshape(*self.shape), None, None


class SoftTargetCE(Function):
    """Cross entropy with class-probability targets of the input's shape.

    NOTE: as in PyTorch 2.13, the result has the promoted dtype of the input, the target
    and the weight (float32 input with a float64 target gives float64; bfloat16 with
    float32 gives float32): log_softmax runs in the input's compute dtype, the products
    with the target and the weight in the promoted one; each gradient has its tensor's
    dtype.
    """

    changes_dtype = True  # a bfloat16 input with a float32 target gives float32

    def reference(self, x, t):
        from .nn import log_softmax

        n, c, s = self.ncs
        logp = log_softmax(x.reshape(n, c, s), 1)
        q = t.reshape(n, c, s)
        if self.eps:
            q = q * (1.0 - self.eps) + self.eps / c
        if self.wc is not None:
            q = q * Tensor._wrap(self.wc)
        loss = -(q * logp).sum(1)
        if self.reduction == "none":
            return loss.reshape(*(self.shape[:1] + self.shape[2:] if len(self.shape) > 1 else ()))
        return loss.sum() / (n * s) if self.reduction == "mean" else loss.sum()

    def forward(self, x, t, w, reduction, eps):
        self.inputs = (x, t)
        xp = backend.array_module(x)
        out_dt = _promoted(x, t, w)
        cdt = D.float32.np if out_dt.itemsize < 4 else out_dt  # the products' dtype
        xcdt = _cdt(x)
        n, c, s = _ncs(x.shape)
        x3 = x.astype(xcdt, copy=False).reshape(n, c, s)
        logp = x3 - x3.max(axis=1, keepdims=True)
        logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
        logp = logp.astype(cdt, copy=False)
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


def _promoted(*arrays):
    """NumPy dtype that PyTorch promotes the arrays' dtypes to (None entries skipped)."""
    dt = None
    for a in arrays:
        if a is not None:
            d = D.from_np(a.dtype)
            dt = d if dt is None else D.promote_types(dt, d)
    return dt.np


def _check_targets(target: Tensor, c: int, ignore_index: int, op: str) -> None:
    """Class indices outside [0, C) raise, as in PyTorch. NOTE: only on the CPU, where the
    check costs no sync; on a GPU such a target gives a NaN loss instead."""
    t = target._data
    if target.numel() == 0 or backend.device_of(t).type != "cpu":
        return
    if t.min() >= 0 and t.max() < c:  # NOTE: the usual case, in two reductions
        return
    bad = ((t < 0) | (t >= c)) & (t != ignore_index)
    if bad.any():
        raise DimError(
            f"{op}: target {int(t[bad].reshape(-1)[0])} is out of bounds for {c} classes "
            f"(class indices are 0..{c - 1}; ignore_index is {ignore_index})"
        )


def _class_loss(input, target, weight, ignore_index, reduction, eps, logits, op):  # noqa: A002
    """NOTE: PyTorch 2.13's dtype rules: class-index targets are int64 (or uint8 for an
    input of shape (C,) or (N, C)) and the class weights have the input's dtype; with
    class probabilities the target and the weight may have any float dtype and the result
    has the promoted one (``SoftTargetCE``)."""
    _check_reduction(reduction, op)
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}: input and target must be tensors")
    if input.ndim == 0:
        raise ShapeError(f"{op}: input needs a class dim, got a 0-d tensor")
    if not 0.0 <= eps <= 1.0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"{op}: label_smoothing must be in [0, 1], got {eps}")
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
    check_class_targets(op, x, target)
    check_same_as_input(op, x, "weight", weight)
    _check_targets(target, c, ignore_index, op)
    return ClassNLL.apply(x, target, weight, ignore_index, reduction, eps, logits)


@autocast_fp32()
def cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy between scores ``input`` (N, C, ...) and class indices or probabilities.

    Out-of-range class indices raise an IndexError on the CPU; on a GPU they give a NaN loss
    (checking them there would stall the GPU).

    Args:
        input: unnormalised scores, shape (C,), (N, C) or (N, C, d1, ...).
        target: class indices of shape (), (N,) or (N, d1, ...), or class probabilities
            of the input's shape.
        weight: per-class weights of shape (C,) (default None).
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        ignore_index: index targets equal to this add nothing (default -100).
        reduction: "none", "mean" (default) or "sum".
        label_smoothing: mix the target with the uniform distribution (default 0.0).

    Example: ``loss = mg.nn.functional.cross_entropy(logits, labels)``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _class_loss(input, target, weight, ignore_index, reduction, label_smoothing, True,
                       "cross_entropy")  # fmt: skip


@autocast_fp32()
def nll_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices, given log-probabilities ``input``.

    Args:
        input: log-probabilities, shape (C,), (N, C) or (N, C, d1, ...).
        target: class indices of shape (), (N,) or (N, d1, ...).
        weight: per-class weights of shape (C,) (default None).
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        ignore_index: targets equal to this add nothing (default -100).
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.nll_loss(F.log_softmax(logits, 1), labels)``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _class_loss(input, target, weight, ignore_index, reduction, 0.0, False, "nll_loss")


# ---------------------------------------------------------------------------- regression losses


class Regression(Function):
    """Elementwise loss of ``d = input - target``: mse, l1, smooth_l1 (beta) or huber (delta)."""

    def forward(self, a, b, kind, beta):
        xp = backend.array_module(a)
        d = a - b
        # NOTE: l1's gradients read only sign(d): it keeps neither operand, as PyTorch's
        self.d, self.kind, self.beta = d, kind, beta
        self.a, self.b = (None, None) if kind == "l1" else (a, b)
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

    def backward_graph(self, g):
        from .elementwise import where

        xp = backend.array_module(g._data)
        kind, beta = self.kind, self.beta
        d = None if kind == "l1" else self.saved_input(0, self.a) - self.saved_input(1, self.b)
        sign = Tensor._wrap(xp.sign(self.d))
        if kind == "mse":
            gd = g * (2 * d)
        elif kind == "l1":
            gd = g * sign
        else:
            inner = Tensor._wrap(xp.abs(self.d) < beta)
            gd = g * (
                where(inner, d / beta, sign)
                if kind == "smooth_l1"
                else where(inner, d, sign * beta)
            )
        na, nb = self.needs_input_grad[:2]
        return (gd if na else None), (-gd if nb else None)


def _regression(input, target, reduction, kind, beta, op, weight=None):  # noqa: A002
    """NOTE: PyTorch 2.13's dtypes: mse_loss, l1_loss and smooth_l1_loss compute in and
    return the promotion of the input's and the target's dtypes, with no warning (float32
    input, float64 target: float64, also for a 0-d target, as the two are broadcast
    first); huber_loss returns the input's dtype (PyTorch's backward then refuses a target
    of another dtype; manygrad gives the gradient). The input's gradient always has the
    input's dtype. l1_loss refuses bool tensors, as PyTorch's subtraction does."""
    _check_reduction(reduction, op)
    if (isinstance(input, Tensor) and isinstance(target, Tensor)
            and input._data.shape != target._data.shape):  # fmt: skip
        warn_caller(
            f"Using a target size ({target.shape!r}) that is different to the input size "
            f"({input.shape!r}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size."
        )
    if weight is not None and tuple(weight.shape) != tuple(getattr(input, "shape", ())):
        raise ValueError(
            f"{op}: weights and input must have the same size, got weight of shape "
            f"{tuple(weight.shape)} for input of shape {tuple(getattr(input, 'shape', ()))}"
        )
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        a, b = _promote(input, target)  # a Python number operand
    else:
        if op == "l1_loss" and D.bool_ in (input.dtype, target.dtype):
            raise DTypeError(f"{op}: bool tensors are not supported (bools can't be "
                             "subtracted); cast with .float()")  # fmt: skip
        if op == "huber_loss" and target.is_floating_point() and not input.is_floating_point():
            raise DTypeError(
                f"{op}: the loss has the input's dtype, {input.dtype.name}, which can't hold "
                f"the {target.dtype.name} result: cast with input.to(mg.{target.dtype.name})"
            )
        dt = D.promote_types(input.dtype, target.dtype)
        a = input if input.dtype is dt else cast(input, dt)
        b = target if target.dtype is dt else cast(target, dt)
    a, b = _float_input(a), _float_input(b)
    loss = Regression.apply(a, b, kind, beta)
    if op == "huber_loss" and isinstance(input, Tensor) and input.is_floating_point():
        loss = loss if loss.dtype is input.dtype else cast(loss, input.dtype)
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    if reduction == "mean" and op != "huber_loss":
        # NOTE: PyTorch 2.13: a weighted mean divides by the sum of the weights for
        # mse_loss and l1_loss, by the number of elements for huber_loss
        return _sum(loss) / _sum(weight)
    return _reduce(loss, reduction)


@autocast_fp32()
def mse_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error ``(input - target) ** 2``, reduced.

    Args:
        input, target: tensors of broadcastable shapes.
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (default) or "sum".
        weight: a weight per element, of the input's shape; "mean" is then the weighted
            sum over the sum of the weights (default None).

    Example: ``loss = F.mse_loss(pred, y)``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _regression(input, target, reduction, "mse", 0.0, "mse_loss", weight)


@autocast_fp32()
def l1_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Absolute error ``|input - target|``, reduced.

    Args:
        input, target: tensors of broadcastable shapes.
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (default) or "sum".
        weight: a weight per element, of the input's shape; "mean" is then the weighted
            sum over the sum of the weights (default None).

    Example: ``loss = F.l1_loss(pred, y)``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    return _regression(input, target, reduction, "l1", 0.0, "l1_loss", weight)


@autocast_fp32()
def smooth_l1_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Squared error / (2 beta) below ``beta``, absolute error minus beta / 2 above.

    Args:
        input, target: tensors of broadcastable shapes.
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (default) or "sum".
        beta: where the loss turns from quadratic to linear (default 1.0; 0 gives l1).

    Example: ``loss = F.smooth_l1_loss(pred, y, beta=0.5)``.
    """
    if beta < 0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    kind = "smooth_l1" if beta > 0 else "l1"
    return _regression(input, target, reduction, kind, beta, "smooth_l1_loss")


@autocast_fp32()
def huber_loss(
    input: Tensor,  # noqa: A002
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """Half squared error below ``delta``, ``delta * (|d| - delta / 2)`` above.

    Args:
        input, target: tensors of broadcastable shapes.
        reduction: "none", "mean" (default) or "sum".
        delta: where the loss turns from quadratic to linear (default 1.0, > 0).
        weight: a weight per element, of the input's shape; "mean" stays the mean over
            the elements, as in PyTorch (default None).

    Example: ``loss = F.huber_loss(pred, y, delta=2.0)``.
    """
    if delta <= 0:
        from .linalg_extra import ArgumentError  # NOTE: a RuntimeError, as PyTorch's

        raise ArgumentError(f"huber_loss: delta must be > 0, got {delta}")
    return _regression(input, target, reduction, "huber", delta, "huber_loss", weight)


# ---------------------------------------------------------------------------- binary losses


class BCE(Function):
    def reference(self, x, y):
        from .elementwise import clamp

        loss = -(y * clamp(x.log(), -100.0) + (1 - y) * clamp((-x).log1p(), -100.0))
        return loss if self.w is None else loss * Tensor._wrap(self.w)

    def forward(self, x, y, w):
        self.inputs = (x, y)
        xp = backend.array_module(x)
        # NOTE: logs clamped at -100 as PyTorch does, so that x = 0 or 1 gives a finite loss
        # (and no NumPy warning about the log of 0 on the way)
        with backend.quiet_float_errors():
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
    def reference(self, x, y):
        from .elementwise import softplus

        lw = 1 if self.pw is None else 1 + (Tensor._wrap(self.pw) - 1) * y
        loss = (1 - y) * x + lw * softplus(-x)
        return loss if self.w is None else loss * Tensor._wrap(self.w)

    def forward(self, x, y, w, pw):
        self.inputs = (x, y)
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


def _binary_args(input, target, weight, op, pos_weight=None, logits=False):  # noqa: A002
    """The operands cast to the dtype the loss computes in.

    NOTE: PyTorch 2.13's dtypes: binary_cross_entropy takes a target of the input's dtype
    only, and a weight of any dtype, and returns the input's dtype;
    binary_cross_entropy_with_logits takes a float target of any dtype and weights of any
    dtype, computes in their promotion and returns the target's dtype (float32 logits
    with a float64 target give float64, float64 logits with a float32 target float32);
    the input's gradient has the input's dtype.
    """
    if tuple(target.shape) != tuple(input.shape):
        raise ShapeError(
            f"{op}: target shape {tuple(target.shape)} must be the same as input shape "
            f"{tuple(input.shape)}"
        )
    _no_grad_for(weight, "weight", op)
    _no_grad_for(pos_weight, "pos_weight", op)
    x = _float_input(input)
    if logits:
        check_not_integer(op, ("target", target))
        dt = D.from_np(_promoted(*(t._data for t in (x, target, weight, pos_weight)
                                   if t is not None)))  # fmt: skip
    else:
        check_same_as_input(op, x, "target", target)
        dt = x.dtype
    return [None if t is None else (t if t.dtype is dt else cast(t, dt))
            for t in (x, target, weight, pos_weight)]  # fmt: skip


@autocast_fp32()
def binary_cross_entropy(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Binary cross entropy between probabilities ``input`` and ``target``.

    Args:
        input: probabilities in [0, 1].
        target: targets in [0, 1] of the input's shape.
        weight: rescales each element's loss, broadcast to the input (default None).
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (default) or "sum".

    Example: ``loss = F.binary_cross_entropy(mg.sigmoid(z), y)``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction, "binary_cross_entropy")
    x, y, w, _ = _binary_args(input, target, weight, "binary_cross_entropy")
    _check_probabilities(x, y)
    return _reduce(BCE.apply(x, y, w), reduction)


def _check_probabilities(x: Tensor, y: Tensor) -> None:
    """Inputs or targets outside [0, 1] (or NaN) raise, as in PyTorch. NOTE: only on the
    CPU, where the check costs no sync; on a GPU they give a NaN or negative loss instead."""
    for name, t in (("input", x), ("target", y)):
        a = t._data
        if a.size and backend.device_of(a).type == "cpu" and not ((a >= 0) & (a <= 1)).all():
            hint = "apply sigmoid first, or use binary_cross_entropy_with_logits on logits"
            raise RuntimeError(
                f"binary_cross_entropy: all elements of {name} should be between 0 and 1"
                + (f" ({hint})" if name == "input" else "")
            )


@autocast_fp32()
def binary_cross_entropy_with_logits(
    input: Tensor,  # noqa: A002
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross entropy on logits, ``sigmoid`` fused in for numerical stability.

    Args:
        input: logits.
        target: targets in [0, 1] of the input's shape.
        weight: rescales each element's loss, broadcast to the input (default None).
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (default) or "sum".
        pos_weight: weight of the positive term, broadcast along the last dim (default None).

    Example: ``loss = F.binary_cross_entropy_with_logits(z, y, pos_weight=mg.tensor([3.0]))``.
    """
    op = "binary_cross_entropy_with_logits"
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction, op)
    x, y, w, pw = _binary_args(input, target, weight, op, pos_weight, logits=True)
    loss = BCEWithLogits.apply(x, y, w, pw)
    loss = loss if loss.dtype is target.dtype else cast(loss, target.dtype)
    return _reduce(loss, reduction)


class KLDiv(Function):
    def reference(self, x, t):
        if self.log_target:
            return t.exp() * (t - x)
        from .elementwise import where

        zero = Tensor._wrap(self.t == 0)
        return where(zero, 0.0, t * where(zero, 1.0, t).log()) - t * x

    def forward(self, x, t, log_target):
        self.inputs = (x, t)
        xp = backend.array_module(x)
        self.x, self.t, self.log_target = x, t, log_target
        if log_target:
            self.et = xp.exp(t)
            return (self.et * (t - x)).astype(x.dtype, copy=False)
        # NOTE: xlogy: 0 * log(0) is 0; the cast keeps float32 float32 on NumPy < 2, whose
        # scalar promotion makes 0-d float32 operands with Python numbers float64
        out = xp.where(t == 0, 0, t * xp.log(xp.where(t == 0, 1, t))) - t * x
        return out.astype(x.dtype, copy=False)

    def backward(self, g):
        xp = backend.array_module(g)
        nx, nt = self.needs_input_grad[:2]
        x, t = self.x, self.t
        w = self.et if self.log_target else t
        gx = (-g * w).astype(x.dtype, copy=False) if nx else None
        gt = None
        if nt:
            gt = g * (w * (t - x + 1)) if self.log_target else g * (xp.log(t) + 1 - x)
            gt = gt.astype(t.dtype, copy=False)
        return gx, gt, None


@autocast_fp32()
def kl_div(
    input: Tensor,  # noqa: A002
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``target * (log(target) - input)``, ``input`` in log space.

    Args:
        input: log-probabilities.
        target: probabilities (log-probabilities with ``log_target=True``).
        size_average, reduce: deprecated; either one given overrides ``reduction``.
        reduction: "none", "mean" (over elements, default), "batchmean" (the
            mathematically correct KL: sum / batch size) or "sum".
        log_target: whether ``target`` is given as log-probabilities (default False).

    Example: ``loss = F.kl_div(F.log_softmax(z, 1), p, reduction="batchmean")``.
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce)
    _check_reduction(reduction, "kl_div", ("batchmean",))
    if reduction == "mean":
        warn_caller(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size. 'batchmean' divides only by the batch size, and aligns with the KL div "
            "math definition. 'mean' will be changed to behave the same as 'batchmean' in "
            "the next major release."
        )
    # NOTE: PyTorch 2.13 refuses integer and bool operands, and promotes the two float
    # dtypes by its usual rule (float32 input, float64 target: float64; a 0-d target
    # takes the input's dtype); each gradient has its tensor's dtype
    if isinstance(input, Tensor) and isinstance(target, Tensor):
        check_not_integer("kl_div", ("input", input), ("target", target))
    x, t = _promote(_float_input(input), target)
    loss = KLDiv.apply(x, t, log_target)
    if reduction == "batchmean":
        # NOTE: divided before the sum: a 0-d sum / a Python int is float64 on NumPy < 2
        return _sum(loss / x.shape[0]) if x.ndim else _sum(loss)
    return _reduce(loss, reduction)


from ._common import public  # noqa: E402

__all__ = public(globals())
