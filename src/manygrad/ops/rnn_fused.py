"""One LSTM or GRU layer in one direction over a whole sequence as a single op.

Per step the forward does one product of the state with all gates' weights and the fused
pointwise maths; the backward walks the steps in reverse (backpropagation through time)
with one product per step for the state's gradient, and gets the recurrent weight's
gradient as ONE product over all steps at the end (instead of one per step). The input
projection of all steps (``linear(x, w_ih, b_ih)``) stays outside, a differentiable op.

NOTE: the backward is the derivative of the compositions ``lstm_cell``/``gru_cell`` in
``ops.rnn`` (linear, sigmoid, tanh, mul, add per step). Under ``create_graph=True``
(``backward_graph``) the ops recompute their forward with those compositions and
differentiate them with a graph, so gradients of gradients are exact (and as slow as the
compositions); ``rnn_layer(..., fused=False)`` runs the compositions throughout.

Packed sequences arrive padded to (T, B, ...) with ``batch_sizes``: at step t only the
first ``batch_sizes[t]`` rows advance, the others carry their state (and its gradient).
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import _sigmoid
from .movement import cat, stack


def recompute_grads(node, grads, reference):
    """``backward_graph`` of a fused op: run ``reference`` (the same maths in differentiable
    ops) on the op's inputs as graph tensors and differentiate it with a graph."""
    from .. import autograd

    ins = [node.saved_input(i, raw) for i, raw in enumerate(node.inputs)]
    with autograd.enable_grad():
        out = reference(*ins)
    wrt = [i for i, t in enumerate(ins) if isinstance(t, Tensor) and t.requires_grad]
    if not wrt:
        return (None,) * len(ins)
    got = autograd.grad([out], [ins[i] for i in wrt], grad_outputs=[grads], create_graph=True,
                        allow_unused=True)  # fmt: skip
    res = [None] * len(ins)
    for i, g in zip(wrt, got):
        res[i] = g
    return tuple(res)


def _reference(mode, gi, h0, c0, w_hh, b_hh, sizes, reverse):
    """The fused layers' outputs from the per-step compositions of ``ops.rnn``."""
    from .rnn import _merge, _rows, gru_cell, lstm_cell

    t_len, b = gi.shape[0], gi.shape[1]
    sizes = sizes or [b] * t_len
    state = (h0, c0) if mode == "LSTM" else h0
    ys = [None] * t_len
    for t in _order(t_len, reverse):
        n = sizes[t]
        cell = lstm_cell if mode == "LSTM" else gru_cell
        state = _merge(cell(gi[t, :n], _rows(state, n), w_hh, b_hh), state, n)
        ys[t] = cat(list(state), -1) if mode == "LSTM" else state
    return stack(ys, 0)


def _order(steps: int, reverse: bool):
    return range(steps - 1, -1, -1) if reverse else range(steps)


def _bias_grad(g):
    return g.sum(axis=(0, 1))


class LSTMLayer(Function):
    """(T, B, 2H) states ``[h_t, c_t]`` from gi (T, B, 4H), h0, c0 (B, H), w_hh, b_hh."""

    def forward(self, gi, h0, c0, w_hh, b_hh, sizes=None, reverse=False):
        xp = backend.array_module(gi)
        t_len, b, _ = gi.shape
        hid = h0.shape[-1]
        self.sizes = sizes or [b] * t_len
        self.order = _order(t_len, reverse)
        self.w = w_hh
        self.has_b = b_hh is not None
        self.inputs, self.reverse = (gi, h0, c0, w_hh, b_hh), reverse
        dt = gi.dtype
        self.gates = xp.empty((t_len, b, 4 * hid), dt)  # si, sf, tg, so per step
        self.tc = xp.empty((t_len, b, hid), dt)
        self.hprev = xp.zeros((t_len, b, hid), dt)
        self.cprev = xp.zeros((t_len, b, hid), dt)
        y = xp.empty((t_len, b, 2 * hid), dt)
        h, c = h0.copy(), c0.copy()
        wt = w_hh.T
        for t in self.order:
            n = self.sizes[t]
            self.hprev[t], self.cprev[t] = h, c
            pre = gi[t, :n] + backend.matmul(h[:n], wt)
            if b_hh is not None:
                pre += b_hh
            i, f, g, o = (pre[:, k * hid : (k + 1) * hid] for k in range(4))
            si, sf, tg, so = _sigmoid(xp, i), _sigmoid(xp, f), xp.tanh(g), _sigmoid(xp, o)
            c2 = sf * c[:n] + si * tg
            tc = xp.tanh(c2)
            gates = self.gates[t, :n]
            gates[:, :hid], gates[:, hid : 2 * hid] = si, sf
            gates[:, 2 * hid : 3 * hid], gates[:, 3 * hid :] = tg, so
            self.tc[t, :n] = tc
            h[:n], c[:n] = so * tc, c2
            y[t, :, :hid], y[t, :, hid:] = h, c
        return y

    def backward(self, gy):
        xp = backend.array_module(gy)
        t_len, b, two_h = gy.shape
        hid = two_h // 2
        dgi = xp.zeros((t_len, b, 4 * hid), gy.dtype)
        dh = xp.zeros((b, hid), gy.dtype)
        dc = xp.zeros((b, hid), gy.dtype)
        for t in reversed(self.order):
            n = self.sizes[t]
            gh = gy[t, :, :hid] + dh
            gc = gy[t, :, hid:] + dc
            gt = self.gates[t, :n]
            si, sf = gt[:, :hid], gt[:, hid : 2 * hid]
            tg, so = gt[:, 2 * hid : 3 * hid], gt[:, 3 * hid :]
            tc = self.tc[t, :n]
            gcn = gc[:n] + gh[:n] * so * (1 - tc * tc)
            d = dgi[t, :n]
            d[:, :hid] = gcn * tg * si * (1 - si)
            d[:, hid : 2 * hid] = gcn * self.cprev[t, :n] * sf * (1 - sf)
            d[:, 2 * hid : 3 * hid] = gcn * si * (1 - tg * tg)
            d[:, 3 * hid :] = gh[:n] * tc * so * (1 - so)
            dh, dc = gh, gc  # rows that did not step carry their gradient
            dh[:n] = backend.matmul(d, self.w)
            dc[:n] = gcn * sf
        flat = dgi.reshape(-1, 4 * hid)
        dw = backend.matmul(flat.T, self.hprev.reshape(-1, hid))
        db = _bias_grad(dgi) if self.has_b else None
        return dgi, dh, dc, dw, db

    def backward_graph(self, gy):
        sizes, rev = self.sizes, self.reverse
        return recompute_grads(self, gy, lambda gi, h0, c0, w, b: _reference(
            "LSTM", gi, h0, c0, w, b, sizes, rev))  # fmt: skip


class GRULayer(Function):
    """(T, B, H) states from gi (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,)."""

    def forward(self, gi, h0, w_hh, b_hh, sizes=None, reverse=False):
        xp = backend.array_module(gi)
        t_len, b, _ = gi.shape
        hid = h0.shape[-1]
        self.sizes = sizes or [b] * t_len
        self.order = _order(t_len, reverse)
        self.w = w_hh
        self.has_b = b_hh is not None
        self.inputs, self.reverse = (gi, h0, w_hh, b_hh), reverse
        dt = gi.dtype
        self.saved = xp.zeros((t_len, b, 4 * hid), dt)  # r, z, n, hn per step
        self.hprev = xp.zeros((t_len, b, hid), dt)
        y = xp.empty((t_len, b, hid), dt)
        h = h0.copy()
        wt = w_hh.T
        for t in self.order:
            n = self.sizes[t]
            self.hprev[t] = h
            gh = backend.matmul(h[:n], wt)
            if b_hh is not None:
                gh += b_hh
            g = gi[t, :n]
            r = _sigmoid(xp, g[:, :hid] + gh[:, :hid])
            z = _sigmoid(xp, g[:, hid : 2 * hid] + gh[:, hid : 2 * hid])
            hn = gh[:, 2 * hid :]
            nn = xp.tanh(g[:, 2 * hid :] + r * hn)
            s = self.saved[t, :n]
            s[:, :hid], s[:, hid : 2 * hid], s[:, 2 * hid : 3 * hid], s[:, 3 * hid :] = r, z, nn, hn
            h[:n] = nn + z * (h[:n] - nn)
            y[t] = h
        return y

    def backward(self, gy):
        xp = backend.array_module(gy)
        t_len, b, hid = gy.shape
        dgi = xp.zeros((t_len, b, 3 * hid), gy.dtype)
        dgh = xp.zeros((t_len, b, 3 * hid), gy.dtype)
        dh = xp.zeros((b, hid), gy.dtype)
        for t in reversed(self.order):
            n = self.sizes[t]
            g = gy[t] + dh
            s = self.saved[t, :n]
            r, z, nn, hn = s[:, :hid], s[:, hid : 2 * hid], s[:, 2 * hid : 3 * hid], s[:, 3 * hid :]
            gn = g[:n]
            dn = gn * (1 - z) * (1 - nn * nn)
            dz = gn * (self.hprev[t, :n] - nn) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            di, dg = dgi[t, :n], dgh[t, :n]
            di[:, :hid], di[:, hid : 2 * hid], di[:, 2 * hid :] = dr, dz, dn
            dg[:, :hid], dg[:, hid : 2 * hid], dg[:, 2 * hid :] = dr, dz, dn * r
            dh = g  # rows that did not step carry their gradient
            dh[:n] = gn * z + backend.matmul(dg, self.w)
        dw = backend.matmul(dgh.reshape(-1, 3 * hid).T, self.hprev.reshape(-1, hid))
        db = _bias_grad(dgh) if self.has_b else None
        return dgi, dh, dw, db

    def backward_graph(self, gy):
        sizes, rev = self.sizes, self.reverse
        return recompute_grads(self, gy, lambda gi, h0, w, b: _reference(
            "GRU", gi, h0, None, w, b, sizes, rev))  # fmt: skip
