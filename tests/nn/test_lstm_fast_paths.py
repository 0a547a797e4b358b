"""The CPU kernel paths of the fused LSTM layer (``ops.rnn_fused.LSTMSeq`` with
``_native.lstm_cell_steps``/``lstm_cell_backward_steps``: PyTorch's gate order, the biases
added by the kernel, the gate gradients written straight into the weight gradients'
columns) and of the embedding's backward (``_native.embedding_backward``), against
PyTorch and against the NumPy paths they replace."""

import numpy as np
import pytest

import manygrad as mg
from manygrad import _native
from manygrad.ops import rnn_fused

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(_native.lib() is None, reason="no C compiler for the kernels")


def _close(got, want, rtol=2e-5):
    atol = rtol * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def _lstm_pair(inp, hid, scale=1.0, **kw):
    torch.manual_seed(0)
    tl = torch.nn.LSTM(inp, hid, **kw)
    with torch.no_grad():
        for p in tl.parameters():
            p.mul_(scale)
    ml = mg.nn.LSTM(inp, hid, **kw)
    ml.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})
    return tl, ml


def _run(lib, layer, x, hx, g, packed_lengths=None):
    """Output, h_n, c_n and the gradients of x, h0, c0 and every parameter."""
    for p in layer.parameters():
        p.grad = None
    xi = lib.tensor(x, requires_grad=True)
    hi = None if hx is None else tuple(lib.tensor(a, requires_grad=True) for a in hx)
    inp = xi
    if packed_lengths is not None:
        pack = (torch if lib is torch else mg).nn.utils.rnn.pack_padded_sequence
        inp = pack(xi, packed_lengths, batch_first=layer.batch_first, enforce_sorted=False)
    y, (hn, cn) = layer(inp, hi)
    if packed_lengths is not None:
        unpack = (torch if lib is torch else mg).nn.utils.rnn.pad_packed_sequence
        y = unpack(y, batch_first=layer.batch_first, total_length=x.shape[1 if
                   layer.batch_first else 0])[0]  # fmt: skip
    loss = (y * lib.tensor(g)).sum() + (hn * hn).sum() + 2 * cn.sum()
    loss.backward()
    grads = [xi.grad] + ([] if hi is None else [a.grad for a in hi])
    grads += [p.grad for p in layer.parameters()]
    return [np.array(a.detach().numpy()) for a in (y, hn, cn, *grads)]  # copies


def _inputs(layer, shape, states=True, seed=3, scale=1.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * scale).astype(np.float32)
    batch = shape[0 if layer.batch_first else 1]
    lead = layer.num_layers * (2 if layer.bidirectional else 1)
    hx = None
    if states:
        hx = [rng.standard_normal((lead, batch, layer.proj_size or layer.hidden_size)),
              rng.standard_normal((lead, batch, layer.hidden_size))]  # fmt: skip
        hx = [a.astype(np.float32) for a in hx]
    width = (layer.proj_size or layer.hidden_size) * (2 if layer.bidirectional else 1)
    out = (shape[0], shape[1], width)
    return x, hx, rng.standard_normal(out).astype(np.float32)


def _count_kernel_calls(monkeypatch):
    calls = []
    for name in ("lstm_cell_steps", "lstm_cell_backward_steps"):
        real = getattr(_native, name)

        def spy(*a, _real=real, _name=name):
            step = _real(*a)
            calls.append((_name, step is not None))
            return step

        monkeypatch.setattr(_native, name, spy)
    return calls


# (input, hidden, scale of the weights, input's shape, LSTM keywords, with h0/c0)
CASES = [
    (6, 16, 1.0, (7, 5, 6), {}, True),
    (6, 16, 1.0, (5, 7, 6), dict(batch_first=True), False),
    (6, 16, 8.0, (5, 7, 6), dict(batch_first=True), True),  # saturated gates
    (6, 16, 1.0, (7, 5, 6), dict(bidirectional=True), True),
    (6, 16, 1.0, (5, 7, 6), dict(bidirectional=True, batch_first=True, num_layers=2), True),
    (6, 16, 3.0, (7, 5, 6), dict(num_layers=3), False),
    (6, 16, 1.0, (7, 5, 6), dict(bias=False), True),
    (6, 16, 1.0, (7, 5, 6), dict(bias=False, bidirectional=True), False),
    (6, 16, 1.0, (5, 7, 6), dict(proj_size=5, batch_first=True), True),
    (6, 16, 1.0, (7, 5, 6), dict(proj_size=5, bidirectional=True, num_layers=2), True),
    (3, 4, 1.0, (1, 1, 3), {}, True),  # one step, one column
    (6, 8, 1.0, (7, 3, 6), {}, True),  # B = 3: rows shorter than a vector
]


@pytest.mark.parametrize("inp, hid, scale, shape, kw, states", CASES)
def test_lstm_kernel_paths_match_torch(inp, hid, scale, shape, kw, states, monkeypatch):
    tl, ml = _lstm_pair(inp, hid, scale, **kw)
    x, hx, g = _inputs(tl, shape, states)
    calls = _count_kernel_calls(monkeypatch)
    got = _run(mg, ml, x, hx, g)
    assert ("lstm_cell_steps", True) in calls and ("lstm_cell_backward_steps", True) in calls
    want = _run(torch, tl, x, hx, g)
    assert len(got) == len(want)
    for a, e in zip(got, want):
        assert a.shape == e.shape
        _close(a, e)


@pytest.mark.parametrize("kw", [dict(batch_first=True), dict(bidirectional=True)])
def test_lstm_kernel_paths_on_packed_sequences_match_torch(kw):
    tl, ml = _lstm_pair(6, 16, **kw)
    shape = (5, 7, 6) if kw.get("batch_first") else (7, 5, 6)
    x, hx, g = _inputs(tl, shape, states=True)
    lengths = [7, 3, 5, 1, 7]
    got = _run(mg, ml, x, hx, g, lengths)
    want = _run(torch, tl, x, hx, g, lengths)
    for a, e in zip(got, want):
        _close(a, e)


def test_lstm_large_inputs_saturate_gates_as_torch():
    """Pre-activations far past +-88, where the kernel's exp clamps its argument."""
    tl, ml = _lstm_pair(6, 16, 4.0, batch_first=True)
    x, hx, g = _inputs(tl, (5, 7, 6), scale=60.0)
    got = _run(mg, ml, x, hx, g)
    want = _run(torch, tl, x, hx, g)
    for a, e in zip(got, want):
        _close(a, e)


def test_lstm_nan_input_propagates_as_torch():
    tl, ml = _lstm_pair(6, 16)
    x, hx, _ = _inputs(tl, (7, 5, 6))
    x[2, 1, 3] = np.nan
    with mg.no_grad():
        y = ml(mg.tensor(x))[0].numpy()
    with torch.no_grad():
        t = tl(torch.tensor(x))[0].numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(t))
    _close(np.nan_to_num(y), np.nan_to_num(t))


@pytest.mark.parametrize("kw", [{}, dict(bidirectional=True, num_layers=2), dict(proj_size=5)])
def test_lstm_kernel_path_matches_the_numpy_steps(kw, monkeypatch):
    tl, ml = _lstm_pair(6, 16, 2.0, **kw)
    x, hx, g = _inputs(tl, (7, 5, 6))
    got = _run(mg, ml, x, hx, g)
    monkeypatch.setattr(_native, "lstm_cell_steps", lambda *a, **k: None)
    ref = _run(mg, ml, x, hx, g)
    for a, e in zip(got, ref):
        _close(a, e)


def test_lstm_backward_without_its_kernel_after_a_kernel_forward(monkeypatch):
    """The forward's kernel leaves the gates in PyTorch's order; the NumPy backward steps
    reorder them."""
    tl, ml = _lstm_pair(6, 16, 2.0, bidirectional=True)
    x, hx, g = _inputs(tl, (7, 5, 6))
    monkeypatch.setattr(_native, "lstm_cell_backward_steps", lambda *a, **k: None)
    got = _run(mg, ml, x, hx, g)
    want = _run(torch, tl, x, hx, g)
    for a, e in zip(got, want):
        _close(a, e)


def test_lstm_kernel_path_float64_takes_the_numpy_steps(monkeypatch):
    tl, ml = _lstm_pair(6, 16)
    tl, ml = tl.double(), ml.to(mg.float64)
    calls = _count_kernel_calls(monkeypatch)
    x, hx, g = _inputs(tl, (7, 5, 6))
    x, g, hx = x.astype(np.float64), g.astype(np.float64), [a.astype(np.float64) for a in hx]
    got = _run(mg, ml, x, hx, g)
    assert all(not ok for _, ok in calls)
    want = _run(torch, tl, x, hx, g)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=1e-10)


def test_lstm_bias_gradients_are_separate_arrays():
    tl, ml = _lstm_pair(6, 16)
    x, hx, g = _inputs(tl, (7, 5, 6))
    _run(mg, ml, x, hx, g)
    b_ih, b_hh = ml.bias_ih_l0.grad, ml.bias_hh_l0.grad
    _close(b_ih.numpy(), b_hh.numpy())
    b_ih.numpy()[0] += 1.0  # NOTE: .numpy() shares memory; b_hh's gradient must not move
    assert b_ih.numpy()[0] != b_hh.numpy()[0]


def test_lstm_step_op_records_the_kernel_path():
    x = mg.randn(4, 3, 6)
    layer = mg.nn.LSTM(6, 8)
    seen = []
    real = rnn_fused.LSTMSeq.backward

    def spy(self, grads):
        seen.append(self.fast)
        return real(self, grads)

    rnn_fused.LSTMSeq.backward = spy
    try:
        layer(x)[0].sum().backward()
    finally:
        rnn_fused.LSTMSeq.backward = real
    assert seen == [True]


def test_lstm_backward_kernel_writes_columns_and_the_step_copy():
    rng = np.random.default_rng(2)
    nd, h, b, steps = 2, 5, 3, 4
    gs = rng.random((steps, nd, 4 * h, b)).astype(np.float32)
    tcs = rng.standard_normal((steps, nd, h, b)).astype(np.float32)
    cs = rng.standard_normal((steps + 1, nd, h, b)).astype(np.float32)
    gy = rng.standard_normal((steps, nd, h, b)).astype(np.float32)
    dh = rng.standard_normal((nd, h, b)).astype(np.float32)
    dc = rng.standard_normal((nd, h, b)).astype(np.float32)
    ga = np.full((nd, 4 * h, steps * b), np.nan, np.float32)
    dgk = np.empty((nd, 4 * h, b), np.float32)
    dc0 = dc.copy()
    db = np.ones((nd, 4 * h), np.float32)
    step = _native.lstm_cell_backward_steps(dh, gy, dc, gs, tcs, cs, ga, dgk, db)
    step(0, 2, 0, 2, 2, 2, 1, 0, 0)
    i, f, c, o = (gs[2][:, q * h : (q + 1) * h] for q in range(4))
    a = dh + gy[2]
    dct = dc0 + a * o * (1 - tcs[2] ** 2)
    want = np.concatenate([dct * c * i * (1 - i), dct * cs[2] * f * (1 - f),
                           dct * i * (1 - c * c), a * tcs[2] * o * (1 - o)], 1)  # fmt: skip
    _close(ga[:, :, b : 2 * b], want)
    _close(dgk, want)
    _close(dc, dct * f)
    _close(db, 1 + want.sum(axis=2))  # the biases' gradient, added
    assert np.isnan(ga[:, :, :b]).all() and np.isnan(ga[:, :, 2 * b :]).all()
    # a reverse direction's step j: its time step's columns, steps - 1 - j
    ga[...], dc[...] = np.nan, dc0
    step = _native.lstm_cell_backward_steps(dh, gy, dc, gs, tcs, cs, ga, None, None,
                                            (False, True))  # fmt: skip
    step(0, 2, 0, 2, 2, 2, 1, 0, 0)
    _close(ga[0, :, b : 2 * b], want[0])
    _close(ga[1, :, 2 * b : 3 * b], want[1])
    assert np.isnan(ga[0, :, 2 * b :]).all() and np.isnan(ga[1, :, : 2 * b]).all()
    assert _native.lstm_cell_backward_steps(dh, gy, dc, gs, tcs, cs, ga[:, :, 1:]) is None


# ---------------------------------------------------------------------- embedding backward


@pytest.mark.parametrize("kw", [{}, dict(padding_idx=3), dict(scale_grad_by_freq=True),
                                dict(padding_idx=0, scale_grad_by_freq=True)])  # fmt: skip
def test_embedding_backward_kernel_matches_torch(kw, monkeypatch):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((50, 9)).astype(np.float32)
    idx = rng.integers(0, 50, (6, 11))
    idx[0, :4] = 3  # repeated rows, the padding row among them
    g = rng.standard_normal((6, 11, 9)).astype(np.float32)
    calls = []
    real = _native.embedding_backward
    monkeypatch.setattr(_native, "embedding_backward",
                        lambda *a: calls.append(1) or real(*a))  # fmt: skip
    wm = mg.tensor(w, requires_grad=True)
    mg.nn.functional.embedding(mg.tensor(idx), wm, **kw).backward(mg.tensor(g))
    wt = torch.tensor(w, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(idx), wt, **kw).backward(torch.tensor(g))
    assert calls
    _close(wm.grad.numpy(), wt.grad.numpy(), rtol=1e-6)


def test_embedding_backward_kernel_declines_other_arrays():
    g = np.ones((4, 3), np.float32)
    idx = np.array([0, 1, 1, 2])
    assert _native.embedding_backward(g.astype(np.float64), idx, 5) is None
    assert _native.embedding_backward(g, idx.astype(np.int32), 5) is None
    assert _native.embedding_backward(g[:, :2], idx, 5) is None  # not contiguous
    got = _native.embedding_backward(g, idx, 5)
    np.testing.assert_array_equal(got, [[1] * 3, [2] * 3, [1] * 3, [0] * 3, [0] * 3])


@pytest.mark.parametrize("dtype", ["float64", "int32 indices"])
def test_embedding_backward_other_dtypes_take_the_numpy_path(dtype):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((20, 4))
    idx = rng.integers(0, 20, (3, 7))
    if dtype == "float64":
        w64 = w
    else:
        w64, idx = w.astype(np.float32), idx.astype(np.int32)
    g = rng.standard_normal((3, 7, 4)).astype(w64.dtype)
    wm = mg.tensor(w64, requires_grad=True)
    mg.nn.functional.embedding(mg.tensor(idx), wm).backward(mg.tensor(g))
    wt = torch.tensor(w64, requires_grad=True)
    torch.nn.functional.embedding(torch.tensor(idx), wt).backward(torch.tensor(g))
    _close(wm.grad.numpy(), wt.grad.numpy(), rtol=1e-6)
