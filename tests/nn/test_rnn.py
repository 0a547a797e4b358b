"""RNN, LSTM, GRU and their cells against PyTorch from the same initial weights: outputs,
final states and the gradients of inputs, states and every parameter."""

from collections import namedtuple

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES
from opcheck import check_op

torch = pytest.importorskip("torch")

# a stand-in with PyTorch's PackedSequence attributes (mg.nn.utils.rnn may provide the real one)
Packed = namedtuple("Packed", "data batch_sizes sorted_indices unsorted_indices")


def _copy(tm, mm, device="cpu"):
    sd = {k: mg.tensor(v.detach().numpy(), device=device) for k, v in tm.state_dict().items()}
    mm.load_state_dict(sd)
    assert list(mm.state_dict()) == list(tm.state_dict())


def _close(m, t, what, rtol=1e-9, atol=1e-11):
    np.testing.assert_allclose(m.detach().cpu().numpy(), t.detach().numpy(), rtol=rtol,
                               atol=atol, err_msg=what)  # fmt: skip


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flat(x)]
    return [out]


def _compare(tm, mm, t_args, m_args, device):
    """Forward both, backprop one random weighting of every output, compare everything."""
    t_out, m_out = _flat(tm(*t_args)), _flat(mm(*m_args))
    assert len(t_out) == len(m_out)
    rng = np.random.default_rng(3)
    ups = [rng.standard_normal(tuple(o.shape)) for o in t_out]
    for i, (mo, to) in enumerate(zip(m_out, t_out)):
        _close(mo, to, f"output {i}")
    torch.autograd.backward(t_out, [torch.tensor(u) for u in ups])
    mg.autograd.backward(m_out, [mg.tensor(u, device=device) for u in ups])
    for i, (ma, ta) in enumerate(zip(_flat(m_args), _flat(t_args))):
        if isinstance(ta, torch.Tensor) and ta.requires_grad:
            _close(ma.grad, ta.grad, f"grad of argument {i}")
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        _close(mp.grad, tp.grad, f"grad of {n}")


def _pair(shape, rng, device):
    a = rng.standard_normal(shape)
    return (torch.tensor(a, requires_grad=True), mg.tensor(a, device=device, requires_grad=True))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "cls, kw",
    [
        ("RNN", {}),
        ("RNN", dict(nonlinearity="relu", num_layers=2)),
        ("RNN", dict(bias=False, bidirectional=True)),
        ("LSTM", {}),
        ("LSTM", dict(num_layers=2, bidirectional=True)),
        ("LSTM", dict(batch_first=True, bias=False)),
        ("GRU", {}),
        ("GRU", dict(num_layers=3, batch_first=True, bidirectional=True)),
    ],
)
@pytest.mark.parametrize("with_hx", [False, True])
def test_rnn_modules(cls, kw, with_hx, device):
    torch.manual_seed(0)
    tm = getattr(torch.nn, cls)(4, 5, **kw).double()
    mm = getattr(mg.nn, cls)(4, 5, **kw).double().to(device)
    _copy(tm, mm, device)
    rng = np.random.default_rng(0)
    shape = (3, 6, 4) if kw.get("batch_first") else (6, 3, 4)
    tx, mx = _pair(shape, rng, device)
    t_args, m_args = [tx], [mx]
    if with_hx:
        hs = (kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1), 3, 5)
        states = [_pair(hs, rng, device) for _ in range(2 if cls == "LSTM" else 1)]
        t_args.append(tuple(s[0] for s in states) if cls == "LSTM" else states[0][0])
        m_args.append(tuple(s[1] for s in states) if cls == "LSTM" else states[0][1])
    _compare(tm, mm, t_args, m_args, device)


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
def test_unbatched_input(cls):
    tm = getattr(torch.nn, cls)(4, 3, num_layers=2).double()
    mm = getattr(mg.nn, cls)(4, 3, num_layers=2).double()
    _copy(tm, mm)
    tx, mx = _pair((5, 4), np.random.default_rng(1), "cpu")
    _compare(tm, mm, [tx], [mx], "cpu")


@pytest.mark.parametrize("cls", ["RNN", "LSTM", "GRU"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_sequences(cls, enforce_sorted, bidirectional):
    tm = getattr(torch.nn, cls)(4, 3, num_layers=2, bidirectional=bidirectional).double()
    mm = getattr(mg.nn, cls)(4, 3, num_layers=2, bidirectional=bidirectional).double()
    _copy(tm, mm)
    lengths = [6, 4, 4, 1] if enforce_sorted else [2, 6, 1, 4]
    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((n, 4)) for n in lengths]
    tp = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted)
    data = tp.data.detach().numpy()
    td = torch.tensor(data, requires_grad=True)
    tp = type(tp)(td, tp.batch_sizes, tp.sorted_indices, tp.unsorted_indices)
    md = mg.tensor(data, requires_grad=True)
    idx = [None if i is None else mg.tensor(i.numpy()) for i in (tp.sorted_indices,
                                                                 tp.unsorted_indices)]  # fmt: skip
    mp = Packed(md, mg.tensor(tp.batch_sizes.numpy()), *idx)
    t_out, t_h = tm(tp)
    m_out, m_h = mm(mp)
    assert isinstance(m_out, Packed)
    assert m_out.batch_sizes is mp.batch_sizes
    t_flat, m_flat = [t_out.data] + _flat(t_h), [m_out.data] + _flat(m_h)
    for i, (mo, to) in enumerate(zip(m_flat, t_flat)):
        _close(mo, to, f"output {i}")
    ups = [rng.standard_normal(tuple(o.shape)) for o in t_flat]
    torch.autograd.backward(t_flat, [torch.tensor(u) for u in ups])
    mg.autograd.backward(m_flat, [mg.tensor(u) for u in ups])
    _close(md.grad, td.grad, "grad of the packed data")
    for (n, tq), (_, mq) in zip(tm.named_parameters(), mm.named_parameters()):
        _close(mq.grad, tq.grad, f"grad of {n}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls", ["RNNCell", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("batched", [True, False])
def test_cells(cls, batched, device):
    tm = getattr(torch.nn, cls)(4, 3).double()
    mm = getattr(mg.nn, cls)(4, 3).double().to(device)
    _copy(tm, mm, device)
    rng = np.random.default_rng(4)
    lead = (2,) if batched else ()
    tx, mx = _pair(lead + (4,), rng, device)
    states = [_pair(lead + (3,), rng, device) for _ in range(2 if cls == "LSTMCell" else 1)]
    ts = tuple(s[0] for s in states) if cls == "LSTMCell" else states[0][0]
    ms = tuple(s[1] for s in states) if cls == "LSTMCell" else states[0][1]
    _compare(tm, mm, [tx, ts], [mx, ms], device)
    _compare(tm, mm, [tx], [mx], device)


def test_dropout_between_layers_and_eval():
    mm = mg.nn.LSTM(4, 3, num_layers=2, dropout=0.5)
    x = mg.randn(5, 2, 4)
    mm.eval()
    a, _ = mm(x)
    b, _ = mm(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    mm.train()
    mg.manual_seed(0)
    c, _ = mm(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        mg.nn.GRU(4, 3, dropout=0.2)


def test_parameter_names_shapes_and_init():
    tm = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    mm = mg.nn.LSTM(4, 3, num_layers=2, bidirectional=True)
    t_sd, m_sd = tm.state_dict(), mm.state_dict()
    assert list(t_sd) == list(m_sd)
    for k in t_sd:
        assert tuple(m_sd[k].shape) == tuple(t_sd[k].shape), k
        assert float(abs(m_sd[k]).max()) <= 1 / np.sqrt(3)
    mm.flatten_parameters()
    assert len(mm.all_weights) == 4 and len(mm.all_weights[0]) == 4
    assert repr(mm) == repr(tm)


def test_bad_input_is_refused():
    with pytest.raises(mg.errors.ShapeError, match="input_size"):
        mg.nn.GRU(4, 3)(mg.randn(5, 2, 6))
    with pytest.raises(mg.errors.ShapeError, match="h_0"):
        mg.nn.RNN(4, 3)(mg.randn(5, 2, 4), mg.randn(1, 3, 3))
    with pytest.raises(ValueError, match="nonlinearity"):
        mg.nn.RNN(4, 3, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size"):
        mg.nn.LSTM(4, 3, proj_size=-1)


def _lstm_layer(lib, fused=True):
    """The functional form of a one-layer LSTM: (x, h0, c0, w_ih, w_hh, b_ih, b_hh) -> out."""

    def f(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        if lib is torch:
            m = torch.nn.LSTM(4, 3).to(x.dtype)
            params = dict(weight_ih_l0=w_ih, weight_hh_l0=w_hh, bias_ih_l0=b_ih, bias_hh_l0=b_hh)
            out, (h, c) = torch.func.functional_call(m, params, (x, (h0, c0)))
            return out, h, c
        out, (h, c) = mg.ops.rnn.rnn_layer("LSTM", x, (h0[0], c0[0]), w_ih, w_hh, b_ih, b_hh,
                                           fused=fused)  # fmt: skip
        return out, h[None], c[None]

    return f


def _gru_layer(lib, reverse, fused=True):
    def f(x, h0, w_ih, w_hh, b_ih, b_hh):
        if lib is torch:
            m = torch.nn.GRU(4, 3, bidirectional=True).to(x.dtype)
            p = dict(m.named_parameters())
            sfx = "_reverse" if reverse else ""
            p.update({"weight_ih_l0" + sfx: w_ih, "weight_hh_l0" + sfx: w_hh,
                      "bias_ih_l0" + sfx: b_ih, "bias_hh_l0" + sfx: b_hh})  # fmt: skip
            out, hn = torch.func.functional_call(m, p, (x, torch.cat([h0, h0])))
            return out[..., 3:] if reverse else out[..., :3], hn[1 if reverse else 0]
        return mg.ops.rnn.rnn_layer("GRU", x, h0[0], w_ih, w_hh, b_ih, b_hh, reverse=reverse,
                                    fused=fused)  # fmt: skip

    return f


# the fused layer op (one node per layer, ops.rnn_fused) and the reference composition
@pytest.mark.parametrize("fused", [True, False])
def test_lstm_layer_op(fused):
    specs = [(5, 2, 4), (1, 2, 3), (1, 2, 3), (12, 4), (12, 3), (12,), (12,)]
    check_op(_lstm_layer(mg, fused), specs, torch_fn=_lstm_layer(torch), domain=(-1, 1))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_gru_layer_op(reverse, fused):
    specs = [(4, 2, 4), (1, 2, 3), (9, 4), (9, 3), (9,), (9,)]
    check_op(_gru_layer(mg, reverse, fused), specs, torch_fn=_gru_layer(torch, reverse),
             domain=(-1, 1))  # fmt: skip


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("reverse", [False, True])
def test_fused_packed_layer_matches_reference(mode, reverse):
    """Packed steps (batch sizes 3, 3, 2, 1): the fused op against the composition."""
    rng = np.random.default_rng(7)
    g = 4 if mode == "LSTM" else 3
    sizes = [3, 3, 2, 1]
    arrays = [rng.standard_normal(s) for s in [(9, 4), (3, 2), (3, 2), (2 * g, 4),
                                                 (2 * g, 2), (2 * g,), (2 * g,)]]  # fmt: skip
    results = []
    for fused in (True, False):
        x, h0, c0, *w = [mg.tensor(a, requires_grad=True) for a in arrays]
        state = (h0, c0) if mode == "LSTM" else h0
        out, fin = mg.ops.rnn.rnn_layer(mode, x, state, *w, reverse=reverse, batch_sizes=sizes,
                                        fused=fused)  # fmt: skip
        outs = [out] + (list(fin) if mode == "LSTM" else [fin])
        mg.autograd.backward(outs, [mg.ones(*o.shape, dtype=mg.float64) for o in outs])
        grads = [t.grad for t in [x, h0, c0, *w] if t.grad is not None]
        results.append([o.detach().numpy() for o in outs] + [t.numpy() for t in grads])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_with_manygrad_packing_utilities():
    """pack_padded_sequence -> LSTM -> pad_packed_sequence, as a PyTorch script does it."""
    rnn_utils = pytest.importorskip("manygrad.nn.utils.rnn")
    tm = torch.nn.LSTM(4, 3, num_layers=2, bidirectional=True).double()
    mm = mg.nn.LSTM(4, 3, num_layers=2, bidirectional=True).double()
    _copy(tm, mm)
    x = np.random.default_rng(9).standard_normal((6, 3, 4))
    lengths = [4, 6, 2]
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    tp = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, enforce_sorted=False)
    mp = rnn_utils.pack_padded_sequence(mx, lengths, enforce_sorted=False)
    (t_out, t_len), (t_h, t_c) = (lambda o: (torch.nn.utils.rnn.pad_packed_sequence(o[0]),
                                             o[1]))(tm(tp))  # fmt: skip
    (m_out, m_len), (m_h, m_c) = (lambda o: (rnn_utils.pad_packed_sequence(o[0]), o[1]))(mm(mp))
    for m, t, what in [(m_out, t_out, "output"), (m_h, t_h, "h_n"), (m_c, t_c, "c_n")]:
        _close(m, t, what)
    assert list(m_len.tolist()) == list(t_len.tolist())
    (t_out.sum() + t_h.sum() + t_c.sum()).backward()
    (m_out.sum() + m_h.sum() + m_c.sum()).backward()
    _close(mx.grad, tx.grad, "grad of the padded input")


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_word_language_model_steps(cls):
    """Embedding -> 2-layer RNN -> Linear trained by SGD over consecutive batches with the
    hidden state carried (detached) between them, as pytorch/examples' word model does."""
    vocab, emb, hid, steps, bsz = 20, 6, 5, 7, 3

    def build(lib):
        lib.manual_seed(0)
        enc, rnn = lib.nn.Embedding(vocab, emb), getattr(lib.nn, cls)(emb, hid, 2)
        dec = lib.nn.Linear(hid, vocab)
        return [m.double() for m in (enc, rnn, dec)]

    t_mods, m_mods = build(torch), build(mg)
    for tm, mm in zip(t_mods, m_mods):
        _copy(tm, mm)
    data = np.random.default_rng(0).integers(0, vocab, size=(4, steps + 1, bsz))
    losses = {"torch": [], "mg": []}
    for lib, mods, key in ((torch, t_mods, "torch"), (mg, m_mods, "mg")):
        enc, rnn, dec = mods
        params = [p for m in mods for p in m.parameters()]
        hidden = None
        for batch in data:
            x, y = lib.tensor(batch[:-1]), lib.tensor(batch[1:])
            if hidden is not None:  # repackage_hidden
                hidden = tuple(h.detach() for h in hidden) if cls == "LSTM" else hidden.detach()
            out, hidden = rnn(enc(x), hidden)
            loss = lib.nn.functional.cross_entropy(dec(out).reshape(-1, vocab), y.reshape(-1))
            for p in params:
                p.grad = None
            loss.backward()
            with lib.no_grad():
                for p in params:
                    p.sub_(p.grad * 0.5)
            losses[key].append(float(loss.detach()))
    np.testing.assert_allclose(losses["mg"], losses["torch"], rtol=1e-9)


@pytest.mark.parametrize("cls", ["LSTMCell", "GRUCell", "LSTM", "GRU"])
def test_double_backward(cls):
    """Gradients of gradients through the fused ops (recomputed as compositions)."""
    tm, mm = getattr(torch.nn, cls)(3, 2).double(), getattr(mg.nn, cls)(3, 2).double()
    _copy(tm, mm)
    x = np.random.default_rng(11).standard_normal((4, 2, 3) if cls in ("LSTM", "GRU") else (2, 3))
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    results = []
    for lib, m, xx in ((torch, tm, tx), (mg, mm, mx)):
        out = _flat(m(xx))
        y = sum((o * o).sum() for o in out)
        (g,) = lib.autograd.grad(y, [xx], create_graph=True)
        w = dict(m.named_parameters())["weight_hh" if "Cell" in cls else "weight_hh_l0"]
        (gg,) = lib.autograd.grad((g * g).sum(), [w])
        results.append(gg.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-8, atol=1e-11)
