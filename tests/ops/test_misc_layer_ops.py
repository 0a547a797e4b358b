"""Adaptive max pooling, channel_shuffle, rrelu, gumbel_softmax and Softmax2d."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
F = mg.nn.functional


@pytest.mark.parametrize(
    "name, shape, size",
    [("adaptive_max_pool1d", (2, 3, 10), 4), ("adaptive_max_pool1d", (3, 7), 7),
     ("adaptive_max_pool2d", (2, 3, 7, 9), (2, 4)), ("adaptive_max_pool2d", (3, 5, 5), 1),
     ("adaptive_max_pool2d", (1, 2, 6, 5), (None, 3)),
     ("adaptive_max_pool3d", (1, 2, 5, 6, 7), (2, 3, 4)), ("adaptive_max_pool3d", (2, 4, 4, 4), 3)],
)  # fmt: skip
@pytest.mark.parametrize("return_indices", [False, True])
def test_adaptive_max_pool(name, shape, size, return_indices):
    check_op(name, [shape], output_size=size, return_indices=return_indices,
             torch_fn=getattr(torch.nn.functional, name))  # fmt: skip


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 3), 3), ((1, 8, 5), 2), ((2, 4, 2, 2, 2), 4)])
def test_channel_shuffle(shape, groups):
    check_op("channel_shuffle", [shape], groups=groups, torch_fn=torch.nn.functional
             .channel_shuffle if hasattr(torch.nn.functional, "channel_shuffle") else None)  # fmt: skip


@pytest.mark.parametrize("kw", [{}, dict(lower=0.05, upper=0.4)])
def test_rrelu_eval(kw):
    check_op("rrelu", [(3, 5)], **kw)


def test_rrelu_training_slopes():
    mg.manual_seed(0)
    x = mg.tensor(-np.ones((200, 50)), requires_grad=True)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = -y.detach().numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.05
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes)  # the drawn slope is the gradient
    pos = mg.ones(3, 3)
    np.testing.assert_array_equal(F.rrelu(pos, training=True).numpy(), pos.numpy())


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax(hard):
    mg.manual_seed(0)
    logits = mg.tensor(np.log([[0.7, 0.2, 0.1]] * 4000), requires_grad=True)
    y = F.gumbel_softmax(logits, tau=0.5, hard=hard)
    v = y.detach().numpy()
    np.testing.assert_allclose(v.sum(-1), 1.0, rtol=1e-6)
    if hard:
        assert set(np.unique(v)) == {0.0, 1.0}
        freq = v.mean(0)
        np.testing.assert_allclose(freq, [0.7, 0.2, 0.1], atol=0.03)  # samples follow p
    w = mg.tensor(np.random.default_rng(0).standard_normal((4000, 3)))
    (y * w).sum().backward()
    assert logits.grad is not None and np.isfinite(logits.grad.numpy()).all()
    assert np.abs(logits.grad.numpy()).sum() > 0  # the soft sample's gradient flows


@pytest.mark.parametrize(
    "cls, args, shape",
    [("AdaptiveMaxPool1d", (3,), (2, 3, 8)), ("AdaptiveMaxPool2d", ((2, 3),), (1, 2, 5, 7)),
     ("AdaptiveMaxPool3d", (2,), (1, 2, 4, 5, 3)), ("ChannelShuffle", (2,), (1, 4, 3, 3)),
     ("Softmax2d", (), (2, 3, 4, 4)), ("RReLU", (), (3, 4))],
)  # fmt: skip
def test_modules(cls, args, shape):
    x = np.random.default_rng(1).standard_normal(shape)
    tm, mm = getattr(torch.nn, cls)(*args).eval(), getattr(mg.nn, cls)(*args).eval()
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    ty, my = tm(tx), mm(mx)
    np.testing.assert_allclose(my.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
    u = np.random.default_rng(2).standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(u))
    my.backward(mg.tensor(u))
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert repr(mm) == repr(tm)


def test_bad_input():
    with pytest.raises(mg.errors.ShapeError, match="groups"):
        F.channel_shuffle(mg.randn(1, 5, 2, 2), 2)


@pytest.mark.parametrize(
    "name, shape, args, kw",
    [("lp_pool1d", (2, 3, 9), (2.0, 3), {}), ("lp_pool1d", (2, 3, 9), (3.0, 2), dict(stride=1)),
     ("lp_pool2d", (2, 3, 6, 7), (2.0, 3), dict(stride=2)),
     ("lp_pool2d", (1, 2, 5, 5), (1.5, [2, 3]), dict(ceil_mode=True, stride=2)),
     ("lp_pool3d", (1, 2, 4, 5, 4), (2.0, 2), {})],
)  # fmt: skip
def test_lp_pool(name, shape, args, kw):
    check_op(name, [shape, *args], domain=(0.2, 2.0), **kw)


MLM_T = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 0, 0, 0, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin(reduction):
    check_op("multilabel_margin_loss", [(3, 5), MLM_T], reduction=reduction)
    check_op("multilabel_margin_loss", [(5,), MLM_T[0]], reduction=reduction)


def _cos_dist(lib):
    return lambda x, y: 1 - lib.nn.functional.cosine_similarity(x, y)


@pytest.mark.parametrize("kw", [{}, dict(margin=0.5, swap=True), dict(reduction="none")])
@pytest.mark.parametrize("cosine", [False, True])
def test_triplet_with_distance(kw, cosine):
    def fn(lib):
        f = lib.nn.functional.triplet_margin_with_distance_loss
        dist = _cos_dist(lib) if cosine else None
        return lambda a, p, n, **k: f(a, p, n, distance_function=dist, **k)

    check_op(fn(mg), [(4, 6), (4, 6), (4, 6)], torch_fn=fn(torch), **kw)


def test_loss_and_pool_modules():
    x = np.random.default_rng(3).uniform(0.1, 2, (2, 3, 6, 6))
    for cls, args in (("LPPool2d", (2, 2)), ("LPPool1d", (3, 2))):
        xi = x[..., 0] if cls == "LPPool1d" else x
        t = getattr(torch.nn, cls)(*args)(torch.tensor(xi)).numpy()
        m = getattr(mg.nn, cls)(*args)(mg.tensor(xi)).numpy()
        np.testing.assert_allclose(m, t, rtol=1e-10)
    a, p, n = (np.random.default_rng(i).standard_normal((4, 6)) for i in range(3))
    t = torch.nn.TripletMarginWithDistanceLoss(margin=0.7)(*map(torch.tensor, (a, p, n)))
    m = mg.nn.TripletMarginWithDistanceLoss(margin=0.7)(*map(mg.tensor, (a, p, n)))
    np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-10)
    t = torch.nn.MultiLabelMarginLoss()(torch.tensor(a[:3, :5]), torch.tensor(MLM_T))
    m = mg.nn.MultiLabelMarginLoss()(mg.tensor(a[:3, :5]), mg.tensor(MLM_T))
    np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-10)


def _pool_indices(shape, k, nd):
    x = torch.tensor(np.random.default_rng(5).standard_normal(shape))
    pool = (torch.nn.functional.max_pool1d, torch.nn.functional.max_pool2d,
            torch.nn.functional.max_pool3d)[nd - 1]  # fmt: skip
    y, i = pool(x, k, return_indices=True)
    return tuple(y.shape), i.numpy()


@pytest.mark.parametrize(
    "name, shape, k, kw",
    [("max_unpool1d", (2, 3, 8), 2, {}), ("max_unpool2d", (2, 3, 6, 8), 2, {}),
     ("max_unpool2d", (2, 3, 6, 7), 2, dict(output_size=(6, 7))),
     ("max_unpool3d", (1, 2, 4, 4, 6), 2, {})],
)  # fmt: skip
def test_max_unpool(name, shape, k, kw):
    nd = int(name[-2])
    yshape, idx = _pool_indices(shape, k, nd)
    check_op(name, [yshape, idx, k], torch_fn=getattr(torch.nn.functional, name), **kw)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_pdist(p):
    check_op("pdist", [(5, 3)], p=p)


def test_unpool_module_and_with_indices():
    x = np.random.default_rng(6).standard_normal((1, 2, 4, 6))
    ty, ti = torch.nn.functional.max_pool2d_with_indices(torch.tensor(x), 2)
    my, mi = F.max_pool2d_with_indices(mg.tensor(x), 2)
    np.testing.assert_array_equal(mi.numpy(), ti.numpy())
    t = torch.nn.MaxUnpool2d(2)(ty, ti)
    m = mg.nn.MaxUnpool2d(2)(my, mi)
    np.testing.assert_array_equal(m.numpy(), t.numpy())
    assert repr(mg.nn.MaxUnpool2d(2)) == repr(torch.nn.MaxUnpool2d(2))
