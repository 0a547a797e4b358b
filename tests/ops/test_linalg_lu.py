"""LU, its solves and unpacking, Householder products, Cholesky solves, cond and the tensor
solves (values, first and second derivatives) against PyTorch on every device."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.linalg as ML
from opcheck import check_op

torch = pytest.importorskip("torch")
TL = torch.linalg


def _spd(lib):
    return lambda a: lib.matmul(a, a.mT) + 3 * lib.eye(a.shape[-1], dtype=a.dtype, device=a.device)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)])
def test_lu_factor_and_lu(shape):
    check_op(lambda a: ML.lu_factor(a).LU, [shape], torch_fn=lambda a: TL.lu_factor(a).LU)
    check_op(lambda a: list(ML.lu(a)), [shape], torch_fn=lambda a: list(TL.lu(a)))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 2)])
def test_rectangular_lu_values(shape):
    check_op(lambda a: list(ML.lu(a)), [shape], torch_fn=lambda a: list(TL.lu(a)), grad=False)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve(left, adjoint):
    b_shape = (2, 3, 2) if left else (2, 2, 3)

    def mgf(a, b):
        LU, piv = ML.lu_factor(a)  # noqa: N806
        return ML.lu_solve(LU, piv, b, left=left, adjoint=adjoint)

    def tf(a, b):
        LU, piv = TL.lu_factor(a)  # noqa: N806
        return TL.lu_solve(LU, piv, b, left=left, adjoint=adjoint)

    check_op(mgf, [(2, 3, 3), b_shape], torch_fn=tf)


def test_pivots_info_and_unpack_equal_lapacks():
    rng = np.random.default_rng(3)
    for shape in [(6, 6), (3, 5, 5), (7, 4), (4, 7)]:
        a = rng.standard_normal(shape)
        got, want = ML.lu_factor(mg.tensor(a)), TL.lu_factor(torch.tensor(a))
        np.testing.assert_array_equal(got.pivots.numpy(), want.pivots.numpy())
        assert got.pivots.dtype == mg.int32
        P, L, U = mg.lu_unpack(*got)  # noqa: N806
        np.testing.assert_allclose((P @ L @ U).numpy(), a, atol=1e-12)
    z = np.diag([1.0, 0.0, 2.0])
    assert ML.lu_factor_ex(mg.tensor(z)).info.item() == TL.lu_factor_ex(torch.tensor(z)).info.item()
    with pytest.raises(RuntimeError, match="singular"):
        ML.lu_factor_ex(mg.tensor(z), check_errors=True)
    res, info = ML.solve_ex(mg.tensor(z), mg.ones(3, dtype=mg.float64))
    assert info.item() == 2 and bool(res.isnan().any())
    res, info = ML.solve_ex(mg.tensor(z + np.eye(3)), mg.ones(3, dtype=mg.float64))
    np.testing.assert_allclose(res.numpy(), np.linalg.solve(z + np.eye(3), np.ones(3)))
    assert info.item() == 0


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_and_inverse(upper):
    S_mg, S_t = _spd(mg), _spd(torch)  # noqa: N806
    check_op(lambda a, b: mg.cholesky_solve(b, ML.cholesky(S_mg(a), upper=upper), upper),
             [(2, 3, 3), (2, 3, 2)],
             torch_fn=lambda a, b: torch.cholesky_solve(b, TL.cholesky(S_t(a), upper=upper),
                                                        upper))  # fmt: skip
    check_op(lambda a: mg.cholesky_inverse(ML.cholesky(S_mg(a), upper=upper), upper), [(3, 3)],
             torch_fn=lambda a: torch.cholesky_inverse(TL.cholesky(S_t(a), upper=upper), upper))  # fmt: skip


def test_cholesky_solve_gradient_reaches_the_whole_factor_as_pytorchs():
    # the unread triangle still gets PyTorch's gradient -(G + Gᴴ) L
    rng = np.random.default_rng(0)
    lo = np.tril(rng.standard_normal((3, 3))) + 3 * np.eye(3)
    b = rng.standard_normal((3, 2))
    lt = torch.tensor(lo, requires_grad=True)
    torch.cholesky_solve(torch.tensor(b), lt).sum().backward()
    lm = mg.tensor(lo, requires_grad=True)
    mg.cholesky_solve(mg.tensor(b), lm).sum().backward()
    np.testing.assert_allclose(lm.grad.numpy(), lt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.abs(np.triu(lm.grad.numpy(), 1)).max() > 0


@pytest.mark.parametrize("shape,k", [((4, 4), 4), ((5, 3), 3), ((2, 5, 3), 2)])
def test_householder_product(shape, k):
    tau_shape = shape[:-2] + (k,)
    check_op(ML.householder_product, [shape, tau_shape], torch_fn=TL.householder_product)
    check_op(mg.orgqr, [shape, tau_shape], torch_fn=torch.orgqr, dtypes=("float64",))


def test_geqrf_is_lapacks_and_householder_product_rebuilds_q():
    a = np.random.default_rng(1).standard_normal((2, 5, 3))
    got, want = mg.geqrf(mg.tensor(a)), torch.geqrf(torch.tensor(a))
    np.testing.assert_allclose(got.a.numpy(), want.a.numpy(), atol=1e-12)
    np.testing.assert_allclose(got.tau.numpy(), want.tau.numpy(), atol=1e-12)
    q = ML.householder_product(*got).numpy()
    r = np.triu(got.a.numpy())[..., :3, :]
    np.testing.assert_allclose(q @ r, a, atol=1e-12)
    for dev in ("fakegpu",):
        g = mg.tensor(a, device=dev).geqrf()
        np.testing.assert_allclose(g.tau.cpu().numpy(), want.tau.numpy(), atol=1e-12)


@pytest.mark.parametrize("p", [None, 2, -2, "fro", "nuc", 1, -1, float("inf"), -float("inf")])
def test_cond(p):
    if p in (None, 2, -2):
        check_op(lambda a: ML.cond(a, p), [(2, 3, 3)], torch_fn=lambda a: TL.cond(a, p))
        return
    # PyTorch's cond has no gradient for these norms: compare values with it, gradients
    # with the definition ‖A‖ ‖A⁻¹‖
    check_op(lambda a: ML.cond(a, p), [(2, 3, 3)], torch_fn=lambda a: TL.cond(a, p), grad=False)
    check_op(lambda a: ML.cond(a, p), [(2, 3, 3)],
             torch_fn=lambda a: TL.matrix_norm(a, p) * TL.matrix_norm(TL.inv(a), p))  # fmt: skip


def test_tensorinv_and_tensorsolve():
    check_op(lambda a: ML.tensorinv(a, 2), [(2, 3, 6)], torch_fn=lambda a: TL.tensorinv(a, 2))
    check_op(ML.tensorsolve, [(2, 3, 6), (2, 3)], torch_fn=TL.tensorsolve)
    check_op(lambda a, b: ML.tensorsolve(a, b, dims=(0,)), [(6, 2, 3), (2, 3)],
             torch_fn=lambda a, b: TL.tensorsolve(a, b, dims=(0,)))  # fmt: skip


def test_bad_input_names_the_problem():
    with pytest.raises(mg.ManygradError, match="matrices"):
        ML.lu_factor(mg.ones(3))
    with pytest.raises(TypeError, match="floating-point"):
        ML.lu_factor(mg.ones(3, 3, dtype=mg.int64))
    with pytest.raises(mg.ManygradError, match="m >= n >= k"):
        ML.householder_product(mg.ones(3, 4), mg.ones(2))
    with pytest.raises(mg.ManygradError, match="prod"):
        ML.tensorinv(mg.ones(2, 3, 4), 1)
    with pytest.raises(NotImplementedError, match="square"):
        a = mg.ones(4, 3, requires_grad=True)
        ML.lu_factor(a).LU.sum().backward()
