"""torch.lstm / gru / rnn_tanh / rnn_relu (compat/torch_low_level_rnn.py), both overloads,
against PyTorch: values and gradients w.r.t. the input, hx and every weight."""

import numpy as np
import pytest
import torch

import manygrad as mg

R = np.random.default_rng(0)
T, B, IN, H = 4, 3, 5, 4

# mode, layers, bidirectional, bias, batch_first, packed, proj_size
CASES = [
    ("lstm", 1, False, True, False, False, 0),
    ("lstm", 2, True, True, True, False, 0),
    ("lstm", 2, True, True, False, True, 0),
    ("lstm", 2, True, False, False, False, 3),
    ("lstm", 1, False, True, False, True, 2),
    ("gru", 2, True, True, False, False, 0),
    ("gru", 1, False, False, True, False, 0),
    ("gru", 2, True, True, False, True, 0),
    ("rnn_tanh", 2, True, True, True, False, 0),
    ("rnn_tanh", 1, False, True, False, True, 0),
    ("rnn_relu", 2, False, False, False, False, 0),
    ("rnn_relu", 2, True, True, False, True, 0),
]


def _leaf(a, device):
    return (mg.tensor(a, requires_grad=True, device=device),
            torch.tensor(a, requires_grad=True))  # fmt: skip


def _close(m, t, tol=1e-10):
    np.testing.assert_allclose(m.detach().cpu().numpy(), t.detach().numpy(), rtol=tol, atol=tol)


def _params(mode, layers, bidi, bias, proj):
    gates = {"lstm": 4, "gru": 3}.get(mode, 1) * H
    real, nd, out = proj or H, 2 if bidi else 1, []
    for layer in range(layers):
        for _ in range(nd):
            width = IN if layer == 0 else real * nd
            shapes = [(gates, width), (gates, real)] + ([(gates,), (gates,)] if bias else [])
            shapes += [(proj, H)] if proj else []
            out += [R.uniform(-0.5, 0.5, s) for s in shapes]
    return out


@pytest.mark.parametrize("mode, layers, bidi, bias, bf, packed, proj", CASES)
def test_recurrent_function(mode, layers, bidi, bias, bf, packed, proj, device):
    nd = 2 if bidi else 1
    lengths = [4, 3, 1]
    sizes = [sum(n > t for n in lengths) for t in range(T)]
    xshape = (sum(sizes), IN) if packed else ((B, T, IN) if bf else (T, B, IN))
    mx, tx = _leaf(R.standard_normal(xshape), device)
    hs = [_leaf(R.standard_normal((layers * nd, B, proj or H)), device)]
    if mode == "lstm":
        hs.append(_leaf(R.standard_normal((layers * nd, B, H)), device))
    ps = [_leaf(p, device) for p in _params(mode, layers, bidi, bias, proj)]
    mhx = tuple(h[0] for h in hs) if mode == "lstm" else hs[0][0]
    thx = tuple(h[1] for h in hs) if mode == "lstm" else hs[0][1]
    rest = (bias, layers, 0.0, True, bidi)
    mp, tp = [p[0] for p in ps], [p[1] for p in ps]
    if packed:
        got = getattr(mg, mode)(mx, mg.tensor(sizes), mhx, mp, *rest)
        want = getattr(torch, mode)(tx, torch.tensor(sizes), thx, tp, *rest)
    else:
        got = getattr(mg, mode)(mx, mhx, mp, *rest, bf)
        want = getattr(torch, mode)(tx, thx, tp, *rest, bf)
    assert isinstance(got, tuple) and len(got) == len(want) == (3 if mode == "lstm" else 2)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        _close(a, b)
    gs = [R.standard_normal(tuple(b.shape)) for b in want]
    sum((a * mg.tensor(g, device=device)).sum() for a, g in zip(got, gs)).backward()
    sum((b * torch.tensor(g)).sum() for b, g in zip(want, gs)).backward()
    for a, b in [(mx, tx)] + hs + ps:
        _close(a.grad, b.grad)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_function_gives_the_module_bits(kind):
    """nn.LSTM and mg.lstm on the module's own weights agree to the bit (float32)."""
    kw = dict(proj_size=3) if kind == "LSTM" else {}
    m = getattr(mg.nn, kind)(IN, H, num_layers=2, bidirectional=True, batch_first=True, **kw)
    x = mg.randn(B, T, IN)
    h = mg.randn(4, B, 3 if kind == "LSTM" else H)
    hx = (h, mg.randn(4, B, H)) if kind == "LSTM" else h
    out, hn = m(x, hx)
    fn = {"LSTM": mg.lstm, "GRU": mg.gru, "RNN": mg.rnn_tanh}[kind]
    got = fn(x, hx, m._flat_weights, True, 2, 0.0, False, True, True)
    want = (out, *hn) if kind == "LSTM" else (out, hn)
    for a, b in zip(got, want):
        assert a.dtype == mg.float32
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_float32_against_torch():
    t = torch.nn.LSTM(IN, H, num_layers=2)
    x = torch.randn(T, B, IN)
    hx = (torch.randn(2, B, H), torch.randn(2, B, H))
    want = torch.lstm(x, hx, t._flat_weights, True, 2, 0.0, False, False, False)
    m = lambda a: mg.tensor(a.detach().numpy())  # noqa: E731
    got = mg.lstm(m(x), tuple(map(m, hx)), [m(p) for p in t._flat_weights], True, 2, 0.0,
                  False, False, False)  # fmt: skip
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_only_in_training():
    m = mg.nn.GRU(IN, H, num_layers=3)
    x, h = mg.randn(T, B, IN), mg.zeros(3, B, H)
    a = mg.gru(x, h, m._flat_weights, True, 3, 0.5, False, False, False)[0]
    b = mg.gru(x, h, m._flat_weights, True, 3, 0.0, True, False, False)[0]
    c = mg.gru(x, h, m._flat_weights, True, 3, 0.5, True, False, False)[0]
    a, b, c = (t.detach().numpy() for t in (a, b, c))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_errors_name_the_problem():
    m = mg.nn.GRU(IN, H)
    x, h = mg.randn(T, B, IN), mg.zeros(1, B, H)
    with pytest.raises(RuntimeError, match="incorrect number of RNN parameters"):
        mg.gru(x, h, m._flat_weights[:3], True, 1, 0.0, False, False, False)
    with pytest.raises(RuntimeError, match="expected hx with 2 layers"):
        mg.gru(x, h, m._flat_weights, True, 2, 0.0, False, False, False)
    with pytest.raises(IndexError, match="3 dims"):
        mg.gru(x[:, 0], h[:, 0], m._flat_weights, True, 1, 0.0, False, False, False)
    with pytest.raises(TypeError, match="missing"):
        mg.gru(x, h, m._flat_weights, True, 1, 0.0, False, False)
