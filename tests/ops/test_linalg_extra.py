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
