"""Fixes found by the ports of round s (tests/ports/scripts), each against PyTorch."""

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
