"""Recurrent maths: one step of the RNN, LSTM and GRU cells, and one layer in one direction
over a whole sequence (padded or packed).

The gates are fused: the input projection of all time steps is one matrix product
(``linear(x, w_ih, b_ih)`` over (T, B, In)), and each step adds one product of the hidden
state with all gates' weights (``linear(h, w_hh, b_hh)``), whose result is split into the
gates. ``lstm_cell``/``gru_cell`` are compositions of differentiable ops (linear, sigmoid,
tanh, chunk, cat), so gradients, and gradients of gradients, follow from theirs: they are
the reference that the fused ops are tested against (``rnn_layer(..., fused=False)``).

Whole LSTM/GRU layers run as one op per layer (``ops.rnn_fused``: all directions at once,
the gate maths in place on preallocated arrays, backpropagation through time with one
product per weight gradient; ``fused_layers`` stacks them); single steps (the cells) run
the pointwise part of an LSTM or GRU step as one fused op (``LSTMPointwise``,
``GRUPointwise``). NOTE: measured single-threaded on a 2-core AVX-512 VM
(``benchmarks/rnn.py --single-thread``, float32, CPU time), a 2-layer LSTM (128 -> 256,
50 steps, batch 32) forward and backward went from 0.65x to 0.77x PyTorch's speed with
OpenBLAS's AVX-512 kernels (0.47x to 0.49x with ``OPENBLAS_CORETYPE=Haswell``, where the
matrix products alone take most of the time), and a small one (32 -> 64, 20 steps, batch
8) from 0.35x to 0.62x, when the layers replaced one op per layer and direction that
built per-step temporaries.

Packed sequences (sorted by decreasing length) are walked with their ``batch_sizes``: at
step t only the first ``batch_sizes[t]`` rows of the state advance; the others keep their
value, which for a finished sequence is its final state.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import _sigmoid, relu, sigmoid, tanh
from .linalg import linear
from .movement import cat, chunk, stack

MODES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def rnn_tanh_cell(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """``tanh(gi + h @ w_hh.T + b_hh)`` where ``gi`` is the input's projection."""
    return tanh(gi + linear(h, w_hh, b_hh))


def rnn_relu_cell(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    return relu(gi + linear(h, w_hh, b_hh))


def lstm_cell(gi: Tensor, state, w_hh: Tensor, b_hh: Tensor | None):
    """Hochreiter & Schmidhuber (1997), gates in PyTorch's order (input, forget, cell,
    output): returns ``(h', c')``."""
    h, c = state
    i, f, g, o = chunk(gi + linear(h, w_hh, b_hh), 4, -1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    return sigmoid(o) * tanh(c), c


def gru_cell(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """Cho et al. (2014), gates in PyTorch's order (reset, update, new):
    ``n = tanh(gi_n + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``."""
    ir, iz, in_ = chunk(gi, 3, -1)
    hr, hz, hn = chunk(linear(h, w_hh, b_hh), 3, -1)
    r = sigmoid(ir + hr)
    z = sigmoid(iz + hz)
    n = tanh(in_ + r * hn)
    return n + z * (h - n)


CELLS = {"RNN_TANH": rnn_tanh_cell, "RNN_RELU": rnn_relu_cell, "LSTM": lstm_cell, "GRU": gru_cell}


class LSTMPointwise(Function):
    """``[h', c']`` (B, 2H) from the gate pre-activations (B, 4H) and c (B, H).

    The backward is the derivative of ``lstm_cell``'s pointwise part, i.e. of the
    composition sigmoid/tanh/mul/add written there (and could be written with those ops).
    """

    def forward(self, pre, c):
        xp = backend.array_module(pre)
        self.inputs = (pre, c)
        i, f, g, o = xp.split(pre, 4, axis=-1)
        si, sf, so, tg = _sigmoid(xp, i), _sigmoid(xp, f), _sigmoid(xp, o), xp.tanh(g)
        c2 = sf * c + si * tg
        tc = xp.tanh(c2)
        self.saved = (si, sf, so, tg, tc, c)
        return xp.concatenate([so * tc, c2], axis=-1)

    def backward(self, grad):
        xp = backend.array_module(grad)
        si, sf, so, tg, tc, c = self.saved
        gh, gc = xp.split(grad, 2, axis=-1)
        gc = gc + gh * so * (1 - tc * tc)
        gpre = xp.concatenate([gc * tg * si * (1 - si), gc * c * sf * (1 - sf),
                               gc * si * (1 - tg * tg), gh * tc * so * (1 - so)], axis=-1)  # fmt: skip
        return gpre, gc * sf

    def backward_graph(self, grad):
        from ._rnn_seq import recompute_grads

        def ref(pre, c):
            i, f, g, o = chunk(pre, 4, -1)
            c2 = sigmoid(f) * c + sigmoid(i) * tanh(g)
            return cat([sigmoid(o) * tanh(c2), c2], -1)

        return recompute_grads(self, grad, ref)


class GRUPointwise(Function):
    """h' (B, H) from the input's and the state's gate projections (B, 3H) and h (B, H).

    The backward is the derivative of ``gru_cell``'s pointwise part (sigmoid, tanh, mul,
    add as written there)."""

    def forward(self, gi, gh, h):
        xp = backend.array_module(gi)
        self.inputs = (gi, gh, h)
        ir, iz, in_ = xp.split(gi, 3, axis=-1)
        hr, hz, hn = xp.split(gh, 3, axis=-1)
        r, z = _sigmoid(xp, ir + hr), _sigmoid(xp, iz + hz)
        n = xp.tanh(in_ + r * hn)
        self.saved = (r, z, n, hn, h)
        return n + z * (h - n)

    def backward(self, g):
        xp = backend.array_module(g)
        r, z, n, hn, h = self.saved
        dn = g * (1 - z) * (1 - n * n)
        dz = g * (h - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        na, nb, nc = self.needs_input_grad
        gi = xp.concatenate([dr, dz, dn], axis=-1) if na else None
        gh = xp.concatenate([dr, dz, dn * r], axis=-1) if nb else None
        return gi, gh, (g * z if nc else None)

    def backward_graph(self, g):
        from ._rnn_seq import recompute_grads

        def ref(gi, gh, h):
            ir, iz, in_ = chunk(gi, 3, -1)
            hr, hz, hn = chunk(gh, 3, -1)
            r, z = sigmoid(ir + hr), sigmoid(iz + hz)
            n = tanh(in_ + r * hn)
            return n + z * (h - n)

        return recompute_grads(self, g, ref)


def _lstm_fused(gi: Tensor, state, w_hh: Tensor, b_hh: Tensor | None):
    h, c = state
    hc = LSTMPointwise.apply(gi + linear(h, w_hh, b_hh), c)
    n = h.shape[-1]
    return hc[:, :n], hc[:, n:]


def _gru_fused(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    return GRUPointwise.apply(gi, linear(h, w_hh, b_hh), h)


FUSED = dict(CELLS, LSTM=_lstm_fused, GRU=_gru_fused)


def _rows(state, n: int):
    return tuple(s[:n] for s in state) if isinstance(state, tuple) else state[:n]


def _merge(new, old, n: int):
    """The first ``n`` rows from ``new``, the rest from ``old`` (rows that did not step)."""
    if isinstance(new, tuple):
        return tuple(_merge(a, b, n) for a, b in zip(new, old))
    return new if n == old.shape[0] else cat([new, old[n:]], 0)


def _out(state):
    return state[0] if isinstance(state, tuple) else state


def fused_ok(*tensors) -> bool:
    """Whether the fused layer ops serve these tensors (None skipped): all float32 or all
    float64 (other dtypes run the reference compositions). On a GPU only with the fast path
    ``rnn.sequence`` switched on (``MANYGRAD_FAST_PATHS``): it has not run on one yet."""
    chars = {t._data.dtype.char for t in tensors if t is not None}
    if len(chars) != 1 or not chars <= {"f", "d"}:
        return False
    if any(t._device.type == "cuda" for t in tensors if t is not None):
        from ..kernels import fastpath

        return fastpath.enabled("rnn.sequence")
    return True


def fused_layers(mode: str, x: Tensor, hx, weights: list, dirs: tuple, sizes=None,
                 batch_first: bool = False, dropout: float = 0.0):  # fmt: skip
    """Stacked LSTM or GRU layers, each one fused op over the whole sequence.

    Args:
        mode: "LSTM" or "GRU".
        x: (T, B, In), (B, T, In) with ``batch_first``, or packed data (N, In) with ``sizes``.
        hx: None, h0 (L*D, B, P), or for LSTM ``(h0, c0)`` (None parts are zeros).
        weights: per layer, the weights of each direction in turn: ``w_ih, w_hh, b_ih,
            b_hh`` and for LSTM ``w_hr`` (biases and ``w_hr`` may be None).
        dirs: per direction, whether it runs in reverse: ``(False,)`` or ``(False, True)``.
        sizes: a packed sequence's batch sizes (Python ints), or None.
        batch_first: x and the output are (B, T, ...) (ignored for packed data).
        dropout: the probability of dropout on each layer's output but the last (default 0).

    Returns ``(out, h_n, c_n)`` (c_n None for GRU); out as x, with width D*P.

    Example: ``out, h, c = fused_layers("LSTM", x, None, [[w_ih, w_hh, b_ih, b_hh, None]],
    (False,))``
    """
    from . import _rnn_steps as S
    from .nn import dropout as drop
    from .rnn_fused import GRUSeq, LSTMSeq

    lstm = mode == "LSTM"
    if sizes is None and x.shape[1 if batch_first else 0] == 0:
        raise ShapeError(
            f"{mode}: expected sequence length to be larger than 0 in RNN, got input of shape "
            f"{tuple(x.shape)}"
        )
    h0, c0 = (None, None) if hx is None else (hx if lstm else (hx, None))
    flat = None
    if sizes is not None:
        S.lengths_check(sizes, x.shape[0])
        with backend.device_scope(x._device):
            flat = S.packed_maps(backend.array_module(x._data), list(sizes), x.shape[0])
        x = S.Pad.apply(x, flat=flat, steps=len(sizes), batch=sizes[0])
        batch_first = False
    nd, nl = len(dirs), len(weights)
    hns, cns = [], []
    for layer, w in enumerate(weights):
        lo, hi = layer * nd, (layer + 1) * nd
        h, c = (h0, c0) if nl == 1 else (_part(h0, lo, hi), _part(c0, lo, hi))
        kw = dict(dirs=dirs, sizes=sizes, batch_first=batch_first)
        if lstm:
            x, hn, cn = LSTMSeq.run(x, h, c, *w, **kw)
            cns.append(cn)
        else:
            x, hn = GRUSeq.run(x, h, *w, **kw)
        hns.append(hn)
        if dropout and layer < nl - 1:
            x = drop(x, dropout, True)
    if flat is not None:
        x = S.Unpad.apply(x, flat=flat)
    hn = hns[0] if nl == 1 else cat(hns, 0)
    return x, hn, ((cns[0] if nl == 1 else cat(cns, 0)) if lstm else None)


def _part(s, lo: int, hi: int):
    return None if s is None else s[lo:hi]


def rnn_layer(mode: str, x: Tensor, state, w_ih, w_hh, b_ih, b_hh, reverse: bool = False,
              batch_sizes: list | None = None, fused: bool = True, w_hr=None):  # fmt: skip
    """Run one direction of one layer.

    Args:
        mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
        x: (T, B, In), or the packed data (sum(batch_sizes), In) with ``batch_sizes``.
        state: h0 (B, H), or (h0, c0) for LSTM.
        w_ih, w_hh, b_ih, b_hh: the layer's weights (biases may be None).
        reverse: walk the sequence from its end.
        batch_sizes: the packed sequence's rows per step (Python ints), or None.
        fused: run LSTM/GRU layers as one op (``fused_layers``; default True); False runs
            the reference compositions step by step.
        w_hr: an LSTM's projection ``(P, H)``: ``h = (o * tanh(c)) @ w_hr.T`` (width P).

    Returns ``(output, final_state)``: output (T, B, H) or packed (sum(batch_sizes), H).
    """
    lstm = mode == "LSTM"
    ws = (w_ih, w_hh, b_ih, b_hh) + ((w_hr,) if lstm else ())
    states = state if lstm else (state,)
    if fused and mode in ("LSTM", "GRU") and fused_ok(x, *states, *ws):
        hx = tuple(s.unsqueeze(0) for s in states)
        out, hn, cn = fused_layers(mode, x, hx if lstm else hx[0], [list(ws)], (reverse,),
                                   batch_sizes)  # fmt: skip
        return out, ((hn[0], cn[0]) if lstm else hn[0])
    cell = (FUSED if fused else CELLS)[mode]
    gi = linear(x, w_ih, b_ih)  # NOTE: all time steps' input projections in one product
    if w_hr is not None:
        base = CELLS["LSTM"]

        def cell(g, st, w, b):
            h, c = base(g, st, w, b)
            return linear(h, w_hr, None), c

    if batch_sizes is None:
        steps = range(x.shape[0])
        outs = [None] * x.shape[0]
        for t in reversed(steps) if reverse else steps:
            state = cell(gi[t], state, w_hh, b_hh)
            outs[t] = _out(state)
        return stack(outs, 0), state
    offsets = [0]
    for b in batch_sizes:
        offsets.append(offsets[-1] + b)
    if offsets[-1] != x.shape[0]:
        raise ShapeError(
            f"rnn: the packed data has {x.shape[0]} rows but batch_sizes sums to {offsets[-1]}"
        )
    outs = [None] * len(batch_sizes)
    order = range(len(batch_sizes))
    for t in reversed(order) if reverse else order:
        n = batch_sizes[t]
        new = cell(gi[offsets[t] : offsets[t + 1]], _rows(state, n), w_hh, b_hh)
        outs[t] = _out(new)
        state = _merge(new, state, n)
    return cat(outs, 0), state
