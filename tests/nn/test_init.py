"""``mg.nn.init``: gains and fans equal PyTorch's formulas; samples have the right
statistics; everything happens in place, on the tensor's own device, without host syncs."""

import math

import numpy as np
import pytest

import manygrad as mg
import manygrad.nn as nn
from manygrad.nn import init

torch = pytest.importorskip("torch", reason="PyTorch (CPU build) is the test oracle")


@pytest.mark.parametrize("name,param", [
    ("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
    ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None),
])  # fmt: skip
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param), rel=1e-12
    )


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(3, 4), (8, 3, 5, 5), (4, 2, 3), (6, 1, 2, 2, 2)])
def test_fans_match_torch(shape):
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(mg.empty(*shape)) == expected


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(mg.empty(5))


SHAPE = (256, 128, 3)  # fan_in 384, fan_out 768; ~98k samples


def _uniform_std(bound):
    return 2 * bound / math.sqrt(12)


CASES = [
    (lambda t: init.uniform_(t, -0.5, 1.5), 0.5, _uniform_std(1.0), (-0.5, 1.5)),
    (lambda t: init.normal_(t, 1.0, 0.3), 1.0, 0.3, None),
    (lambda t: init.xavier_uniform_(t, gain=2.0), 0.0, 2.0 * math.sqrt(2 / (384 + 768)),
     (-2.0 * math.sqrt(6 / (384 + 768)), 2.0 * math.sqrt(6 / (384 + 768)))),
    (lambda t: init.xavier_normal_(t), 0.0, math.sqrt(2 / (384 + 768)), None),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 0.0, 1 / math.sqrt(3 * 384),
     (-1 / math.sqrt(384), 1 / math.sqrt(384))),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), 0.0,
     math.sqrt(2 / 768), None),
]  # fmt: skip


@pytest.mark.parametrize("fn,mean,std,bounds", CASES, ids=[str(i) for i in range(len(CASES))])
def test_init_statistics_in_place_on_device(fn, mean, std, bounds, device):
    p = nn.Parameter(mg.zeros(*SHAPE, device=device))
    arr = p._data
    mg.backend.fake_stats.reset()
    out = fn(p)
    assert mg.backend.fake_stats.syncs == 0 and mg.backend.fake_stats.h2d == 0
    assert out is p and p._data is arr and p.device == mg.device(device)
    assert p.requires_grad and p.grad_fn is None and p.dtype == mg.float32
    v = p.detach().cpu().numpy().astype(np.float64)
    n = v.size
    assert abs(v.mean() - mean) < 5 * std / math.sqrt(n)
    assert v.std() == pytest.approx(std, rel=0.02)
    if bounds is not None:
        assert v.min() >= bounds[0] and v.max() <= bounds[1]
        assert v.min() < bounds[0] + 0.01 * (bounds[1] - bounds[0])


def test_trunc_normal_statistics(device):
    stats = pytest.importorskip("scipy.stats", reason="scipy gives the reference distribution")

    t = mg.zeros(200, 500, device=device, dtype=mg.float64)
    init.trunc_normal_(t, mean=0.5, std=2.0, a=-1.0, b=3.0)
    v = t.cpu().numpy()
    dist = stats.truncnorm((-1.0 - 0.5) / 2.0, (3.0 - 0.5) / 2.0, loc=0.5, scale=2.0)
    assert v.min() >= -1.0 and v.max() <= 3.0
    assert abs(v.mean() - dist.mean()) < 5 * dist.std() / math.sqrt(v.size)
    assert v.std() == pytest.approx(dist.std(), rel=0.02)
    # the shape of the distribution, not only its moments
    assert stats.kstest(v.ravel()[:5000], dist.cdf).pvalue > 1e-4


def test_trunc_normal_small_std():
    t = mg.zeros(100_000)
    init.trunc_normal_(t, std=0.02)
    v = t.numpy()
    assert np.abs(v).max() <= 2.0 and v.std() == pytest.approx(0.02, rel=0.02)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3)])
def test_orthogonal(shape, device):
    t = mg.zeros(*shape, device=device, dtype=mg.float64)
    init.orthogonal_(t, gain=2.0)
    m = t.cpu().numpy().reshape(shape[0], -1)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-10)


def test_constant_ones_zeros_eye(device):
    t = mg.empty(3, 4, device=device)
    np.testing.assert_array_equal(init.constant_(t, 0.25).cpu().numpy(), np.full((3, 4), 0.25))
    np.testing.assert_array_equal(init.ones_(t).cpu().numpy(), np.ones((3, 4)))
    np.testing.assert_array_equal(init.zeros_(t).cpu().numpy(), np.zeros((3, 4)))
    np.testing.assert_array_equal(init.eye_(t).cpu().numpy(), np.eye(3, 4))


def test_half_precision_and_reproducible():
    mg.manual_seed(3)
    a = init.normal_(mg.empty(1000, dtype=mg.float16)).numpy().copy()
    mg.manual_seed(3)
    b = init.normal_(mg.empty(1000, dtype=mg.float16)).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float16 and 0.9 < a.astype(np.float32).std() < 1.1


def test_zero_element_tensor_is_a_no_op():
    with pytest.warns(UserWarning):
        init.kaiming_uniform_(mg.empty(0, 3))


@pytest.mark.parametrize("make,fan_in", [
    (lambda: nn.Linear(300, 200), 300),
    (lambda: nn.Conv2d(16, 64, 5), 16 * 25),
    (lambda: nn.ConvTranspose2d(16, 48, 3), 48 * 9),
    (lambda: nn.Conv1d(8, 256, 7, groups=4), 2 * 7),
])  # fmt: skip
def test_default_layer_init_matches_torch_distribution(make, fan_in):
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    w = layer.weight.detach().numpy()
    b = layer.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_default_init_of_norms_embeddings_attention():
    bn, ln = nn.BatchNorm2d(4), nn.LayerNorm(6)
    assert np.all(bn.weight.detach().numpy() == 1) and np.all(bn.bias.detach().numpy() == 0)
    assert np.all(ln.weight.detach().numpy() == 1) and np.all(ln.bias.detach().numpy() == 0)
    assert np.all(bn.running_var.numpy() == 1) and np.all(bn.running_mean.numpy() == 0)
    emb = nn.Embedding(1000, 64).weight.detach().numpy()
    assert abs(emb.mean()) < 0.02 and emb.std() == pytest.approx(1.0, rel=0.03)
    mha = nn.MultiheadAttention(64, 4)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0)
    assert np.all(mha.out_proj.bias.detach().numpy() == 0)
    w = mha.in_proj_weight.detach().numpy()
    assert np.abs(w).max() <= math.sqrt(6 / (64 + 192))
