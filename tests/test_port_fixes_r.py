"""Fixes found by the ports of round s (tests/ports/scripts), each against PyTorch."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("make", [lambda lib: lib.arange(3), lambda lib: lib.tensor(1.5)])
def test_index_of_a_tensor_that_is_no_single_integer_is_a_type_error(make):
    # PyTorch: TypeError, which code that falls back on a loop catches
    for lib in (torch, mg):
        with pytest.raises(TypeError, match="only integer tensors of a single element"):
            [1, 2, 3][make(lib)]
    x = mg.zeros(4, 5)
    with pytest.raises(TypeError, match="converted to an index"):
        x[:, : 2 + mg.arange(2)]
    assert [1, 2, 3][mg.tensor(2)] == 3 and [1, 2, 3][torch.tensor(2)] == 3


def test_initialisers_on_meta_tensors_compute_nothing_and_still_check():
    with mg.device("meta"):
        w = mg.empty(64, 96)
    state = mg.get_rng_state()
    for fn in (mg.nn.init.trunc_normal_, mg.nn.init.orthogonal_):
        assert fn(w) is w and w.is_meta
    assert bool((mg.get_rng_state() == state).all())  # no draws either
    with pytest.raises(ValueError, match="2 or more dimensions"):
        mg.nn.init.orthogonal_(mg.empty(3, device="meta"))


def test_trunc_normal_values_stay_in_bounds_with_the_right_moments():
    mg.manual_seed(0)
    w = mg.nn.init.trunc_normal_(mg.empty(200, 500), mean=0.5, std=1.0, a=-1.0, b=1.5)
    a = w.numpy()
    want = torch.distributions.Normal(0.5, 1.0)
    lo, hi = want.cdf(torch.tensor(-1.0)).item(), want.cdf(torch.tensor(1.5)).item()
    assert a.min() >= -1.0 and a.max() <= 1.5
    # the truncated normal's mean: mu + sigma * (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    pdf = lambda z: float(torch.exp(-(torch.tensor(z) ** 2) / 2)) / (2 * 3.141592653589793) ** 0.5  # noqa: E731
    mean = 0.5 + (pdf(-1.5) - pdf(1.0)) / (hi - lo)
    assert abs(a.mean() - mean) < 0.01


def test_top_level_in_place_forms_and_aliases():
    for lib in (torch, mg):
        x = lib.zeros(2)
        assert lib.resize_as_(x, lib.zeros(3)) is x and tuple(x.shape) == (3,)
        y = lib.ones(2)
        assert lib.i0_(y) is y and abs(float(y[0]) - 1.2660658) < 1e-6
        z = lib.arange(6.0)
        assert lib.as_strided_(z, (2,), (2,)) is z and z.tolist() == [0.0, 2.0]
        parts = lib.unsafe_split_with_sizes(lib.arange(4), [1, 3])
        assert [p.tolist() for p in parts] == [[0], [1, 2, 3]]
        assert lib.wait(lib.fork(lambda a: a + 1, 1)) == 2
        c = lib.tensor([1 + 2j])
        assert lib.conj_physical_(c) is c and c.imag.item() == -2.0


def test_index_reduce_warns_once_that_it_is_in_beta(monkeypatch):
    from manygrad.ops import compat_ops

    monkeypatch.setattr(compat_ops, "_BETA_WARNED", [])
    with pytest.warns(UserWarning, match=r"index_reduce\(\) is in beta"):
        mg.zeros(3).index_reduce_(0, mg.tensor([0, 0]), mg.ones(2), "amax")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = mg.zeros(3).index_reduce(0, mg.tensor([0, 2]), mg.ones(2), "prod")
    assert got.tolist() == [0.0, 0.0, 0.0]


def test_detect_anomaly_warns_in_pytorch_words():
    for lib in (torch, mg):
        with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
            mode = lib.autograd.detect_anomaly()
        with mode:
            assert lib.is_anomaly_enabled()
        assert not lib.is_anomaly_enabled()


def test_custom_function_nodes_keep_next_functions_after_backward():
    def leaves(fn, seen):
        if fn is None or fn in seen:
            return 0
        seen.add(fn)
        own = int(type(fn).__name__ == "AccumulateGrad")
        return own + sum(leaves(n, seen) for n, _ in fn.next_functions)

    for lib in (torch, mg):

        class Twice(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 2

            @staticmethod
            def backward(ctx, g):
                return g * 2

        w = lib.ones(3, requires_grad=True)
        b = lib.ones(3, requires_grad=True)
        loss = Twice.apply(w * b).sum()
        before = leaves(loss.grad_fn, set())
        loss.backward()
        assert before == leaves(loss.grad_fn, set()) == 2
        with pytest.raises(RuntimeError):
            loss.backward()  # the saved state is gone, as in PyTorch


def test_channel_dropout_ranks_follow_pytorch():
    import warnings

    for lib in (torch, mg):
        F = lib.nn.functional
        with pytest.raises(
            RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D"
        ):
            F.dropout1d(lib.ones(2, 3, 4, 5), 0.5, training=False)  # even in eval
        with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
            F.dropout2d(lib.ones(2, 3, 4), 0.5, training=False)
        with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d"):
            F.dropout2d(lib.ones(2, 3, 4, 5, 6), 0.5, training=False)
        with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
            out = F.dropout3d(lib.ones(6, 50, 4), 0.5)
        # unbatched: one draw per slice of the first dim
        a = out.numpy().reshape(6, -1)
        assert all(len(set(row.tolist())) == 1 for row in a)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            b = F.dropout3d(lib.ones(4, 30, 2, 2), 0.5).numpy().reshape(4, -1)  # (C, D, H, W)
            assert all(len(set(row.tolist())) == 1 for row in b)
            c = F.dropout1d(lib.ones(7, 40), 0.5).numpy()  # (C, L)
            assert all(len(set(row.tolist())) == 1 for row in c)


@pytest.mark.parametrize("device", ["cpu", "fakegpu"])
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cumulative_extremes_of_bfloat16_keep_nan(device, name):
    vals = [1.0, float("nan"), 0.5, 2.0, -1.0]
    want = getattr(torch, name)(torch.tensor(vals, dtype=torch.bfloat16), 0)
    got = getattr(mg, name)(mg.tensor(vals, dtype=mg.bfloat16, device=device), 0)
    np.testing.assert_array_equal(got.values.float().cpu().numpy(), want.values.float().numpy())
    assert got.indices.cpu().tolist() == want.indices.tolist()
