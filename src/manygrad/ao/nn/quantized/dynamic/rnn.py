"""Dynamically quantized recurrent modules (``torch.ao.nn.quantized.dynamic``): ``LSTM``,
``GRU``, ``LSTMCell``, ``GRUCell``, ``RNNCell`` with int8 (or float16) weights; float32 in
and out.

Each linear map is the dynamic ``Linear``'s (``dynamic.linear``): the input quantized per
call over its own min and max. As PyTorch's CPU kernels, an ``LSTM`` / ``GRU`` layer maps
the whole input sequence through ``W_ih`` at once (one quantization over every time step),
then ``W_hh`` at each step; the gates follow ATen's order of float operations
(``linear_hh(h) + linear_ih(x)``, then ``sigmoid`` / ``tanh``). Outputs agree with
PyTorch's to float32 rounding of the gates (its vectorized ``exp`` / ``tanh`` differ from
NumPy's by an ulp at times).

Example:
    >>> q = torch.ao.quantization.quantize_dynamic(model, {nn.LSTM, nn.Linear})
    >>> out, (h, c) = q.lstm(x)          # as nn.LSTM
"""

from __future__ import annotations

from ..... import backend
from ..... import dtypes as D
from .....creation import zeros
from .....nn import Module, ModuleList
from .....tensor import Tensor
from .._state import fp16_weight
from ..modules import quantize_weight
from . import _check_dtype, linear

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _pack(w: Tensor, dtype, observer_factory):
    """``w`` as the weight a dynamic linear map takes (int8 QTensor or float16 values)."""
    if dtype is D.float16:
        return fp16_weight(w)
    obs = observer_factory()
    obs(w.detach())
    return quantize_weight(w, obs)


def _bias(b):
    return None if b is None else b.detach().float()


class PackedParameter(Module):
    """One layer-direction's ``(w_ih, w_hh, b_ih, b_hh)``, saved as ``<prefix>param``."""

    def __init__(self, param):
        super().__init__()
        self.param = param

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "param"] = self.param

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        key = prefix + "param"
        if key in state_dict:
            p = state_dict.pop(key)
            if not (isinstance(p, tuple) and len(p) == 4):
                error_msgs.append(f"{key}: expected the tuple (w_ih, w_hh, b_ih, b_hh) of a "
                                  f"manygrad dynamic RNN, got {type(p).__name__}")  # fmt: skip
            else:
                self.param = p
        elif strict:
            missing_keys.append(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip


def _lin(a, w, b):
    return linear(a, w, None if b is None else b._data)


def _sig(a):
    from ..... import ops

    return ops.elementwise.sigmoid(Tensor._wrap(a, backend.device_of(a)))._data


def _tanh(a):
    from ..... import ops

    return ops.elementwise.tanh(Tensor._wrap(a, backend.device_of(a)))._data


def _lstm_step(g, c):
    xp = backend.array_module(g)
    i, f, gg, o = xp.split(g, 4, axis=1)
    i, f, o, gg = _sig(i), _sig(f), _sig(o), _tanh(gg)
    c = (f * c + i * gg).astype(xp.float32)
    return (o * _tanh(c)).astype(xp.float32), c


def _gru_step(ig, hg, h):
    xp = backend.array_module(ig)
    i0, i1, i2 = xp.split(ig, 3, axis=1)
    h0, h1, h2 = xp.split(hg, 3, axis=1)
    r, z = _sig(h0 + i0), _sig(h1 + i1)
    n = _tanh(i2 + h2 * r)
    return ((h - n) * z + n).astype(xp.float32)


def _simple_step(mode, g):
    xp = backend.array_module(g)
    return _tanh(g) if mode == "RNN_TANH" else xp.maximum(g, xp.float32(0))


class RNNBase(Module):
    """The shared machinery of dynamic ``LSTM`` and ``GRU``."""

    _FLOAT = ""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=D.qint8):  # fmt: skip
        super().__init__()
        _check_dtype(f"dynamic {mode}", dtype)
        if not bias:
            raise NotImplementedError(f"dynamic {mode}: bias=False is not supported (as in "
                                      "PyTorch); keep the biases (zeros if need be)")  # fmt: skip
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.dtype = float(dropout), bidirectional, dtype
        g = _GATES[mode] * hidden_size
        params = []
        for layer in range(num_layers):
            for _ in range(2 if bidirectional else 1):
                isz = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
                w = [_pack(zeros(g, n), dtype, _zero_observer) for n in (isz, hidden_size)]
                params.append(PackedParameter((*w, zeros(g), zeros(g))))
        self._all_weight_values = ModuleList(params)

    def _get_name(self) -> str:
        return "DynamicQuantized" + type(self).__name__

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def __repr__(self) -> str:
        # NOTE: PyTorch's repr hides the _all_weight_values children
        return f"{self._get_name()}({self.extra_repr()})"

    def _weight_bias(self) -> dict:
        """The weights and biases by PyTorch's float names (``weight_ih_l0``, ...)."""
        out = {}
        dirs = 2 if self.bidirectional else 1
        for i, p in enumerate(self._all_weight_values):
            layer, d = divmod(i, dirs)
            sfx = f"l{layer}" + ("_reverse" if d else "")
            for name, v in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), p.param):
                out[f"{name}_{sfx}"] = v
        return out

    def _check(self, x: Tensor, hx):
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.is_quantized:
            raise TypeError(f"{self._get_name()}: expected a float input tensor, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")  # fmt: skip
        if x.ndim != 3:  # NOTE: PyTorch's dynamic RNNs take batches only
            raise RuntimeError(f"{self._get_name()}: input must have 3 dimensions, got "
                               f"{x.ndim}; add a batch dim, e.g. x.unsqueeze(1)")  # fmt: skip
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{self._get_name()}: expected input of shape (L, N, "
                             f"{self.input_size}) (or (N, L, ...) with batch_first), got "
                             f"{tuple(x.shape)}")  # fmt: skip

    def _run(self, x: Tensor, hx):
        """Returns ``(output, [h_n, c_n] or [h_n])`` as float32 arrays, input (L, N, I)."""
        xp = backend.array_module(x._data)
        seq = x.detach().float()._data
        seq_len, n = seq.shape[0], seq.shape[1]
        dirs = 2 if self.bidirectional else 1
        nstate = 2 if self.mode == "LSTM" else 1
        if hx is None:
            hx = [xp.zeros((self.num_layers * dirs, n, self.hidden_size), xp.float32)] * nstate
        outs = [[] for _ in range(nstate)]
        for layer in range(self.num_layers):
            results = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = self._all_weight_values[layer * dirs + d].param
                k = layer * dirs + d
                state = [s[k] for s in hx]
                flat = seq.reshape(seq_len * n, -1)
                ig = _lin(flat, w_ih, b_ih).reshape(seq_len, n, -1)
                ys = [None] * seq_len
                for t in range(seq_len - 1, -1, -1) if d else range(seq_len):
                    hg = _lin(state[0], w_hh, b_hh)
                    if self.mode == "LSTM":
                        state = list(_lstm_step((hg + ig[t]).astype(xp.float32), state[1]))
                    elif self.mode == "GRU":
                        state = [_gru_step(ig[t], hg, state[0])]
                    else:
                        state = [_simple_step(self.mode, (hg + ig[t]).astype(xp.float32))]
                    ys[t] = state[0]
                results.append(xp.stack(ys))
                for j in range(nstate):
                    outs[j].append(state[j])
            seq = xp.concatenate(results, axis=2) if dirs == 2 else results[0]
        return seq, [xp.stack(o) for o in outs]

    def _forward(self, input, hx):
        from .....nn.utils.rnn import PackedSequence

        if isinstance(input, PackedSequence):
            raise NotImplementedError(f"{self._get_name()}: PackedSequence inputs are not "
                                      "supported by manygrad; pad the batch instead")  # fmt: skip
        self._check(input, hx)
        x = input.transpose(0, 1) if self.batch_first else input
        if hx is not None:
            hs = list(hx) if isinstance(hx, (tuple, list)) else [hx]
            want = ((2 if self.bidirectional else 1) * self.num_layers, x.shape[1],
                    self.hidden_size)  # fmt: skip
            for h in hs:
                if tuple(h.shape) != want:
                    raise RuntimeError(f"Expected hidden size {want}, got {list(h.shape)}")
            hx = [h.detach().float()._data for h in hs]
        y, states = self._run(x, hx)
        dev = input._device
        out = Tensor._wrap(y, dev)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, [Tensor._wrap(s, dev) for s in states]

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            from ....quantization.qconfig import default_dynamic_qconfig as qconfig
        dtype = qconfig.weight().dtype
        if dtype not in (D.qint8, D.float16):
            raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dtype}; "
                               "use torch.qint8 or torch.float16")  # fmt: skip
        if getattr(mod, "proj_size", 0):
            raise NotImplementedError("dynamic LSTM: proj_size is not supported (as in PyTorch)")
        if not mod.bias:
            raise NotImplementedError(f"dynamic {cls.__name__}: the float module must have "
                                      "biases (as in PyTorch)")  # fmt: skip
        q = cls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first,
                mod.dropout, mod.bidirectional, dtype)  # fmt: skip
        params = []
        for layer in range(mod.num_layers):
            for d in range(2 if mod.bidirectional else 1):
                sfx = f"l{layer}" + ("_reverse" if d else "")
                w = [_pack(getattr(mod, f"weight_{k}_{sfx}"), dtype, qconfig.weight)
                     for k in ("ih", "hh")]  # fmt: skip
                b = [_bias(getattr(mod, f"bias_{k}_{sfx}")) for k in ("ih", "hh")]
                params.append(PackedParameter((*w, *b)))
        q._all_weight_values = ModuleList(params)
        return q


def _zero_observer():
    from ....quantization.observer import MinMaxObserver

    return MinMaxObserver(dtype=D.qint8, qscheme=_sym())


def _sym():
    from ....qtensor import per_tensor_symmetric

    return per_tensor_symmetric


class LSTM(RNNBase):
    """Dynamically quantized ``nn.LSTM``: ``out, (h_n, c_n) = lstm(x, (h_0, c_0))``."""

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input, hx=None):
        out, (h, c) = self._forward(input, hx)
        return out, (h, c)


class GRU(RNNBase):
    """Dynamically quantized ``nn.GRU``: ``out, h_n = gru(x, h_0)``."""

    def __init__(self, *args, **kwargs):
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input, hx=None):
        out, (h,) = self._forward(input, hx)
        return out, h


class RNNCellBase(Module):
    """The shared machinery of the dynamic cells: ``_packed_weight_ih`` / ``_packed_weight_hh``
    state entries, each the tuple ``(weight, bias)``."""

    _mode = ""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_chunks: int = 1,
                 dtype=D.qint8):  # fmt: skip
        super().__init__()
        _check_dtype(f"dynamic {type(self).__name__}", dtype)
        self.input_size, self.hidden_size, self.bias, self.dtype = (input_size, hidden_size,
                                                                    bias, dtype)  # fmt: skip
        g = num_chunks * hidden_size
        self.weight_dtype = dtype
        self._packed_weight_ih = (_pack(zeros(g, input_size), dtype, _zero_observer),
                                  zeros(g) if bias else None)  # fmt: skip
        self._packed_weight_hh = (_pack(zeros(g, hidden_size), dtype, _zero_observer),
                                  zeros(g) if bias else None)  # fmt: skip

    def _get_name(self) -> str:
        return "DynamicQuantized" + type(self).__name__

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "_packed_weight_ih"] = self._packed_weight_ih
        destination[prefix + "_packed_weight_hh"] = self._packed_weight_hh

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:  # fmt: skip
        for name in ("_packed_weight_ih", "_packed_weight_hh"):
            key = prefix + name
            if key in state_dict:
                v = state_dict.pop(key)
                if isinstance(v, tuple) and len(v) == 2:
                    setattr(self, name, v)
                else:
                    error_msgs.append(f"{key}: expected the tuple (weight, bias), got "
                                      f"{type(v).__name__}")  # fmt: skip
            elif strict:
                missing_keys.append(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def _lin(self, a, packed):
        return _lin(a, packed[0], packed[1])

    def _prep(self, input, hx, nstate: int):
        if not isinstance(input, Tensor) or not input.is_floating_point() or input.is_quantized:
            raise TypeError(f"{self._get_name()}: expected a float input tensor, got "
                            f"{getattr(input, 'dtype', type(input).__name__)}")  # fmt: skip
        if input.ndim != 2 or input.shape[-1] != self.input_size:
            # NOTE: PyTorch's dynamic cells take batches only
            raise ValueError(f"{self._get_name()}: expected input of shape (N, "
                             f"{self.input_size}), got {tuple(input.shape)}; add a batch dim, "
                             "e.g. x.unsqueeze(0)")  # fmt: skip
        x = input.detach().float()._data
        xp = backend.array_module(x)
        if hx is None:
            hs = [xp.zeros((x.shape[0], self.hidden_size), xp.float32)] * nstate
        else:
            hs = [h.detach().float()._data for h in (hx if isinstance(hx, (tuple, list)) else [hx])]
            want = (x.shape[0], self.hidden_size)
            if any(tuple(h.shape) != want for h in hs):
                raise RuntimeError(f"{self._get_name()}: expected hidden states of shape "
                                   f"{want}, got {[tuple(h.shape) for h in hs]}")  # fmt: skip
        return x, hs, input._device

    def _out(self, arrs, dev):
        out = [Tensor._wrap(a, dev) for a in arrs]
        return out[0] if len(out) == 1 else tuple(out)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False):
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is None:
            from ....quantization.qconfig import default_dynamic_qconfig as qconfig
        dtype = qconfig.weight().dtype
        if dtype not in (D.qint8, D.float16):
            raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dtype}; "
                               "use torch.qint8 or torch.float16")  # fmt: skip
        kw = {"nonlinearity": mod.nonlinearity} if cls is RNNCell else {}
        q = cls(mod.input_size, mod.hidden_size, mod.bias is not None, dtype=dtype, **kw)
        for k in ("ih", "hh"):
            w = _pack(getattr(mod, f"weight_{k}"), dtype, qconfig.weight)
            setattr(q, f"_packed_weight_{k}", (w, _bias(getattr(mod, f"bias_{k}"))))
        return q


class LSTMCell(RNNCellBase):
    """Dynamically quantized ``nn.LSTMCell``: ``h_1, c_1 = cell(x, (h_0, c_0))``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=D.qint8):
        super().__init__(input_size, hidden_size, bias, 4, dtype)

    def forward(self, input, hx=None):
        x, (h, c), dev = self._prep(input, hx, 2)
        xp = backend.array_module(x)
        g = self._lin(h, self._packed_weight_hh) + self._lin(x, self._packed_weight_ih)
        h, c = _lstm_step(g.astype(xp.float32), c)
        return self._out([h, c], dev)


class GRUCell(RNNCellBase):
    """Dynamically quantized ``nn.GRUCell``: ``h_1 = cell(x, h_0)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=D.qint8):
        super().__init__(input_size, hidden_size, bias, 3, dtype)

    def forward(self, input, hx=None):
        x, (h,), dev = self._prep(input, hx, 1)
        ig = self._lin(x, self._packed_weight_ih)
        h = _gru_step(ig, self._lin(h, self._packed_weight_hh), h)
        return self._out([h], dev)


class RNNCell(RNNCellBase):
    """Dynamically quantized ``nn.RNNCell`` (``nonlinearity`` ``'tanh'`` or ``'relu'``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=D.qint8):  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r}; use 'tanh' or "
                             "'relu'")  # fmt: skip
        super().__init__(input_size, hidden_size, bias, 1, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, (h,), dev = self._prep(input, hx, 1)
        xp = backend.array_module(x)
        g = self._lin(h, self._packed_weight_hh) + self._lin(x, self._packed_weight_ih)
        h = _simple_step("RNN_" + self.nonlinearity.upper(), g.astype(xp.float32))
        return self._out([h], dev)


__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "PackedParameter", "RNNCell", "RNNCellBase",
           "RNNBase"]  # fmt: skip
