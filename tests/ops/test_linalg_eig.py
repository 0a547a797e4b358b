"""linalg.eig / eigvals of general matrices: values, unit eigenvectors and gradients of
phase-invariant losses against PyTorch, on every device (decomposed on the host)."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)


def _phase_free(v):
    """Columns scaled so that their largest entry is real and positive (eigenvectors are
    defined up to a phase)."""
    idx = np.abs(v).argmax(-2)[..., None, :]
    top = np.take_along_axis(v, idx, -2)
    return v * (np.abs(top) / top)


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
def test_values_and_vectors_equal_pytorchs(dtype, device):
    a = RNG.standard_normal((2, 5, 5))
    if dtype == "complex128":
        a = a + 1j * RNG.standard_normal((2, 5, 5))
    a = a.astype(dtype)
    wt, vt = torch.linalg.eig(torch.tensor(a))
    got = mg.linalg.eig(mg.tensor(a, device=device))
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(got.eigenvalues.cpu().numpy(), wt.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(_phase_free(got.eigenvectors.cpu().numpy()),
                               _phase_free(vt.numpy()), rtol=tol, atol=tol)  # fmt: skip
    assert str(got.eigenvalues.dtype).split(".")[-1] == str(wt.dtype).split(".")[-1]
    vals = mg.linalg.eigvals(mg.tensor(a, device=device)).cpu().numpy()
    np.testing.assert_allclose(vals, wt.numpy(), rtol=tol, atol=tol)


def test_gradients_equal_pytorchs(device):
    a, w1, w2 = (
        RNG.standard_normal((2, 4, 4)),
        RNG.standard_normal((2, 4)),
        RNG.standard_normal((2, 4, 4)),
    )
    at, am = torch.tensor(a, requires_grad=True), mg.tensor(a, device=device, requires_grad=True)
    (torch.linalg.eigvals(at).abs() * torch.tensor(w1)).sum().backward()
    (mg.linalg.eigvals(am).abs() * mg.tensor(w1, device=device)).sum().backward()
    np.testing.assert_allclose(am.grad.cpu().numpy(), at.grad.numpy(), rtol=1e-9, atol=1e-12)
    at, am = torch.tensor(a, requires_grad=True), mg.tensor(a, device=device, requires_grad=True)
    wt, vt = torch.linalg.eig(at)
    wm, vm = mg.linalg.eig(am)
    # NOTE: |v|² and the eigenvalues: independent of the eigenvectors' phases
    ((vt.abs() ** 2 * torch.tensor(w2)).sum() + (wt * wt).real.sum()).backward()
    ((vm.abs() ** 2 * mg.tensor(w2, device=device)).sum() + (wm * wm).real.sum()).backward()
    np.testing.assert_allclose(am.grad.cpu().numpy(), at.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_phase_dependent_loss_is_refused_and_bad_shapes_named():
    # eigenvalues 1 ± 2i: complex eigenvectors, whose phase the loss must not depend on
    a = mg.tensor([[1.0, -2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.5, 3.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="ill-defined"):
        mg.linalg.eig(a).eigenvectors.real.sum().backward()
    with pytest.raises(mg.ManygradError, match="square"):
        mg.linalg.eig(mg.ones(2, 3))
    with pytest.raises(TypeError, match="floating-point"):
        mg.linalg.eigvals(mg.ones(2, 2, dtype=mg.int64))
