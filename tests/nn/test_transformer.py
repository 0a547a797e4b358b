"""Transformer and TransformerDecoder(Layer) against PyTorch from the same weights, with
causal, padding and memory masks, pre- and post-norm, batch-first or not."""

import numpy as np
import pytest

import manygrad as mg
from devicematrix import DEVICES

torch = pytest.importorskip("torch")


def _copy(tm, mm, device="cpu"):
    assert list(mm.state_dict()) == list(tm.state_dict())
    mm.load_state_dict({k: mg.tensor(v.numpy(), device=device)
                        for k, v in tm.state_dict().items()})  # fmt: skip


def _close(m, t, what):
    np.testing.assert_allclose(m.detach().cpu().numpy(), t.detach().numpy(), rtol=1e-8,
                               atol=1e-10, err_msg=what)  # fmt: skip


def _pair(a, device, grad=True):
    return torch.tensor(a, requires_grad=grad), mg.tensor(a, device=device, requires_grad=grad)


def _run(tm, mm, t_args, m_args, t_kw, m_kw, device):
    ty, my = tm(*t_args, **t_kw), mm(*m_args, **m_kw)
    _close(my, ty, "output")
    u = np.random.default_rng(5).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(u))
    my.backward(mg.tensor(u, device=device))
    for i, (ta, ma) in enumerate(zip(t_args, m_args)):
        _close(ma.grad, ta.grad, f"grad of input {i}")
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        _close(mp.grad, tp.grad, f"grad of {n}")


def _masks(lt, ls, n, rng, device):
    """A causal target mask, a random memory mask and key padding masks (bool)."""
    causal = torch.nn.Transformer.generate_square_subsequent_mask(lt, dtype=torch.float64)
    mem = rng.random((lt, ls)) < 0.2
    mem[:, 0] = False
    tpad = np.zeros((n, lt), bool)
    tpad[0, -2:] = True
    spad = np.zeros((n, ls), bool)
    spad[1, -3:] = True
    t = dict(
        tgt_mask=causal,
        memory_mask=torch.tensor(mem),
        tgt_key_padding_mask=torch.tensor(tpad),
        memory_key_padding_mask=torch.tensor(spad),
    )
    m = dict(
        tgt_mask=mg.tensor(causal.numpy(), device=device),
        memory_mask=mg.tensor(mem, device=device),
        tgt_key_padding_mask=mg.tensor(tpad, device=device),
        memory_key_padding_mask=mg.tensor(spad, device=device),
    )
    return t, m


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_decoder_layer(norm_first, batch_first, activation, device):
    torch.manual_seed(0)
    kw = dict(dim_feedforward=12, dropout=0.0, batch_first=batch_first, norm_first=norm_first,
              activation=activation)  # fmt: skip
    tm = torch.nn.TransformerDecoderLayer(8, 2, **kw).double()
    mm = mg.nn.TransformerDecoderLayer(8, 2, **kw).double().to(device)
    _copy(tm, mm, device)
    rng = np.random.default_rng(0)
    n, lt, ls = 2, 5, 6
    shape = (lambda k: (n, k, 8)) if batch_first else (lambda k: (k, n, 8))
    (tt, mt), (ts, ms) = _pair(rng.standard_normal(shape(lt)), device), _pair(
        rng.standard_normal(shape(ls)), device)  # fmt: skip
    t_kw, m_kw = _masks(lt, ls, n, rng, device)
    _run(tm, mm, [tt, ts], [mt, ms], t_kw, m_kw, device)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer(norm_first):
    torch.manual_seed(1)
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=16, dropout=0.0, norm_first=norm_first)  # fmt: skip
    tm = torch.nn.Transformer(**kw).double()
    mm = mg.nn.Transformer(**kw).double()
    _copy(tm, mm)
    rng = np.random.default_rng(1)
    n, lt, ls = 2, 4, 6
    (ts, ms), (tt, mt) = _pair(rng.standard_normal((ls, n, 8)), "cpu"), _pair(
        rng.standard_normal((lt, n, 8)), "cpu")  # fmt: skip
    t_kw, m_kw = _masks(lt, ls, n, rng, "cpu")
    spad = t_kw["memory_key_padding_mask"]
    t_kw["src_key_padding_mask"] = spad
    m_kw["src_key_padding_mask"] = mg.tensor(spad.numpy())
    _run(tm, mm, [ts, tt], [ms, mt], t_kw, m_kw, "cpu")


def test_decoder_stack_and_unbatched():
    torch.manual_seed(2)
    tl = torch.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double()
    tm = torch.nn.TransformerDecoder(tl, 2, norm=torch.nn.LayerNorm(8).double())
    ml = mg.nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0).double()
    mm = mg.nn.TransformerDecoder(ml, 2, norm=mg.nn.LayerNorm(8).double())
    _copy(tm, mm)
    rng = np.random.default_rng(2)
    (tt, mt), (ts, ms) = _pair(rng.standard_normal((5, 8)), "cpu"), _pair(
        rng.standard_normal((3, 8)), "cpu")  # fmt: skip
    _run(tm, mm, [tt, ts], [mt, ms], {}, {}, "cpu")


def test_init_and_masks():
    m = mg.nn.Transformer(16, 2, 1, 1, 32)
    t = torch.nn.Transformer(16, 2, 1, 1, 32)
    for (n, mp), (_, tp) in zip(m.named_parameters(), t.named_parameters()):
        assert tuple(mp.shape) == tuple(tp.shape), n
    w = m.encoder.layers[0].linear1.weight.detach().numpy()
    bound = np.sqrt(6 / (16 + 32))  # xavier_uniform_
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    mask = m.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(4))
    with pytest.raises(mg.errors.ShapeError, match="batch number"):
        m(mg.randn(5, 2, 16), mg.randn(4, 3, 16))
    with pytest.raises(mg.errors.ShapeError, match="d_model"):
        m(mg.randn(5, 2, 16), mg.randn(4, 2, 8))


@pytest.mark.parametrize(
    "nhead,batch_first,norm_first,mask",
    [(2, True, False, [[False, False, True], [False] * 3]),
     (1, True, False, [[False, False, True], [False] * 3]),
     (2, False, False, [[False, False, True], [False] * 3]),
     (2, True, True, [[False, False, True], [False] * 3]),
     (2, True, False, [[False, True, False], [False] * 3])],
)  # fmt: skip
def test_encoder_eval_padding_matches_pytorchs_nested_path(nhead, batch_first, norm_first,
                                                           mask):  # fmt: skip
    import warnings

    outs = []
    for lib in (torch, mg):
        layer = lib.nn.TransformerEncoderLayer(4, nhead, 8, dropout=0.0, batch_first=batch_first,
                                               norm_first=norm_first)  # fmt: skip
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            enc = lib.nn.TransformerEncoder(layer, 2, norm=lib.nn.LayerNorm(4))
        said = [str(x.message) for x in w if "nested" in str(x.message)]
        with lib.no_grad():
            for p in enc.parameters():
                p.copy_(lib.linspace(-0.5, 0.5, p.numel()).reshape(p.shape))
        x = lib.linspace(-1, 1, 24).reshape(2, 3, 4)
        x = x if batch_first else x.transpose(0, 1)
        enc.eval()
        with lib.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = enc(x, src_key_padding_mask=lib.tensor(mask))
        enc.train()
        y2 = enc(x, src_key_padding_mask=lib.tensor(mask))
        outs.append((said, y.numpy(), y2.detach().numpy()))
    (ts, ty, ty2), (ms, my, my2) = outs
    assert ms == ts
    np.testing.assert_allclose(my, ty, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(my2, ty2, rtol=1e-5, atol=1e-6)
