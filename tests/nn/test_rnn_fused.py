"""The fused LSTM/GRU layers (``ops.rnn_fused``: one op per layer, all directions) against
PyTorch from the same weights: outputs, h_n, c_n and the gradients of the input, h0, c0
and every weight and bias, for stacked, bidirectional, projected, batch-first, packed
(unequal lengths, with and without h0), float32/float64, one-step and bias-free layers."""

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip("torch")

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}


def _modules(cls, dtype, **kw):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(5, 6, **kw).to(getattr(torch, dtype))
    mm = getattr(mg.nn, cls)(5, 6, **kw).to(getattr(mg, dtype))
    mm.load_state_dict({k: mg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    return tm, mm


def _close(m, t, what, dtype):
    np.testing.assert_allclose(m.detach().cpu().numpy(), t.detach().numpy(), err_msg=what,
                               **TOL[dtype])  # fmt: skip


def _states(cls, tm, batch, rng, dtype):
    """Random (h0, c0) or h0 as (torch, manygrad) pairs that require grad."""
    lead = tm.num_layers * (2 if tm.bidirectional else 1)
    widths = [tm.proj_size or tm.hidden_size] + ([tm.hidden_size] if cls == "LSTM" else [])
    arrays = [rng.standard_normal((lead, batch, w)).astype(dtype) for w in widths]
    return ([torch.tensor(a, requires_grad=True) for a in arrays],
            [mg.tensor(a, requires_grad=True) for a in arrays])  # fmt: skip


def _run(cls, tm, mm, t_in, m_in, t_hx, m_hx, dtype, which=(0, 1, 2), seed=1):
    """Forward both; backprop random weights of the outputs picked by ``which`` (0: out,
    1: h_n, 2: c_n); compare outputs and every gradient."""
    lstm = cls == "LSTM"
    pack = lambda hx: None if hx is None else (tuple(hx) if lstm else hx[0])  # noqa: E731
    t_out, t_h = tm(t_in, pack(t_hx))
    m_out, m_h = mm(m_in, pack(m_hx))
    packed = hasattr(t_out, "batch_sizes")
    t_all = [t_out.data if packed else t_out] + (list(t_h) if lstm else [t_h])
    m_all = [m_out.data if packed else m_out] + (list(m_h) if lstm else [m_h])
    for i, (a, b) in enumerate(zip(m_all, t_all)):
        assert tuple(a.shape) == tuple(b.shape), i
        _close(a, b, f"output {i}", dtype)
    rng = np.random.default_rng(seed)
    pick = [i for i in which if i < len(t_all)]
    ups = [rng.standard_normal(tuple(t_all[i].shape)).astype(dtype) for i in pick]
    torch.autograd.backward([t_all[i] for i in pick], [torch.tensor(u) for u in ups])
    mg.autograd.backward([m_all[i] for i in pick], [mg.tensor(u) for u in ups])
    return m_all


def _grads(tm, mm, pairs, dtype):
    for what, mt, tt in pairs:
        assert (mt.grad is None) == (tt.grad is None), what
        if tt.grad is not None:
            _close(mt.grad, tt.grad, f"grad of {what}", dtype)
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        _close(mp.grad, tp.grad, f"grad of {n}", dtype)


CASES = [
    ("LSTM", {}),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, batch_first=True)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True, batch_first=True)),
    ("LSTM", dict(bias=False, bidirectional=True)),
    ("GRU", {}),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", dict(num_layers=3, batch_first=True, bidirectional=True)),
    ("GRU", dict(bias=False, batch_first=True)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("steps", [7, 1])
@pytest.mark.parametrize("cls, kw", CASES)
def test_padded_inputs(cls, kw, steps, with_hx, dtype):
    tm, mm = _modules(cls, dtype, **kw)
    rng = np.random.default_rng(0)
    shape = (3, steps, 5) if kw.get("batch_first") else (steps, 3, 5)
    x = rng.standard_normal(shape).astype(dtype)
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    t_hx, m_hx = _states(cls, tm, 3, rng, dtype) if with_hx else (None, None)
    _run(cls, tm, mm, tx, mx, t_hx, m_hx, dtype)
    pairs = [("input", mx, tx)] + [(f"state {i}", a, b) for i, (a, b) in
                                   enumerate(zip(m_hx or [], t_hx or []))]  # fmt: skip
    _grads(tm, mm, pairs, dtype)


@pytest.mark.parametrize("which", [(0,), (1,), (2,), (1, 2)])
@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_gradient_of_some_outputs_only(cls, which):
    """Loss on h_n or c_n alone: the output sequence gets no gradient."""
    if cls == "GRU" and which == (2,):
        pytest.skip("a GRU has no c_n")
    tm, mm = _modules(cls, "float64", num_layers=2, bidirectional=True)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 2, 5))
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    t_hx, m_hx = _states(cls, tm, 2, rng, "float64")
    _run(cls, tm, mm, tx, mx, t_hx, m_hx, "float64", which=which)
    pairs = [("input", mx, tx)] + [(f"state {i}", a, b) for i, (a, b) in
                                   enumerate(zip(m_hx, t_hx))]  # fmt: skip
    _grads(tm, mm, pairs, "float64")


PACKED = [
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=2, bidirectional=True)),
    ("GRU", dict(num_layers=2, bidirectional=True)),
    ("GRU", {}),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("lengths", [[6, 4, 4, 1], [2, 6, 1, 4], [3, 3, 3]])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("cls, kw", PACKED)
def test_packed_sequences(cls, kw, with_hx, lengths, dtype):
    """Unequal lengths: a reverse direction starts each sequence at its own end from h0."""
    rnn_utils = mg.nn.utils.rnn
    tm, mm = _modules(cls, dtype, **kw)
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((n, 5)).astype(dtype) for n in lengths]
    t_seqs = [torch.tensor(s, requires_grad=True) for s in seqs]
    m_seqs = [mg.tensor(s, requires_grad=True) for s in seqs]
    tp = torch.nn.utils.rnn.pack_sequence(t_seqs, enforce_sorted=False)
    mp = rnn_utils.pack_sequence(m_seqs, enforce_sorted=False)
    t_hx, m_hx = _states(cls, tm, len(lengths), rng, dtype) if with_hx else (None, None)
    m_all = _run(cls, tm, mm, tp, mp, t_hx, m_hx, dtype)
    assert len(m_all[0]) == sum(lengths)
    pairs = [(f"sequence {i}", a, b) for i, (a, b) in enumerate(zip(m_seqs, t_seqs))]
    pairs += [(f"state {i}", a, b) for i, (a, b) in enumerate(zip(m_hx or [], t_hx or []))]
    _grads(tm, mm, pairs, dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls, kw", [("LSTM", dict(bidirectional=True, proj_size=2)),
                                     ("GRU", dict(num_layers=2, batch_first=True))])  # fmt: skip
def test_devices(cls, kw, device):
    """The same on every device of the matrix (fake GPUs refuse host conversions)."""
    tm, mm = _modules(cls, "float64", **kw)
    mm.to(device)
    x = np.random.default_rng(3).standard_normal((4, 3, 5))
    tx = torch.tensor(x, requires_grad=True)
    mx = mg.tensor(x, device=device, requires_grad=True)
    t_out, t_h = tm(tx)
    m_out, m_h = mm(mx)
    t_all = [t_out] + (list(t_h) if cls == "LSTM" else [t_h])
    m_all = [m_out] + (list(m_h) if cls == "LSTM" else [m_h])
    for i, (a, b) in enumerate(zip(m_all, t_all)):
        _close(a, b, f"output {i}", "float64")
    sum(o.sum() for o in t_all).backward()
    sum(o.sum() for o in m_all).backward()
    _close(mx.grad, tx.grad, "grad of input", "float64")
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        _close(mp.grad, tp.grad, f"grad of {n}", "float64")


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_no_grad_forward_equals_training_forward(cls):
    """Without a graph the layers keep rolling buffers: the same values."""
    mm = getattr(mg.nn, cls)(5, 6, num_layers=2, bidirectional=True)
    x = mg.randn(9, 4, 5)
    a = mm(x)
    with mg.no_grad():
        b = mm(x)
    flat = lambda r: [r[0]] + (list(r[1]) if cls == "LSTM" else [r[1]])  # noqa: E731
    for u, v in zip(flat(a), flat(b)):
        np.testing.assert_array_equal(u.detach().numpy(), v.numpy())
    assert not flat(b)[0].requires_grad and flat(a)[0].requires_grad


def test_dropout_between_layers_matches_the_reference_path(monkeypatch):
    """Same seed, same masks: the fused layers and the step-by-step compositions agree."""
    from manygrad.ops import rnn as R

    mm = mg.nn.LSTM(5, 6, num_layers=3, dropout=0.4).double()
    x = np.random.default_rng(4).standard_normal((5, 2, 5))
    results = []
    for fused in (True, False):
        if not fused:
            monkeypatch.setattr(R, "fused_ok", lambda *a: False)
        mx = mg.tensor(x, requires_grad=True)
        mg.manual_seed(7)
        out, (h, c) = mm(mx)
        (out.sum() + h.sum() + c.sum()).backward()
        results.append([out.detach().numpy(), h.detach().numpy(), mx.grad.numpy()]
                       + [p.grad.numpy() for p in mm.parameters()])  # fmt: skip
        mm.zero_grad()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_double_backward_bidirectional_packed(cls):
    """Gradients of gradients through a bidirectional layer on packed input (recomputed
    with the reference compositions) equal PyTorch's."""
    tm, mm = _modules(cls, "float64", bidirectional=True)
    seqs = [np.random.default_rng(6).standard_normal((n, 5)) for n in (4, 2, 3)]
    results = []
    for lib, m in ((torch, tm), (mg, mm)):
        xs = [lib.tensor(s, requires_grad=True) for s in seqs]
        packed = lib.nn.utils.rnn.pack_sequence(xs, enforce_sorted=False)
        out, h = m(packed)
        y = (out.data * out.data).sum() + sum((v * v).sum() for v in (h if cls == "LSTM"
                                                                      else (h,)))  # fmt: skip
        gs = lib.autograd.grad(y, xs, create_graph=True)
        w = dict(m.named_parameters())["weight_hh_l0_reverse"]
        (gg,) = lib.autograd.grad(sum((g * g).sum() for g in gs), [w])
        results.append(gg.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-8, atol=1e-11)
