"""``dim=()`` in reductions (every dim for sum, mean, var, norms, ...; none for any/all) and
``logaddexp`` with infinite operands, against PyTorch."""

import warnings

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")

REDUCTIONS = ["sum", "mean", "amax", "amin", "std", "var", "nansum", "nanmean", "any", "all"]


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [(), []])
@pytest.mark.parametrize("name", REDUCTIONS)
def test_empty_dim(device, name, dim, keepdim):
    x = np.arange(-3.0, 9.0).reshape(3, 4) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NOTE: PyTorch warns about std/var with dim=()
        want = getattr(torch, name)(torch.tensor(x), dim, keepdim=keepdim)
    got = getattr(mg, name)(mg.tensor(x, device=device), dim, keepdim=keepdim)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-12)


def test_empty_dim_counts_and_norms(device):
    x = np.array([[0.0, 1.5, -2.0], [3.0, 0.0, 4.0]])
    t, m = torch.tensor(x), mg.tensor(x, device=device)
    assert mg.count_nonzero(m, ()).item() == torch.count_nonzero(t, ()).item() == 4
    for keepdim in (False, True):
        want = torch.linalg.vector_norm(t, dim=(), keepdim=keepdim)
        got = mg.linalg.vector_norm(m, dim=(), keepdim=keepdim)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.cpu().numpy(), want.numpy(), rtol=1e-12)
    got = mg.logsumexp(m, (), keepdim=True)
    np.testing.assert_allclose(got.cpu().numpy(), torch.logsumexp(t, (), keepdim=True).numpy())


INF = float("inf")


@pytest.mark.parametrize("name", ["logaddexp", "logaddexp2"])
def test_logaddexp_infinities(device, name):
    a = [-INF, INF, INF, -INF, 1.0, 3.0, float("nan"), -INF, 1e30, -1e30]
    b = [-INF, INF, 1.0, 1.0, -INF, 3.0, 1.0, INF, 1e30, 2.0]
    ta = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    ty = getattr(torch, name)(ta, tb)
    ty.sum().backward()
    ma = mg.tensor(a, dtype=mg.float64, device=device, requires_grad=True)
    mb = mg.tensor(b, dtype=mg.float64, device=device, requires_grad=True)
    my = getattr(mg, name)(ma, mb)
    my.sum().backward()
    np.testing.assert_allclose(my.detach().cpu().numpy(), ty.detach().numpy(), rtol=1e-14)
    # NOTE: PyTorch gives NaN gradients at equal infinities; the others must agree
    ok = ~(np.isinf(a) & (np.array(a) == np.array(b)))
    for m, t in ((ma, ta), (mb, tb)):
        np.testing.assert_allclose(m.grad.cpu().numpy()[ok], t.grad.numpy()[ok], rtol=1e-12)
