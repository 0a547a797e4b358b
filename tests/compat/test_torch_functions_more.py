"""PyTorch's top-level nn ops, *_copy view ops, low-rank SVD and legacy Tensor methods,
compared with PyTorch."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


def R(*s):  # noqa: N802
    return np.random.RandomState(sum(s) * 7 + len(s)).randn(*s).astype(np.float32)


X2, X4, X5 = R(4, 5), R(2, 4, 4, 4), R(1, 2, 4, 4, 4)
CASES = {
    "selu": lambda lib, mk: lib.selu(mk(X2)),
    "selu_": lambda lib, mk: lib.selu_(mk(X2)),
    "celu": lambda lib, mk: lib.celu(mk(X2), 0.5),
    "celu_": lambda lib, mk: lib.celu_(mk(X2)),
    "rrelu_eval": lambda lib, mk: lib.rrelu(mk(X2)),
    "prelu": lambda lib, mk: lib.prelu(mk(X4), mk(np.array([0.1, 0.2, 0.3, 0.4], np.float32))),
    "threshold": lambda lib, mk: lib.threshold(mk(X2), 0.1, 20.0),
    "threshold_": lambda lib, mk: lib.threshold_(mk(X2), 0.1, 20.0),
    "hardshrink": lambda lib, mk: lib.hardshrink(mk(X2), 0.3),
    "pdist": lambda lib, mk: lib.pdist(mk(X2), 3),
    "cosine_similarity": lambda lib, mk: lib.cosine_similarity(mk(X2), mk(X2[::-1].copy())),
    "pairwise_distance": lambda lib, mk: lib.pairwise_distance(mk(X2), mk(X2[::-1].copy()), 1.5),
    "pixel_shuffle": lambda lib, mk: lib.pixel_shuffle(mk(X4), 2),
    "pixel_unshuffle": lambda lib, mk: lib.pixel_unshuffle(mk(X4), 2),
    "channel_shuffle": lambda lib, mk: lib.channel_shuffle(mk(X4), 2),
    "bilinear": lambda lib, mk: lib.bilinear(mk(R(3, 2)), mk(R(3, 4)), mk(R(5, 2, 4)), mk(R(5))),
    "conv3d": lambda lib, mk: lib.conv3d(mk(X5), mk(R(3, 2, 2, 2, 2)), None, 1, 1),
    "conv_transpose3d": lambda lib, mk: lib.conv_transpose3d(
        mk(X5), mk(R(2, 3, 2, 2, 2)), stride=2
    ),
    "conv_tbc": lambda lib, mk: lib.conv_tbc(mk(R(5, 2, 3)), mk(R(3, 3, 4)), mk(R(4)), 1),
    "instance_norm": lambda lib, mk: lib.instance_norm(
        mk(X4),
        mk(np.ones(4, np.float32)),
        mk(np.zeros(4, np.float32)),
        None,
        None,
        True,
        0.1,
        1e-5,
        False,
    ),  # fmt: skip
    "view_copy": lambda lib, mk: lib.view_copy(mk(X2), (5, 4)),
    "permute_copy": lambda lib, mk: lib.permute_copy(mk(X4), (3, 2, 1, 0)),
    "t_copy": lambda lib, mk: lib.t_copy(mk(X2)),
    "transpose_copy": lambda lib, mk: lib.transpose_copy(mk(X4), 0, 2),
    "squeeze_copy": lambda lib, mk: lib.squeeze_copy(mk(R(1, 3, 1))),
    "unsqueeze_copy": lambda lib, mk: lib.unsqueeze_copy(mk(X2), 1),
    "select_copy": lambda lib, mk: lib.select_copy(mk(X2), 1, 2),
    "slice_copy": lambda lib, mk: lib.slice_copy(mk(X2), 1, 1, 4, 2),
    "diagonal_copy": lambda lib, mk: lib.diagonal_copy(mk(X2), 1),
    "detach_copy": lambda lib, mk: lib.detach_copy(mk(X2)),
    "expand_copy": lambda lib, mk: lib.expand_copy(mk(R(1, 3)), (4, 3)),
    "unbind_copy": lambda lib, mk: lib.unbind_copy(mk(X2), 1)[2],
    "split_copy": lambda lib, mk: lib.split_copy(mk(X2), 2, 1)[1],
    "split_with_sizes_copy": lambda lib, mk: lib.split_with_sizes_copy(mk(X2), [2, 3], 1)[1],
    "unfold_copy": lambda lib, mk: lib.unfold_copy(mk(X2), 1, 2, 1),
    "as_strided_copy": lambda lib, mk: lib.as_strided_copy(mk(X2), (2, 2), (1, 2)),
    "alias_copy": lambda lib, mk: lib.alias_copy(mk(X2)),
    "view_as_real_copy": lambda lib, mk: lib.view_as_real_copy(
        mk(np.array([1 + 2j], np.complex64))
    ),
    "qr": lambda lib, mk: mk(X2).qr()[1].abs(),
    "svd": lambda lib, mk: mk(X2).svd()[1],
    "cfloat": lambda lib, mk: lib.view_as_real(mk(X2).cfloat()),
    "new_data": lambda lib, mk: mk(X2).new([1, 2]),
    "nonzero_static": lambda lib, mk: mk(np.array([0, 3, 0, 5])).nonzero_static(size=3),
    "i0_": lambda lib, mk: mk(np.array([1.5, 2.0], np.float32)).i0_(),
    "igamma_": lambda lib, mk: mk(np.array([1.5], np.float32)).igamma_(
        mk(np.array([2.0], np.float32))
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(device, case):
    got = CASES[case](mg, lambda a: mg.tensor(a, device=device))
    want = CASES[case](torch, torch.tensor)
    assert got.device == mg.device(device)
    assert got.dtype.name == str(want.dtype)[6:]
    np.testing.assert_allclose(got.detach().cpu().numpy(), want.detach().numpy(), rtol=1e-4,
                               atol=1e-5)  # fmt: skip


def test_copies_share_no_memory():
    x = mg.arange(6.0).reshape(2, 3)
    mg.transpose_copy(x, 0, 1).add_(1)
    mg.diagonal_copy(x).mul_(0)
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_low_rank_svd_is_exact():
    a = mg.tensor(R(20, 8))
    u, s, v = mg.svd_lowrank(a, q=3)
    np.testing.assert_allclose(s.numpy(), mg.linalg.svdvals(a)[:3].numpy(), rtol=1e-5)
    assert u.shape == (20, 3) and v.shape == (8, 3)
    _, s, _ = mg.pca_lowrank(a, q=2)
    centred = a - a.mean(0, keepdim=True)
    np.testing.assert_allclose(s.numpy(), mg.linalg.svdvals(centred)[:2].numpy(), rtol=1e-5)


def test_anomaly_switches_and_binomial():
    assert not mg.is_anomaly_enabled()
    mg.set_anomaly_enabled(True)
    try:
        assert mg.is_anomaly_enabled()
    finally:
        mg.set_anomaly_enabled(False)
    counts = mg.binomial(mg.full((2000,), 10.0), mg.full((2000,), 0.3))
    assert counts.dtype is mg.float32 and 0 <= counts.min().item() and counts.max().item() <= 10
    assert abs(counts.mean().item() - 3.0) < 0.15


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
def test_where_with_only_a_condition_gives_indices(device):
    c = np.array([[0, 2], [1, 0], [2, 1]]) == 0
    got = mg.where(mg.tensor(c, device=device))
    want = torch.where(torch.tensor(c))
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        assert g.dtype is mg.int64
        np.testing.assert_array_equal(g.cpu().numpy(), w.numpy())
    assert [t.tolist() for t in mg.where(mg.tensor(True))] == [[0]]
    with pytest.raises(TypeError, match="give both input and other"):
        mg.where(mg.tensor(c), mg.tensor(1.0))
