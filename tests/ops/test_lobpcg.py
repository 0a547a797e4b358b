"""mg.lobpcg against numpy.linalg.eigh and torch.lobpcg on well-conditioned random SPD
problems: eigenvalues, eigenvectors (up to sign), gradients, errors."""

import numpy as np
import pytest

import manygrad as mg

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    # NOTE: torch.lobpcg's many small ops run far slower with threads on a busy machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _spd(m, seed, lo=1.0, hi=10.0):
    """A random symmetric positive definite matrix with eigenvalues spread over [lo, hi]."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((m, m)))
    ev = np.linspace(lo, hi, m) + rng.uniform(0, 0.5 * (hi - lo) / m, m)
    return (q * ev) @ q.T


def _generalized_eigh(a, b):
    """Eigenpairs of a x = e b x, ascending, B-orthonormal eigenvectors (NumPy only)."""
    if b is None:
        return np.linalg.eigh(a)
    li = np.linalg.inv(np.linalg.cholesky(b))
    e, v = np.linalg.eigh(li @ a @ li.T)
    return e, li.T @ v


@pytest.mark.parametrize("method", ["ortho", "basic"])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("with_b", [False, True])
def test_eigenpairs_match_eigh(device, method, largest, with_b):
    m, k = 30, 3
    a, b = _spd(m, 1), _spd(m, 2, 1.0, 3.0) if with_b else None
    mg.manual_seed(0)
    E, X = mg.lobpcg(mg.tensor(a, device=device), k=k, largest=largest, method=method,
                     B=None if b is None else mg.tensor(b, device=device))  # fmt: skip
    assert E.device == X.device and tuple(E.shape) == (k,) and tuple(X.shape) == (m, k)
    e, v = _generalized_eigh(a, b)
    e, v = (e[::-1][:k], v[:, ::-1][:, :k]) if largest else (e[:k], v[:, :k])
    got_e, got_x = E.cpu().numpy(), X.cpu().numpy()
    np.testing.assert_allclose(got_e, e, rtol=1e-9)
    bb = np.eye(m) if b is None else b
    np.testing.assert_allclose(np.abs(got_x.T @ bb @ v), np.eye(k), atol=1e-6)  # up to sign
    np.testing.assert_allclose(got_x.T @ bb @ got_x, np.eye(k), atol=1e-9)


@pytest.mark.parametrize("largest", [True, False])
def test_eigenvalues_match_torch_lobpcg(largest):
    a, b = _spd(36, 3), _spd(36, 4, 1.0, 2.0)
    for bm in (None, b):
        want, _ = torch.lobpcg(torch.tensor(a), k=4, B=None if bm is None else torch.tensor(bm),
                               largest=largest)  # fmt: skip
        got, _ = mg.lobpcg(mg.tensor(a), k=4, B=None if bm is None else mg.tensor(bm),
                           largest=largest)  # fmt: skip
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9)


def test_starting_guess_batch_float32_and_preconditioner():
    a = np.stack([_spd(24, 5), _spd(24, 6)])
    x0 = np.random.default_rng(0).standard_normal((2, 24, 3))
    E, X = mg.lobpcg(mg.tensor(a), X=mg.tensor(x0), k=2)  # n = 3 columns, k = 2 pairs
    assert tuple(E.shape) == (2, 2) and tuple(X.shape) == (2, 24, 2)
    np.testing.assert_allclose(E.numpy(), np.linalg.eigvalsh(a)[:, ::-1][:, :2], rtol=1e-9)
    E1, _ = mg.lobpcg(mg.tensor(a[0]), X=mg.tensor(x0[0]))  # k defaults to X's columns
    np.testing.assert_allclose(E1.numpy(), np.linalg.eigvalsh(a[0])[::-1][:3], rtol=1e-9)
    E32, X32 = mg.lobpcg(mg.tensor(a[0], dtype=mg.float32), k=2, n=3)
    assert E32.dtype == X32.dtype == mg.float32
    np.testing.assert_allclose(E32.numpy(), np.linalg.eigvalsh(a[0])[::-1][:2], rtol=1e-4)
    ik = mg.tensor(np.diag(1 / np.diag(a[1])))  # a Jacobi preconditioner
    Ep, _ = mg.lobpcg(mg.tensor(a[1]), k=2, iK=ik, largest=False, method="basic")
    np.testing.assert_allclose(Ep.numpy(), np.linalg.eigvalsh(a[1])[:2], rtol=1e-9)


@pytest.mark.parametrize("largest", [True, False])
def test_gradient_matches_torch(device, largest):
    m, k = 20, 3
    a = _spd(m, 7) + 0.01 * np.random.default_rng(1).standard_normal((m, m))  # not symmetric
    w = np.random.default_rng(2).standard_normal((m, m))
    c = np.random.default_rng(3).standard_normal(k)

    def loss(lib, a_t):
        E, X = lib.lobpcg(a_t, k=k, largest=largest, tol=1e-12, niter=-1)
        # NOTE: sign-free in X: the projector X X^T and the eigenvalues
        return (E * lib.tensor(c, device=a_t.device)).sum() + (
            (X @ X.mT) * lib.tensor(w, device=a_t.device)
        ).sum()

    ta = torch.tensor(a, requires_grad=True)
    loss(torch, ta).backward()
    ma = mg.tensor(a, device=device, requires_grad=True)
    loss(mg, ma).backward()
    np.testing.assert_allclose(ma.grad.cpu().numpy(), ta.grad.numpy(), atol=1e-7)


def test_backward_with_b_raises_as_torch():
    a, b = _spd(15, 8), _spd(15, 9, 1.0, 2.0)
    for lib in (mg, torch):
        A = lib.tensor(a, requires_grad=True)
        E, _ = lib.lobpcg(A, k=1, B=lib.tensor(b))
        with pytest.raises(ValueError, match="B != I"):
            E.sum().backward()


def test_tracker_sees_the_state_and_can_stop():
    seen = []

    def tracker(state):
        seen.append((state.ivars["istep"], state.ivars["converged_count"]))
        assert tuple(state.X.shape) == (30, 2) and tuple(state.R.shape) == (30, 2)
        if state.ivars["istep"] == 3:
            state.bvars["force_stop"] = True

    mg.lobpcg(mg.tensor(_spd(30, 10)), k=2, tracker=tracker, tol=1e-14)
    assert [s[0] for s in seen] == [1, 2, 3]
    E, _ = mg.lobpcg(mg.tensor(_spd(30, 10)), k=2, niter=1)
    assert tuple(E.shape) == (2,)


def test_bad_arguments():
    a = mg.tensor(_spd(9, 11))
    with pytest.raises(ValueError, match="3 x the number"):
        mg.lobpcg(a, k=4)
    with pytest.raises(ValueError, match="3 x the number"):
        torch.lobpcg(torch.tensor(_spd(9, 11)), k=4)
    with pytest.raises(AssertionError, match="square"):
        mg.lobpcg(mg.zeros(9, 8, dtype=mg.float64))
    with pytest.raises(AssertionError, match="same shape"):
        mg.lobpcg(a, B=mg.eye(8, dtype=mg.float64))
    with pytest.raises(ValueError, match="method"):
        mg.lobpcg(a, method="fast")
    with pytest.raises(TypeError, match="float32 or float64"):
        mg.lobpcg(mg.ones(9, 9, dtype=mg.int64))
    with pytest.raises(ValueError, match="k"):
        mg.lobpcg(mg.tensor(_spd(30, 1)), k=3, X=mg.randn(30, 2, dtype=mg.float64))
    with pytest.raises(AssertionError, match="X must have shape"):
        mg.lobpcg(a, X=mg.randn(8, 2, dtype=mg.float64))
