"""bilinear and embedding_bag against PyTorch; channel and alpha dropout checked through the
masks they drew (PyTorch's formula applied to the same mask)."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
F = mg.nn.functional

IDS = np.array([1, 2, 4, 5, 4, 3, 2, 9])
OFFS = np.array([0, 3, 3, 5])
IDS2 = np.array([[1, 2, 4], [5, 4, 0], [0, 0, 7]])
PSW = np.random.default_rng(0).uniform(0.5, 2, size=8)


@pytest.mark.parametrize(
    "specs, kw",
    [([(4, 3), (4, 5), (2, 3, 5), (2,)], {}), ([(2, 4, 3), (2, 4, 5), (6, 3, 5)], {}),
     ([(3,), (5,), (2, 3, 5), (2,)], {})],
)  # fmt: skip
def test_bilinear(specs, kw):
    check_op("bilinear", specs, **kw)


def _bag(lib):
    def f(ids, w, offsets=None, psw=None, **kw):
        if psw is not None:  # a constant made a tensor by check_op: the table's dtype
            psw = psw.to(w.dtype)
        return lib.nn.functional.embedding_bag(ids, w, offsets, per_sample_weights=psw, **kw)

    return f


@pytest.mark.parametrize(
    "specs, kw",
    [
        ([IDS, (10, 3), OFFS], dict(mode="sum")),
        ([IDS, (10, 3), OFFS], dict(mode="mean")),
        ([IDS, (10, 3), OFFS], dict(mode="max")),
        ([IDS, (10, 3), np.array([0, 3, 3, 5, 8])], dict(mode="mean", include_last_offset=True)),
        ([IDS, (10, 3), OFFS, PSW], dict(mode="sum")),
        ([IDS2, (10, 3)], dict(mode="mean", padding_idx=0)),
        ([IDS2, (10, 3)], dict(mode="max", padding_idx=0)),
        ([IDS2, (10, 3)], dict(mode="sum")),
    ],
)
def test_embedding_bag(specs, kw):
    check_op(_bag(mg), specs, torch_fn=_bag(torch), **kw)


@pytest.mark.parametrize(
    "name, shape, mask_shape",
    [("dropout1d", (4, 6, 5), (4, 6, 1)), ("dropout1d", (6, 5), (6, 1)),
     ("dropout2d", (4, 6, 3, 3), (4, 6, 1, 1)), ("dropout2d", (4, 6, 5), (4, 6, 1)),
     ("dropout3d", (2, 6, 2, 3, 3), (2, 6, 1, 1, 1)), ("dropout3d", (6, 2, 3, 3), (6, 1, 1, 1))],
)  # fmt: skip
def test_channel_dropout(name, shape, mask_shape):
    mg.manual_seed(0)
    x = mg.tensor(np.random.default_rng(1).uniform(1, 2, shape), requires_grad=True)
    y = getattr(F, name)(x, 0.4, True)
    keep = y.detach().numpy() != 0
    mask = keep.all(axis=tuple(i for i, s in enumerate(mask_shape) if s == 1), keepdims=True)
    assert mask.shape == mask_shape and 0 < mask.sum() < mask.size
    # the channel mask explains every element: y = x * mask / (1 - p)
    np.testing.assert_allclose(y.detach().numpy(), x.detach().numpy() * mask / 0.6, rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.broadcast_to(mask / 0.6, shape), rtol=1e-12)
    assert getattr(F, name)(x, 0.4, False) is x


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout(feature):
    mg.manual_seed(0)
    p = 0.3
    x = mg.randn(64, 32, 8, dtype=mg.float64)
    y = (F.feature_alpha_dropout if feature else F.alpha_dropout)(x, p, True).numpy()
    alpha = 1.7580993408473766
    a = 1.0 / np.sqrt((alpha * alpha * p + 1) * (1 - p))
    dropped_value = -alpha * a + alpha * a * p
    dropped = np.isclose(y, dropped_value)
    keep = ~dropped
    if feature:
        assert (dropped.all(axis=2) | keep.all(axis=2)).all()
    np.testing.assert_allclose(y[keep], (x.numpy() * a + alpha * a * p)[keep], rtol=1e-12)
    assert abs(keep.mean() - (1 - p)) < 0.05
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05  # self-normalising
    assert F.alpha_dropout(x, p) is x  # training defaults to False, as in PyTorch


@pytest.mark.parametrize(
    "cls, args, inputs",
    [("Bilinear", (3, 5, 2), [(4, 3), (4, 5)]), ("EmbeddingBag", (10, 3), None)],
)
def test_modules(cls, args, inputs):
    torch.manual_seed(0)
    tm, mm = getattr(torch.nn, cls)(*args).double(), getattr(mg.nn, cls)(*args).double()
    assert list(mm.state_dict()) == list(tm.state_dict())
    mm.load_state_dict({k: mg.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    if inputs is None:
        t_in, m_in = [torch.tensor(IDS), torch.tensor(OFFS)], [mg.tensor(IDS), mg.tensor(OFFS)]
    else:
        r = np.random.default_rng(0)
        arrs = [r.standard_normal(s) for s in inputs]
        t_in = [torch.tensor(a, requires_grad=True) for a in arrs]
        m_in = [mg.tensor(a, requires_grad=True) for a in arrs]
    ty, my = tm(*t_in), mm(*m_in)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
    ty.sum().backward()
    my.sum().backward()
    for (n, tp), (_, mp) in zip(tm.named_parameters(), mm.named_parameters()):
        np.testing.assert_allclose(mp.grad.numpy(), tp.grad.numpy(), rtol=1e-10, err_msg=n)
    assert repr(mm) == repr(tm)


def test_dropout_modules_follow_training_flag():
    for cls in ("Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"):
        m = getattr(mg.nn, cls)(0.5)
        shape = {"Dropout1d": (2, 4, 3), "Dropout3d": (2, 4, 3, 3, 3)}.get(cls, (2, 4, 3, 3))
        x = mg.randn(*shape)
        assert not np.allclose(m(x).numpy(), x.numpy())
        m.eval()
        assert m(x) is x
        assert repr(m) == repr(getattr(torch.nn, cls)(0.5))


def test_embedding_bag_from_pretrained():
    w = np.random.default_rng(4).standard_normal((6, 3))
    t = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(w), mode="sum")
    m = mg.nn.EmbeddingBag.from_pretrained(mg.tensor(w), mode="sum")
    assert not m.weight.requires_grad
    ids, offs = np.array([1, 2, 5, 0]), np.array([0, 1])
    np.testing.assert_allclose(m(mg.tensor(ids), mg.tensor(offs)).numpy(),
                               t(torch.tensor(ids), torch.tensor(offs)).numpy())  # fmt: skip
