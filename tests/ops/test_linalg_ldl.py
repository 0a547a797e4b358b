"""``mg.linalg.ldl_factor`` / ``ldl_factor_ex`` / ``ldl_solve`` and ``mg.linalg.LinAlgError``
against PyTorch on every device.

What matches: the pivots exactly (LAPACK's Bunch-Kaufman choices, 1x1 and 2x2 blocks) and
LD to rounding (for real matrices of up to 64 rows, PyTorch's MKL gives the same bits on
the machines tried; complex ones differ in the last bits), ``info``, and the solutions.
"""

import zlib

import numpy as np
import pytest
import torch

import manygrad as mg
import manygrad.linalg as ML

TL = torch.linalg
R = np.random.default_rng(0)


def _np(t):
    return t.detach().cpu().numpy()


def _sym(shape, kind="dense", cplx=False, herm=False, rng=R):
    a = rng.standard_normal(shape)
    if cplx:
        a = a + 1j * rng.standard_normal(shape)
    n = shape[-1]
    if kind == "zero_diag":  # every pivot a 2x2 block or a swap
        a[..., range(n), range(n)] = 0
    elif kind == "small_diag":
        a[..., range(n), range(n)] *= 1e-3
    elif kind == "sparse":
        a = a * (rng.random(shape) < 0.4)
    at = np.swapaxes(a, -1, -2)
    return a + (at.conj() if herm else at)


MATRICES = [
    ((5, 5), "dense", False, False), ((6, 6), "zero_diag", False, False),
    ((3, 7, 7), "small_diag", False, False), ((2, 6, 6), "sparse", False, False),
    ((1, 1), "dense", False, False), ((4, 4), "zero_diag", False, True),
    ((5, 5), "dense", True, True), ((2, 6, 6), "zero_diag", True, True),
    ((6, 6), "small_diag", True, True), ((5, 5), "dense", True, False),
    ((2, 6, 6), "zero_diag", True, False), ((40, 40), "small_diag", False, False),
]  # fmt: skip
IDS = [
    f"{'x'.join(map(str, s))}-{k}-{'c' if c else 'r'}{'h' if h else ''}" for s, k, c, h in MATRICES
]


@pytest.mark.parametrize("shape,kind,cplx,herm", MATRICES, ids=IDS)
def test_ldl_factor_gives_lapacks_pivots_and_factor(device, shape, kind, cplx, herm):
    # NOTE: a stream per case: the matrices do not depend on which tests ran before
    rng = np.random.default_rng(zlib.crc32(repr((shape, kind, cplx, herm)).encode()))
    a = _sym(shape, kind, cplx, herm, rng)
    got = ML.ldl_factor_ex(mg.tensor(a, device=device), hermitian=herm)
    want = TL.ldl_factor_ex(torch.tensor(a), hermitian=herm)
    assert got.pivots.dtype is mg.int32 and got.info.dtype is mg.int32
    assert got.LD.dtype.name == str(want.LD.dtype).replace("torch.", "")
    assert str(got.LD.device).split(":")[0] == device.split(":")[0]
    np.testing.assert_array_equal(_np(got.pivots), want.pivots.numpy())
    np.testing.assert_array_equal(_np(got.info), want.info.numpy())
    np.testing.assert_allclose(_np(got.LD), want.LD.numpy(), rtol=1e-10, atol=1e-12)
    LD, piv = ML.ldl_factor(mg.tensor(a, device=device), hermitian=herm)  # noqa: N806
    np.testing.assert_array_equal(_np(piv), want.pivots.numpy())
    # the solve, against PyTorch's and against the system itself
    b = rng.standard_normal(shape[:-1] + (3,)) + (
        1j * rng.standard_normal(shape[:-1] + (3,)) if cplx else 0
    )
    x = ML.ldl_solve(LD, piv, mg.tensor(b, device=device), hermitian=herm)
    xt = TL.ldl_solve(want.LD, want.pivots, torch.tensor(b), hermitian=herm)
    np.testing.assert_allclose(_np(x), xt.numpy(), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(a @ _np(x), b, rtol=1e-7, atol=1e-9)


def test_real_matrices_give_pytorchs_bits():
    for kind in ("dense", "zero_diag", "sparse"):
        a = _sym((2, 20, 20), kind)
        got, want = ML.ldl_factor(mg.tensor(a)), TL.ldl_factor(torch.tensor(a))
        np.testing.assert_array_equal(got.pivots.numpy(), want.pivots.numpy())
        np.testing.assert_allclose(got.LD.numpy(), want.LD.numpy(), rtol=1e-14, atol=1e-15)


def test_float32(device):
    a = _sym((3, 6, 6), "zero_diag").astype(np.float32)
    got = ML.ldl_factor(mg.tensor(a, device=device))
    want = TL.ldl_factor(torch.tensor(a))
    assert got.LD.dtype is mg.float32
    np.testing.assert_array_equal(_np(got.pivots), want.pivots.numpy())
    np.testing.assert_allclose(_np(got.LD), want.LD.numpy(), rtol=1e-4, atol=1e-5)
    b = R.standard_normal((3, 6, 2)).astype(np.float32)
    x = ML.ldl_solve(*got, mg.tensor(b, device=device))
    assert x.dtype is mg.float32
    np.testing.assert_allclose(_np(x), TL.ldl_solve(*want, torch.tensor(b)).numpy(), rtol=1e-3,
                               atol=1e-4)  # fmt: skip


def test_only_the_lower_triangle_is_read(device):
    a = _sym((5, 5))
    junk = a + np.triu(R.standard_normal((5, 5)), 1)
    got = ML.ldl_factor(mg.tensor(junk, device=device))
    want = TL.ldl_factor(torch.tensor(junk))
    np.testing.assert_allclose(_np(got.LD), want.LD.numpy(), atol=1e-12)
    np.testing.assert_allclose(_np(got.LD), _np(ML.ldl_factor(mg.tensor(a)).LD), atol=1e-12)


def test_ldl_solve_broadcasts_batch_dims(device):
    a = _sym((2, 4, 4), "zero_diag")
    LD, piv = ML.ldl_factor(mg.tensor(a, device=device))  # noqa: N806
    b = R.standard_normal((3, 1, 4, 2))
    x = ML.ldl_solve(LD, piv, mg.tensor(b, device=device))
    assert tuple(x.shape) == (3, 2, 4, 2)
    np.testing.assert_allclose(a @ _np(x), np.broadcast_to(b, (3, 2, 4, 2)), atol=1e-10)
    one = ML.ldl_factor(mg.tensor(a[0], device=device))
    x = ML.ldl_solve(*one, mg.tensor(b[:, 0], device=device))  # one factor for a batch of B
    np.testing.assert_allclose(a[0] @ _np(x), b[:, 0], atol=1e-10)


def test_singular_d(device):
    z = mg.tensor(np.stack([np.eye(3), np.diag([1.0, 0.0, 2.0])]), device=device)
    got = ML.ldl_factor_ex(z)
    want = TL.ldl_factor_ex(torch.tensor(_np(z)))
    np.testing.assert_array_equal(_np(got.info), want.info.numpy())
    np.testing.assert_array_equal(_np(got.LD), want.LD.numpy())
    # NOTE: PyTorch 2.13's ldl_factor fails here with an internal assert (a RuntimeError);
    # manygrad raises LinAlgError, also a RuntimeError
    with pytest.raises(ML.LinAlgError, match=r"\(Batch element 1\).*D\[1, 1\] is zero"):
        ML.ldl_factor(z)
    with pytest.raises(RuntimeError, match="singular"):
        ML.ldl_factor_ex(z, check_errors=True)


def test_no_host_syncs_without_check_errors():
    a = mg.tensor(_sym((2, 5, 5), "zero_diag"), device="fakegpu")
    b = mg.tensor(R.standard_normal((2, 5, 1)), device="fakegpu")
    mg.backend.fake_stats.reset()
    LD, piv, info = ML.ldl_factor_ex(a)  # noqa: N806
    ML.ldl_solve(LD, piv, b)
    assert mg.backend.fake_stats.syncs == 0


def test_not_differentiable_as_in_pytorch(device):
    a = mg.tensor(_sym((4, 4)), device=device, requires_grad=True)
    LD, piv = ML.ldl_factor(a)  # noqa: N806
    assert LD.requires_grad and not piv.requires_grad
    with pytest.raises(RuntimeError, match="ldl_factor: the derivative is not implemented"):
        LD.sum().backward()
    b = mg.ones(4, 1, dtype=mg.float64, device=device, requires_grad=True)
    x = ML.ldl_solve(LD.detach(), piv, b)
    with pytest.raises(RuntimeError, match="ldl_solve: the derivative is not implemented"):
        x.sum().backward()
    with mg.no_grad():
        assert not ML.ldl_factor(a).LD.requires_grad


def test_bad_input_names_the_problem():
    with pytest.raises(RuntimeError, match="square"):
        ML.ldl_factor(mg.ones(3, 4))
    with pytest.raises(RuntimeError, match="matrices"):
        ML.ldl_factor(mg.ones(3))
    with pytest.raises(TypeError, match="float32/64 or complex"):
        ML.ldl_factor(mg.ones(3, 3, dtype=mg.int64))
    LD, piv = ML.ldl_factor(mg.tensor(_sym((4, 4))))  # noqa: N806
    with pytest.raises(RuntimeError, match=r"B of matrices .*B\[\.\.\., None\]"):
        ML.ldl_solve(LD, piv, mg.ones(4, dtype=mg.float64))
    with pytest.raises(RuntimeError, match="dtype"):
        ML.ldl_solve(LD, piv, mg.ones(4, 2))
    with pytest.raises(RuntimeError, match="integer pivots"):
        ML.ldl_solve(LD, piv.float(), mg.ones(4, 2, dtype=mg.float64))
    with pytest.raises(RuntimeError, match=r"pivots of shape LD.shape\[:-1\]"):
        ML.ldl_solve(LD, piv[:3], mg.ones(4, 2, dtype=mg.float64))
    with pytest.raises(RuntimeError, match="4 by 4 but B is 3 by 2"):
        ML.ldl_solve(LD, piv, mg.ones(3, 2, dtype=mg.float64))
    np.testing.assert_allclose(  # int64 pivots are taken, as PyTorch takes them
        _np(ML.ldl_solve(LD, piv.long(), mg.ones(4, 1, dtype=mg.float64))),
        _np(ML.ldl_solve(LD, piv, mg.ones(4, 1, dtype=mg.float64))),
    )


# ------------------------------------------------------------------------- LinAlgError


def test_linalg_error_is_pytorchs_kind():
    assert issubclass(ML.LinAlgError, RuntimeError)
    assert issubclass(ML.LinAlgError, mg.ManygradError)
    assert issubclass(ML.LinAlgError, np.linalg.LinAlgError)  # what manygrad raised before


def _ones_rhs(lib, x):
    return lib.solve(x, x[..., :1] * 0 + 1)


CASES = ["cholesky", "cholesky_batched", "inv", "inv_batched", "solve", "solve_batched",
         "inverse", "cholesky_inverse"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_singular_and_not_positive_definite_raise_linalg_error(device, case):
    npd = np.array([[4.0, 2, 1], [2, 1, 0], [1, 0, 3]])
    sing = np.diag([1.0, 0.0, 2.0])
    arg, call = {
        "cholesky": (npd, lambda lib, x: lib.cholesky(x)),
        "cholesky_batched": (np.stack([np.eye(3), npd]), lambda lib, x: lib.cholesky(x)),
        "inv": (sing, lambda lib, x: lib.inv(x)),
        "inv_batched": (np.stack([np.eye(3), sing]), lambda lib, x: lib.inv(x)),
        "solve": (sing, _ones_rhs),
        "solve_batched": (np.stack([np.eye(3), sing]), _ones_rhs),
        "inverse": (sing, lambda lib, x: x.inverse()),
        "cholesky_inverse": (np.zeros((3, 3)),
                             lambda lib, x: (mg if lib is ML else torch).cholesky_inverse(x)),
    }[case]  # fmt: skip
    with pytest.raises(TL.LinAlgError) as want:
        call(TL, torch.tensor(arg))
    with pytest.raises(ML.LinAlgError) as got:
        call(ML, mg.tensor(arg, device=device))
    # PyTorch's sentence first, then what to do
    assert str(got.value).startswith(str(want.value)), (str(got.value), str(want.value))
    assert len(str(got.value)) > len(str(want.value))


def test_ex_variants_report_info_as_pytorch(device):
    npd = np.array([[4.0, 2, 1], [2, 1, 0], [1, 0, 3]])
    a = np.stack([npd, 2 * np.eye(3)])
    for upper in (False, True):
        got = ML.cholesky_ex(mg.tensor(a, device=device), upper=upper)
        want = TL.cholesky_ex(torch.tensor(a), upper=upper)
        np.testing.assert_array_equal(_np(got.info), want.info.numpy())
        np.testing.assert_allclose(_np(got.L), want.L.numpy(), atol=1e-12)  # the partial factor
    assert got.info.dtype is mg.int32
    with pytest.raises(ML.LinAlgError, match=r"cholesky_ex: \(Batch element 0\).*order 2"):
        ML.cholesky_ex(mg.tensor(a, device=device), check_errors=True)
    s = np.stack([npd, np.diag([1.0, 0.0, 2.0])])
    got, want = ML.inv_ex(mg.tensor(s, device=device)), TL.inv_ex(torch.tensor(s))
    np.testing.assert_array_equal(_np(got.info), want.info.numpy())
    np.testing.assert_allclose(_np(got.inverse)[0], want.inverse.numpy()[0], atol=1e-12)
    assert np.isnan(_np(got.inverse)[1]).all()
    with pytest.raises(ML.LinAlgError, match="diagonal element 2 is zero"):
        ML.inv_ex(mg.tensor(s, device=device), check_errors=True)
    with pytest.raises(ML.LinAlgError, match="solve_ex: The solver failed"):
        ML.solve_ex(mg.tensor(s[1], device=device), mg.ones(3, 1, dtype=mg.float64,
                    device=device), check_errors=True)  # fmt: skip
    ok = ML.cholesky_ex(mg.tensor(2 * np.eye(3), device=device, requires_grad=True))
    assert int(ok.info.item()) == 0
    ok.L.sum().backward()  # the factor of a positive-definite matrix keeps its gradient


def test_except_clause_of_ported_code():
    try:
        ML.cholesky(-mg.eye(2))
    except ML.LinAlgError as e:
        assert "not positive-definite" in str(e)
    else:  # pragma: no cover
        raise AssertionError("no LinAlgError")


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3, 3)])
def test_empty_inputs_as_pytorch(device, shape):
    a = mg.zeros(*shape, dtype=mg.float64, device=device)
    got, want = ML.ldl_factor_ex(a), TL.ldl_factor_ex(torch.zeros(*shape, dtype=torch.float64))
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape)
    b = mg.zeros(*shape[:-1], 2, dtype=mg.float64, device=device)
    assert tuple(ML.ldl_solve(got.LD, got.pivots, b).shape) == shape[:-1] + (2,)
    assert tuple(ML.cholesky_ex(a).info.shape) == shape[:-2]
    assert tuple(ML.inv_ex(a).inverse.shape) == shape
