"""torch.special's Bessel, incomplete-gamma, zeta and polynomial functions, erfcx and an
accurate erfc: values over wide ranges (series, asymptotic and quadrature regimes and their
seams) and gradients against PyTorch, on every device."""

import numpy as np
import pytest

import manygrad as mg
from opcheck import check_op

torch = pytest.importorskip("torch")
MS, TS = mg.special, torch.special

WIDE = np.concatenate([np.linspace(-40, 40, 161),
                       [1e-8, 0.3, 1.99, 2.0, 2.01, 29.9, 30.0, 30.1, 100.0, 500.0, 700.0]])  # fmt: skip
POS = np.concatenate([np.linspace(1e-3, 50, 200),
                      [1e-6, 1.999, 2.0, 2.001, 29.99, 30.0, 30.01, 300.0, 700.0]])  # fmt: skip
UNARY = [
    ("i0", WIDE), ("i0e", WIDE), ("i1", WIDE), ("i1e", WIDE), ("erfcx", np.linspace(-26, 60, 300)),
    ("modified_bessel_i0", WIDE), ("modified_bessel_i1", WIDE),
    ("modified_bessel_k0", POS), ("modified_bessel_k1", POS),
    ("scaled_modified_bessel_k0", POS), ("scaled_modified_bessel_k1", POS),
    ("spherical_bessel_j0", WIDE), ("erfc", np.linspace(-6, 27, 200)),
]  # fmt: skip


@pytest.mark.parametrize("name,x", UNARY, ids=[n for n, _ in UNARY])
def test_values_over_every_regime(name, x, device):
    got = getattr(MS, name)(mg.tensor(x, device=device)).cpu().numpy()
    want = getattr(TS, name)(torch.tensor(x)).numpy()
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(got[fin], want[fin], rtol=2e-14, atol=1e-300)


def test_float32_keeps_its_dtype_and_tiny_tails():
    x = np.array([0.5, 5.0, 9.0, 12.0], np.float32)
    got = MS.erfc(mg.tensor(x))
    assert got.dtype is mg.float32
    np.testing.assert_allclose(got.numpy(), TS.erfc(torch.tensor(x)).numpy(), rtol=1e-6)
    assert float(got[-2]) > 0  # 4e-37: representable in float32, not 1 - erf's 0


@pytest.mark.parametrize("name", ["i0", "i0e", "i1", "i1e", "erfcx"])
def test_gradients(name):
    check_op(getattr(MS, name), [(3, 4)], torch_fn=getattr(TS, name), domain=(-3.0, 3.0),
             double=False)  # fmt: skip
    # NOTE: the asymptotic regime (values up to 1e18: against PyTorch, not finite differences)
    check_op(getattr(MS, name), [(5,)], torch_fn=getattr(TS, name), domain=(20.0, 45.0),
             double=False, dtypes=("float64",), fd=False)  # fmt: skip


def test_incomplete_gamma_values_and_gradient_in_x():
    rng = np.random.default_rng(0)
    a, x = rng.uniform(0.1, 20, 500), rng.uniform(0, 40, 500)
    for mfn, tfn in ((MS.gammainc, TS.gammainc), (MS.gammaincc, TS.gammaincc)):
        got = mfn(mg.tensor(a), mg.tensor(x)).numpy()
        np.testing.assert_allclose(got, tfn(torch.tensor(a), torch.tensor(x)).numpy(),
                                   rtol=1e-12, atol=1e-14)  # fmt: skip
    shape = np.abs(rng.standard_normal((3, 4))) + 0.5
    for mfn, tfn in ((MS.gammainc, TS.gammainc), (MS.gammaincc, TS.gammaincc)):
        check_op(lambda x, f=mfn: f(mg.tensor(shape, dtype=x.dtype, device=x.device), x),
                 [(3, 4)], torch_fn=lambda x, f=tfn: f(torch.tensor(shape, dtype=x.dtype), x),
                 domain=(0.1, 4.0), double=False)  # fmt: skip
    edges = mg.special.gammainc(mg.tensor([1.0, 1.0, -1.0]), mg.tensor([0.0, float("inf"), 1.0]))
    np.testing.assert_array_equal(edges.numpy()[:2], [0.0, 1.0])
    assert np.isnan(edges.numpy()[2])
    a_req = mg.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError, match="respect to a"):
        MS.gammainc(a_req, mg.tensor([1.0])).sum().backward()


def test_zeta_values_and_gradient_in_q():
    rng = np.random.default_rng(1)
    s, q = rng.uniform(1.01, 10, 300), rng.uniform(0.01, 10, 300)
    np.testing.assert_allclose(MS.zeta(mg.tensor(s), mg.tensor(q)).numpy(),
                               TS.zeta(torch.tensor(s), torch.tensor(q)).numpy(), rtol=1e-13)  # fmt: skip
    edge_s = np.array([1.0, 0.5, 2.0, 2.0, 3.0, 4.0, 2.5])
    edge_q = np.array([1.0, 1.0, -1.0, -1.5, -0.3, -11.5, -0.5])
    np.testing.assert_allclose(
        MS.zeta(mg.tensor(edge_s), mg.tensor(edge_q)).numpy(),
        TS.zeta(torch.tensor(edge_s), torch.tensor(edge_q)).numpy(),
        rtol=1e-13,
    )
    check_op(lambda q: MS.zeta(mg.tensor(3.0, dtype=q.dtype, device=q.device), q), [(2, 3)],
             torch_fn=lambda q: TS.zeta(torch.tensor(3.0, dtype=q.dtype), q),
             domain=(0.5, 3.0), double=False)  # fmt: skip


POLYS = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v",
         "chebyshev_polynomial_w", "shifted_chebyshev_polynomial_t",
         "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
         "laguerre_polynomial_l", "legendre_polynomial_p"]  # fmt: skip


@pytest.mark.parametrize("name", POLYS)
def test_orthogonal_polynomials(name, device):
    x = np.linspace(-1.2, 1.2, 25)
    n = np.arange(-1, 12)[:, None].astype(np.float64)
    got = getattr(MS, name)(mg.tensor(x, device=device), mg.tensor(n, device=device))
    want = getattr(TS, name)(torch.tensor(x), torch.tensor(n)).numpy()
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12, atol=1e-12)
    scalar_n = getattr(MS, name)(mg.tensor(x), 3).numpy()
    np.testing.assert_allclose(scalar_n, getattr(TS, name)(torch.tensor(x), 3).numpy(),
                               rtol=1e-12, atol=1e-12)  # fmt: skip


def test_top_level_names_and_methods():
    x = mg.tensor([0.5, 2.0])
    # NOTE: float32 results are the float64 values rounded (PyTorch's float32 code differs
    # in the last bit)
    np.testing.assert_allclose(mg.i0(x).numpy(), torch.i0(torch.tensor([0.5, 2.0])).numpy(),
                               rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(x.igamma(x).numpy(), torch.tensor([0.5, 2.0]).igamma(
        torch.tensor([0.5, 2.0])).numpy(), rtol=1e-6)  # fmt: skip
