"""The machinery shared by the fused LSTM and GRU layer ops (``ops.rnn_fused``): the op
base with several outputs, the input and weight gradients over all steps at once, and the
double backward through the reference compositions."""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from . import _rnn_steps as S


def recompute_grads(node, grads, reference):
    """``backward_graph`` of a fused op: run ``reference`` (the same maths in differentiable
    ops) on the op's inputs as graph tensors and differentiate it with a graph. ``grads``
    is one gradient, or one per output (None for outputs without one)."""
    from .. import autograd

    ins = [node.saved_input(i, raw) for i, raw in enumerate(node.inputs)]
    with autograd.enable_grad():
        out = reference(*ins)
    outs = out if isinstance(out, tuple) else (out,)
    gs = grads if isinstance(grads, (list, tuple)) else (grads,)
    pairs = [(o, g) for o, g in zip(outs, gs) if g is not None]
    wrt = [i for i, t in enumerate(ins) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt or not pairs:
        return (None,) * len(ins)
    got = autograd.grad([o for o, _ in pairs], [ins[i] for i in wrt],
                        grad_outputs=[g for _, g in pairs], create_graph=True,
                        allow_unused=True)  # fmt: skip
    res = [None] * len(ins)
    for i, g in zip(wrt, got):
        res[i] = g
    return tuple(res)


class SeqOp(Function):
    """The parts of ``LSTMSeq`` and ``GRUSeq`` that do not depend on the cell."""

    mode = ""

    @classmethod
    def run(cls, *args, **kwargs) -> tuple:
        """``apply`` returning every output as a tensor: ``(out, h_n[, c_n])``."""
        box = []
        out = cls.apply(*args, box=box, **kwargs)
        node = out.grad_fn if out.requires_grad else None
        res = [out]
        for i, a in enumerate(box, 1):
            t = Tensor._wrap(a, out._device)
            if node is not None:
                t.requires_grad, t.grad_fn, t._meta = True, node, {"oi": i}
            res.append(t)
        return tuple(res)

    def _setup(self, x, args, dirs, sizes, batch_first):
        self.inputs = (x,) + args
        self.dirs, self.sizes, self.bf = dirs, sizes, batch_first
        steps, batch = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
        self.steps, self.batch = steps, batch
        self.starts, self.ends = S.boundaries(sizes, steps, batch, dirs)
        # (T, In, B) per step: batch-major inputs in BLAS's layout (no copy)
        return x.transpose(1, 2, 0) if batch_first else x.transpose(0, 2, 1)

    def _state0(self, xp, s, width):
        """An initial state (D, B, W) as (D, W, B), zeros where none was given."""
        if s is None:
            return xp.zeros((len(self.dirs), width, self.batch), self.dtype)
        return xp.ascontiguousarray(s.transpose(0, 2, 1))

    def _inject(self, k, dst, src):
        for d, a, b in self.starts.get(k, ()):
            dst[d, :, a:b] = src[d, :, a:b]

    def _final(self, k, dst, src):
        for d, a, b in self.ends.get(k, ()):
            dst[d, :, a:b] = src[d, :, a:b]

    def _input_grads(self, a, wi, res, per: int):
        """The gradients of x (into ``res``) and of the input weights (D, G, In) from the
        input gates' gradients ``a`` (D, G, T*B), in the gate order of ``wi`` (D, G, In).
        NOTE: ``a``'s columns are time-major; a batch-first x is reordered to match (In
        wide, cheaper than reordering ``a``, 4H or 3H wide)."""
        x = self.inputs[0]
        nd, n_in = a.shape[0], x.shape[-1]
        if self.needs_input_grad[0]:
            if a.flags.c_contiguous:  # NOTE: both directions in one product
                dx = backend.matmul(
                    a.reshape(nd * a.shape[1], a.shape[2]).T, wi.reshape(nd * wi.shape[1], n_in)
                )
            else:
                dx = backend.matmul(a[0].T, wi[0])
                for d in range(1, nd):
                    dx += backend.matmul(a[d].T, wi[d])
            if self.bf:
                dx = backend.array_module(dx).ascontiguousarray(
                    dx.reshape(self.steps, self.batch, n_in).transpose(1, 0, 2)
                )
            res[0] = dx.reshape(x.shape)
        base = len(self.inputs) - per * nd
        if not any(self.needs_input_grad[base + per * d] for d in range(nd)):
            return [None] * nd
        rows = x.transpose(1, 0, 2) if self.bf else x
        return backend.matmul(a, rows.reshape(-1, n_in))

    def _grad_out(self, xp, gout, width):
        if gout is None:
            return None
        gy = xp.empty((self.steps, len(self.dirs), width, self.batch), gout.dtype)
        S.to_steps(gout, gy, self.dirs, self.bf)
        return gy

    def _state_cols(self, xp, hs):
        """The previous states of every step as (D, P, T*B) columns, time-major."""
        nd, p = len(self.dirs), hs.shape[2]
        hc = xp.empty((nd, p, self.steps * self.batch), hs.dtype)
        for d, rev in enumerate(self.dirs):
            S.columns(hs[: self.steps, d], hc[d], rev)
        return hc

    def backward_graph(self, grads):
        mode, dirs, sizes, bf = self.mode, self.dirs, self.sizes, self.bf
        per = 5 if mode == "LSTM" else 4

        def ref(x, h0, *rest):
            c0 = rest[0] if mode == "LSTM" else None
            w = rest[len(rest) - per * len(dirs) :]
            return S.reference(mode, x, h0, c0, w, dirs, sizes, bf)

        return recompute_grads(self, grads, ref)


def bias_sum(b_ih, b_hh):
    if b_ih is None:
        return b_hh
    return b_ih if b_hh is None else b_ih + b_hh
