"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their single-step cells, with PyTorch's
parameter names, shapes and initialisation so that state dicts interchange.

The maths is in ``mg.ops.rnn``: LSTM and GRU layers of float32/float64 tensors run as one op
per layer (``ops.rnn.fused_layers``, all directions at once; dropout between layers); RNN
layers and other dtypes run the step-by-step compositions (fused gates: one input
projection for the whole sequence, one hidden-state product per step). Inputs may be packed sequences: any object with
PyTorch's attributes ``data``, ``batch_sizes``, ``sorted_indices`` and ``unsorted_indices``
(``mg.nn.utils.rnn.PackedSequence`` when present); the output is packed the same way.
"""

from __future__ import annotations

import math
import warnings

from .. import creation
from .. import ops as F
from ..errors import DeviceError, ShapeError
from ..ops import rnn as R
from ..tensor import Tensor
from . import init
from .module import Module
from .parameter import Parameter


def _is_packed(x) -> bool:
    return not isinstance(x, Tensor) and hasattr(x, "data") and hasattr(x, "batch_sizes")


def _ints(v) -> list:
    if isinstance(v, Tensor):
        return [int(b) for b in v.tolist()]
    return [int(b) for b in v]


def _packed_like(packed, data: Tensor):
    """A packed sequence of the input's type holding ``data``."""
    return type(packed)(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)


def _permute(h: Tensor, index):
    if index is None:
        return h
    if not isinstance(index, Tensor):
        index = creation.tensor(list(index), device=h.device)
    return F.index_select(h, 1, index.to(h.device))


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (PyTorch's ``nn.RNNBase``)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{mode}: dropout must be a number in [0, 1], got {dropout}")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{mode}: hidden_size and num_layers must be positive, got "
                             f"{hidden_size} and {num_layers}")  # fmt: skip
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        gates = R.MODES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        real = proj_size or hidden_size  # NOTE: the width of h (projected with proj_size)
        self._flat_weights_names = []
        self._all_weights = []  # NOTE: names per (layer, direction), as PyTorch keeps them
        for layer in range(num_layers):
            for d in range(dirs):
                suffix = f"_l{layer}" + ("_reverse" if d else "")
                width = input_size if layer == 0 else real * dirs
                shapes = {"weight_ih": (gates, width), "weight_hh": (gates, real)}
                if bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                if proj_size:
                    shapes.update(weight_hr=(proj_size, hidden_size))
                for name, shape in shapes.items():
                    p = Parameter(creation.empty(*shape, device=device, dtype=dtype))
                    self.register_parameter(name + suffix, p)
                    self._flat_weights_names.append(name + suffix)
                self._all_weights.append([name + suffix for name in shapes])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Kept for PyTorch scripts (cuDNN weight packing); manygrad has nothing to do."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        per = (4 if self.bias else 2) + (1 if self.proj_size else 0)
        w = self._flat_weights
        return [w[i : i + per] for i in range(0, len(w), per)]

    def _weights(self, layer: int, d: int):
        s = f"_l{layer}" + ("_reverse" if d else "")
        get = lambda n: getattr(self, n + s, None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _zeros(self, batch: int, like: Tensor, width: int | None = None) -> Tensor:
        dirs = 2 if self.bidirectional else 1
        return creation.zeros(self.num_layers * dirs, batch, width or self.hidden_size,
                              dtype=like.dtype, device=like.device)  # fmt: skip

    def _check_hx(self, h: Tensor, batch: int, what: str) -> None:
        width = self.proj_size if (self.proj_size and what == "h_0") else self.hidden_size
        want = (self.num_layers * (2 if self.bidirectional else 1), batch, width)
        if tuple(h.shape) != want:
            raise ShapeError(f"{self.mode}: expected {what} of shape {want}, got "
                             f"{tuple(h.shape)}")  # fmt: skip

    def forward(self, input, hx=None):
        mode, lstm = self.mode, self.mode == "LSTM"
        packed = _is_packed(input)
        bf = False  # x (and the output) batch-first
        if packed:
            x, sizes = input.data, _ints(input.batch_sizes)
            batch, batched = sizes[0], True
            if hx is not None:
                hx = tuple(_permute(h, input.sorted_indices) for h in hx) if lstm else (
                    _permute(hx, input.sorted_indices))  # fmt: skip
        else:
            x, sizes = input, None
            if x.ndim not in (2, 3):
                raise ShapeError(f"{mode}: expected input of 2 dims (L, H_in) or 3 dims "
                                 f"(L, N, H_in), got shape {tuple(x.shape)}")  # fmt: skip
            batched = x.ndim == 3
            if not batched:
                x = F.unsqueeze(x, 1)
                if hx is not None:
                    hx = tuple(F.unsqueeze(h, 1) for h in hx) if lstm else F.unsqueeze(hx, 1)
            bf = batched and self.batch_first
            batch = x.shape[0 if bf else 1]
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{mode}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]}")  # fmt: skip
        if hx is not None:
            for i, h in enumerate(hx if lstm else (hx,)):
                self._check_hx(h, batch, ("h_0", "c_0")[i])
        weights = self._flat_weights
        if weights and weights[0]._device != x._device:
            raise DeviceError(
                f"{mode}: the input is on {x.device} but the parameters are on "
                f"{weights[0].device}; move one to the other, e.g. model.to('{x.device}')"
            )
        states = () if hx is None else (hx if lstm else (hx,))
        if mode in ("LSTM", "GRU") and R.fused_ok(x, *states, *weights):
            out, hn, cn = R.fused_layers(mode, x, hx, self._layer_weights(weights),
                                         self._dirs(), sizes, bf,
                                         self.dropout if self.training else 0.0)  # fmt: skip
            hn = (hn, cn) if lstm else hn
        else:
            if bf:
                x = F.transpose(x, 0, 1)
            if hx is None:
                z = self._zeros(batch, x)
                hx = (self._zeros(batch, x, self.proj_size or None), z) if lstm else z
            out, finals = self._run(x, hx, sizes)
            if lstm:
                hn = (F.stack([f[0] for f in finals], 0), F.stack([f[1] for f in finals], 0))
            else:
                hn = F.stack(finals, 0)
            if bf:
                out = F.transpose(out, 0, 1)
        if packed:
            un = input.unsorted_indices
            hn = tuple(_permute(h, un) for h in hn) if lstm else _permute(hn, un)
            return _packed_like(input, out), hn
        if not batched:
            out = F.squeeze(out, 1)
            hn = tuple(F.squeeze(h, 1) for h in hn) if lstm else F.squeeze(hn, 1)
        return out, hn

    def _dirs(self) -> tuple:
        return (False, True) if self.bidirectional else (False,)

    def _layer_weights(self, flat: list) -> list:
        """Per layer, the weights of each direction: w_ih, w_hh, b_ih, b_hh[, w_hr]."""
        per = 4 if self.bias else 2
        n = per + (1 if self.proj_size else 0)
        dirs, out = len(self._dirs()), []
        for layer in range(self.num_layers):
            ws = []
            for d in range(dirs):
                got = flat[(layer * dirs + d) * n : (layer * dirs + d + 1) * n]
                ws += got[:2] + (got[2:4] if self.bias else [None, None])
                if self.mode == "LSTM":
                    ws.append(got[-1] if self.proj_size else None)
            out.append(ws)
        return out

    def _run(self, x, hx, sizes):
        dirs = 2 if self.bidirectional else 1
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                k = layer * dirs + d
                state = (hx[0][k], hx[1][k]) if self.mode == "LSTM" else hx[k]
                w_hr = getattr(self, f"weight_hr_l{layer}" + ("_reverse" if d else ""), None)
                out, state = R.rnn_layer(self.mode, x, state, *self._weights(layer, d),
                                         reverse=bool(d), batch_sizes=sizes,
                                         w_hr=w_hr)  # fmt: skip
                outs.append(out)
                finals.append(state)
            x = outs[0] if dirs == 1 else F.cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    Args:
        input_size, hidden_size: feature widths. num_layers: stacked layers (default 1).
        nonlinearity: "tanh" or "relu" (default "tanh"). bias: default True.
        batch_first: (N, L, H) inputs and outputs (default False). dropout: between layers
        in training (default 0). bidirectional: default False.

    ``forward(input, hx=None)`` returns ``(output, h_n)``.

    Example:
        >>> out, h = mg.nn.RNN(8, 16, num_layers=2)(mg.randn(5, 3, 8))
    """

    def __init__(self, *args, **kwargs) -> None:
        args = list(args)
        nl = args.pop(3) if len(args) > 3 else kwargs.pop("nonlinearity", "tanh")
        if nl not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nl!r}; use 'tanh' or 'relu'")
        self.nonlinearity = nl
        super().__init__("RNN_TANH" if nl == "tanh" else "RNN_RELU", *args, **kwargs)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class LSTM(RNNBase):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997); arguments as ``RNN``.

    ``forward(input, (h_0, c_0)=None)`` returns ``(output, (h_n, c_n))``.

    Example:
        >>> out, (h, c) = mg.nn.LSTM(8, 16, batch_first=True)(mg.randn(3, 5, 8))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit (Cho et al., 2014); arguments as ``RNN``.

    Example:
        >>> out, h = mg.nn.GRU(8, 16, bidirectional=True)(mg.randn(5, 3, 8))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(creation.empty(g, input_size, device=device, dtype=dtype))
        self.weight_hh = Parameter(creation.empty(g, hidden_size, device=device, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(g, device=device, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(g, device=device, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def _step(self, input: Tensor, hx, mode: str):
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ShapeError(f"{name}: expected input of 1 dim (H_in,) or 2 dims (N, H_in), "
                             f"got shape {tuple(input.shape)}")  # fmt: skip
        batched = input.ndim == 2
        x = input if batched else F.unsqueeze(input, 0)
        if hx is None:
            z = creation.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            hx = (z, z) if mode == "LSTM" else z
        elif not batched:
            hx = tuple(F.unsqueeze(h, 0) for h in hx) if mode == "LSTM" else F.unsqueeze(hx, 0)
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        out = R.FUSED[mode](gi, hx, self.weight_hh, self.bias_hh)
        if not batched:
            out = tuple(F.squeeze(o, 0) for o in out) if mode == "LSTM" else F.squeeze(out, 0)
        return out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(RNNCellBase):
    """One step of ``RNN``: ``forward(input, hx=None)`` returns h'.

    Example:
        >>> h = mg.nn.RNNCell(8, 16)(mg.randn(3, 8))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; use 'tanh' or "
                             "'relu'")  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU")


class LSTMCell(RNNCellBase):
    """One step of ``LSTM``: ``forward(input, (h, c)=None)`` returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx=None):
        return self._step(input, hx, "LSTM")


class GRUCell(RNNCellBase):
    """One step of ``GRU``: ``forward(input, hx=None)`` returns h'."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, "GRU")
