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
def test_adaptive_max_pool(name, shape, size):
    check_op(name, [shape], output_size=size, torch_fn=getattr(torch.nn.functional, name))


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
    with pytest.raises(NotImplementedError, match="return_indices"):
        F.adaptive_max_pool2d(mg.randn(1, 1, 4, 4), 2, return_indices=True)
    with pytest.raises(mg.errors.ShapeError, match="groups"):
        F.channel_shuffle(mg.randn(1, 5, 2, 2), 2)
