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


# ------------------------------------------------ PyTorch's deprecated top-level forms
pytestmark = pytest.mark.filterwarnings("ignore:torch.*is deprecated:UserWarning")


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3)])
def test_legacy_lu_is_lu_factor(shape):
    check_op(lambda a: list(mg.lu(a)), [shape], torch_fn=lambda a: list(torch.lu(a)))
    check_op(lambda a: list(a.lu(get_infos=True)), [shape],
             torch_fn=lambda a: list(a.lu(get_infos=True)))  # fmt: skip


def test_legacy_lu_outputs_and_rectangular_values():
    a = np.random.default_rng(4).standard_normal((2, 5, 3))
    got, want = mg.lu(mg.tensor(a)), torch.lu(torch.tensor(a))
    assert type(got) is tuple and len(got) == 2  # a plain pair, as PyTorch's
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), atol=1e-12)
    np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
    z = mg.zeros(2, 3, 3, dtype=mg.float64)
    LU, piv, info = mg.lu(z, get_infos=True)  # noqa: N806  # singular: no error, as PyTorch
    assert type(mg.lu(z, get_infos=True)).__name__ == "_lu_with_info"
    np.testing.assert_array_equal(info.numpy(), torch.lu(torch.zeros(2, 3, 3), get_infos=True)[2])
    assert info.dtype is mg.int32 and piv.dtype is mg.int32
    with pytest.raises(NotImplementedError, match="pivot=False"):
        mg.lu(mg.eye(2), pivot=False)


@pytest.mark.parametrize("b_shape", [(2, 3, 2), (4, 1, 3, 1), (3, 2)])
def test_legacy_lu_solve(b_shape):
    check_op(lambda a, b: mg.lu_solve(b, *mg.lu(a)), [(2, 3, 3), b_shape],
             torch_fn=lambda a, b: torch.lu_solve(b, *torch.lu(a)))  # fmt: skip
    check_op(lambda a, b: b.lu_solve(*a.lu()), [(2, 3, 3), b_shape],
             torch_fn=lambda a, b: b.lu_solve(*a.lu()), fd=False, double=False)  # fmt: skip


TRI = [
    {}, {"upper": False}, {"transpose": True}, {"upper": False, "transpose": True},
    {"unitriangular": True}, {"upper": False, "transpose": True, "unitriangular": True},
]  # fmt: skip


@pytest.mark.parametrize("kw", TRI, ids=[str(i) for i in range(len(TRI))])
def test_legacy_triangular_solve(kw):
    # a dominant diagonal keeps the triangular systems well conditioned
    def mgf(b, a):
        return list(mg.triangular_solve(b, a + 4 * mg.eye(3, dtype=a.dtype, device=a.device), **kw))

    def tf(b, a):
        return list(torch.triangular_solve(b, a + 4 * torch.eye(3, dtype=a.dtype), **kw))

    check_op(mgf, [(2, 3, 2), (3, 3)], torch_fn=tf)

    def method(b, a):
        return list(b.triangular_solve(a + 4 * mg.eye(3, dtype=a.dtype, device=a.device), **kw))

    def torch_method(b, a):
        return list(b.triangular_solve(a + 4 * torch.eye(3, dtype=a.dtype), **kw))

    check_op(method, [(4, 1, 3, 2), (2, 3, 3)], torch_fn=torch_method)


def test_legacy_triangular_solve_singular_gives_nan_as_pytorch(device):
    z = np.triu(np.ones((3, 3)))
    z[1, 1] = 0
    b = np.ones((3, 2))
    got = mg.triangular_solve(mg.tensor(b, device=device), mg.tensor(z, device=device))
    want = torch.triangular_solve(torch.tensor(b), torch.tensor(z))
    np.testing.assert_array_equal(got.solution.cpu().numpy(), want.solution.numpy())
    np.testing.assert_array_equal(got.cloned_coefficient.cpu().numpy(), z)
    for upper in (True, False):
        for left in (True, False):
            t = z if upper else z.T
            rhs = np.arange(9.0).reshape(3, 3) + 1
            g = ML.solve_triangular(mg.tensor(t, device=device), mg.tensor(rhs, device=device),
                                    upper=upper, left=left).cpu().numpy()  # fmt: skip
            w = TL.solve_triangular(torch.tensor(t), torch.tensor(rhs), upper=upper, left=left)
            np.testing.assert_array_equal(g, w.numpy())


def test_legacy_forms_warn_once_as_pytorch():
    from manygrad.ops import linalg_legacy

    linalg_legacy._warned.clear()
    a = mg.eye(2, dtype=mg.float64)
    with pytest.warns(UserWarning, match="torch.lu is deprecated"):
        LU, piv = mg.lu(a)  # noqa: N806
    with pytest.warns(UserWarning, match="torch.lu_solve is deprecated"):
        mg.lu_solve(a, LU, piv)
    with pytest.warns(UserWarning, match="torch.triangular_solve is deprecated"):
        mg.triangular_solve(a, a)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.lu(a)  # once per process


def test_legacy_bad_input_names_the_problem():
    a = mg.eye(3, dtype=mg.float64)
    LU, piv = mg.lu(a)  # noqa: N806
    with pytest.raises(RuntimeError, match=r"b of matrices.*unsqueeze\(-1\)"):
        mg.lu_solve(mg.ones(3, dtype=mg.float64), LU, piv)
    with pytest.raises(RuntimeError, match=r"B of matrices.*unsqueeze\(-1\)"):
        ML.lu_solve(LU, piv, mg.ones(3, dtype=mg.float64))
    with pytest.raises(RuntimeError, match=r"b of matrices.*unsqueeze\(-1\)"):
        mg.triangular_solve(mg.ones(3, dtype=mg.float64), a)
    with pytest.raises(RuntimeError, match="A is 3 by 3 but b is 2 by 2"):
        mg.triangular_solve(mg.ones(2, 2, dtype=mg.float64), a)
    with pytest.raises(RuntimeError, match="square"):
        mg.triangular_solve(mg.ones(3, 2, dtype=mg.float64), mg.ones(3, 4, dtype=mg.float64))
    with pytest.raises(RuntimeError, match="one dtype"):
        mg.triangular_solve(mg.ones(3, 2), a)
