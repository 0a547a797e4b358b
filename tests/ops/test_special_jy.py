"""special.bessel_j0/j1/y0/y1 against high-precision references (mpmath) over the series,
recurrence and asymptotic regimes and their seams, and against PyTorch (whose own values
are within ~4e-7 in the middle range), on every device."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
mpmath = pytest.importorskip("mpmath")

XS = np.concatenate([np.linspace(0.01, 60, 300),
                     [1e-8, 7.999, 8.0, 8.001, 24.99, 25.0, 25.01, 100.0, 1000.0, 1e5]])  # fmt: skip
FUNCS = [("bessel_j0", mpmath.besselj, 0), ("bessel_j1", mpmath.besselj, 1),
         ("bessel_y0", mpmath.bessely, 0), ("bessel_y1", mpmath.bessely, 1)]  # fmt: skip


@pytest.mark.parametrize("name,ref,order", FUNCS, ids=[f[0] for f in FUNCS])
def test_bessel_j_and_y(name, ref, order, device):
    mpmath.mp.dps = 30
    want = np.array([float(ref(order, x)) for x in XS])
    got = getattr(mg.special, name)(mg.tensor(XS, device=device)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=5e-14)
    torch_vals = getattr(torch.special, name)(torch.tensor(XS)).numpy()
    np.testing.assert_allclose(got, torch_vals, rtol=1e-5, atol=1e-6)  # PyTorch: ~4e-7 near 5
    edge = getattr(mg.special, name)(mg.tensor([-2.0, 0.0], device=device)).cpu().numpy()
    want_edge = getattr(torch.special, name)(torch.tensor([-2.0, 0.0])).numpy()
    np.testing.assert_allclose(edge, want_edge, rtol=1e-6)  # NaN, -inf where PyTorch has them
    f32 = getattr(mg.special, name)(mg.tensor(XS[:50].astype(np.float32)))
    assert f32.dtype is mg.float32


def test_airy_ai(device):
    mpmath.mp.dps = 30
    xs = np.concatenate([np.linspace(-60, 60, 601), [-2.1, 2.1, -15.3, 104.0, -1000.0]])
    want = np.array([float(mpmath.airyai(x)) for x in xs])
    got = mg.special.airy_ai(mg.tensor(xs, device=device)).cpu().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)
    # NOTE: PyTorch's own values are within ~3e-6 of the exact ones on the negative side
    np.testing.assert_allclose(got, torch.special.airy_ai(torch.tensor(xs)).numpy(),
                               rtol=1e-6, atol=1e-5)  # fmt: skip
