"""Recurrent maths: one step of the RNN, LSTM and GRU cells, and one layer in one direction
over a whole sequence (padded or packed).

The gates are fused: the input projection of all time steps is one matrix product
(``linear(x, w_ih, b_ih)`` over (T, B, In)), and each step adds one product of the hidden
state with all gates' weights (``linear(h, w_hh, b_hh)``), whose result is split into the
gates. Everything is a composition of differentiable ops (linear, sigmoid, tanh, chunk,
cat), so gradients, and gradients of gradients, follow from theirs.

Packed sequences (sorted by decreasing length) are walked with their ``batch_sizes``: at
step t only the first ``batch_sizes[t]`` rows of the state advance; the others keep their
value, which for a finished sequence is its final state.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..tensor import Tensor
from .elementwise import relu, sigmoid, tanh
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


def _rows(state, n: int):
    return tuple(s[:n] for s in state) if isinstance(state, tuple) else state[:n]


def _merge(new, old, n: int):
    """The first ``n`` rows from ``new``, the rest from ``old`` (rows that did not step)."""
    if isinstance(new, tuple):
        return tuple(_merge(a, b, n) for a, b in zip(new, old))
    return new if n == old.shape[0] else cat([new, old[n:]], 0)


def _out(state):
    return state[0] if isinstance(state, tuple) else state


def rnn_layer(mode: str, x: Tensor, state, w_ih, w_hh, b_ih, b_hh, reverse: bool = False,
              batch_sizes: list | None = None):  # fmt: skip
    """Run one direction of one layer.

    Args:
        mode: "RNN_TANH", "RNN_RELU", "LSTM" or "GRU".
        x: (T, B, In), or the packed data (sum(batch_sizes), In) with ``batch_sizes``.
        state: h0 (B, H), or (h0, c0) for LSTM.
        w_ih, w_hh, b_ih, b_hh: the layer's weights (biases may be None).
        reverse: walk the sequence from its end.
        batch_sizes: the packed sequence's rows per step (Python ints), or None.

    Returns ``(output, final_state)``: output (T, B, H) or packed (sum(batch_sizes), H).
    """
    cell = CELLS[mode]
    gi = linear(x, w_ih, b_ih)  # NOTE: all time steps' input projections in one product
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
