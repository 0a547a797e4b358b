"""One LSTM or GRU layer, all its directions, over a whole sequence as a single op.

The forward computes the input projection of every step and direction up front (one
batched product), then per step one batched product of the states with the recurrent
weights and the gate maths in place on preallocated step-indexed arrays (layouts in
``ops._rnn_steps``). NOTE: the sigmoid gates' rows of the weights and biases are halved
in the layer's copy of them, so that one ``tanh`` over all gates gives ``tanh(x / 2)``
for those rows and ``sigmoid(x) = 0.5 + 0.5 * tanh(x / 2)`` costs two in-place ops (the
halving is exact in binary floating point).

The backward (backpropagation through time) computes the gates' derivative factors of all
steps at once, then walks the steps in reverse with, per step, a few in-place ops and one
batched product for the states' gradient; the gradients of the input and of every weight
and bias are one product each over all steps at the end.

NOTE: float32 on the CPU runs an LSTM step's gate maths in C (``_native.lstm_cell_steps``)
on the weights as they are: PyTorch's gate order, nothing halved, no reordered copies of
the weights or of their gradients, and the biases added by the kernel instead of a pass
over every step's input projection. Its backward steps write the gates' gradients straight
into the columns of the weight gradients' products (in time order, also for a reverse
direction), and a copy of the step's into a small array that the step's product reads
from the cache, and sum the biases' gradient on the way. Measured single-threaded on a
2-core AVX2 VM (process CPU time, best of 15), a 2-layer LSTM (128 -> 256, 50 steps, batch
32): forward 49 -> 44 ms, forward and backward 126-132 -> 123-126 ms (PyTorch 2.13: 42 and
116-119 ms), the gate maths of a forward step (H 256, B 32) 57 -> 41 us.

NOTE: the backward is the derivative of the compositions ``lstm_cell``/``gru_cell`` in
``ops.rnn``; under ``create_graph=True`` (``backward_graph``) the ops recompute their
forward with those compositions (``_rnn_steps.reference``) and differentiate them with a
graph, so gradients of gradients are exact (and as slow as the compositions).
"""

from __future__ import annotations

from .. import _native, backend
from . import _rnn_steps as S
from ._rnn_seq import SeqOp, bias_sum, recompute_grads

__all__ = ["GRUSeq", "LSTMSeq", "recompute_grads"]


class LSTMSeq(SeqOp):
    """``(out, h_n, c_n)`` of one LSTM layer from x (T, B, In) (or (B, T, In) with
    ``batch_first``; padded with ``sizes``, a packed sequence's batch sizes), h0 (D, B, P)
    and c0 (D, B, H) (None: zeros) and, per direction, ``w_ih, w_hh, b_ih, b_hh, w_hr``
    (biases and the projection may be None). ``dirs``: per direction, whether it runs in
    reverse."""

    mode = "LSTM"
    _nout = 3

    def forward(self, x, h0, c0, *w, dirs=(False,), sizes=None, batch_first=False, box=None):
        xp = backend.array_module(x)
        xt = self._setup(x, (h0, c0) + w, dirs, sizes, batch_first)
        nd, steps, batch = len(dirs), self.steps, self.batch
        h4, p = w[1].shape
        h, h2, h3 = h4 // 4, h4 // 2, 3 * h4 // 4
        self.dtype = dt = x.dtype
        save = any(self.needs_input_grad)
        proj = w[4] is not None
        whr = xp.stack([w[5 * d + 4] for d in range(nd)]) if proj else None
        hs = xp.empty((steps + 1, nd, p, batch), dt)
        cs = xp.empty((steps + 1 if save else 2, nd, h, batch), dt)
        h0t, c0t = self._state0(xp, h0, p), self._state0(xp, c0, h)
        hs[0], cs[0] = h0t, c0t
        n = steps if save else 1
        gi = xp.empty((steps, nd, h4, batch), dt)
        gs = xp.empty((n, nd, h4, batch), dt)
        tcs = xp.empty((n, nd, h, batch), dt)
        ms = xp.empty((n, nd, h, batch), dt) if proj else None
        hn, cn = xp.empty((nd, p, batch), dt), xp.empty((nd, h, batch), dt)
        tmp = xp.empty((nd, h, batch), dt)
        bias = [bias_sum(w[5 * d + 2], w[5 * d + 3]) for d in range(nd)]
        bb = None if bias[0] is None else xp.empty((nd, h4, batch), dt)
        # NOTE: float32 on the CPU: a step's gate maths, biases included, in one pass in C
        # (_native), on the weights as they are (PyTorch's gate order, nothing halved)
        cell = _native.lstm_cell_steps(gs, gi, cs, tcs, ms if proj else hs, bb)
        self.fast = fast = cell is not None
        if fast:
            wh = w[1][None] if nd == 1 else xp.stack([w[5 * d + 1] for d in range(nd)])
        else:
            wh = xp.stack([S.blocks(w[5 * d + 1], S.LSTM_ORDER) for d in range(nd)])
            wh[:, :h3] *= 0.5
        for d, rev in enumerate(dirs):
            wi, b = w[5 * d], bias[d]
            if not fast:
                wi = S.blocks(wi, S.LSTM_ORDER)
                wi[:h3] *= 0.5
            xp.matmul(wi, xt[::-1] if rev else xt, out=gi[:, d])
            if b is not None and fast:
                bb[d] = b[:, None]
            elif b is not None:
                b = S.blocks(b, S.LSTM_ORDER)
                b[:h3] *= 0.5
                gi[:, d] += b[:, None]
        mul, tanh, matmul, starts, ends = xp.multiply, xp.tanh, xp.matmul, self.starts, self.ends
        for k in range(steps):
            i, cp, cc = (k, k, k + 1) if save else (0, k & 1, (k + 1) & 1)
            if k and k in starts:
                self._inject(k, hs[k], h0t)
                self._inject(k, cs[cp], c0t)
            g, c = gs[i], cs[cc]
            matmul(wh, hs[k], out=g)
            if cell is not None:
                cell(i, k, cp, cc, i, i if proj else k + 1)
                if proj:
                    matmul(whr, ms[i], out=hs[k + 1])
            else:
                g += gi[k]
                tanh(g, out=g)
                sg = g[:, :h3]  # sigmoid(o, i, f) from tanh of their halved pre-activations
                sg *= 0.5
                sg += 0.5
                mul(g[:, h2:h3], cs[cp], out=c)
                mul(g[:, h:h2], g[:, h3:], out=tmp)
                c += tmp
                tc = tcs[i]
                tanh(c, out=tc)
                if proj:
                    mul(g[:, :h], tc, out=ms[i])
                    matmul(whr, ms[i], out=hs[k + 1])
                else:
                    mul(g[:, :h], tc, out=hs[k + 1])
            if k in ends:
                self._final(k, hn, hs[k + 1])
                self._final(k, cn, c)
        out = xp.empty((batch, steps, nd * p) if batch_first else (steps, batch, nd * p), dt)
        S.from_steps(hs[1:], out, dirs, batch_first)
        box += [xp.ascontiguousarray(hn.transpose(0, 2, 1)),
                xp.ascontiguousarray(cn.transpose(0, 2, 1))]  # fmt: skip
        if save:
            self.hs, self.cs, self.gs, self.tcs, self.ms = hs, cs, gs, tcs, ms
        return out

    def backward(self, grads):
        gout, ghn, gcn = grads
        x, h0, c0, *w = self.inputs
        xp = backend.array_module(x)
        dirs, nd, steps, batch = self.dirs, len(self.dirs), self.steps, self.batch
        gs, tcs, cs, hs, ms = self.gs, self.tcs, self.cs, self.hs, self.ms
        h4, p = w[1].shape
        h, h2, h3 = h4 // 4, h4 // 2, 3 * h4 // 4
        dt = gs.dtype
        mul, sub = xp.multiply, xp.subtract
        gy = self._grad_out(xp, gout, p)
        proj = ms is not None
        dh, dc = xp.zeros((nd, p, batch), dt), xp.zeros((nd, h, batch), dt)
        dm = xp.empty((nd, h, batch), dt) if proj else None
        # the pre-activations' gradients of every step, as the columns (step k: columns
        # [k B, (k + 1) B)) of the weight gradients' products
        ga = xp.empty((nd, h4, steps * batch), dt)
        # NOTE: float32 on the CPU: a step's gate gradients in one pass in C (_native), gates
        # in PyTorch's order as the forward's kernel steps left them, written into ``ga``
        cell, dgk = None, xp.empty((nd, h4, batch), dt)  # the step's, for its product
        db = xp.zeros((nd, h4), dt)  # the biases' gradient, summed by the kernel steps
        if self.fast:
            cell = _native.lstm_cell_backward_steps(dm if proj else dh, None if proj else gy,
                                                    dc, gs, tcs, cs, ga, dgk, db, dirs)  # fmt: skip
        fast = cell is not None
        if self.fast and not fast:  # the NumPy steps read the gates in manygrad's order
            gs = gs.reshape(steps, nd, 4, h, batch)[:, :, list(S.LSTM_ORDER)].reshape(gs.shape)
        if cell is None:
            dgs = xp.empty((steps, nd, h4, batch), dt)
            # the gates' derivative factors of every step at once: (o, i, f, g) rows of
            # d(gate)/d(pre-activation) times what multiplies the gate, and q = dc/dh
            p4 = mul(gs, gs)
            sub(gs[:, :, :h3], p4[:, :, :h3], out=p4[:, :, :h3])
            sub(1, p4[:, :, h3:], out=p4[:, :, h3:])
            p4[:, :, :h] *= tcs
            p4[:, :, h:h2] *= gs[:, :, h3:]
            p4[:, :, h2:h3] *= cs[:steps]
            p4[:, :, h3:] *= gs[:, :, h:h2]
            q = mul(tcs, tcs)
            sub(1, q, out=q)
            q *= gs[:, :, :h]
        ghn = None if ghn is None else ghn.transpose(0, 2, 1)
        gcn = None if gcn is None else gcn.transpose(0, 2, 1)
        wht = xp.empty((nd, p, h4), dt)
        for d in range(nd):
            wht[d] = (w[5 * d + 1] if fast else S.blocks(w[5 * d + 1], S.LSTM_ORDER)).T
        if proj:
            wrt = xp.ascontiguousarray(
                xp.stack([w[5 * d + 4] for d in range(nd)]).transpose(0, 2, 1)
            )
            dhs = xp.empty((steps, nd, p, batch), dt)
        dh0, dc0 = xp.empty((nd, p, batch), dt), xp.empty((nd, h, batch), dt)
        tmp = xp.empty((nd, h, batch), dt)
        matmul, starts, ends = xp.matmul, self.starts, self.ends
        need_h0 = self.needs_input_grad[1]
        for k in range(steps - 1, -1, -1):
            for d, a, b in ends.get(k, ()):
                if ghn is not None:
                    dh[d, :, a:b] = ghn[d, :, a:b]
                if gcn is not None:
                    dc[d, :, a:b] = gcn[d, :, a:b]
            if gy is not None and (cell is None or proj):
                dh += gy[k]
            dmk = dh
            if proj:
                dhs[k] = dh
                dmk = matmul(wrt, dh, out=dm)
            if cell is not None:
                dg = dgk
                cell(0, k, 0, k, k, k, k, 0, 0)  # NOTE: adds gy[k] to dh (no projection)
            else:
                dg = dgs[k]
                mul(dmk, q[k], out=tmp)
                dc += tmp
                mul(dmk, p4[k, :, :h], out=dg[:, :h])
                mul(dc[:, None], p4[k, :, h:].reshape(nd, 3, h, batch),
                    out=dg[:, h:].reshape(nd, 3, h, batch))  # fmt: skip
                dc *= gs[k, :, h2:h3]
            if k or need_h0:  # NOTE: step 0's state gradient is h0's
                matmul(wht, dg, out=dh)
            for d, a, b in starts.get(k, ()):
                dh0[d, :, a:b], dc0[d, :, a:b] = dh[d, :, a:b], dc[d, :, a:b]
                dh[d, :, a:b], dc[d, :, a:b] = 0, 0
        res = [None] * len(self.inputs)
        needs = self.needs_input_grad
        if needs[1]:
            res[1] = xp.ascontiguousarray(dh0.transpose(0, 2, 1))
        if needs[2]:
            res[2] = xp.ascontiguousarray(dc0.transpose(0, 2, 1))
        if fast:
            wi = w[0][None] if nd == 1 else xp.stack([w[5 * d] for d in range(nd)])
        else:
            for d, rev in enumerate(dirs):  # ga's columns in time order, as x's
                S.columns(dgs[:, d], ga[d], rev)
            wi = xp.stack([S.blocks(w[5 * d], S.LSTM_ORDER) for d in range(nd)])
        dwi = self._input_grads(ga, wi, res, 5)
        dwh = backend.matmul(ga, self._state_cols(xp, hs).transpose(0, 2, 1))
        if not fast:
            db = ga.sum(axis=2)
        if proj:
            dwr = backend.matmul(dhs.transpose(1, 2, 0, 3).reshape(nd, p, -1),
                                 ms.transpose(1, 0, 3, 2).reshape(nd, -1, h))  # fmt: skip
        for d in range(nd):
            k = 3 + 5 * d
            for j, g in enumerate((dwi[d], dwh[d], db[d], db[d])):
                if needs[k + j] and not fast:
                    res[k + j] = S.blocks(g, S.LSTM_BACK)
                elif needs[k + j]:  # NOTE: the two biases' gradients are separate arrays
                    res[k + j] = g.copy() if j == 3 and needs[k + 2] else g
            if proj and needs[k + 4]:
                res[k + 4] = dwr[d]
        return tuple(res)


class GRUSeq(SeqOp):
    """``(out, h_n)`` of one GRU layer from x, h0 (D, B, H) (None: zeros) and, per
    direction, ``w_ih, w_hh, b_ih, b_hh``; arguments as ``LSTMSeq``."""

    mode = "GRU"
    _nout = 2

    def forward(self, x, h0, *w, dirs=(False,), sizes=None, batch_first=False, box=None):
        xp = backend.array_module(x)
        xt = self._setup(x, (h0,) + w, dirs, sizes, batch_first)
        nd, steps, batch = len(dirs), self.steps, self.batch
        h3, h = w[1].shape
        h2 = 2 * h
        self.dtype = dt = x.dtype
        save = any(self.needs_input_grad)
        wh = xp.empty((nd, h3, h), dt)
        # per step and direction: (r, z) input projections, b_hn, the n input projection
        gi = xp.empty((steps, nd, 4 * h, batch), dt)
        for d, rev in enumerate(dirs):
            w_ih, w_hh, b_ih, b_hh = w[4 * d : 4 * d + 4]
            wh[d] = w_hh
            xd = xt[::-1] if rev else xt
            xp.matmul(w_ih[:h2] * 0.5, xd, out=gi[:, d, :h2])
            xp.matmul(w_ih[h2:], xd, out=gi[:, d, h3:])
            b = bias_sum(None if b_ih is None else b_ih[:h2], None if b_hh is None else b_hh[:h2])
            if b is not None:
                gi[:, d, :h2] += (b * 0.5)[:, None]
            gi[:, d, h2:h3] = 0 if b_hh is None else b_hh[h2:, None]
            if b_ih is not None:
                gi[:, d, h3:] += b_ih[h2:, None]
        wh[:, :h2] *= 0.5
        hs = xp.empty((steps + 1, nd, h, batch), dt)
        h0t = self._state0(xp, h0, h)
        hs[0] = h0t
        n_ = steps if save else 1
        gs = xp.empty((n_, nd, h3, batch), dt)
        ns = xp.empty((n_, nd, h, batch), dt)
        hn = xp.empty((nd, h, batch), dt)
        mul, tanh, matmul, starts, ends = xp.multiply, xp.tanh, xp.matmul, self.starts, self.ends
        for k in range(steps):
            i = k if save else 0
            if k and k in starts:
                self._inject(k, hs[k], h0t)
            g = gs[i]
            matmul(wh, hs[k], out=g)
            g += gi[k, :, :h3]  # (r, z) pre-activations (halved) and W_hn h + b_hn
            rz = g[:, :h2]
            tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            n = ns[i]
            mul(g[:, :h], g[:, h2:], out=n)
            n += gi[k, :, h3:]
            tanh(n, out=n)
            hk = hs[k + 1]
            xp.subtract(hs[k], n, out=hk)  # h' = n + z * (h - n)
            hk *= g[:, h:h2]
            hk += n
            if k in ends:
                self._final(k, hn, hk)
        out = xp.empty((batch, steps, nd * h) if batch_first else (steps, batch, nd * h), dt)
        S.from_steps(hs[1:], out, dirs, batch_first)
        box.append(xp.ascontiguousarray(hn.transpose(0, 2, 1)))
        if save:
            self.hs, self.gs, self.ns = hs, gs, ns
        return out

    def backward(self, grads):
        gout, ghn = grads
        x, h0, *w = self.inputs
        xp = backend.array_module(x)
        dirs, nd, steps, batch = self.dirs, len(self.dirs), self.steps, self.batch
        gs, ns, hs = self.gs, self.ns, self.hs
        h3, h = w[1].shape
        h2 = 2 * h
        dt = gs.dtype
        mul, sub = xp.multiply, xp.subtract
        r, z, hn_ = gs[:, :, :h], gs[:, :, h:h2], gs[:, :, h2:]
        # derivative factors of every step: dh' times (Pn, Pr, Pz, Pn * r) gives the
        # gradients of (n, r, z) pre-activations and of W_hn h + b_hn
        pp = xp.empty((steps, nd, 4 * h, batch), dt)
        pn, pr, pz, pnr = (pp[:, :, j * h : (j + 1) * h] for j in range(4))
        omz = sub(1, z)
        mul(ns, ns, out=pn)
        sub(1, pn, out=pn)
        pn *= omz
        sub(hs[:steps], ns, out=pz)
        pz *= z
        pz *= omz
        sub(1, r, out=pr)
        pr *= r
        pr *= hn_
        pr *= pn
        mul(pn, r, out=pnr)
        gy = self._grad_out(xp, gout, h)
        ghn = None if ghn is None else ghn.transpose(0, 2, 1)
        wht = xp.ascontiguousarray(xp.stack([w[4 * d + 1] for d in range(nd)]).transpose(0, 2, 1))
        dh, dh0 = xp.zeros((nd, h, batch), dt), xp.empty((nd, h, batch), dt)
        dgs = xp.empty((steps, nd, 4 * h, batch), dt)
        tmp = xp.empty((nd, h, batch), dt)
        matmul, starts, ends = xp.matmul, self.starts, self.ends
        need_h0 = self.needs_input_grad[1]
        for k in range(steps - 1, -1, -1):
            if ghn is not None:
                for d, a, b in ends.get(k, ()):
                    dh[d, :, a:b] = ghn[d, :, a:b]
            if gy is not None:
                dh += gy[k]
            dg = dgs[k]
            mul(dh[:, None], pp[k].reshape(nd, 4, h, batch), out=dg.reshape(nd, 4, h, batch))
            if k or need_h0:  # NOTE: step 0's state gradient is h0's
                matmul(wht, dg[:, h:], out=tmp)
                dh *= gs[k, :, h:h2]
                dh += tmp
            for d, a, b in starts.get(k, ()):
                dh0[d, :, a:b] = dh[d, :, a:b]
                dh[d, :, a:b] = 0
        res = [None] * len(self.inputs)
        needs = self.needs_input_grad
        if needs[1]:
            res[1] = xp.ascontiguousarray(dh0.transpose(0, 2, 1))
        a = xp.empty((nd, 4 * h, steps * batch), dt)
        for d, rev in enumerate(dirs):
            S.columns(dgs[:, d], a[d], rev)
        wi = xp.stack([S.blocks(w[4 * d], S.GRU_IH) for d in range(nd)])
        dwi = self._input_grads(a[:, :h3], wi, res, 4)
        dwh = backend.matmul(a[:, h:], self._state_cols(xp, hs).transpose(0, 2, 1))
        db = a.sum(axis=2)
        for d in range(nd):
            k = 2 + 4 * d
            for j, g in enumerate((dwi[d], dwh[d], db[d, :h3], db[d, h:])):
                if needs[k + j]:
                    res[k + j] = S.blocks(g, S.GRU_IH_BACK) if j in (0, 2) else g
        return tuple(res)
