"""PyTorch's whole-sequence recurrent functions: ``torch.lstm``, ``torch.gru``,
``torch.rnn_tanh`` and ``torch.rnn_relu``, the calls behind ``nn.LSTM`` and friends.

Each takes explicit weights, in either of PyTorch's two forms:

- padded: ``(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
  batch_first)``;
- packed: ``(data, batch_sizes, hx, params, has_biases, num_layers, dropout, train,
  bidirectional)``, the fields of a ``PackedSequence`` (sorted by decreasing length).

``params`` is flat, in ``nn.LSTM._flat_weights`` order: per layer and direction ``w_ih,
w_hh`` then ``b_ih, b_hh`` with ``has_biases`` and, for an LSTM with projections, ``w_hr``
(an LSTM has projections when ``h_0`` and ``c_0`` differ in width, as PyTorch decides).
They run on the same layer ops as ``nn.LSTM``/``nn.GRU``/``nn.RNN`` (``ops.rnn``), so the
function and the module give the same bits. Re-exported as ``manygrad.<name>``.

Example:
    >>> lstm = mg.nn.LSTM(8, 16, num_layers=2)
    >>> h0 = c0 = mg.zeros(2, 3, 16)
    >>> out, h, c = mg.lstm(mg.randn(5, 3, 8), (h0, c0), lstm._flat_weights, True, 2,
    ...                     0.0, False, False, False)
"""

from __future__ import annotations

from ..errors import DimError, ShapeError
from ..ops import rnn as R
from ..ops.movement import cat, stack
from ..ops.nn import dropout as _dropout
from ..tensor import Tensor


def _layers(mode: str, params, has_biases: bool, num_layers: int, nd: int, proj: bool):
    """The flat ``params`` regrouped per layer as ``ops.rnn.fused_layers`` takes them: each
    direction's ``w_ih, w_hh, b_ih, b_hh`` (None without biases) and for LSTM ``w_hr``."""
    params = list(params)
    per = (4 if has_biases else 2) + (1 if proj else 0)
    if len(params) != per * num_layers * nd:
        raise ShapeError(
            f"{mode.lower()}: got an incorrect number of RNN parameters: {len(params)}, "
            f"expected {per * num_layers * nd} ({per} per layer and direction)"
        )
    out = []
    for layer in range(num_layers):
        ws = []
        for d in range(nd):
            got = params[(layer * nd + d) * per : (layer * nd + d + 1) * per]
            ws += got[:2] + (got[2:4] if has_biases else [None, None])
            if mode == "LSTM":
                ws.append(got[-1] if proj else None)
        out.append(ws)
    return out


def _run(mode: str, x: Tensor, sizes, hx, params, has_biases: bool, num_layers: int,
         dropout: float, train: bool, bidirectional: bool, batch_first: bool):  # fmt: skip
    lstm = mode == "LSTM"
    name = mode.lower()
    if lstm:
        if len(hx) != 2:
            raise ShapeError(f"lstm: expected hx to be (h_0, c_0), got {len(hx)} tensors")
        states = tuple(hx)
    else:
        states = (hx,)
    want = 2 if sizes is not None else 3
    for t, what in ((x, "data" if sizes is not None else "input"), *((h, "hx") for h in states)):
        if t.ndim != (want if what != "hx" else 3):
            raise DimError(
                f"{name}: expected {what} of {want if what != 'hx' else 3} dims, got shape "
                f"{tuple(t.shape)}; unbatched inputs take a batch dim of 1 (unsqueeze(1))"
            )
    dirs = (False, True) if bidirectional else (False,)
    nd = len(dirs)
    for h in states:
        if h.shape[0] != num_layers * nd:
            raise ShapeError(
                f"{name}: expected hx with {num_layers * nd} layers x directions in dim 0 "
                f"(num_layers={num_layers}, bidirectional={bidirectional}), got shape "
                f"{tuple(h.shape)}"
            )
    proj = lstm and states[0].shape[-1] != states[1].shape[-1]
    layers = _layers(mode, params, has_biases, num_layers, nd, proj)
    p = float(dropout) if train else 0.0
    if mode in ("LSTM", "GRU") and R.fused_ok(x, *states, *params):
        out, hn, cn = R.fused_layers(mode, x, tuple(hx) if lstm else hx, layers, dirs, sizes,
                                     batch_first, p)  # fmt: skip
        return (out, hn, cn) if lstm else (out, hn)
    # NOTE: the step-by-step compositions, as nn.RNN runs them (other dtypes, RNN modes)
    bf = batch_first and sizes is None
    if bf:
        x = x.transpose(0, 1)
    n = 5 if lstm else 4
    hs, cs = [], []
    for layer, ws in enumerate(layers):
        outs = []
        for d, rev in enumerate(dirs):
            k = layer * nd + d
            w = ws[d * n : (d + 1) * n]
            state = (states[0][k], states[1][k]) if lstm else states[0][k]
            y, state = R.rnn_layer(mode, x, state, *w[:4], reverse=rev, batch_sizes=sizes,
                                   w_hr=w[4] if lstm else None)  # fmt: skip
            outs.append(y)
            hs.append(state[0] if lstm else state)
            if lstm:
                cs.append(state[1])
        x = outs[0] if nd == 1 else cat(outs, -1)
        if p and layer < num_layers - 1:
            x = _dropout(x, p, True)
    if bf:
        x = x.transpose(0, 1)
    hn = stack(hs, 0)
    return (x, hn, stack(cs, 0)) if lstm else (x, hn)


def _dispatch(mode: str, args: tuple, kwargs: dict):
    """Pick PyTorch's overload: the packed one has a tensor ``batch_sizes`` second."""
    # NOTE: hx is 3-d (or a tuple), batch_sizes 1-d
    second = args[1] if len(args) > 1 else None
    packed = (
        "batch_sizes" in kwargs
        or "data" in kwargs
        or (isinstance(second, Tensor) and second.ndim == 1)
    )
    if packed:
        names = ("data", "batch_sizes", "hx", "params", "has_biases", "num_layers", "dropout",
                 "train", "bidirectional")  # fmt: skip
    else:
        names = ("input", "hx", "params", "has_biases", "num_layers", "dropout", "train",
                 "bidirectional", "batch_first")  # fmt: skip
    if len(args) > len(names):
        raise TypeError(f"{mode.lower()}() takes {len(names)} arguments, got {len(args)}")
    got = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in got:
            raise TypeError(f"{mode.lower()}() got an unexpected or repeated argument {k!r}")
        got[k] = v
    missing = [k for k in names if k not in got]
    if missing:
        raise TypeError(f"{mode.lower()}() missing arguments: {', '.join(missing)}")
    if packed:
        bs = got["batch_sizes"]
        sizes = [int(b) for b in (bs.tolist() if isinstance(bs, Tensor) else bs)]
        return _run(mode, got["data"], sizes, got["hx"], got["params"], got["has_biases"],
                    got["num_layers"], got["dropout"], got["train"], got["bidirectional"],
                    False)  # fmt: skip
    return _run(mode, got["input"], None, got["hx"], got["params"], got["has_biases"],
                got["num_layers"], got["dropout"], got["train"], got["bidirectional"],
                got["batch_first"])  # fmt: skip


def lstm(*args, **kwargs):
    """A stacked LSTM over a whole sequence from explicit weights: ``(output, h_n, c_n)``.

    Args (padded form): input (T, B, In) or (B, T, In) with ``batch_first``; hx ``(h_0,
    c_0)``, each (num_layers * directions, B, H) (h_0 of width proj_size with
    projections); params: the flat weights (``nn.LSTM._flat_weights`` order);
    has_biases; num_layers; dropout (between layers, when ``train``); train;
    bidirectional; batch_first. Packed form: ``(data, batch_sizes, hx, params,
    has_biases, num_layers, dropout, train, bidirectional)``, output packed data.

    Example:
        >>> out, h, c = mg.lstm(x, (h0, c0), m._flat_weights, True, 1, 0.0, False, False,
        ...                     False)
    """
    return _dispatch("LSTM", args, kwargs)


def gru(*args, **kwargs):
    """A stacked GRU over a whole sequence from explicit weights: ``(output, h_n)``;
    arguments as ``lstm`` with ``hx`` one tensor h_0.

    Example:
        >>> out, h = mg.gru(x, h0, m._flat_weights, True, 1, 0.0, False, False, False)
    """
    return _dispatch("GRU", args, kwargs)


def rnn_tanh(*args, **kwargs):
    """A stacked Elman RNN (tanh) over a whole sequence from explicit weights:
    ``(output, h_n)``; arguments as ``gru``.

    Example:
        >>> out, h = mg.rnn_tanh(x, h0, m._flat_weights, True, 1, 0.0, False, False, False)
    """
    return _dispatch("RNN_TANH", args, kwargs)


def rnn_relu(*args, **kwargs):
    """A stacked Elman RNN (ReLU) over a whole sequence from explicit weights:
    ``(output, h_n)``; arguments as ``gru``.

    Example:
        >>> out, h = mg.rnn_relu(x, h0, m._flat_weights, True, 1, 0.0, False, False, False)
    """
    return _dispatch("RNN_RELU", args, kwargs)


__all__ = ["gru", "lstm", "rnn_relu", "rnn_tanh"]
