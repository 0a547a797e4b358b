"""ONNX export rules for the loss ops (a model that returns its loss, or a metric graph)."""

from __future__ import annotations

from .graph import UnsupportedOpError
from .rules import _indices
from .trace import rule

_LOSS_REDUCTION = {"none": "none", "mean": "mean", "sum": "sum"}


@rule("ClassNLL")
def _class_nll(tr, node, args, kwargs, out):
    g, (x, t, w, ignore_index, reduction, eps, logits) = tr.g, args
    if eps:
        raise UnsupportedOpError("onnx.export: the op ClassNLL (cross_entropy) with "
                                 "label_smoothing has no ONNX form; export without it")  # fmt: skip
    xn, tn = tr.name(x), _indices(tr, t, "cross_entropy")
    if x.ndim == 1:  # one sample: (C,) and a 0-d target
        xn, tn = g.op("Unsqueeze", [xn, g.ints([0])]), g.op("Unsqueeze", [tn, g.ints([0])])
    ins = [xn, tn] + ([tr.name(w)] if w is not None else [])
    kind = "SoftmaxCrossEntropyLoss" if logits else "NegativeLogLikelihoodLoss"
    y = g.op(kind, ins, "loss", reduction=_LOSS_REDUCTION[reduction],
             ignore_index=int(ignore_index))  # fmt: skip
    if x.ndim == 1 and reduction == "none":
        y = g.op("Squeeze", [y, g.ints([0])], "loss")
    return y


@rule("SoftTargetCE")
def _soft_ce(tr, node, args, kwargs, out):
    g, (x, t, w, reduction, eps) = tr.g, args
    dt, axis = out._data.dtype, 0 if x.ndim == 1 else 1
    c = x.shape[axis]
    logp = g.op("LogSoftmax", [tr.name(x)], axis=axis)
    q = tr.name(t)
    if eps:
        q = g.op("Add", [g.op("Mul", [q, g.scalar(1 - eps, dt)]), g.scalar(eps / c, dt)])
    if w is not None:
        shape = [c] + [1] * (x.ndim - axis - 1)
        q = g.op("Mul", [q, g.op("Reshape", [tr.name(w), g.ints(shape)])])
    loss = g.op("Neg", [g.axes_op("ReduceSum", g.op("Mul", [q, logp]), [axis], keepdims=0)])
    if reduction == "none":
        return g.op("Identity", [loss], "loss")
    kind = "ReduceMean" if reduction == "mean" else "ReduceSum"
    return g.axes_op(kind, loss, None, "loss", keepdims=0)


@rule("Regression")
def _regression(tr, node, args, kwargs, out):
    g, (a, b, kind, beta) = tr.g, args
    dt = out._data.dtype
    d = g.op("Sub", [tr.value(a, out), tr.value(b, out)])
    if kind == "mse":
        return g.op("Mul", [d, d], "mse")
    ad = g.op("Abs", [d])
    if kind == "l1":
        return ad
    small = g.op("Less", [ad, g.scalar(beta, dt)])
    sq = g.op(
        "Mul", [g.op("Mul", [d, d]), g.scalar(0.5 / beta if kind == "smooth_l1" else 0.5, dt)]
    )
    lin = g.op("Sub", [ad, g.scalar(0.5 * beta, dt)])
    if kind != "smooth_l1":  # huber
        lin = g.op("Mul", [lin, g.scalar(beta, dt)])
    return g.op("Where", [small, sq, lin], kind)


def _log_clamped(g, x, dt):
    return g.op("Max", [g.op("Log", [x]), g.scalar(-100.0, dt)])


@rule("BCE")
def _bce(tr, node, args, kwargs, out):
    g, (x, y, w) = tr.g, args
    dt, xn, yn = out._data.dtype, tr.name(x), tr.name(y)
    lx = _log_clamped(g, xn, dt)
    l1x = _log_clamped(g, g.op("Sub", [g.scalar(1, dt), xn]), dt)
    loss = g.op("Neg", [g.op("Add", [g.op("Mul", [yn, g.op("Sub", [lx, l1x])]), l1x])], "bce")
    return g.op("Mul", [loss, tr.name(w)], "bce") if w is not None else loss


@rule("BCEWithLogits")
def _bce_logits(tr, node, args, kwargs, out):
    g, (x, y, w, pw) = tr.g, args
    dt, xn, yn = out._data.dtype, tr.name(x), tr.name(y)
    one = g.scalar(1, dt)
    # softplus(-x) = max(-x, 0) + log(1 + exp(-|x|)), finite for any x
    sp = g.op("Add", [g.op("Relu", [g.op("Neg", [xn])]),
                      g.op("Log", [g.op("Add", [one, g.op("Exp", [g.op("Neg", [g.op("Abs", [xn])])])])])])  # fmt: skip
    if pw is not None:
        lw = g.op("Add", [one, g.op("Mul", [g.op("Sub", [tr.name(pw), one]), yn])])
        sp = g.op("Mul", [lw, sp])
    loss = g.op("Add", [g.op("Mul", [g.op("Sub", [one, yn]), xn]), sp], "bce_logits")
    return g.op("Mul", [loss, tr.name(w)], "bce_logits") if w is not None else loss


@rule("KLDiv")
def _kl_div(tr, node, args, kwargs, out):
    g, (x, t, log_target) = tr.g, args
    dt, xn, tn = out._data.dtype, tr.name(x), tr.name(t)
    if log_target:
        return g.op("Mul", [g.op("Exp", [tn]), g.op("Sub", [tn, xn])], "kl_div")
    zero = g.scalar(0, dt)
    is0 = g.op("Equal", [tn, zero])
    xlogy = g.op("Where", [is0, zero, g.op("Mul", [tn, g.op("Log", [
        g.op("Where", [is0, g.scalar(1, dt), tn])])])])  # fmt: skip
    return g.op("Sub", [xlogy, g.op("Mul", [tn, xn])], "kl_div")


__all__: list[str] = []
