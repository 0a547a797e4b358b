"""torch.linalg functions (values and gradients) against PyTorch."""

import numpy as np
import pytest

import manygrad as mg
import manygrad.linalg as ML
from opcheck import check_op

torch = pytest.importorskip("torch")
TL = torch.linalg


def _spd(lib):
    """A symmetric positive definite matrix from any square one."""
    return lambda a: lib.matmul(a, a.mT) + 3 * lib.eye(a.shape[-1], dtype=a.dtype, device=a.device)


def _pair(mgf, tf, **kw):
    return (mgf, {"torch_fn": tf, **kw})


S_mg, S_t = _spd(mg), _spd(torch)
ROWS = [
    _pair(ML.inv, TL.inv),
    _pair(ML.det, TL.det),
    _pair(lambda a: ML.slogdet(a).logabsdet, lambda a: TL.slogdet(a).logabsdet),
    _pair(lambda a: mg.logdet(S_mg(a)), lambda a: torch.logdet(S_t(a))),
    _pair(lambda a: ML.cholesky(S_mg(a)), lambda a: TL.cholesky(S_t(a))),
    _pair(
        lambda a: ML.cholesky(S_mg(a), upper=True),
        lambda a: TL.cholesky(S_t(a), upper=True),
    ),
    _pair(lambda a: [t * t for t in ML.qr(a)], lambda a: [t * t for t in TL.qr(a)]),
    _pair(lambda a: [ML.qr(a).Q @ ML.qr(a).R], lambda a: [TL.qr(a).Q @ TL.qr(a).R]),
    _pair(lambda a: ML.eigh(S_mg(a)).eigenvalues, lambda a: TL.eigh(S_t(a)).eigenvalues),
    _pair(
        lambda a: [t * t for t in ML.eigh(S_mg(a))],
        lambda a: [t * t for t in TL.eigh(S_t(a))],
    ),
    _pair(ML.svdvals, TL.svdvals),
    _pair(
        lambda a: [t * t for t in ML.svd(a, full_matrices=False)],
        lambda a: [t * t for t in TL.svd(a, full_matrices=False)],
    ),  # fmt: skip
    _pair(ML.pinv, TL.pinv),
    _pair(lambda a: ML.matrix_power(a, 3), lambda a: TL.matrix_power(a, 3)),
    _pair(lambda a: ML.matrix_power(a, -2), lambda a: TL.matrix_power(a, -2)),
    _pair(lambda a: ML.norm(a), lambda a: TL.norm(a)),
    _pair(lambda a: ML.norm(a, 1, dim=1), lambda a: TL.norm(a, 1, dim=1)),
    _pair(
        lambda a: ML.vector_norm(a, 3, dim=0, keepdim=True),
        lambda a: TL.vector_norm(a, 3, dim=0, keepdim=True),
    ),  # fmt: skip
    _pair(lambda a: ML.vector_norm(a, float("inf")), lambda a: TL.vector_norm(a, float("inf"))),
]
for _o in ("fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf")):
    ROWS.append(_pair(lambda a, o=_o: ML.matrix_norm(a, o), lambda a, o=_o: TL.matrix_norm(a, o)))
SHAPES = [(4, 4), (2, 3, 3)]


@pytest.mark.parametrize("fn,opts", ROWS, ids=[str(i) for i in range(len(ROWS))])
def test_linalg_square(fn, opts):
    for shape in SHAPES:
        check_op(fn, [shape], domain=(-1.0, 1.0), **opts)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 3)])
def test_linalg_rectangular(shape):
    check_op(ML.svdvals, [shape], torch_fn=TL.svdvals)
    check_op(ML.pinv, [shape], torch_fn=TL.pinv)
    check_op(lambda a: [t * t for t in ML.svd(a, full_matrices=False)], [shape],
             torch_fn=lambda a: [t * t for t in TL.svd(a, full_matrices=False)])  # fmt: skip
    if shape[-2] >= shape[-1]:
        check_op(lambda a: [t * t for t in ML.qr(a)], [shape],
                 torch_fn=lambda a: [t * t for t in TL.qr(a)])  # fmt: skip


def test_solve():
    check_op(ML.solve, [(3, 3), (3, 2)], torch_fn=TL.solve)
    check_op(ML.solve, [(2, 3, 3), (2, 3)], torch_fn=TL.solve)
    check_op(lambda a, b: ML.solve(a, b, left=False), [(3, 3), (2, 3)],
             torch_fn=lambda a, b: TL.solve(a, b, left=False))  # fmt: skip


def test_rank_cross_vecdot_and_top_level_names():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    assert ML.matrix_rank(mg.tensor(a)).item() == TL.matrix_rank(torch.tensor(a)).item() == 1
    check_op(ML.cross, [(4, 3), (4, 3)], torch_fn=TL.cross)
    check_op(ML.vecdot, [(4, 3), (4, 3)], torch_fn=TL.vecdot)
    x = np.random.default_rng(0).standard_normal((4, 3))
    u, s, v = mg.svd(mg.tensor(x))
    np.testing.assert_allclose((u * s @ v.mT).numpy(), x, atol=1e-12)
    m = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert ML.slogdet(mg.tensor(m)).sign.item() == TL.slogdet(torch.tensor(m)).sign.item() == -1
    assert np.isnan(mg.logdet(mg.tensor(m)).item()) and torch.logdet(torch.tensor(m)).isnan().item()
    assert mg.det(mg.eye(2) * 2).item() == pytest.approx(4.0)
    assert mg.inverse(mg.eye(2) * 2).tolist() == [[0.5, 0.0], [0.0, 0.5]]
    with pytest.raises(mg.ManygradError, match="square"):
        ML.inv(mg.ones(2, 3))


def test_triangular_lstsq_and_more():
    for upper in (True, False):
        for left in (True, False):
            for unit in (False, True):
                kw = {"upper": upper, "left": left, "unitriangular": unit}

                def mgf(a, b, kw=kw):
                    eye = mg.eye(3, dtype=a.dtype, device=a.device)
                    return ML.solve_triangular(a + 3 * eye, b, **kw)

                def tf(a, b, kw=kw):
                    return TL.solve_triangular(a + 3 * torch.eye(3, dtype=a.dtype), b, **kw)

                check_op(mgf, [(3, 3), (3, 3)], torch_fn=tf)
    check_op(lambda a, b: ML.lstsq(a, b).solution, [(5, 3), (5, 2)],
             torch_fn=lambda a, b: TL.lstsq(a, b).solution)  # fmt: skip
    a = np.random.default_rng(0).standard_normal((5, 3))
    assert ML.lstsq(mg.tensor(a), mg.ones(5, 1, dtype=mg.float64)).rank.item() == 3
    check_op(ML.matrix_exp, [(3, 3)], torch_fn=TL.matrix_exp)
    check_op(
        lambda x: ML.vander(x, N=4), [(2, 3)], torch_fn=lambda x: TL.vander(x, N=4), grad=False
    )
    check_op(lambda x: ML.diagonal(x, offset=1), [(2, 3, 4)],
             torch_fn=lambda x: TL.diagonal(x, offset=1))  # fmt: skip


# ---------------------------------------------------------------- QR modes, legacy torch.qr


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 3, 4), (2, 4, 3)])
@pytest.mark.parametrize("mode", ["reduced", "complete"])
def test_qr_modes(shape, mode):
    def mgf(a):
        return list(ML.qr(a, mode=mode))

    def tf(a):
        return list(TL.qr(a, mode=mode))

    # NOTE: PyTorch's complete mode of a tall matrix has no gradient (checked below)
    check_op(mgf, [shape], torch_fn=tf, grad=mode == "reduced" or shape[-2] <= shape[-1])


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
def test_qr_mode_r_and_legacy_forms(shape, device):
    a = np.random.default_rng(0).standard_normal(shape)
    q, r = ML.qr(mg.tensor(a, device=device), mode="r")
    tq, tr = TL.qr(torch.tensor(a), mode="r")
    assert tuple(q.shape) == tuple(tq.shape) == (0,) and q.dtype == mg.float64
    np.testing.assert_allclose(r.cpu().numpy(), tr.numpy(), atol=1e-12)
    for some in (True, False):
        tq, tr = torch.linalg.qr(torch.tensor(a), "reduced" if some else "complete")
        for got in (mg.qr(mg.tensor(a, device=device), some=some),
                    mg.tensor(a, device=device).qr(some=some)):  # fmt: skip
            np.testing.assert_allclose(got[0].cpu().numpy(), tq.numpy(), atol=1e-12)
            np.testing.assert_allclose(got[1].cpu().numpy(), tr.numpy(), atol=1e-12)
    check_op(lambda x: list(mg.qr(x, some=False)), [(3, 4)],
             torch_fn=lambda x: list(torch.linalg.qr(x, mode="complete")))  # fmt: skip


def test_qr_backward_errors_match_pytorchs():
    a = mg.randn(4, 3, dtype=mg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"depends on Q, which is not computed when mode='r'"):
        ML.qr(a, mode="r").R.sum().backward()
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows"):
        ML.qr(a, mode="complete").R.sum().backward()
    with pytest.raises(RuntimeError, match="not differentiable when mode='complete' and nrows"):
        mg.qr(a, some=False).Q.sum().backward()
    with pytest.raises(RuntimeError, match="unrecognized mode 'full'"):
        ML.qr(a, mode="full")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        ML.qr(mg.ones(3))


# ---------------------------------------------------------------- lstsq drivers


LSTSQ_SHAPES = [
    ((1, 3, 3), (3, 2)),  # NOTE: PyTorch broadcasts B's batch as its shape[:-1]: (3, 3, 2)
    ((5, 3), (5, 2)),
    ((3, 5), (3, 2)),
    ((2, 5, 3), (2, 5, 2)),
    ((5, 3), (5,)),
    ((3, 5, 3), (3, 5)),
    ((1, 4, 3), (2, 4, 2)),
]


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("shapes", LSTSQ_SHAPES, ids=str)
def test_lstsq_outputs_per_driver(shapes, driver, device):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    want = TL.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    got = ML.lstsq(mg.tensor(a, device=device), mg.tensor(b, device=device), driver=driver)
    for name in ("solution", "residuals", "rank", "singular_values"):
        g, w = getattr(got, name), getattr(want, name)
        assert tuple(g.shape) == tuple(w.shape), f"{name}: {tuple(g.shape)} != {tuple(w.shape)}"
        assert str(g.dtype).split(".")[-1] == str(w.dtype).split(".")[-1], name
        np.testing.assert_allclose(g.cpu().numpy(), w.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=name)  # fmt: skip


def test_lstsq_rank_deficient_and_rcond():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((6, 3))
    a[:, 2] = a[:, 0] + a[:, 1]
    b = rng.standard_normal((6, 2))
    for driver in ("gelsy", "gelsd", "gelss"):
        want = TL.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        got = ML.lstsq(mg.tensor(a), mg.tensor(b), driver=driver)
        assert got.rank.item() == want.rank.item() == 2
        assert tuple(got.residuals.shape) == tuple(want.residuals.shape) == (0,)  # rank < n
        np.testing.assert_allclose(got.solution.numpy(), want.solution.numpy(), atol=1e-10)
    a = np.diag([1.0, 1e-3, 1e-6])
    for rcond in (1e-2, 1e-4, 1e-8):
        want = TL.lstsq(torch.tensor(a), torch.tensor(b[:3]), rcond=rcond, driver="gelsd")
        got = ML.lstsq(mg.tensor(a), mg.tensor(b[:3]), rcond=rcond, driver="gelsd")
        assert got.rank.item() == want.rank.item()
        np.testing.assert_allclose(got.solution.numpy(), want.solution.numpy(), rtol=1e-9)


@pytest.mark.parametrize("driver", ["gels", "gelsd"])
def test_lstsq_gradients(driver):
    for shapes in [[(5, 3), (5, 2)], [(2, 5, 3), (2, 5)]]:  # solution and residuals
        check_op(lambda a, b: list(ML.lstsq(a, b, driver=driver)[:2]), shapes,
                 torch_fn=lambda a, b: list(TL.lstsq(a, b, driver=driver)[:2]))  # fmt: skip
    check_op(lambda a, b: ML.lstsq(a, b, driver=driver).solution, [(3, 5), (3, 2)],
             torch_fn=lambda a, b: TL.lstsq(a, b, driver=driver).solution)  # fmt: skip


def test_lstsq_errors():
    a = mg.randn(5, 3, dtype=mg.float64)
    with pytest.raises(RuntimeError, match="`driver` should be one of"):
        ML.lstsq(a, mg.randn(5, 2, dtype=mg.float64), driver="gelsx")
    with pytest.raises(ValueError, match="A has 5 rows but B has 4"):
        ML.lstsq(a, mg.randn(4, 2, dtype=mg.float64))
    with pytest.raises(ValueError, match="as many dims as A or one fewer"):
        ML.lstsq(mg.randn(2, 5, 3, dtype=mg.float64), mg.randn(5, dtype=mg.float64))
    with pytest.raises(TypeError, match="one dtype"):
        ML.lstsq(a, mg.randn(5, 2))


# ---------------------------------------------------------------- pinv, rank, spectra


def test_pinv_options_and_repeated_singular_values():
    # NOTE: one triangle is read, but the gradient is PyTorch's full one (no finite differences)
    check_op(lambda a: ML.pinv(a, hermitian=True), [(4, 4)],
             torch_fn=lambda a: TL.pinv(a, hermitian=True), fd=False)  # fmt: skip
    check_op(lambda a: ML.pinv(a, atol=0.5), [(2, 4, 3)], torch_fn=lambda a: TL.pinv(a, atol=0.5))
    check_op(lambda a: ML.pinv(a, rtol=0.3), [(3, 5)], torch_fn=lambda a: TL.pinv(a, rtol=0.3))
    check_op(lambda a: mg.pinverse(a, rcond=0.3), [(5, 3)],
             torch_fn=lambda a: torch.pinverse(a, rcond=0.3))  # fmt: skip
    # an orthogonal matrix times 2: all singular values equal (PyTorch's gradient stays finite)
    q = np.linalg.qr(np.random.default_rng(3).standard_normal((3, 3)))[0] * 2
    check_op(ML.pinv, [q], torch_fn=TL.pinv, grad=False)
    at, am = torch.tensor(q, requires_grad=True), mg.tensor(q, requires_grad=True)
    TL.pinv(at).sum().backward()
    ML.pinv(am).sum().backward()
    np.testing.assert_allclose(am.grad.numpy(), at.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_matrix_rank_tolerances(device):
    a = np.diag([3.0, 1.0, 1e-3, 0.0])
    a[0, 1] = a[1, 0] = 0.5
    for kw in [{}, {"atol": 0.01}, {"rtol": 0.01}, {"atol": 0.5, "rtol": 0.0}, {"hermitian": True},
               {"tol": 0.1}, {"atol": 2e-3, "hermitian": True}]:  # fmt: skip
        got = ML.matrix_rank(mg.tensor(a, device=device), **kw)
        want = TL.matrix_rank(torch.tensor(a), **kw)
        assert got.item() == want.item(), kw
        assert got.dtype == mg.int64


def _full_svd_parts(a, lib):
    U, S, Vh = lib.svd(a)  # noqa: N806
    k = S.shape[-1]
    U1, U2, V1, V2 = U[..., :k], U[..., k:], Vh[..., :k, :], Vh[..., k:, :]  # noqa: N806
    return [U1 * U1, S, V1 * V1, U2 @ U2.mT, V2.mT @ V2]


def test_spectral_gradients_match_pytorch_without_symmetrizing():
    # NOTE: eigh of a matrix that is not symmetric reads one triangle; the gradient is PyTorch's
    check_op(lambda a: [t * t for t in ML.eigh(a)], [(4, 4)],
             torch_fn=lambda a: [t * t for t in TL.eigh(a)], fd=False)  # fmt: skip
    check_op(lambda a: ML.slogdet(a).sign, [(3, 3)], torch_fn=lambda a: TL.slogdet(a).sign)
    for shape in [(5, 3), (3, 5)]:
        # NOTE: the extra columns of full factors get no gradient, as in PyTorch (they are
        # unique up to a rotation: compared through their projector)
        check_op(lambda a: _full_svd_parts(a, ML), [shape],
                 torch_fn=lambda a: _full_svd_parts(a, TL), fd=False)  # fmt: skip
        a = np.random.default_rng(4).standard_normal(shape)
        got, want = mg.svd(mg.tensor(a), some=False), torch.svd(torch.tensor(a), some=False)
        assert [tuple(t.shape) for t in got] == [tuple(t.shape) for t in want]
        U, S, V = (t.numpy() for t in got)  # noqa: N806
        np.testing.assert_allclose((U[:, :3] * S) @ V[:, :3].T, a, atol=1e-12)


def test_equal_singular_values_and_eigenvalues_give_finite_gradients():
    for fn, tfn, x in [(ML.svdvals, TL.svdvals, np.eye(3)[:, :2] * 2),
                       (ML.svdvals, TL.svdvals, np.zeros((4, 3))),
                       (ML.eigvalsh, TL.eigvalsh, np.eye(3))]:  # fmt: skip
        at, am = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
        tfn(at).sum().backward()
        fn(am).sum().backward()
        np.testing.assert_allclose(am.grad.numpy(), at.grad.numpy(), atol=1e-12)
